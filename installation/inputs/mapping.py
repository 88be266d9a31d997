"""Parameters and how controls move them: range, curve, smoothing, soft takeover, scenes.

A knob, an OSC message and a scene all end here, and everything here ends in the piece's own
setters (`Piece.pin`, `set_speed`, `set_progress`, `set_overrides`), as the keyboard does. The
rules a performer feels live in one place:

* curve + range: a control's position 0..1 becomes a value in the parameter's units;
* smoothing: a new value is glided to with a time constant (exponential), frame by frame;
* soft takeover: a knob acts only once it crosses (or meets) the present value, and lets go
  again when something else (a key, a scene, OSC) moves the parameter — so nothing jumps;
* scenes: named sets of values crossfaded over `fade_s` (smoothstep).

Time comes in as `now` (seconds, any monotonic origin) from the live loop: this is the edge of
the piece, where wall time is allowed; the engine still only sees the piece's plain state.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Callable, Mapping

from installation.settings import PARAMETER_LIMITS, BindingSettings, SceneSettings

TAKEOVER_WINDOW = 0.02     # a knob within 2% of the parameter's range (speed: of its ratios) meets it


# ---------------------------------------------------------------------------------------------
# parameters: name -> how to read and write it on the piece

@dataclass(frozen=True)
class Parameter:
    name: str
    lo: float                                  # hard limits, in the parameter's own units
    hi: float
    get: Callable[[object], float]
    set: Callable[[object, float], None]
    log: bool = False          # measured in ratios (speed: 1/64 .. 64, where x1 -> x2 is as far as x2 -> x4)
    drift: float = 1e-3        # how far it may move by itself and still hold what we wrote (progress creeps)

    @property
    def span(self) -> float:
        return self.hi - self.lo

    def distance(self, a: float, b: float) -> float:
        """How far apart two values are, as a fraction of the whole range (in ratios for `log`)."""
        if self.log:
            return abs(math.log(max(a, self.lo) / max(b, self.lo))) / math.log(self.hi / self.lo)
        return abs(a - b) / self.span


def _decay_set(piece, v: float) -> None:
    piece.set_overrides(replace(piece.course_state.overrides, decay=v))


def _symptom(name: str) -> tuple[Callable, Callable]:
    def get(piece) -> float:
        pinned = piece.course_state.overrides.pinned    # a fader's position; the course's intensity where it stands
        return float(pinned[name]) if name in pinned else \
            piece.course.fader_position(name, float(piece.sample().intensities.get(name, 0.0)))

    def set_(piece, v: float) -> None:
        piece.pin(name, v)
    return get, set_


def parameter(name: str) -> Parameter:
    lo, hi = PARAMETER_LIMITS[name]
    if name == "decay":
        return Parameter(name, lo, hi, lambda p: float(p.course_state.overrides.decay), _decay_set)
    if name == "speed":
        return Parameter(name, lo, hi, lambda p: float(p.speed), lambda p, v: p.set_speed(v), log=True)
    if name == "progress":   # the course moves it, and a fader lands on the staircase's nearest step
        return Parameter(name, lo, hi, lambda p: float(p.sample().point.progress), lambda p, v: p.set_progress(v),
                         drift=TAKEOVER_WINDOW)
    return Parameter(name, lo, hi, *_symptom(name))


# ---------------------------------------------------------------------------------------------
# curves: a control's position x in [0, 1] -> a value between lo and hi

def _smoothstep(x: float) -> float:
    x = min(1.0, max(0.0, x))
    return x * x * (3.0 - 2.0 * x)


def shape(curve: str, x: float, lo: float, hi: float) -> float:
    x = min(1.0, max(0.0, float(x)))
    if curve == "exp":                       # equal ratios per turn: the middle of 0.25..4 is 1
        return lo * (hi / lo) ** x
    y = {"linear": x, "square": x * x, "sqrt": math.sqrt(x), "smooth": _smoothstep(x)}[curve]
    return lo + (hi - lo) * y


# ---------------------------------------------------------------------------------------------

@dataclass
class _Motion:
    """A parameter on its way to a value: an exponential glide (tau_s) or a timed fade (fade_s)."""
    target: float
    value: float
    owner: str
    tau_s: float = 0.0
    start: float = 0.0
    t0: float = 0.0
    fade_s: float = 0.0


@dataclass
class _Knob:
    picked: bool = False
    last: float | None = None      # the value this knob asked for last (to see it cross)


class Mapper:
    """Moves the piece's parameters for the controls; call `update(piece, now)` once per frame."""

    def __init__(self, bindings: Mapping[str, BindingSettings], scenes: Mapping[str, SceneSettings]):
        self.bindings = dict(bindings)
        self.scenes = dict(scenes)
        self.params = {name: parameter(name) for name in PARAMETER_LIMITS}
        self._motions: dict[str, _Motion] = {}
        self._written: dict[str, tuple[float, str]] = {}     # name -> (value we wrote, who asked)
        self._knobs: dict[str, _Knob] = {}
        self._last_update: float | None = None

    # -- writing ---------------------------------------------------------------------------------

    def _write(self, piece, name: str, value: float, owner: str) -> None:
        p = self.params[name]
        value = min(p.hi, max(p.lo, value))
        p.set(piece, value)
        self._written[name] = (p.get(piece), owner)

    def _moved_elsewhere(self, piece, name: str) -> bool:
        """Did something other than this mapper (a key, a revive, a rebirth) move the parameter?"""
        if name not in self._written:
            return True
        p = self.params[name]
        return p.distance(p.get(piece), self._written[name][0]) > p.drift

    def _start(self, piece, name: str, target: float, owner: str, now: float, tau_s: float) -> None:
        p = self.params[name]
        target = min(p.hi, max(p.lo, target))
        if tau_s <= 0.0:
            self._motions.pop(name, None)
            self._write(piece, name, target, owner)
            return
        m = self._motions.get(name)
        value = m.value if m is not None and not self._moved_elsewhere(piece, name) else p.get(piece)
        # the glide starts from what the piece holds now: a revive or key since our last write must
        # not make update() take this fresh motion for one that something else overruled
        self._written[name] = (p.get(piece), owner)
        # glide from the previous frame's time, so the very next frame already moves
        self._motions[name] = _Motion(target, value, owner, tau_s=tau_s,
                                      t0=self._last_update if self._last_update is not None else now)

    # -- the three ways in -------------------------------------------------------------------------

    def control(self, piece, name: str, x: float, source: str, now: float) -> str | None:
        """A knob (MIDI) at position x in [0, 1] for parameter `name`; returns a HUD line or None."""
        row = self.bindings[name]
        p = self.params[name]
        value = shape(row.curve, x, row.lo, row.hi)
        knob = self._knobs.setdefault(source, _Knob())
        if row.takeover:
            if knob.picked and (self._written.get(name, (None, ""))[1] != source or self._moved_elsewhere(piece, name)):
                knob.picked = False
            if not knob.picked:
                m = self._motions.get(name)
                current = m.target if m is not None else p.get(piece)
                crossed = knob.last is not None and (knob.last - current) * (value - current) <= 0
                knob.last = value
                if not (crossed or p.distance(value, current) <= TAKEOVER_WINDOW):
                    return f"{name}: knob at {value:.2f}, move it through {current:.2f} to take over"
                knob.picked = True
        knob.last = value
        self._start(piece, name, value, source, now, row.smoothing_s)
        return None

    def set_value(self, piece, name: str, value: float, source: str, now: float) -> None:
        """A value in the parameter's own units (OSC): smoothed, no takeover (it is meant)."""
        self._start(piece, name, value, source, now, self.bindings[name].smoothing_s)

    def recall(self, piece, scene: str, now: float) -> str:
        s = self.scenes[scene]
        if s.release:
            for name in list(piece.course_state.overrides.pinned):
                if name not in s.values:
                    piece.release(name)
        for name, target in s.values.items():
            p = self.params[name]
            if s.fade_s <= 0.0:
                self._motions.pop(name, None)
                self._write(piece, name, target, f"scene:{scene}")
            else:
                t0 = self._last_update if self._last_update is not None else now
                self._motions[name] = _Motion(min(p.hi, max(p.lo, target)), p.get(piece), f"scene:{scene}",
                                              start=p.get(piece), t0=t0, fade_s=s.fade_s)
        return f"scene {scene} ({s.fade_s:g} s)"

    # -- once per frame ------------------------------------------------------------------------------

    def update(self, piece, now: float) -> None:
        """Advance every glide and fade to `now` and write it to the piece. A parameter that
        something else moved meanwhile (a key, revive) is let go rather than fought over."""
        for name, m in list(self._motions.items()):
            p = self.params[name]
            if name in self._written and self._written[name][1] == m.owner and self._moved_elsewhere(piece, name):
                del self._motions[name]
                continue
            if m.fade_s > 0.0:
                a = (now - m.t0) / m.fade_s
                m.value = m.start + (m.target - m.start) * _smoothstep(a)
                done = a >= 1.0
            else:
                dt = max(0.0, now - m.t0)
                m.t0 = now
                m.value += (m.target - m.value) * (1.0 - math.exp(-dt / m.tau_s))
                done = p.distance(m.target, m.value) <= 1e-4
            if done:
                m.value = m.target
                del self._motions[name]
            self._write(piece, name, m.value, m.owner)
        self._last_update = now

    def moving(self) -> tuple[str, ...]:
        return tuple(self._motions)
