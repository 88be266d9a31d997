"""neuron_death: whole filters die, and everything that belongs to them dies with them.

A channel is only dead if its output is exactly zero, so its conv/linear weights *and* bias
*and* its normalisation's scale and shift go (a BatchNorm in eval mode turns a zero input into
its shift, which would keep the "dead" channel glowing). Onsets are drawn per channel of the
*layer* (seeded by layer name, not parameter name) so all of a channel's pieces die together.

Where the output channels sit differs by module: Conv2d and Linear weights are [out, in, ...]
(dim 0), ConvTranspose2d weights are [in, out, k, k] (dim 1); `ParamInfo.out_dim` says which.
The DCGAN stem's linear layer has 16 units per channel (reshaped to 4x4), so units are grouped
into the layer's channels whenever the count divides evenly.

A filter dies over base.DIM_SPAN of the intensity's travel, its pieces scaled down together
(`kept_share`), not at once: on the bundled brain model one filter took the change from 0.48 to
0.67 of its full amount, and a fader should pass through that death, not jump it.
"""
from __future__ import annotations

import torch

from .base import ParamInfo, WeightSymptom, kept_share, onsets


def _channel_kept(units: int, channels: int | None, intensity: float, seed: int, layer: str) -> torch.Tensor:
    """The share still alive of `units` output units, grouped into the layer's channels (units per
    channel consecutive, as in `x.view(N, C, 4, 4)`)."""
    if not channels or units % channels:
        channels = units
    kept = kept_share(intensity, onsets((channels,), seed, "neuron_death", layer))
    return kept.repeat_interleave(units // channels)


def _damage(name: str, pristine: torch.Tensor, intensity: float, seed: int, ctx: ParamInfo | None) -> torch.Tensor:
    out_dim = ctx.out_dim if ctx is not None and ctx.out_dim is not None else 0
    channels = ctx.channels if ctx is not None else None
    layer = ctx.layer if ctx is not None else name
    if pristine.ndim == 0:
        return pristine.clone()
    kept = _channel_kept(pristine.shape[out_dim], channels, intensity, seed, layer).to(pristine.device, pristine.dtype)
    shape = [1] * pristine.ndim
    shape[out_dim] = -1
    return pristine * kept.view(shape)


SYMPTOM = WeightSymptom(
    name="neuron_death", level="weights", default_target="stem,up*",  # to_rgb's 3 "channels" are colours
    description="whole filters / channels die",
    fn=_damage,
    roles=frozenset({"weight", "bias", "norm"}),
)
