"""Differentiable augmentation (DiffAugment, Zhao et al. 2020) for tiny data sets.

With eight photographs the discriminator memorises the real set within minutes and training
collapses. Augmenting *both* real and generated images before D, with operations that gradients
flow through, keeps D honest without teaching G to draw augmented images.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def _color(x: torch.Tensor) -> torch.Tensor:
    n = x.shape[0]
    x = x + (torch.rand(n, 1, 1, 1, device=x.device, dtype=x.dtype) - 0.5)            # brightness
    if x.shape[1] == 3:
        mean = x.mean(dim=1, keepdim=True)
        x = (x - mean) * (torch.rand(n, 1, 1, 1, device=x.device, dtype=x.dtype) * 2) + mean  # saturation
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (torch.rand(n, 1, 1, 1, device=x.device, dtype=x.dtype) + 0.5) + mean  # contrast


def _translation(x: torch.Tensor, ratio: float = 0.125) -> torch.Tensor:
    n, _, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    ty = torch.randint(-sh, sh + 1, (n, 1, 1), device=x.device)
    tx = torch.randint(-sw, sw + 1, (n, 1, 1), device=x.device)
    gy, gx = torch.meshgrid(torch.arange(h, device=x.device), torch.arange(w, device=x.device), indexing="ij")
    gy = (gy[None] + ty + 1).clamp(0, h + 1)
    gx = (gx[None] + tx + 1).clamp(0, w + 1)
    padded = F.pad(x, (1, 1, 1, 1))  # zero border, as DiffAugment: shifted-in pixels are mid-grey
    idx = (gy * (w + 2) + gx).view(n, 1, -1).expand(-1, x.shape[1], -1)
    return padded.flatten(2).gather(2, idx).view_as(x)


def _cutout(x: torch.Tensor, ratio: float = 0.5) -> torch.Tensor:
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    cy = torch.randint(0, h + (1 - ch % 2), (n, 1, 1), device=x.device)
    cx = torch.randint(0, w + (1 - cw % 2), (n, 1, 1), device=x.device)
    gy, gx = torch.meshgrid(torch.arange(h, device=x.device), torch.arange(w, device=x.device), indexing="ij")
    inside = ((gy[None] - cy).abs() < ch // 2) & ((gx[None] - cx).abs() < cw // 2)
    return x * (~inside).unsqueeze(1).to(x.dtype)


POLICIES = {"color": _color, "translation": _translation, "cutout": _cutout}


def parse_policy(policy: str) -> list[str]:
    names = [p.strip() for p in policy.split(",") if p.strip()]
    unknown = [p for p in names if p not in POLICIES]
    if unknown:
        raise ValueError(f"unknown augmentation {', '.join(unknown)} (known: {', '.join(POLICIES)})")
    return names


def diff_augment(x: torch.Tensor, policy: list[str]) -> torch.Tensor:
    for name in policy:
        x = POLICIES[name](x)
    return x


def random_flip(x: torch.Tensor) -> torch.Tensor:
    """Horizontal flip of a random half of the batch (a real-data augmentation, as in seed 003)."""
    flip = torch.rand(x.shape[0], 1, 1, 1, device=x.device) < 0.5
    return torch.where(flip, x.flip(3), x)
