"""detail_loss: the verbatim trace fades to the gist.

People keep the gist of a memory longer than its verbatim detail (fuzzy-trace theory). The
detail stage (models/detail.py) lays each memory's own photograph over the generator's soft
picture; this symptom takes it back, patch by patch: each patch of the picture draws a seeded
onset, and its borrowed detail fades out over an EDGE-wide band of intensity around it, so the
photograph's sharpness recedes in soft-edged islands, as a memory's particulars go before its
outline, until at intensity 1 only the generator's gist is left. Onsets are ranked to be
uniform, so the share of the picture gone soft follows the intensity; monotone and restorable,
as every symptom. The course gives it first, before any other damage.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .base import DetailSymptom, rng
from .base import FIELDS

PATCHES = 7            # the onset field is this many patches across, smoothly interpolated
EDGE = 0.35            # intensity band over which one patch's detail fades out


def _onsets(size: tuple[int, int], seed: int, device) -> torch.Tensor:
    """[1, 1, H, W] onsets in [0, 1), uniformly distributed over the pixels (ranked)."""
    def draw() -> torch.Tensor:
        coarse = torch.rand(1, 1, PATCHES, PATCHES, generator=rng(seed, "detail_loss"))
        smooth = F.interpolate(coarse, size=size, mode="bicubic", align_corners=False).flatten()
        ranks = torch.empty_like(smooth)
        ranks[smooth.argsort()] = torch.arange(smooth.numel(), dtype=smooth.dtype)
        return (ranks / smooth.numel()).view(1, 1, *size).to(device)
    return FIELDS.get(("detail_loss", size, str(torch.device(device)), seed), draw)


def _keep(size: tuple[int, int], intensity: float, seed: int, device) -> torch.Tensor:
    # a patch with onset u keeps all its detail while intensity <= u * (1 - EDGE), none from u * (1 - EDGE) + EDGE
    start = _onsets(size, seed, device) * (1.0 - EDGE)
    return ((start + EDGE - intensity) / EDGE).clamp(0.0, 1.0)


SYMPTOM = DetailSymptom(
    name="detail_loss", level="detail", default_target="",
    description="the memories' verbatim detail fades to the gist",
    fn=_keep,
)
