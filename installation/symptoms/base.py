"""What every symptom is made of: a name, a level, a default target, and a pure effect.

The rule all symptoms share (docs/design.md): intensity 0 is exactly the identity, and damage is
monotone and stable. Each weight, channel, bit, pixel or time segment draws a seeded *onset*
in [0, 1) once, and is damaged while `intensity > onset`. Raising the intensity only adds
damage, lowering it restores exactly what was there, and nothing flickers between frames.

Seeds come from a stable hash of (seed, symptom name, parameter or layer name, ...), never
from Python's `hash()` (salted per process) and never from a global RNG, so the same piece
damages the same synapses on every run and every machine. Random numbers are drawn on the CPU
and moved to the tensor's device, so a CUDA and a CPU run damage the same elements.

The level classes below hold the effect function and guard the identity at 0 in one place;
each symptom module builds one `SYMPTOM` from them.
"""
from __future__ import annotations

import hashlib
import math
import threading
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

import torch

LEVELS = ("weights", "activations", "latent", "walk", "output", "detail")


# ---------------------------------------------------------------- seeded randomness

def stable_seed(*parts) -> int:
    """A 63-bit seed from any mix of ints and strings; the same on every run and platform."""
    text = "\x1f".join(str(p) for p in parts).encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "little") & (2 ** 63 - 1)


def rng(*parts) -> torch.Generator:
    """A CPU torch.Generator seeded from `stable_seed(*parts)`."""
    return torch.Generator(device="cpu").manual_seed(stable_seed(*parts))


def unit_hash(*parts) -> float:
    """One seeded uniform number in [0, 1): for per-segment choices (time windows, visits)."""
    return stable_seed(*parts) / 2 ** 63


class FieldCache:
    """Seeded random fields, kept once drawn: a course moves a weight symptom's intensity many
    times a minute, and drawing its onsets or noise again each time (millions of seeded numbers)
    cost far more than the damage itself, which is a comparison or a multiply-add. The fields
    are pure functions of their key, so a cached one is exactly the one that would be drawn.
    Bounded by bytes, least recently used first out; shared by the render thread and the damage
    worker. Cached tensors are read-only by contract: symptoms never modify them in place."""

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self._fields: "OrderedDict[tuple, torch.Tensor]" = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.draws = 0                                   # fields drawn so far (cache misses)

    def get(self, key: tuple, draw: Callable[[], torch.Tensor]) -> torch.Tensor:
        with self._lock:
            field_ = self._fields.get(key)
            if field_ is not None:
                self._fields.move_to_end(key)
                return field_
        field_ = draw()                                  # outside the lock: the other thread may draw
        self.draws += 1
        size = field_.numel() * field_.element_size()
        if size > self.max_bytes:
            return field_
        with self._lock:
            if key not in self._fields:
                self._fields[key] = field_
                self._bytes += size
                while self._bytes > self.max_bytes:
                    _, old = self._fields.popitem(last=False)
                    self._bytes -= old.numel() * old.element_size()
        return field_

    def clear(self) -> None:
        with self._lock:
            self._fields.clear()
            self._bytes = 0

    @contextmanager
    def disabled(self):
        """Every field drawn afresh inside (benchmarks/live_speed.py's naive loop: the obvious
        implementation has no cache)."""
        limit, self.max_bytes = self.max_bytes, 0
        self.clear()
        try:
            yield
        finally:
            self.max_bytes = limit

    @property
    def nbytes(self) -> int:
        return self._bytes


FIELD_CACHE_BYTES = 384 * 2 ** 20   # a DCGAN-128's fields fit many times; a large style model's most
FIELDS = FieldCache(FIELD_CACHE_BYTES)


def _seeded(kind: str, shape: Sequence[int], parts: tuple, device, draw: Callable) -> torch.Tensor:
    shape = tuple(int(s) for s in shape)
    device = torch.device(device)
    return FIELDS.get((kind, shape, str(device), parts), lambda: draw(shape, rng(*parts)).to(device))


def onsets(shape: Sequence[int], *parts, device: torch.device | str = "cpu") -> torch.Tensor:
    """Seeded onset thresholds, uniform in [0, 1): an element is damaged while intensity > onset.
    Because onsets are < 1, everything is damaged at intensity 1; because they are >= 0, nothing
    is at intensity 0. Read-only (cached, see FieldCache)."""
    return _seeded("rand", shape, parts, device, lambda s, g: torch.rand(s, generator=g))


def normal(shape: Sequence[int], *parts, device: torch.device | str = "cpu") -> torch.Tensor:
    """A seeded standard normal field (weight noise and the like). Read-only (cached)."""
    return _seeded("randn", shape, parts, device, lambda s, g: torch.randn(s, generator=g))


def permutation(n: int, *parts, device: torch.device | str = "cpu") -> torch.Tensor:
    """A seeded permutation of range(n). Read-only (cached)."""
    return _seeded("randperm", (n,), parts, device, lambda s, g: torch.randperm(s[0], generator=g))


def integers(high: int, shape: Sequence[int], *parts, device: torch.device | str = "cpu") -> torch.Tensor:
    """Seeded integers uniform in [0, high). Read-only (cached)."""
    return _seeded(f"randint{high}", shape, parts, device, lambda s, g: torch.randint(0, high, s, generator=g))


def zero_where(values: torch.Tensor, dead: torch.Tensor) -> torch.Tensor:
    """`values` with the elements where `dead` (broadcast) set to 0: masked_fill(dead, 0) for
    finite values, as a multiply by the kept flags, about 5x faster on a CPU (masked_fill and
    where branch per element). Weights are always finite here (bit_rot makes its own so)."""
    return values * dead.logical_not()


DIM_SPAN = 0.1      # a whole channel or filter fades out over this share of its symptom's travel


def kept_share(intensity: float, onset: torch.Tensor, span: float = DIM_SPAN) -> torch.Tensor:
    """How much of each element with these onsets is still there: 1 until its onset, 0 once `span`
    past it. The intensity is stretched by (1 + span), so 0 is the identity and at 1 everything is
    gone. For the symptoms that take whole channels: in a narrow generator one channel can carry
    much of a picture, and a fader should pass through that loss, not jump it."""
    return (1.0 - (intensity * (1.0 + span) - onset) / span).clamp(0.0, 1.0)


def clean_intensity(intensity: float) -> float:
    """Intensities from sliders, MIDI or curves: clamp to [0, 1], NaN counts as healthy."""
    x = float(intensity)
    return 0.0 if math.isnan(x) else min(1.0, max(0.0, x))


# ---------------------------------------------------------------- small geometry

def slerp_directions(a: torch.Tensor, b: torch.Tensor, w: float | torch.Tensor) -> torch.Tensor:
    """Spherical interpolation between the directions of a and b (rows), returning unit rows.
    Falls back to a normalised lerp where they are (anti)parallel and slerp is ill-defined."""
    a = a / a.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    b = b / b.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    cos = (a * b).sum(-1, keepdim=True).clamp(-1.0, 1.0)
    omega = torch.arccos(cos)
    sin = torch.sin(omega)
    w = torch.as_tensor(w, dtype=a.dtype, device=a.device)
    safe = sin.abs() > 1e-4
    s = torch.where(safe, sin, torch.ones_like(sin))
    out = torch.where(safe, (torch.sin((1 - w) * omega) * a + torch.sin(w * omega) * b) / s,
                      (1 - w) * a + w * b)
    return out / out.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def smoothstep(x: float) -> float:
    x = min(1.0, max(0.0, x))
    return x * x * (3 - 2 * x)


# ---------------------------------------------------------------- what a weight symptom knows

@dataclass(frozen=True, eq=False)      # holds tensors: compare by identity, never elementwise
class ParamInfo:
    """What a weight symptom may need to know about one state-dict entry besides its values.

    Built by `installation.symptoms.layers.param_infos` from the live generator; symptoms also
    work with `ctx=None`, falling back to shape conventions (output channels on dim 0)."""
    name: str                               # state-dict name, e.g. "blocks.up16.conv.weight"
    layer: str                              # meaningful layer name, e.g. "up16"
    module_kind: str                        # "linear", "conv", "conv_transpose", "norm" or "other"
    role: str                               # "weight" / "bias" (of linear/conv), "norm", "param", "buffer"
    out_dim: Optional[int] = None           # dim that indexes output channels (1 for ConvTranspose weights)
    channels: Optional[int] = None          # output channels of the whole layer (its feature maps)
    snapshots: tuple = ()                   # this entry's values from across training, oldest first


# ---------------------------------------------------------------- the level classes

@dataclass(frozen=True)
class Symptom:
    name: str
    level: str                              # one of LEVELS
    default_target: str                     # fnmatch pattern(s) over layer / parameter names; "" = no layers
    description: str

    def __post_init__(self) -> None:
        assert self.level in LEVELS, f"{self.name}: unknown level {self.level!r}"


@dataclass(frozen=True)
class WeightSymptom(Symptom):
    """fn(name, pristine, intensity in (0, 1], seed, ctx) -> new tensor. `roles` says which
    state-dict entries it touches (integer buffers such as BatchNorm's counter never)."""
    fn: Callable = field(default=None, repr=False)
    roles: frozenset = frozenset({"weight", "bias", "norm", "param"})

    def applies_to(self, info: ParamInfo) -> bool:
        # running statistics only ever move back through their own history (regression):
        # anything else could make a variance negative
        return info.role in self.roles and (info.role != "buffer" or bool(info.snapshots))

    def damage(self, param_name: str, pristine: torch.Tensor, intensity: float, seed: int,
               ctx: Optional[ParamInfo] = None) -> torch.Tensor:
        """A damaged copy of `pristine` (never modified); intensity 0 gives an exact copy."""
        intensity = clean_intensity(intensity)
        if intensity == 0.0 or not pristine.is_floating_point() or pristine.numel() == 0:
            return pristine.clone()
        with torch.no_grad():
            return self.fn(param_name, pristine.detach(), intensity, seed, ctx)


@dataclass(frozen=True)
class ActivationSymptom(Symptom):
    """fn(act [N, C, H, W], intensity in (0, 1], seed, t) -> act. The hooks pass a seed already
    mixed with the layer's name (unless `seed_per_layer` is False), so each layer loses
    different channels."""
    fn: Callable = field(default=None, repr=False)
    seed_per_layer: bool = True

    def effect(self, act: torch.Tensor, intensity: float, seed: int, t: float = 0.0) -> torch.Tensor:
        intensity = clean_intensity(intensity)
        if intensity == 0.0:
            return act
        assert act.ndim == 4, f"{self.name}: activations must be [N, C, H, W], got {tuple(act.shape)}"
        return self.fn(act, intensity, seed, float(t))


@dataclass(frozen=True)
class LatentSymptom(Symptom):
    """fn(z [N, L], intensity in (0, 1], anchors [A, L], seed, t) -> z [N, L]."""
    fn: Callable = field(default=None, repr=False)

    def effect(self, z: torch.Tensor, intensity: float, anchors: torch.Tensor, seed: int,
              t: float = 0.0) -> torch.Tensor:
        intensity = clean_intensity(intensity)
        if intensity == 0.0:
            return z
        assert z.ndim == 2, f"{self.name}: z must be [N, L], got {tuple(z.shape)}"
        return self.fn(z, intensity, anchors, seed, float(t))


@dataclass(frozen=True)
class WalkSymptom(Symptom):
    """A pure function the walk calls; its signature is the symptom's own (see its module).
    The function itself guarantees the identity at intensity 0."""
    fn: Callable = field(default=None, repr=False)

    def __call__(self, *args, **kwargs):
        return self.fn(*args, **kwargs)


@dataclass(frozen=True)
class HesitationSymptom(WalkSymptom):
    def warp(self, phase: float, intensity: float, seed: int) -> float:
        """The walk's phase, made hesitant (see symptoms.hesitation)."""
        return self.fn(phase, intensity, seed)


@dataclass(frozen=True)
class PerseverationSymptom(WalkSymptom):
    def visit(self, k: int, base_anchor, n_anchors: int, intensity: float, seed: int) -> int:
        """Anchor index of the k-th visit (see symptoms.perseveration)."""
        return self.fn(k, base_anchor, n_anchors, intensity, seed)


@dataclass(frozen=True)
class OutputSymptom(Symptom):
    """fn(img [N, C, H, W] in [-1, 1], intensity in (0, 1], seed, t) -> img."""
    fn: Callable = field(default=None, repr=False)

    def effect(self, img: torch.Tensor, intensity: float, seed: int, t: float = 0.0) -> torch.Tensor:
        intensity = clean_intensity(intensity)
        if intensity == 0.0:
            return img
        assert img.ndim == 4, f"{self.name}: img must be [N, C, H, W], got {tuple(img.shape)}"
        return self.fn(img, intensity, seed, float(t))


@dataclass(frozen=True)
class DetailSymptom(Symptom):
    """fn(shape (H, W), intensity in (0, 1], seed, device) -> keep [1, 1, H, W] in [0, 1]: how much
    of the detail stage's borrowed detail (models/detail.py) is left at each pixel."""
    fn: Callable = field(default=None, repr=False)

    def keep(self, size: int, intensity: float, seed: int, device: torch.device | str = "cpu") -> Optional[torch.Tensor]:
        """The keep mask at size x size, or None at intensity 0 (all of it kept)."""
        intensity = clean_intensity(intensity)
        if intensity == 0.0:
            return None
        return self.fn((int(size), int(size)), intensity, seed, device)
