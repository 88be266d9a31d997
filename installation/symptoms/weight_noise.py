"""weight_noise: a fixed, seeded noise field added to every weight, scaled by each layer's spread.

The field never changes for a given seed; only its amplitude follows the intensity, so the
damage is restorable and does not shimmer. Scaling by the layer's standard deviation makes the
same intensity equally harmful to a layer of tiny weights and a layer of large ones.
"""
from __future__ import annotations

import torch

from .base import WeightSymptom, normal

AMPLITUDE_AT_1 = 1.0            # noise std at intensity 1, in units of the layer's own std


def _damage(name: str, pristine: torch.Tensor, intensity: float, seed: int, ctx) -> torch.Tensor:
    noise = normal(pristine.shape, seed, "weight_noise", name, device=pristine.device)
    spread = pristine.float().std(correction=0) if pristine.numel() > 1 else pristine.abs().float().mean()
    return torch.add(pristine, noise.to(pristine.dtype), alpha=float(intensity * AMPLITUDE_AT_1 * spread))  # one pass


SYMPTOM = WeightSymptom(
    name="weight_noise", level="weights", default_target="*",
    description="fixed seeded noise, scaled by each layer's spread",
    fn=_damage,
)
