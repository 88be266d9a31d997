"""A style-based generator (StyleGAN / StyleGAN2) and its residual discriminator, from one frozen config.

Written after reading rosinality/stylegan2-pytorch and NVlabs/stylegan2: a mapping network turns
z into w (and tracks w's average for truncation); synthesis starts from a learned 4x4 constant
and at every resolution upsamples bilinearly, applies two styled convolutions (weight
modulation/demodulation, or StyleGAN1's AdaIN), adds per-layer noise with a learned strength, and
adds its RGB to the upsampled image of the level below (toRGB skips). Progressive growing (ProGAN)
reuses the skips: at resolution `res` with fade `alpha` the newest toRGB is scaled by alpha.

Why it looks the way it does, for Lapses:
* Layer names follow the DCGAN's (`stem`, `up8` … `up256`, `to_rgb4` … `to_rgb256`) plus
  `mapping`, so every symptom's default target means the same on both architectures.
* Every weight layer *is* an nn.Linear or nn.Conv2d (equalised learning rate is a scale applied
  at run time), so weight symptoms find weights, biases and output channels where they expect.
* The noise a frame sees is a persistent buffer in eval mode (same state -> same frame, on any
  machine), fresh noise from the global RNG in training mode (saved with resume state).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .config import ConfigJSON

ARCHITECTURE = "stylegan"
W_AVG_BETA = 0.995              # w_avg tracks the mapping's mean output per training step
LRELU_GAIN = math.sqrt(2.0)     # keeps activations at unit variance through leaky ReLUs


@dataclass(frozen=True)
class StyleGANConfig(ConfigJSON):
    ARCHITECTURE_LABEL = "StyleGAN"   # for messages
    image_size: int = 256          # output side in pixels, a power of two in [8, 1024]
    channels: int = 1              # 1 = grayscale, 3 = RGB
    latent_size: int = 512         # length of z and of w (equal, as in StyleGAN)
    mapping_layers: int = 8        # fully connected layers z -> w
    mapping_lr_mul: float = 0.01   # the mapping learns 100x slower (StyleGAN's lr multiplier)
    width: int = 128               # G filters at the image resolution; doubles per level down
    d_width: int = 128             # D filters at the image resolution; doubles per level down
    max_channels: int = 512        # cap on filters at any level, G and D ("filters 512")
    kernel_size: int = 3           # spatial kernel of every styled / D convolution
    style: str = "modulated"       # "modulated" (StyleGAN2 modulation/demodulation) or "adain" (StyleGAN1)
    noise: bool = True             # per-layer noise inputs with a learned per-channel strength
    upsample: str = "bilinear"     # "bilinear" or "nearest": how images and features grow 2x
    mbstd_group: int = 4           # minibatch-stddev group size in D (1 = off)

    def __post_init__(self) -> None:
        problems = []
        if self.image_size not in [2 ** k for k in range(3, 11)]:
            problems.append(f"image_size={self.image_size}: must be a power of two from 8 to 1024")
        if self.channels not in (1, 3):
            problems.append(f"channels={self.channels}: must be 1 (grayscale) or 3 (RGB)")
        for name in ("latent_size", "width", "d_width", "max_channels"):
            if not 1 <= getattr(self, name) <= 4096:
                problems.append(f"{name}={getattr(self, name)}: must be between 1 and 4096")
        if not 1 <= self.mapping_layers <= 16:
            problems.append(f"mapping_layers={self.mapping_layers}: must be between 1 and 16")
        if not 0.0 < self.mapping_lr_mul <= 1.0:
            problems.append(f"mapping_lr_mul={self.mapping_lr_mul}: must be in (0, 1]")
        if self.kernel_size not in (1, 3, 5):
            problems.append(f"kernel_size={self.kernel_size}: must be 1, 3 or 5")
        for name, allowed in {"style": ("modulated", "adain"), "upsample": ("bilinear", "nearest")}.items():
            if getattr(self, name) not in allowed:
                problems.append(f"{name}={getattr(self, name)!r}: must be one of {', '.join(allowed)}")
        if not 1 <= self.mbstd_group <= 64:
            problems.append(f"mbstd_group={self.mbstd_group}: must be between 1 and 64")
        if problems:
            raise ValueError("invalid StyleGAN config: " + "; ".join(problems))

    @property
    def levels(self) -> int:
        """Number of 2x upsamplings from the 4x4 constant to the image."""
        return int(math.log2(self.image_size)) - 2

    @property
    def num_ws(self) -> int:
        """Style inputs: the stem's conv and toRGB, then two convs and a toRGB per level."""
        return 2 * self.levels + 2

    @property
    def resolutions(self) -> list[int]:
        return [2 ** k for k in range(2, self.levels + 3)]

    def g_channels(self, res: int) -> int:
        return min(self.max_channels, self.width * self.image_size // res)

    def d_channels(self, res: int) -> int:
        return min(self.max_channels, self.d_width * self.image_size // res)



# ------------------------------------------------------------------ equalised layers

class EqualLinear(nn.Linear):
    """nn.Linear with an equalised learning rate: weights stored N(0, 1/lr_mul), scaled at run time."""

    def __init__(self, in_features: int, out_features: int, bias_init: float = 0.0, lr_mul: float = 1.0):
        super().__init__(in_features, out_features)
        self.lr_mul = lr_mul
        self.scale = lr_mul / math.sqrt(in_features)
        with torch.no_grad():
            self.weight.normal_(0.0, 1.0 / lr_mul)
            self.bias.fill_(bias_init / lr_mul)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.scale, self.bias * self.lr_mul)


class EqualConv2d(nn.Conv2d):
    """nn.Conv2d (stride 1, same padding) with an equalised learning rate."""

    def __init__(self, c_in: int, c_out: int, kernel: int, bias: bool = True):
        super().__init__(c_in, c_out, kernel, padding=kernel // 2, bias=bias)
        self.scale = 1.0 / math.sqrt(c_in * kernel * kernel)
        with torch.no_grad():
            self.weight.normal_(0.0, 1.0)
            if bias:
                self.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.scale, self.bias, padding=self.padding)


def _lrelu(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, 0.2) * LRELU_GAIN


def _up(x: torch.Tensor, mode: str) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2, mode=mode, **({"align_corners": False} if mode == "bilinear" else {}))


# ------------------------------------------------------------------ mapping

class MappingNetwork(nn.Module):
    """z [N, L] -> w [N, L]: pixel norm, then `mapping_layers` leaky fully connected layers."""

    def __init__(self, cfg: StyleGANConfig):
        super().__init__()
        for i in range(cfg.mapping_layers):
            self.add_module(f"fc{i}", EqualLinear(cfg.latent_size, cfg.latent_size, lr_mul=cfg.mapping_lr_mul))
        self.register_buffer("w_avg", torch.zeros(cfg.latent_size))   # the "average face", for truncation
        self.layers = cfg.mapping_layers

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = z * torch.rsqrt(z.pow(2).mean(dim=1, keepdim=True) + 1e-8)
        for i in range(self.layers):
            x = _lrelu(getattr(self, f"fc{i}")(x))
        if self.training:
            with torch.no_grad():
                self.w_avg.copy_(x.detach().float().mean(0).lerp(self.w_avg, W_AVG_BETA))
        return x


# ------------------------------------------------------------------ synthesis

class StyledConv(nn.Conv2d):
    """One styled convolution: [N, c_in, r, r] (+ its style w [N, L]) -> [N, c_out, R, R], R = 2r if `up`.

    modulated: the weight is scaled per input channel by the style and demodulated per output
    channel (StyleGAN2); adain: plain conv, then instance norm and a per-channel scale and shift
    from the style (StyleGAN1). toRGB is a 1x1 modulated conv without demodulation, noise or act."""

    def __init__(self, cfg: StyleGANConfig, c_in: int, c_out: int, res: int, kernel: int, up: bool = False,
                 to_rgb: bool = False):
        super().__init__(c_in, c_out, kernel, padding=kernel // 2, bias=True)
        self.up, self.to_rgb, self.upsample = up, to_rgb, cfg.upsample
        self.adain = cfg.style == "adain" and not to_rgb
        self.demodulate = not to_rgb
        self.scale = 1.0 / math.sqrt(c_in * kernel * kernel)
        with torch.no_grad():
            self.weight.normal_(0.0, 1.0)
            self.bias.zero_()
        self.affine = EqualLinear(cfg.latent_size, 2 * c_out if self.adain else c_in, bias_init=1.0)
        if self.adain:
            with torch.no_grad():
                self.affine.bias[c_out:] = 0.0          # AdaIN: scale starts at 1, shift at 0
        self.use_noise = cfg.noise and not to_rgb
        if self.use_noise:
            self.noise_strength = nn.Parameter(torch.zeros(c_out))
            # the noise a rendered frame sees: fixed per layer, saved in the checkpoint
            g = torch.Generator().manual_seed(7919 * res + 31 * c_out + int(up))
            self.register_buffer("noise_const", torch.randn(1, 1, res, res, generator=g))

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        if self.up:
            x = _up(x, self.upsample)
        weight = self.weight * self.scale                                   # [O, I, k, k]
        if self.adain:
            x = F.conv2d(x, weight, padding=self.padding)
        else:
            s = self.affine(w)                                              # [N, I]
            x = x * s.view(n, -1, 1, 1).to(x.dtype)
            x = F.conv2d(x, weight, padding=self.padding)
            if self.demodulate:                                             # unit variance per output channel
                d = torch.rsqrt((weight.pow(2).sum(dim=(2, 3))[None] * s.pow(2)[:, None, :]).sum(2) + 1e-8)
                x = x * d.view(n, -1, 1, 1).to(x.dtype)                     # [N, O, R, R]
        if self.use_noise:
            noise = (torch.randn(n, 1, x.shape[2], x.shape[3], device=x.device, dtype=x.dtype)
                     if self.training else self.noise_const.to(x.dtype))
            x = x + noise * self.noise_strength.view(1, -1, 1, 1).to(x.dtype)
        x = x + self.bias.view(1, -1, 1, 1).to(x.dtype)
        if self.to_rgb:
            return x
        x = _lrelu(x)
        if self.adain:
            style = self.affine(w).view(n, 2, -1, 1, 1).to(x.dtype)
            x = style[:, 0] * F.instance_norm(x) + style[:, 1]
        return x


class Stem(nn.Module):
    """The learned constant and one styled conv: w [N, L] -> [N, c4, 4, 4]."""

    def __init__(self, cfg: StyleGANConfig):
        super().__init__()
        c4 = cfg.g_channels(4)
        self.const = nn.Parameter(torch.randn(1, c4, 4, 4))
        self.conv = StyledConv(cfg, c4, c4, 4, cfg.kernel_size)

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        return self.conv(self.const.expand(w.shape[0], -1, -1, -1), w)


class UpBlock(nn.Module):
    """2x upsample + styled conv, styled conv: [N, c_in, r/2, r/2] -> [N, c_out, r, r]."""

    def __init__(self, cfg: StyleGANConfig, c_in: int, c_out: int, res: int):
        super().__init__()
        self.conv0 = StyledConv(cfg, c_in, c_out, res, cfg.kernel_size, up=True)
        self.conv1 = StyledConv(cfg, c_out, c_out, res, cfg.kernel_size)

    def forward(self, x: torch.Tensor, w0: torch.Tensor, w1: torch.Tensor) -> torch.Tensor:
        return self.conv1(self.conv0(x, w0), w1)


class StyleGenerator(nn.Module):
    """z [N, L] -> img [N, C, S, S] (about [-1, 1]); also `mapping` (z -> w) and `synthesize` (ws -> img)."""

    architecture = ARCHITECTURE
    latent_space = "w"             # the installation walks (and anchors live) in w

    def __init__(self, cfg: StyleGANConfig):
        super().__init__()
        self.cfg = cfg
        self.mapping = MappingNetwork(cfg)
        self.stem = Stem(cfg)
        self.blocks = nn.ModuleDict()
        self.blocks["to_rgb4"] = StyledConv(cfg, cfg.g_channels(4), cfg.channels, 4, 1, to_rgb=True)
        for res in cfg.resolutions[1:]:  # state size: c(r/2) x r/2 x r/2 -> c(r) x r x r, plus its RGB
            self.blocks[f"up{res}"] = UpBlock(cfg, cfg.g_channels(res // 2), cfg.g_channels(res), res)
            self.blocks[f"to_rgb{res}"] = StyledConv(cfg, cfg.g_channels(res), cfg.channels, res, 1, to_rgb=True)

    @property
    def layer_names(self) -> list[str]:
        """Meaningful layer names, input to output; symptoms target these by pattern."""
        return ["mapping", "stem", *self.blocks.keys()]

    @property
    def latent_size(self) -> int:
        return self.cfg.latent_size

    @property
    def num_ws(self) -> int:
        return self.cfg.num_ws

    def truncate(self, w: torch.Tensor, psi: float) -> torch.Tensor:
        """w pulled toward the average w: psi 1 = unchanged, 0 = the average image."""
        return self.mapping.w_avg.to(w.dtype).lerp(w, psi)

    def synthesize(self, ws: torch.Tensor, res: int | None = None, alpha: float = 1.0) -> torch.Tensor:
        """ws [N, L] (one style everywhere) or [N, num_ws, L] -> img [N, C, res, res].

        `res` < image_size stops early (progressive growing); `alpha` < 1 fades the last
        level's RGB in over the upsampled image of the level below."""
        cfg = self.cfg
        res = res or cfg.image_size
        assert res in cfg.resolutions, f"res must be one of {cfg.resolutions}, got {res}"
        if ws.ndim == 2:
            ws = ws[:, None].expand(-1, cfg.num_ws, -1)
        assert ws.ndim == 3 and ws.shape[1:] == (cfg.num_ws, cfg.latent_size), \
            f"ws must be [N, {cfg.num_ws}, {cfg.latent_size}], got {tuple(ws.shape)}"
        x = self.stem(ws[:, 0])                                     # [N, c4, 4, 4]
        img = self.blocks["to_rgb4"](x, ws[:, 1])                   # [N, C, 4, 4]
        r, i = 4, 0
        while r < res:
            r, i = r * 2, i + 1
            x = self.blocks[f"up{r}"](x, ws[:, 2 * i - 1], ws[:, 2 * i])          # [N, c(r), r, r]
            rgb = self.blocks[f"to_rgb{r}"](x, ws[:, 2 * i + 1])                  # [N, C, r, r]
            img = _up(img, cfg.upsample) + (rgb * alpha if r == res and alpha < 1.0 else rgb)
        return img

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        assert z.ndim == 2 and z.shape[1] == self.cfg.latent_size, f"z must be [N, {self.cfg.latent_size}]"
        return self.synthesize(self.mapping(z))                     # [N, C, S, S]


# ------------------------------------------------------------------ discriminator

class DownBlock(nn.Module):
    """Residual: [N, c_in, r, r] -> [N, c_out, r/2, r/2]."""

    def __init__(self, cfg: StyleGANConfig, c_in: int, c_out: int):
        super().__init__()
        self.conv0 = EqualConv2d(c_in, c_in, cfg.kernel_size)
        self.conv1 = EqualConv2d(c_in, c_out, cfg.kernel_size)
        self.skip = EqualConv2d(c_in, c_out, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.avg_pool2d(_lrelu(self.conv1(_lrelu(self.conv0(x)))), 2)
        return (y + self.skip(F.avg_pool2d(x, 2))) / math.sqrt(2.0)


class StyleDiscriminator(nn.Module):
    """img [N, C, res, res] -> logit [N] (real > 0). A fromRGB at every resolution lets
    progressive growing enter at any level and fade between two."""

    def __init__(self, cfg: StyleGANConfig):
        super().__init__()
        self.cfg = cfg
        self.from_rgb = nn.ModuleDict({f"r{r}": EqualConv2d(cfg.channels, cfg.d_channels(r), 1)
                                       for r in cfg.resolutions})
        self.blocks = nn.ModuleDict({f"d{r}": DownBlock(cfg, cfg.d_channels(r), cfg.d_channels(r // 2))
                                     for r in reversed(cfg.resolutions[1:])})
        c4 = cfg.d_channels(4)
        self.final_conv = EqualConv2d(c4 + (cfg.mbstd_group > 1), c4, cfg.kernel_size)
        self.final_fc = EqualLinear(c4 * 16, c4)
        self.out = EqualLinear(c4, 1)

    def _mbstd(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        g = min(self.cfg.mbstd_group, n)
        while n % g:
            g -= 1
        if self.cfg.mbstd_group <= 1:
            return x
        y = x.float().view(g, -1, c, h, w)
        y = (y.var(dim=0, unbiased=False) + 1e-8).sqrt().mean(dim=(1, 2, 3))     # [N/g]
        y = y.view(-1, 1, 1, 1).repeat(g, 1, h, w).to(x.dtype)                   # [N, 1, h, w]
        return torch.cat([x, y], dim=1)

    def forward(self, img: torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
        r = img.shape[-1]
        assert img.ndim == 4 and img.shape[1] == self.cfg.channels and r in self.cfg.resolutions, \
            f"img must be [N, {self.cfg.channels}, r, r] with r in {self.cfg.resolutions}, got {tuple(img.shape)}"
        x = _lrelu(self.from_rgb[f"r{r}"](img))                    # [N, d(r), r, r]
        if r > 4:
            x = self.blocks[f"d{r}"](x)                             # [N, d(r/2), r/2, r/2]
            if alpha < 1.0:  # the newest level fades in over the level below, which sees a downsampled image
                x = torch.lerp(_lrelu(self.from_rgb[f"r{r // 2}"](F.avg_pool2d(img, 2))), x, alpha)
            r //= 2
        while r > 4:
            x = self.blocks[f"d{r}"](x)
            r //= 2
        x = _lrelu(self.final_conv(self._mbstd(x)))                 # [N, d4, 4, 4]
        return self.out(_lrelu(self.final_fc(x.flatten(1)))).squeeze(1)
