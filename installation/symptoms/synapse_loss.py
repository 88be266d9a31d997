"""synapse_loss: individual weights fall to zero, one by one, the same ones every run."""
from __future__ import annotations

import torch

from .base import WeightSymptom, onsets, zero_where


def _damage(name: str, pristine: torch.Tensor, intensity: float, seed: int, ctx) -> torch.Tensor:
    lost = intensity > onsets(pristine.shape, seed, "synapse_loss", name, device=pristine.device)
    return zero_where(pristine, lost)


SYMPTOM = WeightSymptom(
    name="synapse_loss", level="weights", default_target="*",
    description="individual weights fall to zero",
    fn=_damage,
    roles=frozenset({"weight"}),        # synapses are connections; biases and norms are cells
)
