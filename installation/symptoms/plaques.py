"""plaques: holes in a middle layer's feature maps that appear and grow outward.

Every pixel's onset is its rank in a smooth seeded noise field, so holes open at the field's
lowest points and spread along its contours, and the hole area is exactly the intensity's
fraction of the map. Edges are soft (a pixel fades out over EDGE of intensity after its onset)
so a growing plaque creeps rather than jumps. The field is defined on a coarse GRID and
resampled to each layer's size, and is seeded without the layer's name, so plaques in several
layers sit in the same place in the picture.

A hole holds each channel's median over the map (of that picture), not zero: what the layer
carries most of, its background. A zeroed hole is a feature the network never saw, and it drew
grey slabs, lit the black around a brain slice and ended in one flat grey field for every
memory; a median hole is wiped smooth, the brain's tissue goes dark, and at full intensity a
photograph keeps only its own colour.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .base import ActivationSymptom, rng

GRID = 5                        # coarse noise grid: roughly how many blobs across the picture
EDGE = 0.08                     # intensity over which a pixel fades from whole to hole


def pixel_onsets(height: int, width: int, seed: int) -> torch.Tensor:
    """[H, W] onsets in [0, 1): ranks of a smooth seeded field (low = eaten first)."""
    coarse = torch.rand((1, 1, GRID, GRID), generator=rng(seed, "plaques"))
    field = F.interpolate(coarse, size=(height, width), mode="bicubic", align_corners=True).flatten()
    ranks = torch.empty_like(field)
    ranks[field.argsort()] = torch.arange(field.numel(), dtype=field.dtype)
    return (ranks / field.numel()).view(height, width)


def _effect(act: torch.Tensor, intensity: float, seed: int, t: float) -> torch.Tensor:
    onset = pixel_onsets(act.shape[2], act.shape[3], seed).to(act.device, act.dtype)
    reach = intensity * (1 + EDGE)      # so that at intensity 1 every pixel is fully gone
    keep = ((onset + EDGE - reach) / EDGE).clamp(0.0, 1.0)
    fill = act.flatten(2).median(dim=2).values[..., None, None]     # [N, C, 1, 1]
    return act * keep + fill * (1.0 - keep)          # exactly act where untouched (keep 1)


SYMPTOM = ActivationSymptom(
    name="plaques", level="activations", default_target="up16",
    description="growing spatial holes in a middle layer's feature maps",
    fn=_effect,
    seed_per_layer=False,
)
