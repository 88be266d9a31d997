"""confusion: memories blend into each other.

The current latent is pulled toward *another* memory: a seeded sequence of anchors, one per
PERIOD_S of t, cross-faded smoothly so the intruding memory drifts instead of jumping. The
pull grows with the intensity up to MAX_BLEND (at 1 the intruder dominates). The result keeps
the latent's length, so it stays on the generator's shell. Without anchors there is nothing to
confuse with, and the symptom is the identity.
"""
from __future__ import annotations

import math

import torch

from .base import LatentSymptom, slerp_directions, smoothstep, unit_hash

PERIOD_S = 20.0                 # seconds of t during which one memory intrudes
MAX_BLEND = 0.65                # share of the intruding memory at intensity 1


def intruder(anchors: torch.Tensor, seed: int, t: float) -> torch.Tensor:
    """The intruding memory at time t: unit [L], drifting between seeded anchors."""
    count = anchors.shape[0]
    period = math.floor(t / PERIOD_S)
    now, then = (anchors[int(unit_hash(seed, "confusion", k) * count)] for k in (period, period + 1))
    blend = smoothstep(t / PERIOD_S - period)
    return slerp_directions(now[None], then[None], blend)[0]


def _effect(z: torch.Tensor, intensity: float, anchors: torch.Tensor, seed: int, t: float) -> torch.Tensor:
    if anchors.shape[0] == 0:
        return z
    other = intruder(anchors.to(z.device, z.dtype), seed, t)
    radius = z.norm(dim=1, keepdim=True)
    return slerp_directions(z, other.expand_as(z), MAX_BLEND * intensity) * radius


SYMPTOM = LatentSymptom(
    name="confusion", level="latent", default_target="",
    description="memories blend into each other",
    fn=_effect,
)
