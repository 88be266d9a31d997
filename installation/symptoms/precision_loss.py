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


def _bits_lost(shape, intensity: float, seed: int, name: str) -> torch.Tensor:
    """0 = untouched, k >= 1 = quantised to MAX_BITS + 1 - k bits; non-decreasing in intensity."""
    level = intensity * STEPS
    whole = int(level)
    extra = (level - whole) > onsets(shape, seed, "precision_loss", name)
    return (whole + extra.long()).clamp(max=STEPS)


def _damage(name: str, pristine: torch.Tensor, intensity: float, seed: int, ctx) -> torch.Tensor:
    scale = pristine.abs().max()
    if not torch.isfinite(scale) or scale == 0:
        return pristine.clone()
    lost = _bits_lost(pristine.shape, intensity, seed, name).to(pristine.device)
    bits = (MAX_BITS + 1 - lost).clamp(min=MIN_BITS)
    levels = torch.pow(2.0, (bits - 1).to(pristine.dtype))      # powers of two: exact, nested grids
    y = pristine / scale
    q = (torch.round(y * levels) / levels).clamp(-1.0, 1.0) * scale
    return torch.where(lost > 0, q, pristine)


SYMPTOM = WeightSymptom(
    name="precision_loss", level="weights", default_target="*",
    description="weights quantised to fewer and fewer bits",
    fn=_damage,
)
