"""DCGAN generator and discriminator, built from one frozen config.

The config is the single source of the architecture: checkpoints carry it as JSON and
`models.checkpoint` rebuilds the network from it alone, so no size is ever retyped.
Layer names are stable and meaningful (`stem`, `up8` … `up64`, `to_rgb`) because the
installation's symptoms target them by pattern.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .config import ConfigJSON

ARCHITECTURE = "dcgan"


@dataclass(frozen=True)
class DCGANConfig(ConfigJSON):
    ARCHITECTURE_LABEL = "DCGAN"   # for messages
    image_size: int = 128          # output side in pixels, a power of two in [32, 256]
    channels: int = 3              # 1 = grayscale, 3 = RGB
    latent_size: int = 128         # length of z
    width: int = 32                # G filters at the last hidden layer (DCGAN's ngf); doubles per level down
    d_width: int = 32              # D filters at the first layer (DCGAN's ndf)
    max_channels: int = 512        # cap on filters at any level, G and D
    kernel_size: int = 4           # spatial kernel of every up / down convolution
    upsample: str = "transposed"   # "transposed" (strided transposed conv) or "nearest"/"bilinear" + conv
    g_norm: str = "batch"          # normalisation in G: "batch", "pixel" (ProGAN), "none"
    g_act: str = "relu"            # activation in G: "relu" or "leaky"
    d_norm: str = "batch"          # normalisation in D: "batch", "instance", "spectral", "none"
    d_dropout: float = 0.0         # dropout after each D conv (seed 001 uses it)
    d_depth: int = 0               # stride-2 convs in D; 0 = down to 4x4

    def __post_init__(self) -> None:
        problems = []
        if self.image_size not in (32, 64, 128, 256):
            problems.append(f"image_size={self.image_size}: must be 32, 64, 128 or 256")
        if self.channels not in (1, 3):
            problems.append(f"channels={self.channels}: must be 1 (grayscale) or 3 (RGB)")
        for name in ("latent_size", "width", "d_width", "max_channels"):
            if not 1 <= getattr(self, name) <= 4096:
                problems.append(f"{name}={getattr(self, name)}: must be between 1 and 4096")
        if self.kernel_size not in (3, 4, 5):
            problems.append(f"kernel_size={self.kernel_size}: must be 3, 4 or 5")
        choices = {"upsample": ("transposed", "nearest", "bilinear"), "g_norm": ("batch", "pixel", "none"),
                   "g_act": ("relu", "leaky"), "d_norm": ("batch", "instance", "spectral", "none")}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                problems.append(f"{name}={getattr(self, name)!r}: must be one of {', '.join(allowed)}")
        if not 0.0 <= self.d_dropout < 1.0:
            problems.append(f"d_dropout={self.d_dropout}: must be in [0, 1)")
        max_depth = int(math.log2(self.image_size)) - 2 if self.image_size in (32, 64, 128, 256) else 0
        if not 0 <= self.d_depth <= max_depth:
            problems.append(f"d_depth={self.d_depth}: must be between 0 and {max_depth}")
        if problems:
            raise ValueError("invalid DCGAN config: " + "; ".join(problems))

    @property
    def levels(self) -> int:
        """Number of 2x upsamplings from the 4x4 stem to the image."""
        return int(math.log2(self.image_size)) - 2

    def g_channels(self, res: int) -> int:
        """G filters at resolution `res` (DCGAN ladder: ngf at image_size/2, doubling per level down)."""
        return min(self.max_channels, self.width * (self.image_size // 2) // res)



class PixelNorm(nn.Module):
    """Normalise each pixel's feature vector to unit RMS (ProGAN): batch-independent, so
    a generator sampled one frame at a time behaves exactly as in training."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + 1e-8)


def _g_norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "pixel":
        return PixelNorm()
    return nn.Identity()


def _act(kind: str) -> nn.Module:
    return nn.ReLU(inplace=True) if kind == "relu" else nn.LeakyReLU(0.2, inplace=True)


class ResizeConv2d(nn.Conv2d):
    """A 3x3 convolution of the 2x nearest-upsampled input, given the input before upsampling.

    Nearest upsampling followed by a 3x3 convolution is exactly one transposed convolution
    (kernel 4, stride 2, padding 1) whose kernel sums neighbouring taps: along each axis
    [w2, w1 + w2, w0 + w1, w0]. Without autograd (rendering, evaluation) that form runs, on the
    small input: 16 instead of 36 multiply-adds per output pixel and channel pair, and no
    upsampled copy — about 2.5x less time on a CPU. A layer with few output channels (the image,
    and a narrow generator's last hidden layer) runs faster still as its four output phases, each a
    2x2 convolution of the input, interleaved: on a CPU the bundled memories model's 48 -> 24 layer
    takes a fifth less time so (batch 8, one thread), its 96 -> 48 layer the same. The summed
    kernel is cached until the weight changes (its version counter: every
    in-place change, such as the installation's damage, bumps it). Training takes the plain path,
    so gradients are those of the published model."""

    PHASES_MAX_OUT = 32         # output channels up to which the four-phase form is the faster

    @property
    def _phased(self) -> bool:
        return self.out_channels <= self.PHASES_MAX_OUT

    def _fused_weight(self) -> torch.Tensor:
        w = self.weight
        key = (w._version, w.data_ptr(), w.dtype, w.device)
        cached = getattr(self, "_fused", None)
        if cached is None or cached[0] != key:
            with torch.no_grad():
                k = _summed_taps(_summed_taps(w.detach(), 2), 3)                       # [out, in, 4, 4]
                if self._phased:
                    fused = _phase_kernels(k)
                else:
                    fused = k.transpose(0, 1).contiguous()                              # [in, out, 4, 4]
            cached = self._fused = (key, fused)
        return cached[1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled() and (x.requires_grad or self.weight.requires_grad):
            return super().forward(F.interpolate(x, scale_factor=2, mode="nearest"))
        if not self._phased:
            return F.conv_transpose2d(x, self._fused_weight(), self.bias, stride=2, padding=1)
        n, _, h, w = x.shape
        c = self.out_channels
        phases = F.conv2d(x, self._fused_weight(), padding=1).view(n, 2, 2, c, h + 1, w + 1)
        out = x.new_empty(n, c, h, 2, w, 2)
        for a in (0, 1):              # output pixel (2i + a, 2j + b) is phase (a, b) at (i + a, j + b)
            for b in (0, 1):
                out[:, :, :, a, :, b] = phases[:, a, b, :, a:a + h, b:b + w]
        out = out.view(n, c, 2 * h, 2 * w)
        return out if self.bias is None else out.add_(self.bias.view(1, -1, 1, 1))


def _tanh(x: torch.Tensor) -> torch.Tensor:
    """tanh; under no_grad or inference_mode on a CPU numpy's (vectorised for float32: a fourteenth of
    torch's time there on one thread, 0.07 vs 1.0 ms for a batch of eight 128-px pictures; within
    6e-8 of it). With grad mode on, torch's whatever needs a gradient, so one generator gives the
    same pictures to the bit with or without trainable weights."""
    if x.device.type != "cpu" or x.dtype != torch.float32 or torch.is_grad_enabled():
        return torch.tanh(x)
    out = torch.empty_like(x, memory_format=torch.contiguous_format)
    np.tanh(x.detach().contiguous().numpy(), out=out.numpy())
    return out


def _summed_taps(w: torch.Tensor, dim: int) -> torch.Tensor:
    """Along one axis, 3 taps of a conv after nearest upsampling -> the 4 taps of the transposed
    conv it equals: [w2, w1 + w2, w0 + w1, w0]."""
    w0, w1, w2 = w.unbind(dim)
    return torch.stack([w2, w1 + w2, w0 + w1, w0], dim)


_PHASE_TAPS = (torch.tensor([3, 1]), torch.tensor([2, 0]))   # of the 4 summed taps, per output phase


def _phase_kernels(k: torch.Tensor) -> torch.Tensor:
    """Summed 4x4 kernels [out, in, 4, 4] -> the four output phases' 2x2 kernels [4 * out, in, 2, 2],
    phase (a, b) at rows a * 2 * out + b * out: along each axis, phase 0 reads (i - 1, i) with taps
    (w0, w1 + w2) and phase 1 reads (i, i + 1) with (w0 + w1, w2)."""
    return torch.cat([k[:, :, _PHASE_TAPS[a]][:, :, :, _PHASE_TAPS[b]] for a in (0, 1) for b in (0, 1)], 0).contiguous()


class ResizeConvUp(nn.Sequential):
    """[Upsample, ResizeConv2d]: the children (and so the checkpoint names, `….1.weight`) of the
    plain upsample + conv it equals; the convolution upsamples by itself."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self[1](x)


def _up_conv(cfg: DCGANConfig, c_in: int, c_out: int, bias: bool) -> nn.Module:
    """One exact 2x upsampling convolution."""
    k = cfg.kernel_size
    if cfg.upsample == "transposed":
        padding = (k - 1) // 2
        return nn.ConvTranspose2d(c_in, c_out, k, stride=2, padding=padding,
                                  output_padding=2 + 2 * padding - k, bias=bias)
    k = k if k % 2 else 3
    if cfg.upsample == "nearest" and k == 3:
        return ResizeConvUp(nn.Upsample(scale_factor=2, mode="nearest"), ResizeConv2d(c_in, c_out, 3, padding=1, bias=bias))
    return nn.Sequential(nn.Upsample(scale_factor=2, mode=cfg.upsample),
                         nn.Conv2d(c_in, c_out, k, padding=k // 2, bias=bias))


class UpBlock(nn.Module):
    """2x upsample -> norm -> activation."""

    def __init__(self, cfg: DCGANConfig, c_in: int, c_out: int):
        super().__init__()
        self.conv = _up_conv(cfg, c_in, c_out, bias=cfg.g_norm != "batch")
        self.norm = _g_norm(cfg.g_norm, c_out)
        self.act = _act(cfg.g_act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.norm(self.conv(x)))


class Generator(nn.Module):
    """z [N, latent] -> img [N, C, S, S] in [-1, 1]."""

    architecture = ARCHITECTURE

    def __init__(self, cfg: DCGANConfig):
        super().__init__()
        self.cfg = cfg
        c4 = cfg.g_channels(4)
        # stem: z -> 4x4xc4 (DCGAN's 1x1 -> 4x4 transposed conv, written as a linear layer)
        self.stem = nn.Sequential()
        self.stem.add_module("fc", nn.Linear(cfg.latent_size, c4 * 16, bias=cfg.g_norm != "batch"))
        self.stem.add_module("norm", _g_norm(cfg.g_norm, c4))
        self.stem.add_module("act", _act(cfg.g_act))
        self.blocks = nn.ModuleDict()
        res = 4
        for _ in range(cfg.levels - 1):  # state size: c(res) x res x res -> c(2res) x 2res x 2res
            self.blocks[f"up{res * 2}"] = UpBlock(cfg, cfg.g_channels(res), cfg.g_channels(res * 2))
            res *= 2
        # last level goes straight to the image channels, as in DCGAN
        self.to_rgb = _up_conv(cfg, cfg.g_channels(res), cfg.channels, bias=True)

    @property
    def layer_names(self) -> list[str]:
        """Meaningful layer names, input to output; symptoms target these by pattern."""
        return ["stem", *self.blocks.keys(), "to_rgb"]

    @property
    def latent_size(self) -> int:
        return self.cfg.latent_size

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        assert z.ndim == 2 and z.shape[1] == self.cfg.latent_size, f"z must be [N, {self.cfg.latent_size}]"
        c4 = self.cfg.g_channels(4)
        x = self.stem.fc(z).view(-1, c4, 4, 4)          # [N, c4, 4, 4]
        x = self.stem.act(self.stem.norm(x))
        for block in self.blocks.values():
            x = block(x)                                  # [N, c, 2r, 2r]
        return _tanh(self.to_rgb(x))                      # [N, C, S, S]


class Discriminator(nn.Module):
    """img [N, C, S, S] -> logit [N] (real > 0)."""

    def __init__(self, cfg: DCGANConfig):
        super().__init__()
        self.cfg = cfg
        depth = cfg.d_depth or cfg.levels
        layers: list[nn.Module] = []
        c_in, res = cfg.channels, cfg.image_size
        k = cfg.kernel_size
        for i in range(depth):  # state size: c x res x res -> c' x res/2 x res/2
            c_out = min(cfg.max_channels, cfg.d_width * 2 ** i)
            # padding so that the output is exactly res/2 for odd and even kernels
            conv = nn.Conv2d(c_in, c_out, k, stride=2, padding=k // 2 if k % 2 else k // 2 - 1,
                             bias=cfg.d_norm in ("none", "spectral"))
            if cfg.d_norm == "spectral":
                conv = nn.utils.parametrizations.spectral_norm(conv)
            layers.append(conv)
            if i > 0 and cfg.d_norm == "batch":
                layers.append(nn.BatchNorm2d(c_out))
            elif i > 0 and cfg.d_norm == "instance":
                layers.append(nn.InstanceNorm2d(c_out, affine=True))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            if cfg.d_dropout:
                layers.append(nn.Dropout(cfg.d_dropout))
            c_in, res = c_out, res // 2
        self.features = nn.Sequential(*layers)
        head = nn.Linear(c_in * res * res, 1)
        self.head = nn.utils.parametrizations.spectral_norm(head) if cfg.d_norm == "spectral" else head

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        x = self.features(img)
        return self.head(x.flatten(1)).squeeze(1)
