"""fading: colour drains, then contrast and light, until the picture has all but gone dark.

Saturation goes first (gone by COLOUR_GONE_AT), contrast follows (from CONTRAST_FROM), toward
black, not grey: fading should darken the room, not light it, and a flat grey field still
looks like a smooth memory (a wall, a sky; SSIM about 0.35 against the pristine frame),
where the dark does not. The course's curve stops just short of 1, so a trace still moves.
"""
from __future__ import annotations

import torch

from .base import OutputSymptom

COLOUR_GONE_AT = 0.6            # intensity at which the picture is fully greyscale
CONTRAST_FROM = 0.25            # intensity at which contrast starts to drain
FADE_TO = -1.0                 # where contrast drains to, in [-1, 1] image units: black
LUMA = (0.299, 0.587, 0.114)    # Rec. 601 weights for R, G, B


def _effect(img: torch.Tensor, intensity: float, seed: int, t: float) -> torch.Tensor:
    colour = 1.0 - min(1.0, intensity / COLOUR_GONE_AT)
    contrast = 1.0 - max(0.0, (intensity - CONTRAST_FROM) / (1.0 - CONTRAST_FROM))
    if img.shape[1] == 3:
        luma = (img * torch.tensor(LUMA, device=img.device, dtype=img.dtype).view(1, 3, 1, 1)).sum(1, keepdim=True)
        img = luma + colour * (img - luma)
    return FADE_TO + contrast * (img - FADE_TO)


SYMPTOM = OutputSymptom(
    name="fading", level="output", default_target="",
    description="colour and contrast drain",
    fn=_effect,
)
