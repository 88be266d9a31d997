"""The piece: the one clock and the one set of hands that drive the engine.

The live app calls `step(dt)` with the real time between frames; the offline renderer calls it
with 1 / fps. Both then read `frame_state()`, so the film shows what the room would have seen.
Keyboard, MIDI and OSC all end in `act(action)` or the setters here, never in the engine.
"""
from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from .calibration import course_for
from .course import CourseSample, CourseState
from .state import FrameState

if TYPE_CHECKING:
    from .settings import Settings

ACTIONS = ("pause", "faster", "slower", "course_forward", "course_back", "decay_up", "decay_down",
           "revive", "rebirth", "lucid", "visit", "release")

MIN_SPEED, MAX_SPEED = 1 / 64, 64.0


class Piece:
    """Course state, walk phase and time; what the performer changes."""

    def __init__(self, settings: Settings, course_state: CourseState | None = None, meta=None):
        """`meta`: the model's metadata (models.GeneratorMeta), whose course calibration the course
        follows; None: the one in the settings' model file."""
        self.settings = settings
        self.course = course_for(settings, meta)
        self.course_state = course_state or self.course.initial_state()
        self.t = 0.0               # seconds the piece has run (not counting pauses)
        self.walk_phase = 0.0      # seconds of walk at speed 1
        self.speed = 1.0           # walk speed factor
        self.paused = False
        self._sample: CourseSample | None = None

    # -- time ----------------------------------------------------------------------------------

    def step(self, dt: float) -> None:
        """Let dt seconds pass (nothing moves while paused)."""
        if self.paused or dt <= 0:
            return
        self.t += dt
        self.walk_phase += dt * self.speed
        self.course_state = self.course.advance(self.course_state, dt)
        self._sample = None

    def follow_model(self, meta) -> None:
        """The course of the model actually shown (a kiosk may fall back to the bundled one)."""
        self.course = course_for(self.settings, meta)
        self._sample = None

    def sample(self) -> CourseSample:
        if self._sample is None:
            self._sample = self.course.sample(self.course_state)
        return self._sample

    def frame_state(self) -> FrameState:
        s = self.sample()
        return FrameState(t=self.t, progress=s.point.progress, intensities=s.intensities,
                          walk_phase=self.walk_phase, seed=s.point.seed)

    # -- hands ---------------------------------------------------------------------------------

    def set_course(self, state: CourseState) -> None:
        """Put the course at this state (a seek, a rebirth, a film's frame)."""
        self.course_state = state
        self._sample = None

    def act(self, action: str) -> str:
        """Do one named action (the keys of settings.yaml); returns a short line for the HUD/log."""
        c = self.settings.course
        if action == "pause":
            self.paused = not self.paused
            return "paused" if self.paused else "playing"
        if action in ("faster", "slower"):
            step = self.settings.walk.speed_step
            self.speed = min(MAX_SPEED, max(MIN_SPEED, self.speed * (step if action == "faster" else 1 / step)))
            return f"walk speed x{self.speed:.2f}"
        if action in ("course_forward", "course_back"):
            sign = 1 if action == "course_forward" else -1
            self.set_course(self.course.seek(self.course_state, sign * c.seek_fraction))
            point = self.sample().point   # the course time moves; progress may sit on a plateau of the staircase
            return f"course at {point.linear:.1%} of {c.duration}: progress {point.progress:.3f}, {point.stage_name}"
        if action in ("decay_up", "decay_down"):
            sign = 1 if action == "decay_up" else -1
            self.set_overrides(self.course_state.overrides.nudge_decay(sign * c.decay_step))
            return f"decay override {self.course_state.overrides.decay:+.2f}"
        if action == "revive":
            self.set_overrides(self.course_state.overrides.revive())
            return "revived"
        if action == "rebirth":
            self.set_course(self.course.rebirth(self.course_state))
            return f"rebirth: life {self.course_state.cycle}, seed {self.sample().point.seed}"
        if action in ("lucid", "visit"):     # a performer's lucid interval comes now; a visitor's only if due
            gap_s = self.settings.inputs.presence.gap_s if action == "visit" else 0.0
            self.set_course(self.course.trigger_lucid(self.course_state, gap_s))
            came = self.course_state.overrides.lucid_s == self.course_state.elapsed_s
            return "a lucid interval" if came else "no lucid interval now"
        if action == "release":
            self.release()
            return "every symptom follows the course"
        raise ValueError(f"unknown action {action!r}; actions: {', '.join(ACTIONS)}")

    def set_speed(self, speed: float) -> None:
        self.speed = min(MAX_SPEED, max(MIN_SPEED, float(speed)))

    def set_progress(self, progress: float) -> None:
        """Put the course where its progress is `progress` (a fader on the course)."""
        self.set_course(self.course.at_progress(self.course_state, progress))

    def set_overrides(self, overrides) -> None:
        self.set_course(replace(self.course_state, overrides=overrides))

    def pin(self, symptom: str, value: float) -> None:
        """Hold one symptom at a value (a fader), whatever the course says."""
        self.set_overrides(self.course_state.overrides.pin(symptom, value))

    def release(self, symptom: str | None = None) -> None:
        self.set_overrides(self.course_state.overrides.release(symptom))
