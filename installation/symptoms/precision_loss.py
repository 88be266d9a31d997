"""precision_loss: weights are quantised to fewer and fewer bits.

Each weight loses bits one at a time at its own seeded onsets (from 6 bits down to 1 bit,
i.e. three levels -s, 0, +s), so precision drains gradually rather than in visible steps. On a
scale set by the layer's largest weight only the last few bits show (the bundled models look the
same at 16 bits and at 6, then lose their picture between 5 and 2), so the course starts at 6:
measured on the bundled memories (SSIM to the healthy frame) 0.96 at intensity 0.25, 0.82 at 0.5,
0.27 at 0.75; starting at 16 bits it was 1.00 up to 0.6 and then a cliff.
The grids are nested (a value on the 3-bit grid is on the 4-bit grid), so a weight that a
coarse grid leaves alone a finer one leaves alone too: damage is monotone. The scale is the
layer's largest magnitude, so quantisation never clips.
"""
from __future__ import annotations

import math

import torch

from .base import WeightSymptom, onsets

MAX_BITS = 6                    # first bit depth a weight falls to (invisible; see above)
MIN_BITS = 1                    # depth at intensity 1: levels {-s, 0, +s}
STEPS = MAX_BITS - MIN_BITS + 1  # bits lost, counting the first quantisation as one


def _grid(values: torch.Tensor, scale: float, lost: int) -> torch.Tensor:
    """values rounded to the grid of MAX_BITS + 1 - lost bits over [-scale, scale] (a new tensor).
    |values| <= scale and the level count is a power of two, so the result never leaves the range."""
    levels = 2.0 ** (max(MIN_BITS, MAX_BITS + 1 - lost) - 1)    # a power of two: exact, nested grids
    return torch.mul(values, levels / scale).round_().mul_(scale / levels)


def _damage(name: str, pristine: torch.Tensor, intensity: float, seed: int, ctx) -> torch.Tensor:
    scale = float(pristine.abs().max())
    if not math.isfinite(scale) or scale == 0:
        return pristine.clone()
    # bits lost: `whole` for every weight, one more for those whose onset the remainder passed
    # (0 = untouched; non-decreasing in intensity); so only two grids are ever in play
    level = intensity * STEPS
    whole = min(int(level), STEPS)
    extra = (level - int(level)) > onsets(pristine.shape, seed, "precision_loss", name, device=pristine.device)
    coarse = _grid(pristine, scale, min(whole + 1, STEPS))
    fine = pristine if whole == 0 else _grid(pristine, scale, whole)
    return coarse.sub_(fine).mul_(extra).add_(fine)      # coarse where extra, else fine (in place: one tensor)


SYMPTOM = WeightSymptom(
    name="precision_loss", level="weights", default_target="*",
    description="weights quantised to fewer and fewer bits",
    fn=_damage,
)
