"""feature_dropout: feature-map channels go dark, one by one, each at its own seeded onset.

A channel does not switch off at its onset but dims over base.DIM_SPAN of the intensity's travel
(`kept_share`): on the bundled brain model one channel took the change from 0.58 to 0.87 of its
full amount, and a fader should pass through that loss, not jump it.
"""
from __future__ import annotations

import torch

from .base import ActivationSymptom, kept_share, onsets


def _effect(act: torch.Tensor, intensity: float, seed: int, t: float) -> torch.Tensor:
    keep = kept_share(intensity, onsets((act.shape[1],), seed, "feature_dropout", device=act.device))
    return act * keep.to(act.dtype).view(1, -1, 1, 1)


SYMPTOM = ActivationSymptom(
    name="feature_dropout", level="activations", default_target="up*",
    description="feature-map channels go dark",
    fn=_effect,
)
