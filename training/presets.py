"""Training presets: each reproduces one system this project grew from, with its published
settings (each preset's comment names its seed document, 000-004), plus the improvements every
Lapses run gets (EMA, anchors, snapshots). Every value can be overridden with `--set key=value`."""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import yaml

from models import registry


@dataclass(frozen=True)
class TrainConfig:
    preset: str = "custom"
    architecture: str = "dcgan"
    model: dict = field(default_factory=dict)     # the architecture's config fields
    steps: int = 10_000              # generator updates
    batch_size: int = 32
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    loss: str = "bce"                # "bce" (non-saturating BCE, as in the seeds) or "hinge"
    r1_gamma: float = 0.0            # R1 penalty on real images (0 = off)
    r1_every: int = 16               # lazy R1: every N steps, scaled by N
    flip: bool = True                # random horizontal flips of real images
    diffaugment: str = ""            # DiffAugment policy, e.g. "color,translation,cutout"
    recall_weight: float = 0.0       # weight of the memory-recall loss (some latent must redraw each image)
    recall_batch: int = 8            # images per step for the recall loss
    recall_mode: str = "codes"       # which latent redraws an image: "codes" (a learned latent per image, GLO)
                                     # or "nearest" (the nearest of a fresh pool of random latents, IMLE)
    recall_pool: int = 64            # random latents per step to pick the nearest from ("nearest" mode)
    recall_balance: bool = False     # "nearest" mode: a memory that few random samples land nearest to (by SSIM,
                                     # as evaluate counts recall) is given up to 2 x recall_share more pulls
    recall_share: int = 1            # "nearest" mode: latents pulled onto each image, none shared (above 1, each
                                     # memory claims a share of the random latents, so every one is recalled)
    style_mixing: float = 0.0        # style models: share of samples whose later layers take a second latent's style
    grow_from: int = 0               # style models: grow progressively from this resolution (e.g. 4); 0 = full size
    grow_steps: int = 1000           # progressive growing: steps per resolution, the first half fading it in
    ema_beta: float = 0.999          # EMA of G's weights per step (0 = no EMA)
    ema_rampup: float = 0.1          # the EMA's half-life is at most this share of the run's own steps so far
                                     # (StyleGAN2-ADA's ema_rampup; 0 = off): a short warm-started run's EMA is
                                     # then its own model, not mostly the one it began from
    d_warmup: int = 0                # the first N steps of a run update D alone (a warm start's fresh D catches up)
    sample_every: int = 250          # steps between sample grids
    checkpoint_every: int = 1000     # steps between checkpoints
    keep_last: int = 3               # checkpoints kept
    snapshots: int = 4               # fp16 snapshots of G from across training (regression symptom)
    anchor_steps: int = 300          # optimisation steps per anchor search
    anchor_tune_steps: int = 0       # pivotal tuning of G to its anchors after the search (0 = off)
    anchor_tune_lr: float = 2e-4     # its Adam learning rate
    anchor_tune_locality: float = 1.0  # its weight on keeping random latents' images as they were
    eval_samples: int = 256          # samples for the final evaluation
    seed: int = 0
    amp: bool = True                 # bf16 autocast + channels-last on CUDA (ignored on CPU)

    def model_config(self):
        return registry.config_from_dict(self.architecture, self.model)


PRESETS: dict[str, dict] = {
    # seed 000, DCGAN(1): 128x128x3 faces, latent 128, batch 32, a variety of images
    "lapses-variety": dict(model=dict(image_size=128, channels=3, latent_size=128, width=64, d_width=64),
                           steps=10_000, batch_size=32, sample_every=500),
    # seed 000, DCGAN(2): 128x128x3, latent 128, batch 32, a handful of images repeated (the memories)
    # Lapses adds: a narrow G (fast enough for the live piece on a small PC), a light D, and the
    # IMLE recall, which makes random samples land on the memories and keeps every one of them,
    # and pivotal tuning at the end, so that each memory's anchor recalls it faithfully
    "lapses-memory": dict(model=dict(image_size=128, channels=3, latent_size=128, width=24, d_width=16,
                                     upsample="nearest", g_norm="pixel", d_norm="spectral"),
                          steps=3000, batch_size=32, diffaugment="color,translation,cutout",
                          recall_weight=4.0, recall_mode="nearest", ema_beta=0.998, flip=False,
                          anchor_tune_steps=300),
    # seed 001: 256x256 grayscale, kernel 3 stride 2, LeakyReLU, batch norm, BCE, D of three convs with dropout, batch 16
    "oasis-dcgan-tf": dict(model=dict(image_size=256, channels=1, latent_size=100, width=16, d_width=64,
                                      kernel_size=3, g_act="leaky", g_norm="batch", d_norm="none",
                                      d_depth=3, d_dropout=0.3),
                           steps=2500, batch_size=16, lr_g=1e-4, lr_d=1e-4),
    # seed 002: 128x128 grayscale, six conv / transposed-conv layers each, Adam, lr G 2e-4 / D 2e-5, BCE
    # (Lapses adds the same narrow G, light D, IMLE recall and pivotal tuning as lapses-memory)
    "oasis-dcgan": dict(model=dict(image_size=128, channels=1, latent_size=128, width=24, d_width=16,
                                   upsample="nearest", g_norm="pixel", d_norm="spectral"),
                        steps=4000, batch_size=32, lr_g=2e-4, lr_d=2e-5, diffaugment="translation",
                        recall_weight=4.0, recall_batch=16, recall_mode="nearest", ema_beta=0.998, flip=True,
                        anchor_tune_steps=300),
    # seed 003: StyleGAN on OASIS at 256x256 grayscale: latent 512, filters 512, kernel 3, random
    # horizontal flips, Adam beta 0.5/0.999, batch 32. Its learning rates (8e-7 / 1e-7) were tuned
    # for a TF model without equalised learning rates and barely move this one: StyleGAN2's 2e-3.
    # Modulation/demodulation (StyleGAN2's fix for AdaIN's droplets); model.style=adain for the seed's AdaIN.
    "oasis-stylegan": dict(architecture="stylegan",
                           model=dict(image_size=256, channels=1, latent_size=512, mapping_layers=8, width=128,
                                      d_width=128, max_channels=512, kernel_size=3, style="modulated",
                                      upsample="bilinear"),
                           steps=30_000, batch_size=32, lr_g=2e-3, lr_d=2e-3, beta1=0.5, beta2=0.999,
                           r1_gamma=1.0, r1_every=16, style_mixing=0.9, flip=True, ema_beta=0.998,
                           sample_every=500, checkpoint_every=2000),
    # seed 004: a progressively grown StyleGAN (AdaIN, noise, constant 4x4x512 input, latent 512,
    # bilinear upsampling) from 4x4 to 64x64, a fixed number of steps per resolution (the seed's
    # 2000), a loss plot and sample sheet per resolution; StyleGAN's Adam (lr 1e-3, beta 0/0.99), R1 10.
    "oasis-progan": dict(architecture="stylegan",
                         model=dict(image_size=64, channels=1, latent_size=512, mapping_layers=8, width=256,
                                    d_width=256, max_channels=512, kernel_size=3, style="adain", upsample="bilinear"),
                         steps=10_000, grow_from=4, grow_steps=2000, batch_size=16, lr_g=1e-3, lr_d=1e-3,
                         beta1=0.0, beta2=0.99, r1_gamma=10.0, r1_every=16, style_mixing=0.9, flip=True,
                         sample_every=250, checkpoint_every=1000),
}


MAX_SNAPSHOTS = 16


class ConfigError(Exception):
    pass


def _coerce(key: str, value, current):
    if isinstance(current, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{key}={value!r}: expected true or false")
        return value
    if isinstance(current, int) and not isinstance(current, bool):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}={value!r}: expected an integer")
        return value
    if isinstance(current, float):
        if isinstance(value, str):          # YAML 1.1 reads 1e-3 (no dot) as a string
            try:
                value = float(value)
            except ValueError:
                pass
        try:            # an integer too large for a float (YAML reads 1000...0 as one) is no number either
            ok = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
        except OverflowError:
            ok = False
        if not ok:
            raise ConfigError(f"{key}={str(value)[:40]}: expected a number (a finite one)")
        return float(value)
    if isinstance(current, str) and value is None:     # `--set diffaugment=`: the empty setting (off)
        return ""
    if isinstance(current, str) and not isinstance(value, str):
        raise ConfigError(f"{key}={value!r}: expected a string")
    return value


def build_config(preset: str, overrides: list[str] = (), **direct) -> TrainConfig:
    """The preset's values, then `key=value` overrides (model fields as `model.width=32`)."""
    if preset not in PRESETS:
        raise ConfigError(f"unknown preset {preset!r}; choose one of: {', '.join(sorted(PRESETS))}")
    base = TrainConfig(preset=preset, **PRESETS[preset])
    values = dataclasses.asdict(base)
    model = dict(values["model"])
    defaults = dataclasses.asdict(base.model_config())
    for item in list(overrides) + [f"{k}={v}" for k, v in direct.items() if v is not None]:
        if "=" not in item:
            raise ConfigError(f"override {item!r}: write it as key=value, e.g. steps=2000 or model.width=32")
        key, raw = item.split("=", 1)
        key = key.strip()
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError:          # not YAML ("[1"): the text as written, which the key's type then judges
            value = raw
        except RecursionError:
            raise ConfigError(f"override {key}=...: the value holds lists or mappings nested too deep to read; "
                              f"write it as key=value, e.g. steps=2000 or model.width=32") from None
        if key.startswith("model."):
            field_name = key[6:]
            if field_name not in defaults:
                raise ConfigError(f"unknown model setting {key!r}; known: {', '.join(sorted(defaults))}")
            model[field_name] = _coerce(key, value, defaults[field_name])
        elif key in values and key not in ("model", "preset"):
            values[key] = _coerce(key, value, values[key])
        else:
            raise ConfigError(f"unknown training setting {key!r}; known: "
                              f"{', '.join(sorted(k for k in values if k not in ('model', 'preset')))}")
    values["model"] = model
    cfg = TrainConfig(**values)
    try:
        cfg.model_config()
    except ValueError as e:
        raise ConfigError(str(e)) from None
    if cfg.recall_mode not in ("codes", "nearest"):
        raise ConfigError(f"recall_mode={cfg.recall_mode!r}: must be codes or nearest")
    if cfg.recall_mode == "nearest" and (cfg.recall_share > 1 or cfg.recall_balance) and \
            cfg.recall_share * (3 if cfg.recall_balance else 1) * min(cfg.recall_batch, 64) > cfg.recall_pool:
        most = "up to 3 x " if cfg.recall_balance else ""
        raise ConfigError(f"{most}recall_share={cfg.recall_share} x recall_batch={cfg.recall_batch} latents are pulled "
                          f"each step, more than recall_pool={cfg.recall_pool} holds: raise recall_pool or lower them")
    if cfg.loss not in ("bce", "hinge"):
        raise ConfigError(f"loss={cfg.loss!r}: must be bce or hinge")
    if cfg.anchor_tune_steps < 0 or cfg.anchor_tune_lr <= 0 or cfg.anchor_tune_locality < 0:
        raise ConfigError("anchor_tune_steps and anchor_tune_locality must be 0 or more, anchor_tune_lr more than 0")
    if not 0.0 <= cfg.ema_rampup <= 1.0:
        raise ConfigError(f"ema_rampup={cfg.ema_rampup}: must be between 0 (off) and 1")
    if cfg.d_warmup < 0:
        raise ConfigError(f"d_warmup={cfg.d_warmup}: must be 0 or more")
    if not 0 <= cfg.snapshots <= MAX_SNAPSHOTS:     # each is an fp16 copy of G in the checkpoint
        raise ConfigError(f"snapshots={cfg.snapshots}: must be 0 .. {MAX_SNAPSHOTS} (fp16 copies of G kept for "
                          f"the regression symptom; 0 = none)")
    for name in ("steps", "batch_size", "sample_every", "checkpoint_every", "keep_last", "recall_batch", "recall_pool",
                 "recall_share", "grow_steps"):
        if getattr(cfg, name) < 1:
            raise ConfigError(f"{name}={getattr(cfg, name)}: must be at least 1")
    if not 0.0 <= cfg.style_mixing <= 1.0:
        raise ConfigError(f"style_mixing={cfg.style_mixing}: must be between 0 and 1")
    if (cfg.style_mixing or cfg.grow_from) and cfg.architecture != "stylegan":
        raise ConfigError(f"style_mixing and grow_from are for style-based generators (architecture stylegan), "
                          f"not {cfg.architecture}")
    size = cfg.model_config().image_size
    if cfg.grow_from and cfg.grow_from not in [2 ** k for k in range(2, 11) if 2 ** k <= size]:
        raise ConfigError(f"grow_from={cfg.grow_from}: must be 0 (off) or a power of two from 4 to image_size ({size})")
    return cfg
