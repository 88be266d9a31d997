"""precision_loss: weights are quantised to fewer and fewer bits.

Each weight loses bits one at a time at its own seeded onsets (from 16 bits down to 1 bit,
i.e. three levels -s, 0, +s), so precision drains gradually rather than in 16 visible steps.
The grids are nested (a value on the 3-bit grid is on the 4-bit grid), so a weight that a
coarse grid leaves alone a finer one leaves alone too: damage is monotone. The scale is the
layer's largest magnitude, so quantisation never clips.
"""
from __future__ import annotations

import torch

from .base import WeightSymptom, onsets

MAX_BITS = 16                   # first bit depth a weight falls to
MIN_BITS = 1                    # depth at intensity 1: levels {-s, 0, +s}
STEPS = MAX_BITS - MIN_BITS + 1  # bits lost, counting the first quantisation as one


def _grid(y: torch.Tensor, scale: torch.Tensor, lost: int) -> torch.Tensor:
    """y (weights / scale) rounded to the grid of MAX_BITS + 1 - lost bits, times scale."""
    levels = 2.0 ** (max(MIN_BITS, MAX_BITS + 1 - lost) - 1)    # a power of two: exact, nested grids
    return (torch.round(y * levels) / levels).clamp(-1.0, 1.0) * scale


def _damage(name: str, pristine: torch.Tensor, intensity: float, seed: int, ctx) -> torch.Tensor:
    scale = pristine.abs().max()
    if not torch.isfinite(scale) or scale == 0:
        return pristine.clone()
    # bits lost: `whole` for every weight, one more for those whose onset the remainder passed
    # (0 = untouched; non-decreasing in intensity); so only two grids are ever in play
    level = intensity * STEPS
    whole = min(int(level), STEPS)
    extra = (level - int(level)) > onsets(pristine.shape, seed, "precision_loss", name, device=pristine.device)
    y = pristine / scale
    coarse = _grid(y, scale, min(whole + 1, STEPS))
    fine = pristine if whole == 0 else _grid(y, scale, whole)
    return torch.where(extra, coarse, fine)


SYMPTOM = WeightSymptom(
    name="precision_loss", level="weights", default_target="*",
    description="weights quantised to fewer and fewer bits",
    fn=_damage,
)
