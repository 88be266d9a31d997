"""static: noise in the activations, new every frame.

The only symptom that moves by itself — but still a function of the state: the noise is seeded
by (seed, frame number) with frames counted at FRAME_RATE from t, so an offline render and the
live show make the same static. Amplitude follows the intensity and each sample's own spread
in this layer, so it reads the same in every layer and at every stage.
"""
from __future__ import annotations

import torch

from .base import ActivationSymptom, rng

FRAME_RATE = 60                 # static changes this many times per second of t
AMPLITUDE_AT_1 = 1.0            # noise std at intensity 1, in units of the activation's std


def _effect(act: torch.Tensor, intensity: float, seed: int, t: float) -> torch.Tensor:
    frame = round(t * FRAME_RATE)
    noise = torch.randn(tuple(act.shape), generator=rng(seed, "static", frame)).to(act.device, act.dtype)
    spread = act.flatten(1).std(dim=1, correction=0).view(-1, 1, 1, 1)   # per sample: batch-independent
    return act + intensity * AMPLITUDE_AT_1 * spread * noise


SYMPTOM = ActivationSymptom(
    name="static", level="activations", default_target="up*",
    description="noise in the activations, every frame",
    fn=_effect,
)
