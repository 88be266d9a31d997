"""bit_rot: bits of the stored float32 weights flip.

Each weight has a seeded onset and a seeded bit position (uniform over the 32 bits, as real
memory errors are): most flips land in the mantissa and are subtle, a sign flip inverts a
synapse, and an exponent flip is violent — a weight can jump by a factor of 2^128. Violent is
the point, but a NaN or Inf on screen is not: rotten values are made finite (non-finite -> 0)
and clamped to CLAMP_X times the layer's largest magnitude, so the picture tears but stays a
picture.

A few flipped bits already show, so the share of rotten weights is intensity cubed, and the
clamp is twice the largest weight: with the clamp at 16x, 0.2% of the weights rotten took the
bundled memories to SSIM 0.53 and 1% to 0.16 (a fader that was a switch over its first 0.5%);
at 2x the same shares give 0.95 and 0.82, and the cube spreads that over the fader's travel
(0.82 at intensity 0.22, 0.44 at 0.37, 0.20 at 0.58).
"""
from __future__ import annotations

import torch

from .base import FIELDS, WeightSymptom, rng

CLAMP_X = 2.0                   # rotten weights are limited to this multiple of the layer's max |w|


def _flip_bits(values: torch.Tensor, bit: torch.Tensor) -> torch.Tensor:
    """float32 values with bit `bit` (0 = mantissa LSB, 31 = sign) of each element flipped."""
    raw = values.float().contiguous().view(torch.int32).long() & 0xFFFFFFFF
    raw = raw ^ torch.bitwise_left_shift(torch.ones_like(raw), bit)
    raw = torch.where(raw >= 2 ** 31, raw - 2 ** 32, raw)       # back to signed 32-bit range
    return raw.to(torch.int32).view(torch.float32)


def _onsets_and_bits(name: str, shape, seed: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Each weight's onset and the bit it loses, drawn in that order from one seeded generator
    (cached: FieldCache), the bit index stored exactly as a float beside the onset."""
    def draw() -> torch.Tensor:
        g = rng(seed, "bit_rot", name)
        onset = torch.rand(tuple(shape), generator=g)
        bit = torch.randint(0, 32, tuple(shape), generator=g)
        return torch.stack([onset, bit.float()]).to(device)
    both = FIELDS.get(("bit_rot", tuple(shape), str(torch.device(device)), seed, name), draw)
    return both[0], both[1].long()


def _damage(name: str, pristine: torch.Tensor, intensity: float, seed: int, ctx) -> torch.Tensor:
    onset, bit = _onsets_and_bits(name, pristine.shape, seed, pristine.device)
    rotten_mask = intensity ** 3 > onset
    limit = max(CLAMP_X * float(pristine.abs().max()), 1e-6)
    rotten = _flip_bits(pristine, bit)
    rotten = torch.nan_to_num(rotten, nan=0.0, posinf=0.0, neginf=0.0).clamp(-limit, limit)
    return torch.where(rotten_mask, rotten.to(pristine.dtype), pristine)


SYMPTOM = WeightSymptom(
    name="bit_rot", level="weights", default_target="*",
    description="bits of the stored floats flip (exponent flips are violent)",
    fn=_damage,
)
