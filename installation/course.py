"""The course of the illness: from elapsed exhibition time to symptom intensities.

Everything here is a pure function of plain data — elapsed course seconds, a seed, the settings
— so the live app, the kiosk after a power cut and the offline film all see the same decline.
Nothing reads the wall clock; the caller owns time and persists a `CourseState`.

    elapsed_s --staircase--> progress --curves--> intensities --lucid--> --overrides--> engine

* Decline is stepwise and uneven: linear time is bent through a seeded monotone staircase of
  plateaus and smooth drops that still reaches 1 at the end of the course.
* Lucid intervals are brief seeded recoveries (intensities eased toward 0 with smooth ramps)
  that grow rarer and shorter as progress rises; they are a pure function of (seed, elapsed_s).
  A performer or a visitor may bring one too: its start is kept as plain data in the overrides.
* At the end the course holds, is reborn with a new seed, or reverses (the artist's choice).
* A performer's live overrides (a global decay and pinned symptoms) are applied last.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, NamedTuple, Sequence

import numpy as np

from installation.duration import DURATION_HELP, MIN_DURATION_S, parse_duration  # noqa: F401  (re-exported)
from installation.symptoms import SYMPTOM_NAMES

if TYPE_CHECKING:
    from installation.settings import CourseSettings

__all__ = ["parse_duration", "derive_seed", "CoursePoint", "LucidInterval", "Overrides", "CourseState",
           "CourseSample", "Course", "STAGES", "stage_of", "curve_value"]


def derive_seed(base_seed: int, cycle: int) -> int:
    """The seed of life number `cycle` (cycle 0 keeps the base seed, so settings read plainly)."""
    if cycle == 0:
        return int(base_seed)
    return int(np.random.SeedSequence([int(base_seed) & 0xFFFFFFFF, int(cycle), 0x11FE]).generate_state(1)[0]
               & 0x7FFFFFFF)


def _rng(*key: int) -> np.random.Generator:
    return np.random.default_rng([int(k) & 0xFFFFFFFF for k in key])


def _smoothstep(x: float) -> float:
    x = min(1.0, max(0.0, x))
    return x * x * (3.0 - 2.0 * x)


# ---------------------------------------------------------------------------------------------
# stages

# (lower progress bound, name): what a visitor would say of the picture at that point.
STAGES: tuple[tuple[float, str], ...] = (
    (0.00, "healthy"),    # the memories as they were
    (0.10, "early"),      # a little faded, a hesitation now and then; all still recognisable
    (0.33, "mild"),       # the decline begins to show: holes, noise, lapses start
    (0.50, "moderate"),   # memories blur into each other, the walk repeats itself
    (0.70, "severe"),     # glimpses between blackouts
    (0.92, "gone"),       # nothing is recognisable any more
)


def stage_of(progress: float) -> tuple[int, str]:
    """Stage index and name of a progress value."""
    index = 0
    for i, (lower, _) in enumerate(STAGES):
        if progress >= lower:
            index = i
    return index, STAGES[index][1]


# ---------------------------------------------------------------------------------------------
# curves

def curve_value(points: Sequence[Sequence[float]], progress: float) -> float:
    """Piecewise-linear curve through [progress, intensity] points; flat beyond its ends."""
    if not points:
        return 0.0
    if progress <= points[0][0]:
        return float(points[0][1])
    for (p0, i0), (p1, i1) in zip(points, points[1:]):
        if progress <= p1:
            return float(i0 + (i1 - i0) * (progress - p0) / (p1 - p0))
    return float(points[-1][1])


# ---------------------------------------------------------------------------------------------
# the staircase

@lru_cache(maxsize=64)
def _staircase(seed: int, steps: int, unevenness: float, drop_share: float) -> tuple[np.ndarray, np.ndarray]:
    """Step boundaries in linear time (cumulative, ends at 1) and each step's drop fraction.

    The progress at the end of each step equals the time there, so the staircase never strays
    further from steady decline than one step: the artist's curves keep their timing."""
    rng = _rng(seed, 0x57A1)
    lengths = (1.0 - unevenness) + unevenness * rng.exponential(1.0, steps)
    ends = np.cumsum(lengths / lengths.sum())
    ends[-1] = 1.0
    drops = drop_share * (0.6 + 0.8 * rng.random(steps))  # some drops sudden, some slow
    return ends, np.clip(drops, 1e-3, 1.0)


def staircase(u: float, seed: int, steps: int, unevenness: float, drop_share: float) -> float:
    """Monotone map of linear time u in [0, 1] to progress in [0, 1]: plateaus, then smooth drops."""
    u = min(1.0, max(0.0, float(u)))
    if steps <= 0:
        return u
    ends, drops = _staircase(int(seed), int(steps), float(unevenness), float(drop_share))
    k = min(int(np.searchsorted(ends, u, side="left")), steps - 1)
    start = 0.0 if k == 0 else float(ends[k - 1])
    end = float(ends[k])
    drop_start = end - float(drops[k]) * (end - start)  # the plateau holds the previous step's level
    if u <= drop_start:
        return start
    return float(start + (end - start) * _smoothstep((u - drop_start) / (end - drop_start)))


# ---------------------------------------------------------------------------------------------
# lucid intervals

class LucidInterval(NamedTuple):
    start_s: float
    end_s: float
    strength: float  # 0..1: how deep this one goes (fades out near its rarity threshold)


@lru_cache(maxsize=256)
def _window_draws(seed: int, window: int) -> tuple[float, float, float]:
    return tuple(float(u) for u in _rng(seed, window, 0x1C1D).random(3))


def _lucid_in_window(window: int, progress: float, seed: int, lucid: Any) -> LucidInterval | None:
    """The lucid interval of one window of `every_s` seconds, if it has one at this progress.

    Every window draws its chances once from (seed, window); whether the interval happens and
    how long it lasts then depend smoothly on progress, so nothing pops as progress creeps."""
    every_s = float(lucid.every_s)
    u_start, u_keep, u_len = _window_draws(seed, window)
    keep = 1.0 / (1.0 + (lucid.rarer - 1.0) * progress)       # chance of happening: falls with progress
    taper = min(1.0, max(0.0, (lucid.until - progress) / 0.03))  # none at all past `until`
    strength = min(1.0, max(0.0, (keep - u_keep) / 0.05)) * taper
    if strength <= 0.0:
        return None
    length_s = lucid.length_s * (1.0 - (1.0 - lucid.shorter) * progress) * (0.7 + 0.6 * u_len)
    length_s = min(length_s, 0.8 * every_s)
    start_s = window * every_s + u_start * (every_s - length_s)
    return LucidInterval(start_s, start_s + length_s, strength)


def _envelope(t: float, interval: LucidInterval, ramp_s: float) -> float:
    """0 outside, smooth ramps up and down, 1 in the middle."""
    length_s = interval.end_s - interval.start_s
    ramp_s = min(ramp_s, length_s / 2.0)
    if t <= interval.start_s or t >= interval.end_s:
        return 0.0
    if ramp_s <= 0.0:
        return 1.0
    return _smoothstep(min(t - interval.start_s, interval.end_s - t) / ramp_s)


# ---------------------------------------------------------------------------------------------
# plain data: what the caller keeps and persists

class CoursePoint(NamedTuple):
    progress: float  # 0 = healthy, 1 = gone
    cycle: int       # which life (rebirth) or which pass (reverse) this is
    seed: int        # the seed of this life: damage onsets, walk order and lucid schedule follow it
    linear: float    # elapsed fraction of the current pass before the staircase, 0..1
    stage: int
    stage_name: str


@dataclass(frozen=True)
class Overrides:
    """A performer's live hands on the piece: a global `decay` and pinned symptoms.

    decay in [-1, 1] moves the piece along the course's own story (`story_progress`): +x from
    progress p shows it as the (calibrated) course would at p + x (1 - p), so +1 is the end and +0.5
    from the start is the middle, every memory still there; -x eases back toward pristine the same
    way, p (1 - x), so -1 is revived. A pinned symptom
    ignores the course and takes its value directly (a MIDI fader). lucid_s is the course time at
    which a performer or a visitor brought a lucid interval (None = none): a plain number, so the
    interval itself stays a pure function of the state (`Course.triggered_lucidity`)."""
    decay: float = 0.0
    pinned: Mapping[str, float] = field(default_factory=dict)
    lucid_s: float | None = None

    def story_progress(self, progress: float) -> float:
        """Where on the course the piece shows itself at `progress` under this decay."""
        decay, p = min(1.0, max(-1.0, self.decay)), min(1.0, max(0.0, float(progress)))
        return p + decay * (1.0 - p) if decay >= 0.0 else p * (1.0 + decay)

    def pin_into(self, intensities: Mapping[str, float],
              fader: Callable[[str, float], float] | None = None) -> dict[str, float]:
        """Intensities (the course's at story_progress) with the pinned symptoms set, each clamped
        to [0, 1]; a pinned value is a fader's position, and `fader(name, position)` (a model's
        fader calibration, installation/faders.py) the intensity it draws (None: the position)."""
        out = dict(intensities)
        for name, value in self.pinned.items():
            out[name] = value if fader is None else fader(name, value)
        return {name: min(1.0, max(0.0, float(v))) for name, v in out.items()}

    def nudge_decay(self, delta: float) -> "Overrides":
        return replace(self, decay=min(1.0, max(-1.0, self.decay + delta)))

    def pin(self, name: str, value: float) -> "Overrides":
        return replace(self, pinned={**self.pinned, name: min(1.0, max(0.0, float(value)))})

    def release(self, name: str | None = None) -> "Overrides":
        """Let one symptom (or, with no name, every symptom) follow the course again."""
        if name is None:
            return replace(self, pinned={})
        return replace(self, pinned={k: v for k, v in self.pinned.items() if k != name})

    def revive(self) -> "Overrides":
        """Back to pristine: every intensity 0 until decay is raised again."""
        return Overrides(decay=-1.0, pinned={})

    def to_dict(self) -> dict:
        d = {"decay": float(self.decay), "pinned": {k: float(v) for k, v in sorted(self.pinned.items())}}
        if self.lucid_s is not None:
            d["lucid_s"] = float(self.lucid_s)
        return d

    @classmethod
    def from_dict(cls, d: Mapping) -> "Overrides":
        """Clamps finite values into range; a non-finite one is a ValueError naming its key
        (min/max would turn a NaN decay into -1, 'revived', and give every memory back)."""
        def finite(key: str, v) -> float:
            x = float(v)
            if not math.isfinite(x):
                raise ValueError(f"overrides.{key} {v!r} is not a finite number")
            return x

        lucid_s = d.get("lucid_s")
        lucid_s = float(lucid_s) if lucid_s is not None and math.isfinite(float(lucid_s)) else None
        return cls(decay=min(1.0, max(-1.0, finite("decay", d.get("decay", 0.0)))),
                   pinned={str(k): min(1.0, max(0.0, finite(f"pinned.{k}", v)))
                           for k, v in dict(d.get("pinned", {})).items()},
                   lucid_s=lucid_s)


@dataclass(frozen=True)
class CourseState:
    """Everything the kiosk saves: resume from it and the memories do not return.

    elapsed_s counts course seconds since this life began (the caller adds dt, scaled or not);
    seed is the base seed; cycle counts lives begun by a manual rebirth before this one."""
    elapsed_s: float = 0.0
    seed: int = 0
    cycle: int = 0
    overrides: Overrides = field(default_factory=Overrides)

    def to_dict(self) -> dict:
        return {"elapsed_s": float(self.elapsed_s), "seed": int(self.seed), "cycle": int(self.cycle),
                "overrides": self.overrides.to_dict()}

    @classmethod
    def from_dict(cls, d: Mapping) -> "CourseState":
        elapsed_s = float(d["elapsed_s"])
        if not math.isfinite(elapsed_s):
            raise ValueError(f"elapsed_s {elapsed_s!r} is not finite")
        return cls(elapsed_s=max(0.0, elapsed_s), seed=int(d["seed"]), cycle=max(0, int(d.get("cycle", 0))),
                   overrides=Overrides.from_dict(d.get("overrides", {})))


class CourseSample(NamedTuple):
    point: CoursePoint
    intensities: dict[str, float]  # what the engine should use: curves x lucid x overrides
    lucid: float                   # 0 = no lucid interval now, 1 = fully lucid


# ---------------------------------------------------------------------------------------------

class Course:
    """The course policy, built from `settings.course`; holds no time of its own."""

    def __init__(self, course_settings: CourseSettings, symptom_names: Iterable[str] | None = None,
                 disabled: Iterable[str] = (), calibration: Any = None, faders: Any = None):
        """`calibration` (installation/calibration.py, None: none): where on the curves the model's
        network symptoms are drawn at each progress, so that its story is the one the curves tell;
        `faders` (installation/faders.py, None: none): the intensity each symptom's fader draws."""
        self.settings = course_settings
        self.calibration = calibration
        self.faders = faders
        self.duration_s = parse_duration(course_settings.duration)
        self.curves = {name: tuple(tuple(map(float, pt)) for pt in pts) for name, pts in course_settings.curves.items()}
        self.symptom_names = tuple(SYMPTOM_NAMES if symptom_names is None else symptom_names)
        self.disabled = frozenset(disabled)

    # -- time -> progress --------------------------------------------------------------------

    def initial_state(self) -> CourseState:
        return CourseState(elapsed_s=0.0, seed=int(self.settings.seed), cycle=0)

    def progress_at(self, elapsed_s: float, seed: int | None = None, cycle: int = 0) -> CoursePoint:
        """Where the illness stands `elapsed_s` course seconds into a life begun with `seed`."""
        base_seed = int(self.settings.seed if seed is None else seed)
        elapsed_s = max(0.0, float(elapsed_s))
        passes = int(elapsed_s // self.duration_s)
        u = (elapsed_s - passes * self.duration_s) / self.duration_s
        if passes and u == 0.0:     # the very end of a pass belongs to it: a film to --to 1 ends on the
            passes, u = passes - 1, 1.0   # life it showed, not on the first frame of the next
        end = self.settings.end
        if end == "hold":
            passes, u = 0, min(1.0, elapsed_s / self.duration_s)
            life = cycle
        elif end == "rebirth":
            life = cycle + passes
        else:  # reverse: up, down, up... the same life retraced, so recovery restores what was lost
            life = cycle
            if passes % 2 == 1:
                u = 1.0 - u
        life_seed = derive_seed(base_seed, life)
        s = self.settings
        progress = staircase(u, life_seed, s.steps, s.unevenness, s.drop_share)
        index, name = stage_of(progress)
        return CoursePoint(progress, cycle + passes, life_seed, u, index, name)

    def point(self, state: CourseState) -> CoursePoint:
        return self.progress_at(state.elapsed_s, state.seed, state.cycle)

    # -- state transitions (what the live app's keys do) --------------------------------------

    def advance(self, state: CourseState, dt_s: float) -> CourseState:
        return replace(state, elapsed_s=max(0.0, state.elapsed_s + float(dt_s)))

    def seek(self, state: CourseState, fraction: float) -> CourseState:
        """Jump by a fraction of the course (course_forward / course_back); in `hold` the end holds."""
        elapsed_s = max(0.0, state.elapsed_s + fraction * self.duration_s)
        if self.settings.end == "hold":
            elapsed_s = min(elapsed_s, self.duration_s)
        return replace(state, elapsed_s=elapsed_s)

    def at_progress(self, state: CourseState, progress: float) -> CourseState:
        """The state whose progress is `progress`, within the current pass (a fader on the course).

        The staircase is monotone, so the earliest time that reaches `progress` is found by
        bisection; on a plateau that is where the plateau begins."""
        target = min(1.0, max(0.0, float(progress)))
        point = self.point(state)
        s = self.settings
        lo, hi = 0.0, 1.0                # staircase(1) = 1 >= target: hi always reaches it
        while hi - lo > 1e-9:
            mid = 0.5 * (lo + hi)
            if staircase(mid, point.seed, s.steps, s.unevenness, s.drop_share) >= target:
                hi = mid
            else:
                lo = mid
        u = hi
        if s.end == "hold":
            return replace(state, elapsed_s=u * self.duration_s)
        passes = int(max(0.0, state.elapsed_s) // self.duration_s)
        if s.end == "reverse" and passes % 2 == 1:
            u = 1.0 - u
        u = min(u, 1.0 - 1e-9)       # stay in this pass: its end is the next one's start
        return replace(state, elapsed_s=(passes + u) * self.duration_s)

    def trigger_lucid(self, state: CourseState, gap_s: float = 0.0) -> CourseState:
        """A lucid interval from now (a performer's key, a visitor), if one may come.

        None past `lucid.until`; with gap_s > 0 (visitors), none until gap_s x (1 + (rarer - 1) x
        progress) course seconds after the last one: rarer as the illness progresses."""
        lucid = self.settings.lucid
        if not lucid.enabled:
            return state
        progress = self.point(state).progress
        if progress >= lucid.until:
            return state
        last = state.overrides.lucid_s
        if gap_s > 0.0 and last is not None and 0.0 <= state.elapsed_s - last < gap_s * (
                1.0 + (lucid.rarer - 1.0) * progress):
            return state
        return replace(state, overrides=replace(state.overrides, lucid_s=float(state.elapsed_s)))

    def triggered_lucidity(self, state: CourseState, progress: float) -> float:
        """How lucid a triggered interval makes the mind now: the scheduled intervals' length at
        this progress (shorter as it grows) and ramps; 0 without one."""
        lucid = self.settings.lucid
        start_s = state.overrides.lucid_s
        if start_s is None or not lucid.enabled:
            return 0.0
        length_s = lucid.length_s * (1.0 - (1.0 - lucid.shorter) * progress)
        taper = min(1.0, max(0.0, (lucid.until - progress) / 0.03))
        return taper * _envelope(state.elapsed_s, LucidInterval(start_s, start_s + length_s, 1.0), lucid.ramp_s)

    def rebirth(self, state: CourseState) -> CourseState:
        """A new life from progress 0, with a new seed; the performer's overrides are let go."""
        return CourseState(elapsed_s=0.0, seed=state.seed, cycle=self.point(state).cycle + 1)

    # -- progress -> intensities --------------------------------------------------------------

    def curve_intensities(self, progress: float) -> dict[str, float]:
        """Each symptom's curve at `progress` (the calibrated position for the model's network
        symptoms), with no lucid interval and no overrides."""
        cal = self.calibration
        position = progress if cal is None else cal.position(progress)

        def at(name: str) -> float:
            p = position if cal is not None and name in cal.network else progress
            return min(1.0, max(0.0, curve_value(self.curves.get(name, ()), p)))
        return {name: (0.0 if name in self.disabled else at(name)) for name in self.symptom_names}

    def lucid_intervals(self, start_s: float, end_s: float, progress: float, seed: int) -> list[LucidInterval]:
        """The lucid intervals that begin within [start_s, end_s) at this progress (for HUD and tests)."""
        lucid = self.settings.lucid
        if not lucid.enabled:
            return []
        first, last = int(math.floor(start_s / lucid.every_s)), int(math.floor(end_s / lucid.every_s))
        found = (_lucid_in_window(w, progress, seed, lucid) for w in range(first, last + 1))
        return [iv for iv in found if iv is not None and start_s <= iv.start_s < end_s]

    def lucidity(self, t: float, progress: float, seed: int) -> float:
        """How lucid the mind is at course time t: 0 normally, up to 1 inside a lucid interval."""
        lucid = self.settings.lucid
        if not lucid.enabled:
            return 0.0
        interval = _lucid_in_window(int(math.floor(t / lucid.every_s)), progress, seed, lucid)
        if interval is None:
            return 0.0
        return interval.strength * _envelope(t, interval, lucid.ramp_s)

    def intensities(self, progress: float, t: float, seed: int) -> dict[str, float]:
        """Symptom name -> intensity in [0, 1] from the curves, eased toward 0 in a lucid interval.

        t is course time in seconds (`CourseState.elapsed_s`), so the lucid schedule survives a
        restart; progress is usually `point(state).progress`."""
        factor = 1.0 - self.settings.lucid.depth * self.lucidity(t, progress, seed)
        return {name: value * factor for name, value in self.curve_intensities(progress).items()}

    def sample(self, state: CourseState) -> CourseSample:
        """One call for the frame loop: point, final intensities (curves, lucid, overrides)."""
        point = self.point(state)
        lucid = max(self.lucidity(state.elapsed_s, point.progress, point.seed),
                    self.triggered_lucidity(state, point.progress))
        factor = 1.0 - self.settings.lucid.depth * lucid
        story = state.overrides.story_progress(point.progress)       # the decay knob moves along the story
        base = {name: value * factor for name, value in self.curve_intensities(story).items()}
        final = state.overrides.pin_into(base, self.fader_intensity)
        for name in self.disabled:
            final[name] = 0.0
        return CourseSample(point, final, lucid)

    def fader_intensity(self, name: str, position: float) -> float:
        """The intensity a symptom's fader draws at `position` (the model's fader calibration)."""
        return position if self.faders is None else self.faders.intensity(name, position)

    def fader_position(self, name: str, intensity: float) -> float:
        """Where a symptom's fader stands when it draws `intensity` (to pick it up without a jump)."""
        return intensity if self.faders is None else self.faders.position(name, intensity)

    def stage(self, progress: float) -> tuple[int, str]:
        return stage_of(progress)
