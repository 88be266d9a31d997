"""Faders that travel a symptom evenly, per model.

How much a symptom changes what a visitor sees is far from linear in its intensity, and depends on
the network: on the bundled memories model `feature_dropout` makes most of its change in the first
tenth of its travel and `precision_loss` nothing in the first half. So each model carries, beside
its course calibration (installation/calibration.py, measured by the same `python -m installation
calibrate`), a map for each symptom from a performer's fader position to the intensity it draws,
so that the change the fader makes is spread over its travel:

    change(fader) / change(full fader)  ~  the fader's position

The change is what a visitor sees of that symptom alone (the others at 0), for the measured
model's memories (visitor.MEMORIES of them, averaged over visitor.SEEDS):

* a symptom that changes a still picture (weights, activations, latents, the screen's fading, the
  detail stage's detail_loss): 1 - SSIM of each memory's picture against its healthy picture;
* lapses, by time: the share of time the screen is dark (a blackout changes no picture outside its
  window; more of them, and longer, as the fader rises);
* the walk's own symptoms, by motion: hesitation, the share of the walk's motion lost (the mean
  |speed - 1| of the hesitant walk over many segments, halved: a stall of a segment's share s
  standing still and catching up after scores s); perseveration, the share of visits that return
  to a memory already shown instead of going somewhere new.

The change is measured on a grid of intensities, made monotone (its running maximum: a symptom
whose picture comes back a little at full intensity is mapped by where its change first gets
there) and inverted; where a checked position (CHECKS) is measured off by more than REFINE, the
intensity it drew is measured too and the map refitted. A symptom that changes nothing on this
model (a mapping network's symptom on a DCGAN) keeps the plain fader.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Callable, Mapping

import numpy as np

from .course import curve_value

KEY = "fader_calibration"           # the checkpoint's metadata: extra.fader_calibration
VERSION = 1
GRID = (0.0, 0.02, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
POSITIONS = tuple(k / 20 for k in range(21))
CHECKS = (0.25, 0.5, 0.75)          # where a fader's change is held to its position (the bar: +-0.15)
REFINE = 0.05                       # a checked position measured further off than this is measured again
ROUNDS = 5
QUIET = 0.01                        # a full-intensity change below this is none: the plain fader
LAPSE_SLOTS = 400                   # lapses' share of dark time, over this many of its slots
WALK_SEGMENTS = 200                 # hesitation's lost motion, over this many of its segments
VISITS = 4000                       # perseveration's repeats, over this many visits


class FaderCalibrationError(ValueError):
    """A stored fader calibration that cannot be used; the message says what is wrong."""


@dataclass(frozen=True)
class FaderCalibration:
    """Per symptom, (fader position, intensity) knots rising from (0, 0) to (1, 1); a symptom
    without knots takes its fader's position as its intensity."""
    knots: Mapping[str, tuple[tuple[float, float], ...]] = field(default_factory=dict)
    measured: Mapping[str, tuple[float, ...]] = field(default_factory=dict)   # change at CHECKS, with it

    def intensity(self, name: str, position: float) -> float:
        knots = self.knots.get(name)
        position = min(1.0, max(0.0, float(position)))
        return position if knots is None else min(1.0, max(0.0, curve_value(knots, position)))

    def position(self, name: str, intensity: float) -> float:
        """The fader position that draws `intensity` (the first, where the map is flat): where a
        fader must be to pick a symptom up from the course without a jump."""
        knots = self.knots.get(name)
        intensity = min(1.0, max(0.0, float(intensity)))
        if knots is None:
            return intensity
        for (p0, i0), (p1, i1) in zip(knots, knots[1:]):
            if intensity <= i1:
                return p0 if i1 == i0 else p0 + (p1 - p0) * (intensity - i0) / (i1 - i0)
        return 1.0

    def to_json(self) -> str:
        return json.dumps({"version": VERSION, "knots": {n: [list(k) for k in ks] for n, ks in sorted(self.knots.items())},
                           "measured": {n: list(m) for n, m in sorted(self.measured.items())}})

    @classmethod
    def from_json(cls, text: str) -> "FaderCalibration":
        try:
            d = json.loads(text)
            version = int(d["version"])
            knots = {str(n): tuple((float(p), float(i)) for p, i in ks) for n, ks in dict(d["knots"]).items()}
            measured = {str(n): tuple(float(v) for v in m) for n, m in dict(d.get("measured", {})).items()}
        except (KeyError, TypeError, ValueError) as e:
            raise FaderCalibrationError(f"its fader calibration is damaged ({type(e).__name__}: {e})") from None
        if version != VERSION:
            raise FaderCalibrationError(f"its fader calibration is of version {version}; this Lapses reads {VERSION}")
        for name, ks in knots.items():
            values = [v for k in ks for v in k]
            if (len(ks) < 2 or not all(math.isfinite(v) and 0.0 <= v <= 1.0 for v in values)
                    or ks[0] != (0.0, 0.0) or ks[-1] != (1.0, 1.0)
                    or any(b[0] <= a[0] or b[1] < a[1] for a, b in zip(ks, ks[1:]))):
                raise FaderCalibrationError(f"its fader calibration for {name} does not rise from (0, 0) to (1, 1)")
        return cls(knots, measured)


def fit(curve: Mapping[float, float]) -> tuple[tuple[float, float], ...] | None:
    """Knots for a symptom whose change at each measured intensity is `curve` (it must hold 0 and
    1); None where it changes (almost) nothing at full intensity."""
    xs = np.array(sorted(curve))
    full = curve[1.0]
    if full < QUIET:
        return None
    reach = np.maximum.accumulate(np.array([max(0.0, curve[x]) for x in xs]) / full)
    knots = [(0.0, 0.0)]
    for f in POSITIONS[1:-1]:
        k = int(np.argmax(reach >= f))           # the first measured intensity that reaches f (xs[-1] = 1 does)
        if k == 0:
            x = 0.0
        else:
            lo, hi = reach[k - 1], reach[k]
            x = float(xs[k - 1] + (xs[k] - xs[k - 1]) * (f - lo) / (hi - lo)) if hi > lo else float(xs[k])
        knots.append((f, round(max(knots[-1][1], min(1.0, x)), 6)))
    knots.append((1.0, 1.0))
    return tuple(knots)


# ------------------------------------------------------------------ what a visitor sees change

@lru_cache(maxsize=4096)              # the three below are pure, and the same on every model
def dark_share(intensity: float, seed: int) -> float:
    """lapses: the share of time the screen is dark (darkness averaged over LAPSE_SLOTS slots)."""
    from .symptoms.lapses import SLOT_S, darkness
    ts = np.arange(0.0, LAPSE_SLOTS * SLOT_S, 0.07)
    return float(np.mean([darkness(float(t), intensity, seed) for t in ts]))


@lru_cache(maxsize=4096)
def lost_motion(intensity: float, seed: int) -> float:
    """hesitation: half the mean |speed - 1| of the hesitant walk (a healthy walk moves at speed 1)."""
    from .symptoms.hesitation import SEGMENT_S, warp
    step = 0.04
    phase = np.arange(0.0, WALK_SEGMENTS * SEGMENT_S + step, step)
    warped = np.array([warp(float(p), intensity, seed) for p in phase])
    return float(np.mean(np.abs(np.diff(warped) / step - 1.0)) / 2.0)


@lru_cache(maxsize=4096)
def repeat_share(intensity: float, seed: int) -> float:
    """perseveration: the share of visits that go back to an earlier visit's memory."""
    from .symptoms.perseveration import source_visit
    return float(np.mean([source_visit(k, intensity, seed) != k for k in range(VISITS)]))


BY_TIME: dict[str, Callable[[float, int], float]] = {
    "lapses": dark_share, "hesitation": lost_motion, "perseveration": repeat_share}


class FaderProbe:
    """The change each symptom alone makes to what a visitor sees, on one engine's model."""

    def __init__(self, engine, memories: int | None = None, seeds=None):
        from .visitor import MEMORIES, SEEDS, healthy_pictures, memory_latents
        from .state import FrameState
        self.engine, self.seeds = engine, tuple(seeds or SEEDS)
        self.z = memory_latents(engine, memories or MEMORIES)
        self.healthy = {s: healthy_pictures(engine, self.z, s) for s in self.seeds}
        self.healthy_pictures = ({s: engine.pictures(self.z, FrameState(t=3.0, seed=s)) for s in self.seeds}
                                 if engine.detail is not None else None)

    def change(self, name: str, intensity: float) -> float:
        from .sheet import ssim
        from .state import FrameState
        from .symptoms import SYMPTOMS
        if name in BY_TIME:
            return float(np.mean([BY_TIME[name](intensity, s) for s in self.seeds]))
        changes = []
        for s in self.seeds:
            state = FrameState(t=3.0, seed=s, intensities={name: intensity})
            if SYMPTOMS[name].level == "detail":
                if self.healthy_pictures is None:
                    return 0.0                      # no detail stage: nothing for detail_loss to take
                frames, healthy = self.engine.pictures(self.z, state), self.healthy_pictures[s]
            else:
                frames, healthy = self.engine.small_frames(self.z, state), self.healthy[s]
            changes.append(np.mean([1.0 - ssim(f, h) for f, h in zip(frames, healthy)]))
        return float(np.mean(changes))


def calibrate(engine, names, progress=None) -> FaderCalibration:
    """Measure each symptom of `names` on this engine's model and fit its fader."""
    probe = FaderProbe(engine)
    knots, measured = {}, {}
    for k, name in enumerate(names):
        curve = {x: probe.change(name, x) for x in GRID}
        fitted = fit(curve)
        for _ in range(ROUNDS if fitted is not None else 0):
            drawn = [curve_value(fitted, f) for f in CHECKS]
            for x in drawn:
                if x not in curve:
                    curve[x] = probe.change(name, x)
            off = [abs(curve[x] / curve[1.0] - f) for x, f in zip(drawn, CHECKS)]
            if max(off) <= REFINE:
                break
            fitted = fit(curve)
        if fitted is not None:
            knots[name] = fitted
            measured[name] = tuple(round(curve.get(curve_value(fitted, f), probe.change(name, curve_value(fitted, f)))
                                         / curve[1.0], 4) for f in CHECKS)
        if progress is not None:
            progress(k + 1, len(names))
    return FaderCalibration(knots, measured)
