"""The latent and output symptoms, each level's in its order: pure functions of a frame's state.

The engine chains them around the generator: the walked latents go through LATENT_ORDER before
it draws (style.py does so in w), its picture through OUTPUT_ORDER after.
"""
from __future__ import annotations

from typing import Mapping

import torch

from .symptoms import SYMPTOMS

LATENT_ORDER = ("confusion", "forgetting")       # blur memories together, then let them fade
OUTPUT_ORDER = ("fading", "lapses")              # a blackout falls over the faded picture


def latent(z: torch.Tensor, intensities: Mapping[str, float], anchors: torch.Tensor, t: float,
           seed: int) -> torch.Tensor:
    """z [N, L] after the latent symptoms."""
    for name in LATENT_ORDER:
        z = SYMPTOMS[name].effect(z, intensities.get(name, 0.0), anchors, int(seed), t)
    return z


def output(img: torch.Tensor, intensities: Mapping[str, float], t: float, seed: int) -> torch.Tensor:
    """img [N, C, H, W] in [-1, 1] after the output symptoms."""
    for name in OUTPUT_ORDER:
        img = SYMPTOMS[name].effect(img, intensities.get(name, 0.0), int(seed), t)
    return img
