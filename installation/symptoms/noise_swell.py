"""noise_swell: a style generator's noise inputs swell — static at the source.

StyleGAN adds a fixed noise image to every layer with a learned strength per channel (it draws
hair, pores, the grain of tissue). Here each channel's strength, from its own seeded onset on,
grows linearly with the intensity by up to AMPLITUDE_AT_1 — in units of the unit-variance
features it is added to — keeping its sign. The noise images themselves are fixed buffers, so
the swelling is a stable texture that thickens, not a flicker (that is `static`, in the
activations); turning it down restores the learned strengths exactly. A DCGAN has no noise
inputs: there it does nothing.
"""
from __future__ import annotations

import torch

from .base import WeightSymptom, onsets

AMPLITUDE_AT_1 = 2.5            # added strength of a channel whose onset is 0, at intensity 1


def _damage(name: str, pristine: torch.Tensor, intensity: float, seed: int, ctx) -> torch.Tensor:
    onset = onsets(pristine.shape, seed, "noise_swell", name, device=pristine.device)
    swell = AMPLITUDE_AT_1 * (intensity - onset).clamp(min=0.0)
    sign = torch.where(pristine < 0, -1.0, 1.0).to(pristine.dtype)
    return pristine + sign * swell.to(pristine.dtype)


SYMPTOM = WeightSymptom(
    name="noise_swell", level="weights", default_target="*.noise_strength",
    description="the noise inputs swell: static at the source (style models)",
    fn=_damage,
    roles=frozenset({"param"}),
)
