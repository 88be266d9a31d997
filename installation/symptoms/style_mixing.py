"""Style mixing: how `confusion` strikes a style generator — memories blend layer by layer.

A style generator draws with one w per layer: coarse layers set the pose and outline, fine
layers the texture. Confusion here hands layers over to *another* memory: each of the num_ws
style inputs has a seeded onset, and past it the layer's style slides (over EDGE of intensity)
toward the intruding memory, up to MAX_BLEND. So a face keeps its shape with a stranger's skin,
or a brain slice its texture with another's outline, and more layers are lost as the intensity
rises. The intruder is the same seeded sequence of memories as `confusion` on a DCGAN (one per
PERIOD_S of t, cross-faded), taken in w. Intensity 0 is exactly the identity; without anchors
there is nothing to confuse with.
"""
from __future__ import annotations

import math

import torch

from .base import clean_intensity, onsets, smoothstep, unit_hash
from .confusion import PERIOD_S

EDGE = 0.1                      # intensity over which one layer's style slides to the intruder's
MAX_BLEND = 0.85                # share of the intruder in a layer that has gone over completely


def intruder_w(anchors: torch.Tensor, seed: int, t: float) -> torch.Tensor:
    """The intruding memory at time t, in w: [L], drifting (straight, as w moves) between anchors."""
    count = anchors.shape[0]
    period = math.floor(t / PERIOD_S)
    now, then = (anchors[int(unit_hash(seed, "confusion", k) * count)] for k in (period, period + 1))
    return torch.lerp(now, then, smoothstep(t / PERIOD_S - period))


def layer_blend(num_ws: int, intensity: float, seed: int) -> torch.Tensor:
    """[num_ws] share of the intruder in each layer's style: 0 until the layer's onset, non-decreasing."""
    onset = onsets((num_ws,), seed, "style_mixing")
    return MAX_BLEND * ((intensity * (1 + EDGE) - onset) / EDGE).clamp(0.0, 1.0)


def mix(ws: torch.Tensor, intensity: float, anchors: torch.Tensor, seed: int, t: float) -> torch.Tensor:
    """ws [N, num_ws, L] -> ws with layers handed over to the intruding memory."""
    intensity = clean_intensity(intensity)
    if intensity == 0.0 or anchors.shape[0] == 0:
        return ws
    assert ws.ndim == 3, f"style_mixing: ws must be [N, num_ws, L], got {tuple(ws.shape)}"
    other = intruder_w(anchors.to(ws.device, ws.dtype), seed, t)                 # [L]
    blend = layer_blend(ws.shape[1], intensity, seed).to(ws.device, ws.dtype)     # [num_ws]
    return torch.lerp(ws, other.expand_as(ws), blend.view(1, -1, 1))
