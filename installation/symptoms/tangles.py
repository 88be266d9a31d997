"""tangles: channels of a layer are permuted — features end up wired to the wrong places.

The channels are paired once (a seeded permutation, taken two at a time); each pair swaps when
the intensity passes its onset. Pairs are disjoint, so any set of swaps is a valid permutation
and a swap undoes itself when the intensity falls back.
"""
from __future__ import annotations

import torch

from .base import ActivationSymptom, rng


def channel_order(channels: int, intensity: float, seed: int) -> torch.Tensor:
    """Index i of the result is the input channel shown in channel i."""
    g = rng(seed, "tangles")
    pairs = torch.randperm(channels, generator=g)[: channels // 2 * 2].view(-1, 2)
    tangled = intensity > torch.rand((pairs.shape[0],), generator=g)
    order = torch.arange(channels)
    a, b = pairs[tangled, 0], pairs[tangled, 1]
    order[a], order[b] = b, a
    return order


def _effect(act: torch.Tensor, intensity: float, seed: int, t: float) -> torch.Tensor:
    return act[:, channel_order(act.shape[1], intensity, seed).to(act.device)]


SYMPTOM = ActivationSymptom(
    name="tangles", level="activations", default_target="up8",
    description="channels of a layer are permuted",
    fn=_effect,
)
