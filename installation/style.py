"""What a style-based generator adds to the engine's path from walk to picture.

Why it exists: a StyleGAN recalls its memories best in w (the anchors are inverted there), so
the engine walks in w and draws with the synthesis network alone. Three things would be lost
that way, and this module puts them back, as pure functions of the frame's state:

* the mapping network's damage (`misidentification`, or any weight symptom aimed at `mapping`):
  the walked w moves by how far the damaged mapping now misplaces a latent tied to that w
  (the damaged minus the pristine mapping, read at w's own direction from the average w), so
  it is exactly zero while the mapping is healthy and grows smoothly with its lesions;
* `forgetting`: the latent symptoms act on w relative to the average w (the "average face"),
  so a memory fades toward what all of them share, as truncation does;
* `confusion`: style mixing between memories, layer by layer (symptoms/style_mixing.py).
"""
from __future__ import annotations

import copy
from typing import Mapping

import torch

from . import levels
from .symptoms import style_mixing

POOL = 16                       # mapped random latents a walk without anchors visits


class StyleLatents:
    """Walk latents w [N, L] -> damaged w (`latent`) -> styles ws [N, num_ws, L] (`styles`) to synthesize."""

    def __init__(self, generator: torch.nn.Module, anchors: torch.Tensor):
        # a pristine copy, taken before the engine hooks or damages the live generator
        self.pristine_mapping = copy.deepcopy(generator.mapping).eval().requires_grad_(False)
        self.live_mapping = generator.mapping
        self.w_avg = self.pristine_mapping.w_avg.detach().clone()            # [L]
        self.num_ws = generator.num_ws
        self.latent_size = generator.latent_size
        self.anchors = anchors                                               # [A, L] in w

    @torch.no_grad()
    def points(self, count: int, seed: int) -> torch.Tensor:
        """`count` seeded w's of the healthy model (w has no shell to draw random points on): [count, L]."""
        g = torch.Generator().manual_seed(int(seed) & 0x7FFFFFFF)
        z = torch.randn(count, self.latent_size, generator=g).to(self.w_avg.device)
        return self.pristine_mapping(z)

    def _mapping_error(self, w: torch.Tensor) -> torch.Tensor:
        """Damaged minus pristine mapping at a latent tied to each w: [N, L], zero when healthy."""
        centred = w - self.w_avg
        z = centred * (self.latent_size ** 0.5 / centred.norm(dim=1, keepdim=True).clamp_min(1e-8))
        return self.live_mapping(z) - self.pristine_mapping(z)

    def latent(self, w: torch.Tensor, intensities: Mapping[str, float], t: float, seed: int) -> torch.Tensor:
        """w [N, L] after the latent symptoms, relative to the average w; confusion waits for `styles`."""
        assert w.ndim == 2 and w.shape[1] == self.latent_size, f"w must be [N, {self.latent_size}]"
        self.w_avg = self.w_avg.to(w.device)
        others = {k: v for k, v in intensities.items() if k != "confusion"}
        return self.w_avg + levels.latent(w - self.w_avg, others, self.anchors.to(w.device, w.dtype) - self.w_avg,
                                          t, seed)

    def styles(self, w: torch.Tensor, intensities: Mapping[str, float], t: float, seed: int) -> torch.Tensor:
        """w [N, L] -> ws [N, num_ws, L] for synthesis: the mapping's damage, then confusion's style
        mixing. Call it after the frame's weights are loaded: it reads the live mapping."""
        w = w + self._mapping_error(w)
        ws = w[:, None].expand(-1, self.num_ws, -1)                           # [N, num_ws, L]
        return style_mixing.mix(ws, intensities.get("confusion", 0.0), self.anchors.to(w.device, w.dtype), seed, t)
