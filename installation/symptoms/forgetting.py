"""forgetting: the latent sinks toward the mean — identity fades to a generic face.

The "mean" is the direction of the anchors' average (what all the memories share), or, for a
model without anchors, a fixed seeded direction. The latent turns toward it along the sphere
and keeps its own length, so it stays on the shell the generator was trained on: the picture
becomes generic, not washed out. At intensity 1 every memory is the same generic image.
"""
from __future__ import annotations

import torch

from .base import LatentSymptom, rng, slerp_directions


def generic_direction(anchors: torch.Tensor, latent_size: int, seed: int) -> torch.Tensor:
    """Unit [L] direction that all memories fade toward."""
    if anchors.shape[0] > 0:
        mean = anchors.float().mean(0)
        if mean.norm() > 1e-3 * latent_size ** 0.5:
            return mean / mean.norm()
    direction = torch.randn((latent_size,), generator=rng(seed, "forgetting"))
    return direction / direction.norm()


def _effect(z: torch.Tensor, intensity: float, anchors: torch.Tensor, seed: int, t: float) -> torch.Tensor:
    target = generic_direction(anchors.cpu(), z.shape[1], seed).to(z.device, z.dtype)
    radius = z.norm(dim=1, keepdim=True)
    return slerp_directions(z, target.expand_as(z), intensity) * radius


SYMPTOM = LatentSymptom(
    name="forgetting", level="latent", default_target="",
    description="the latent sinks toward the mean: identity fades to a generic face",
    fn=_effect,
)
