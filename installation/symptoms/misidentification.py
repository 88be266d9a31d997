"""misidentification: the mapping network is rewired — a memory is recalled as someone else.

Only a style generator has it: its mapping network turns a latent into a w, the *identity* the
synthesis layers then draw. Here each of the mapping's weights, at its own seeded onset, takes
the value of another weight of the same layer (a fixed seeded pairing), so the synapses are all
still there but connect the wrong things: the picture stays well drawn — synthesis is untouched
— while who or what it shows drifts. The engine reads the damaged mapping against the pristine
one and moves the walked w by the difference (installation/style.py), so the damage shows even
though the walk itself moves in w. A DCGAN has no layer called `mapping`: there it does nothing.
"""
from __future__ import annotations

import torch

from .base import WeightSymptom, onsets, permutation


def _damage(name: str, pristine: torch.Tensor, intensity: float, seed: int, ctx) -> torch.Tensor:
    flat = pristine.reshape(-1)
    source = permutation(flat.numel(), seed, "misidentification", name, "wiring", device=pristine.device)
    rewired = intensity > onsets(flat.shape, seed, "misidentification", name, device=pristine.device)
    return torch.where(rewired, flat[source], flat).view_as(pristine)


SYMPTOM = WeightSymptom(
    name="misidentification", level="weights", default_target="mapping",
    description="the mapping network is rewired: memories are recalled as someone else (style models)",
    fn=_damage,
    roles=frozenset({"weight", "bias"}),
)
