"""feature_dropout: feature-map channels go dark, one by one, each at its own seeded onset."""
from __future__ import annotations

import torch

from .base import ActivationSymptom, onsets


def _effect(act: torch.Tensor, intensity: float, seed: int, t: float) -> torch.Tensor:
    dark = intensity > onsets((act.shape[1],), seed, "feature_dropout", device=act.device)
    return act.masked_fill(dark.view(1, -1, 1, 1), 0.0)


SYMPTOM = ActivationSymptom(
    name="feature_dropout", level="activations", default_target="up*",
    description="feature-map channels go dark",
    fn=_effect,
)
