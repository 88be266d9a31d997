"""The walk: a smooth, endless path through latent space from memory to memory.

The picture must never jump, so the path is a pure function of the walk phase (seconds of walk
at speed 1): the live app advances the phase by speed x dt, the offline renderer uses t, and
both see the same latent. Along the path:

* it visits the *anchors* (latents that recall each training image) in a seeded order that
  never repeats itself and never visits the same memory twice in a row;
* between memories it moves along the great circle (slerp), so latents stay on the shell the
  generator was trained on (norm sqrt(L)); every journey takes the same time, whatever the
  angle, so the pace is steady;
* it pauses (`dwell_s`) at each memory, easing in and out so the velocity never jumps, and
  always drifts a little (`wander`, a slow seeded breathing around the path);
* `loop` mode visits a fixed cycle seamlessly: z_at(phase + period) == z_at(phase).

A style generator's walk runs in w (`space="w"`): w has no shell, so anchors are kept exactly as
they are, journeys are straight lines (StyleGAN interpolates in w linearly), and the drift is a
fraction of the memories' spread around their mean. w has no random points of its own either: a
random walk in w visits a pool of mapped random latents, which the engine passes as anchors.

Two symptoms act on the walk: hesitation warps the phase before anything else (the walk
stalls and stutters), perseveration chooses which memory the k-th visit goes to.

Timeline of one journey k (T = segment_s, d = dwell_s):

    phase  kT      kT + d/2                      (k+1)T - d/2   (k+1)T
           |-dwell-|----- travel, eased ---------|----dwell-----|
           at P_k                                 at P_{k+1}
"""
from __future__ import annotations

import math
from functools import lru_cache
from typing import Any, NamedTuple, Sequence

import numpy as np
import torch

from models.latent import shell_radius, to_shell, walk_between

__all__ = ["Walk", "WalkPosition", "ease_travel"]

PERSEVERATION_BLEND = 0.02  # intensity width over which a perseverated destination slides into place
_WANDER_TERMS = 4  # slow sinusoids along fixed seeded directions: enough to feel alive, never busy


class WalkPosition(NamedTuple):
    """Where the walk is, for the HUD and the sound: memories by anchor index (-1 in random mode)."""
    from_anchor: int
    to_anchor: int
    fraction: float  # 0 at from_anchor .. 1 at to_anchor (eased)
    visit: int       # k: how many journeys have begun


def ease_travel(s: float, ease: float) -> float:
    """Fraction of the journey covered at time fraction s, with cosine speed-up and slow-down ramps.

    Speed rises smoothly from 0 over the first `ease` of the journey, holds constant, and falls
    back to 0 over the last `ease`: position and velocity are continuous, so there is no jolt
    when the walk leaves or reaches a memory. ease = 0 is constant speed."""
    s = min(1.0, max(0.0, s))
    if ease <= 0.0:
        return s
    a = min(0.5, ease)
    v_max = 1.0 / (1.0 - a)
    if s > 1.0 - a:
        return 1.0 - ease_travel(1.0 - s, a)
    if s < a:
        return v_max * (s / 2.0 - a / (2.0 * math.pi) * math.sin(math.pi * s / a))
    return v_max * (a / 2.0 + (s - a))


def _rng(*key: int) -> np.random.Generator:
    return np.random.default_rng([int(k) & 0xFFFFFFFF for k in key])


@lru_cache(maxsize=256)
def _block_permutation(seed: int, block: int, n: int) -> tuple[int, ...]:
    return tuple(int(i) for i in _rng(seed, block, n, 0x0DE5).permutation(n))


def _shuffled_order(k: int, n: int, seed: int) -> int:
    """The k-th memory of an endless seeded order: each block of n visits is a fresh shuffle (so
    no pattern repeats), and a block never starts with the memory the last one ended on."""
    if n == 1:
        return 0
    if n == 2:
        return (k + seed) % 2
    block, i = divmod(k, n)
    perm = list(_block_permutation(seed, block, n))
    if perm[0] == _block_permutation(seed, block - 1, n)[-1]:
        perm[0], perm[1] = perm[1], perm[0]
    return perm[i]


@lru_cache(maxsize=1024)
def _random_point(seed: int, k: int, latent_size: int) -> np.ndarray:
    z = _rng(seed, k, latent_size, 0x4A2D).standard_normal(latent_size)
    return to_shell(z)


class Walk:
    """A pure function from walk phase to latent. Holds only constants; safe to share."""

    def __init__(self,
                 anchors: torch.Tensor | None,      # [A, L] latents recalling each memory; empty -> random walk
                 latent_size: int,                  # L, the generator's latent size
                 mode: str = "anchors",             # anchors | random | loop
                 seed: int = 0,                     # order of memories, random points and wander
                 seconds_per_memory: float = 14.0,  # T: phase seconds from one memory to the next
                 dwell_s: float = 4.0,              # d: pause at each memory (half before, half after)
                 ease: float = 0.3,                 # share of a journey spent speeding up / slowing down
                 wander: float = 0.08,              # drift radius as a fraction of the shell radius
                 wander_period_s: float = 11.0,     # typical period of the drift
                 loop_period_s: float = 0.0,        # loop mode: period; 0 = n x seconds_per_memory
                 loop_memories: int = 0,            # loop mode: memories in the cycle; 0 = all
                 space: str = "z"):                 # z: on the shell, slerp; w: a style generator's w, lerp
        if mode not in ("anchors", "random", "loop"):
            raise ValueError(f"walk mode {mode!r}; allowed: anchors, random, loop")
        if space not in ("z", "w"):
            raise ValueError(f"walk space {space!r}; allowed: z, w")
        self.space = space
        if not seconds_per_memory > 0 or not 0 <= dwell_s < seconds_per_memory:
            raise ValueError(f"walk needs seconds_per_memory > 0 and 0 <= dwell_s < seconds_per_memory, "
                             f"got {seconds_per_memory!r}, {dwell_s!r}")
        self.latent_size = int(latent_size)
        self.radius = shell_radius(self.latent_size)
        self.seed = int(seed)
        self.ease = float(ease)
        self.wander = float(wander)
        anchors_np = np.zeros((0, self.latent_size))
        if anchors is not None and len(anchors):
            anchors_np = torch.as_tensor(anchors).detach().to("cpu", torch.float64).numpy()
            if anchors_np.ndim != 2 or anchors_np.shape[1] != self.latent_size:
                raise ValueError(f"anchors have shape {tuple(anchors_np.shape)}, expected [A, {self.latent_size}]")
            if space == "z":  # the generator was trained on the shell: put every memory exactly on it
                anchors_np = to_shell(anchors_np)
        self.anchors = anchors_np  # [A, L] float64
        self.n_anchors = len(anchors_np)
        if space == "w":
            if self.n_anchors == 0:
                raise ValueError("a walk in w needs points to visit: anchors, or a pool of mapped latents")
            mode = "anchors" if mode == "random" else mode
            centred = anchors_np - anchors_np.mean(axis=0)
            self.radius = max(float(np.sqrt((centred ** 2).sum(axis=1).mean())), 1e-6) if self.n_anchors > 1 \
                else max(float(np.linalg.norm(anchors_np[0])), 1e-6)
        self.mode = "random" if mode == "anchors" and self.n_anchors == 0 else mode

        self.segment_s = float(seconds_per_memory)
        self.dwell_s = float(dwell_s)
        self.period_s: float | None = None
        self._loop: tuple[int, ...] = ()
        if self.mode == "loop":
            pool = self.n_anchors if self.n_anchors else max(2, loop_memories or 8)
            n = min(loop_memories, pool) if loop_memories > 0 else pool
            self._loop = tuple(int(i) for i in _rng(self.seed, pool, 0x100B).permutation(pool)[:n])
            if loop_period_s > 0:  # the period wins; dwell keeps its share of each journey
                self.segment_s = float(loop_period_s) / n
                self.dwell_s = float(dwell_s) * self.segment_s / float(seconds_per_memory)
            self.period_s = self.segment_s * n

        rng = _rng(self.seed, 0x3A7D)
        dirs = rng.standard_normal((_WANDER_TERMS, self.latent_size))
        self._wander_dirs = dirs / np.linalg.norm(dirs, axis=1, keepdims=True)
        freqs = 1.0 / (float(wander_period_s) * (0.6 + 0.8 * rng.random(_WANDER_TERMS)))
        if self.period_s is not None:  # whole cycles per loop, or the seam would show
            freqs = np.maximum(1.0, np.round(freqs * self.period_s)) / self.period_s
        self._wander_freqs = freqs
        self._wander_phases = rng.random(_WANDER_TERMS) * 2.0 * math.pi

    @classmethod
    def from_settings(cls, walk_settings: Any, anchors: torch.Tensor | None, latent_size: int, seed: int,
                      space: str = "z") -> "Walk":
        s = walk_settings
        return cls(anchors, latent_size, mode=s.mode, seed=seed, seconds_per_memory=s.seconds_per_memory,
                   dwell_s=s.dwell_s, ease=s.ease, wander=s.wander, wander_period_s=s.wander_period_s,
                   loop_period_s=s.loop_period_s, loop_memories=s.loop_memories, space=space)

    def _between(self, p: np.ndarray, q: np.ndarray, f: float) -> np.ndarray:
        """The point a fraction f of the way from p to q: along the sphere in z, straight in w."""
        return walk_between(p, q, f, self.space)

    # -- which memory ---------------------------------------------------------------------------

    def _base_visit(self, k: int) -> int:
        """Anchor index of the k-th visit of the healthy walk."""
        if self.mode == "loop":
            return self._loop[k % len(self._loop)]
        return _shuffled_order(k, self.n_anchors, self.seed)

    def visit(self, k: int, perseveration: float = 0.0) -> int:
        """Anchor index of the k-th memory visited (-1 in random mode, where there are none)."""
        if self.mode == "random":
            return -1
        if perseveration > 0.0 and self.n_anchors > 1:
            from installation.symptoms.perseveration import SYMPTOM
            # the walk's own sequence, so a repeat returns to the memory shown at the earlier visit
            return int(SYMPTOM.visit(k, self._base_visit, self.n_anchors, float(perseveration), self.seed))
        return self._base_visit(k)

    def _point(self, k: int, perseveration: float) -> np.ndarray:
        if self.mode == "random":
            return _random_point(self.seed, k, self.latent_size)
        if self.n_anchors == 0:  # loop with no anchors: a fixed cycle of random points
            return _random_point(self.seed, self._loop[k % len(self._loop)], self.latent_size)
        if perseveration <= 0.0 or self.n_anchors < 2:
            return self.anchors[self.visit(k)]
        # Perseveration picks memories by thresholds on its intensity, which rises while the walk
        # travels; a destination that switched at once would make the picture jump. Between two
        # neighbouring intensity levels the destination slides along the sphere instead, so the
        # path is continuous in the intensity (over a course of hours the slide takes minutes).
        q = min(float(perseveration), 1.0) / PERSEVERATION_BLEND
        i = math.floor(q)
        a = self.visit(k, i * PERSEVERATION_BLEND)
        b = self.visit(k, min(1.0, (i + 1) * PERSEVERATION_BLEND))
        if a == b or q == i:
            return self.anchors[a]
        f = q - i
        return self._between(self.anchors[a], self.anchors[b], f * f * (3.0 - 2.0 * f))

    # -- where on the path ----------------------------------------------------------------------

    def _warp(self, phase: float, hesitation: float) -> float:
        if hesitation > 0.0:
            from installation.symptoms.hesitation import SYMPTOM
            phase = float(SYMPTOM.warp(float(phase), float(hesitation), self.seed))
        if self.period_s is not None:
            phase = math.fmod(phase, self.period_s)
            if phase < 0.0:
                phase += self.period_s
        return phase

    def _journey(self, phase: float) -> tuple[int, float]:
        """(k, eased fraction) of the journey from memory k to memory k+1 at this (warped) phase."""
        k = math.floor(phase / self.segment_s)
        tau = phase - k * self.segment_s
        travel_s = self.segment_s - self.dwell_s
        return k, ease_travel((tau - self.dwell_s / 2.0) / travel_s, self.ease)

    def where(self, phase: float, perseveration: float = 0.0, hesitation: float = 0.0) -> WalkPosition:
        k, fraction = self._journey(self._warp(phase, hesitation))
        return WalkPosition(self.visit(k, perseveration), self.visit(k + 1, perseveration), fraction, k)

    def _wander_offset(self, phase: float) -> np.ndarray:
        if self.wander <= 0.0:
            return np.zeros(self.latent_size)
        waves = np.sin(2.0 * math.pi * self._wander_freqs * phase + self._wander_phases)  # [terms]
        return (self.wander * self.radius / _WANDER_TERMS) * (waves @ self._wander_dirs)

    def _z(self, phase: float, perseveration: float, hesitation: float) -> np.ndarray:
        phase = self._warp(phase, hesitation)
        k, fraction = self._journey(phase)
        z = self._between(self._point(k, perseveration), self._point(k + 1, perseveration), fraction)
        z = z + self._wander_offset(phase)
        if self.space == "w":
            return z
        return z * (self.radius / max(np.linalg.norm(z), 1e-12))

    def z_at(self, phase: float, perseveration: float = 0.0, hesitation: float = 0.0) -> torch.Tensor:
        """The latent at this walk phase: float32 [L], norm sqrt(L) in z."""
        return torch.from_numpy(self._z(float(phase), perseveration, hesitation).astype(np.float32))

    def z_batch(self, phases: Sequence[float], perseveration: float = 0.0, hesitation: float = 0.0) -> torch.Tensor:
        """Latents at several phases: float32 [N, L]."""
        if len(phases) == 0:
            return torch.zeros(0, self.latent_size)
        zs = np.stack([self._z(float(p), perseveration, hesitation) for p in phases])
        return torch.from_numpy(zs.astype(np.float32))
