"""The one settings loader: settings.yaml -> validated, typed, frozen dataclasses.

Artists and technicians tune the piece in a YAML file; a typo there must not surface hours
later as a crash in the gallery. So every key is checked once, at start, against the types of
the dataclasses below, and a bad one is named with its full key path, the value and what is
allowed. The dataclass defaults are the base; the file is laid over them, then `--set` overrides.
Validation is generic — driven by field types and field metadata (`lo`, `hi`, `gt`, `keys`) —
so adding a setting means adding one field (and its comment in settings.yaml).
"""
from __future__ import annotations

import dataclasses
import difflib
import math
import os
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Iterable, Literal, Mapping, NewType

import yaml

from installation.course import DURATION_HELP, parse_duration
from installation.symptoms import SYMPTOM_NAMES   # the one list of symptom names that settings accept

__all__ = ["SettingsError", "Settings", "load_settings", "settings_from_dict", "DEFAULT_SETTINGS_PATH",
           "REPO_ROOT", "SYMPTOM_NAMES", "ModelSettings", "DisplaySettings", "WalkSettings", "LucidSettings",
           "CourseSettings", "SymptomSettings", "KioskSettings", "KeySettings", "SoundSettings", "SoundFollowSettings",
           "SCALES",
           "InputSettings", "BindingSettings", "SceneSettings", "PARAMETER_LIMITS", "PARAMETER_NAMES", "ACTION_NAMES"]

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SETTINGS_PATH = REPO_ROOT / "settings.yaml"

Duration = NewType("Duration", str)                  # '8h', '30d', '90m', '45s', '1h30m'
Curve = NewType("Curve", tuple)                      # ((progress, intensity), ...), progress increasing

# The shortest time a time constant of the walk or the lucid schedule may be: a hundredth of a
# second, below any frame's time. A tinier positive one (1e-320) showed nothing and broke the
# arithmetic: phase / seconds_per_memory overflowed into an OverflowError, a wander period gave
# NaN latents.
MIN_SECONDS = 0.01


class SettingsError(Exception):
    """A settings problem, worded for the person who edits settings.yaml."""


def _opt(default: Any = dataclasses.MISSING, *, factory: Any = dataclasses.MISSING, **meta: Any) -> Any:
    """A field with validation metadata: lo/hi (inclusive), gt (exclusive lower), keys (allowed mapping keys)."""
    if factory is not dataclasses.MISSING:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


def _frozen_map(d: Mapping) -> Mapping:
    return MappingProxyType(dict(d))


# ---------------------------------------------------------------------------------------------
# the settings (defaults here must equal settings.yaml; a test holds them together)

@dataclass(frozen=True)
class ModelSettings:
    path: str = "assets/memories.safetensors"
    device: Literal["auto", "cpu", "cuda"] = "auto"


@dataclass(frozen=True)
class DisplaySettings:
    fullscreen: bool = True
    monitor: int = _opt(0, lo=0, hi=15)
    width: int = _opt(0, lo=0, hi=16384)
    height: int = _opt(0, lo=0, hi=16384)
    scale: Literal["fit", "fill"] = "fit"
    vsync: bool = True
    fps_limit: int = _opt(60, lo=0, hi=1000)
    hud: bool = False
    grain: float = _opt(0.04, lo=0.0, hi=1.0)
    vignette: float = _opt(0.25, lo=0.0, hi=1.0)
    upscale: Literal["nearest", "bilinear", "bicubic", "lanczos"] = "bicubic"
    detail: bool = True

    def _check(self, path: str) -> None:
        for name in ("width", "height"):
            if getattr(self, name) == 1:      # the output needs at least 2 pixels each way
                _fail(f"{path}.{name}", 1, "0 (the monitor's size) or an integer >= 2 and <= 16384", "is out of range")


# which symptom drives a part of the sound; "" = none
SymptomOrNone = Literal[("",) + SYMPTOM_NAMES]

# the scales the soundscape may use: semitones above the root
SCALES: dict[str, tuple[int, ...]] = {
    "minor": (0, 2, 3, 5, 7, 8, 10),
    "dorian": (0, 2, 3, 5, 7, 9, 10),
    "major": (0, 2, 4, 5, 7, 9, 11),
    "lydian": (0, 2, 4, 6, 7, 9, 11),
    "pentatonic": (0, 3, 5, 7, 10),
}


@dataclass(frozen=True)
class SoundFollowSettings:
    voices: SymptomOrNone = "plaques"          # chord voices, then the drone's fifth, fall silent
    drift: SymptomOrNone = "confusion"         # each voice's pitch wanders on its own
    crush: SymptomOrNone = "precision_loss"    # sample rate and bit depth fall
    motif: SymptomOrNone = "forgetting"        # each memory's phrase loses notes and fades
    hiss: SymptomOrNone = "plaques"            # tape hiss rises
    dull: SymptomOrNone = "fading"             # the timbre darkens
    thin: SymptomOrNone = "fading"             # every voice grows quieter


@dataclass(frozen=True)
class SoundSettings:
    enabled: bool = True
    device: str = ""
    level: float = _opt(0.5, lo=0.0, hi=1.0)
    sample_rate: int = _opt(48000, lo=8000, hi=192000)
    root: int = _opt(38, lo=24, hi=60)
    scale: Literal["minor", "dorian", "major", "lydian", "pentatonic"] = "dorian"
    drone: float = _opt(0.8, lo=0.0, hi=1.0)
    chords: float = _opt(0.7, lo=0.0, hi=1.0)
    motif: float = _opt(0.6, lo=0.0, hi=1.0)
    motif_every_s: float = _opt(9.0, lo=2.0, hi=600.0)
    space: float = _opt(0.45, lo=0.0, hi=0.9)
    silence_with_lapses: bool = True
    retry_s: float = _opt(5.0, gt=0.0, hi=3600.0)
    follow: SoundFollowSettings = field(default_factory=SoundFollowSettings)


@dataclass(frozen=True)
class WalkSettings:
    mode: Literal["anchors", "random", "loop"] = "anchors"
    seconds_per_memory: float = _opt(14.0, gt=0.0, lo=MIN_SECONDS, hi=86400.0)
    dwell_s: float = _opt(4.0, lo=0.0, hi=86400.0)
    ease: float = _opt(0.3, lo=0.0, hi=0.5)
    wander: float = _opt(0.08, lo=0.0, hi=0.5)
    wander_period_s: float = _opt(11.0, gt=0.0, lo=MIN_SECONDS, hi=86400.0)
    loop_period_s: float = _opt(0.0, lo=0.0, hi=86400.0)
    loop_memories: int = _opt(0, lo=0, hi=100000)
    speed_step: float = _opt(1.25, gt=1.0, hi=10.0)

    def _check(self, path: str) -> None:
        if 0.0 < self.loop_period_s < MIN_SECONDS:
            _fail(f"{path}.loop_period_s", self.loop_period_s, f"0 (loop_memories x seconds_per_memory) or a number "
                  f">= {MIN_SECONDS}", "is out of range")
        if self.dwell_s >= self.seconds_per_memory:
            raise SettingsError(f"{path}.dwell_s: {self.dwell_s!r} is out of range; allowed: less than "
                                f"walk.seconds_per_memory ({self.seconds_per_memory!r})")


@dataclass(frozen=True)
class LucidSettings:
    enabled: bool = True
    every_s: float = _opt(600.0, gt=0.0, lo=MIN_SECONDS)
    length_s: float = _opt(40.0, gt=0.0)
    ramp_s: float = _opt(8.0, lo=0.0)
    depth: float = _opt(0.85, lo=0.0, hi=1.0)
    rarer: float = _opt(5.0, lo=1.0, hi=1000.0)
    shorter: float = _opt(0.35, gt=0.0, hi=1.0)
    until: float = _opt(0.9, lo=0.0, hi=1.0)


_DEFAULT_CURVES: dict[str, tuple] = {
    # the stages' story (course.STAGES) on the bundled models: the verbatim detail goes first, alone,
    # then every memory recognisable to 0.7, glimpses while severe, gone at 1; weight and activation
    # damage holds back until 0.92
    "detail_loss":     ((0.0, 0.0), (0.02, 0.0), (0.12, 0.45), (0.2, 0.8), (0.3, 1.0)),
    "fading":          ((0.0, 0.0), (0.15, 0.0), (0.33, 0.15), (0.5, 0.25), (0.75, 0.4), (0.9, 0.55), (1.0, 0.96)),
    "static":          ((0.0, 0.0), (0.15, 0.0), (0.33, 0.04), (0.7, 0.1), (0.92, 0.15), (1.0, 0.35)),
    "hesitation":      ((0.0, 0.0), (0.1, 0.1), (0.33, 0.2), (0.7, 0.5), (1.0, 0.7)),
    "synapse_loss":    ((0.0, 0.0), (0.15, 0.0), (0.33, 0.03), (0.6, 0.07), (0.92, 0.12), (1.0, 0.35)),
    # the decline: each arrives later
    "forgetting":      ((0.0, 0.0), (0.4, 0.0), (0.7, 0.2), (0.92, 0.4), (1.0, 0.8)),
    "regression":      ((0.0, 0.0), (0.3, 0.0), (0.6, 0.06), (0.92, 0.12), (1.0, 0.4)),
    "plaques":         ((0.0, 0.0), (0.3, 0.0), (0.6, 0.3), (0.92, 0.5), (1.0, 0.9)),
    "lapses":          ((0.0, 0.0), (0.33, 0.0), (0.6, 0.25), (0.85, 0.65), (1.0, 0.95)),
    "neuron_death":    ((0.0, 0.0), (0.45, 0.0), (0.75, 0.04), (0.92, 0.07), (1.0, 0.3)),
    "confusion":       ((0.0, 0.0), (0.3, 0.0), (0.6, 0.3), (0.92, 0.45), (1.0, 0.7)),
    "perseveration":   ((0.0, 0.0), (0.35, 0.0), (0.65, 0.4), (1.0, 0.8)),
    "feature_dropout": ((0.0, 0.0), (0.5, 0.0), (0.92, 0.04), (1.0, 0.2)),
    "weight_noise":    ((0.0, 0.0), (0.45, 0.0), (0.92, 0.08), (1.0, 0.35)),
    "tangles":         ((0.0, 0.0), (0.5, 0.0), (0.92, 0.12), (1.0, 0.4)),
    "precision_loss":  ((0.0, 0.0), (0.5, 0.0), (0.92, 0.3), (1.0, 0.7)),
    "bit_rot":         ((0.0, 0.0), (0.8, 0.0), (1.0, 0.25)),  # exponent flips are violent: late and light
    # style-based generators only (a DCGAN has no mapping network or noise inputs: no effect there)
    "misidentification": ((0.0, 0.0), (0.3, 0.0), (0.6, 0.3), (1.0, 0.6)),
    "noise_swell":     ((0.0, 0.0), (0.3, 0.0), (0.6, 0.3), (1.0, 0.7)),
}


@dataclass(frozen=True)
class CourseSettings:
    duration: Duration = Duration("8h")
    end: Literal["hold", "rebirth", "reverse"] = "hold"
    seed: int = _opt(1, lo=0, hi=2**31 - 1)
    steps: int = _opt(14, lo=0, hi=10000)
    unevenness: float = _opt(0.7, lo=0.0, hi=1.0)
    drop_share: float = _opt(0.35, gt=0.0, hi=1.0)
    seek_fraction: float = _opt(0.02, gt=0.0, hi=1.0)
    decay_step: float = _opt(0.05, gt=0.0, hi=1.0)
    lucid: LucidSettings = field(default_factory=LucidSettings)
    calibrated: bool = True         # follow the model's course calibration (installation/calibration.py)
    curves: Mapping[str, Curve] = _opt(factory=lambda: _frozen_map(_DEFAULT_CURVES), keys=SYMPTOM_NAMES,
                                         what="symptom")

    @property
    def duration_s(self) -> float:
        return parse_duration(self.duration)


@dataclass(frozen=True)
class SymptomSettings:
    enabled: bool = True
    target: str = ""


@dataclass(frozen=True)
class KioskSettings:
    enabled: bool = False
    state_file: str = ""
    save_interval_s: float = _opt(5.0, gt=0.0, hi=3600.0)
    crash_window_s: float = _opt(120.0, lo=0.0, hi=86400.0)
    health_every_s: float = _opt(60.0, lo=1.0, hi=86400.0)
    quit_combo: str = "ctrl+shift+q"

    def _check(self, path: str) -> None:
        try:
            key, _ = split_combo(self.quit_combo)
        except ValueError:
            _fail(f"{path}.quit_combo", self.quit_combo, "modifiers (ctrl, shift, alt) and one key joined by +, "
                                                         "e.g. ctrl+shift+q")
        _check_key_name(f"{path}.quit_combo", self.quit_combo, key, f"ends in {key!r}, which is not a key name")

    def state_path(self, environ: Mapping[str, str] | None = None, beside: Path | None = None) -> Path:
        """Where the course state lives: the setting (a relative one beside the settings file,
        `beside`, so it does not depend on where the service was started), else
        $XDG_STATE_HOME/lapses, else ~/.local/state/lapses."""
        environ = os.environ if environ is None else environ
        if self.state_file:
            p = Path(os.path.expandvars(os.path.expanduser(self.state_file)))
            return p if p.is_absolute() or beside is None else beside / p
        base = environ.get("XDG_STATE_HOME") or ""
        root = Path(base) if base and Path(base).is_absolute() else Path(environ.get("HOME", str(Path.home()))) / ".local" / "state"
        return root / "lapses" / "state.json"


@dataclass(frozen=True)
class KeySettings:
    pause: str = "space"
    faster: str = "up"
    slower: str = "down"
    course_forward: str = "right"
    course_back: str = "left"
    decay_up: str = "="
    decay_down: str = "-"
    revive: str = "r"
    rebirth: str = "b"
    hud: str = "h"
    screenshot: str = "s"
    quit: str = "escape"
    lucid: str = "c"
    release: str = "p"
    learn: str = "l"
    select_prev: str = "["
    select_next: str = "]"

    def _check(self, path: str) -> None:
        seen: dict[str, str] = {}
        for f in dataclasses.fields(self):
            key = getattr(self, f.name).strip().lower()
            if not key:
                raise SettingsError(f"{path}.{f.name}: '' is not a key; allowed: a key name such as 'space', 'r', 'f11'")
            if key in seen:
                raise SettingsError(f"{path}.{f.name}: {key!r} is already used by {path}.{seen[key]}; "
                                    f"allowed: a key no other action uses")
            _check_key_name(f"{path}.{f.name}", getattr(self, f.name), key)
            seen[key] = f.name

    def action_of(self) -> dict[str, str]:
        """Key name -> action, for the event loop."""
        return {getattr(self, f.name).strip().lower(): f.name for f in dataclasses.fields(self)}


# ---------------------------------------------------------------------------------------------
# live inputs: one mapping table from keys, MIDI, OSC and presence to parameters and actions
# (installation/inputs gives them their meaning; the names are here so a typo stops at start)

# continuous parameters a knob, an OSC message or a scene sets, with their hard limits
PARAMETER_LIMITS: dict[str, tuple[float, float]] = {
    "decay": (-1.0, 1.0),            # the decay override: -1 pristine, 0 the course, +1 as at the end
    "speed": (1 / 64, 64.0),         # walk speed factor
    "progress": (0.0, 1.0),          # where the course stands
    **{name: (0.0, 1.0) for name in SYMPTOM_NAMES},   # a symptom pinned at this intensity
}
PARAMETER_NAMES: tuple[str, ...] = tuple(PARAMETER_LIMITS)
# actions a key, a note, an OSC message or a visitor triggers (piece.ACTIONS, then the live app's own)
ACTION_NAMES: tuple[str, ...] = (
    "pause", "faster", "slower", "course_forward", "course_back", "decay_up", "decay_down", "revive", "rebirth",
    "lucid", "visit", "release", "learn", "select_prev", "select_next", "hud", "screenshot")
TARGET_NAMES: tuple[str, ...] = PARAMETER_NAMES + ACTION_NAMES


@dataclass(frozen=True)
class BindingSettings:
    """One row of the mapping table; range, curve, smoothing and takeover matter for parameters only."""
    midi: str = ""                                   # see inputs/spec.py MIDI_HELP
    osc: str = ""                                    # an address, e.g. /decay
    presence: Literal["", "arrive", "leave"] = ""    # a visitor event (actions only)
    lo: float = 0.0                                  # the parameter's value with the control at its minimum
    hi: float = 1.0                                  # ... and at its maximum
    curve: Literal["linear", "square", "sqrt", "smooth", "exp"] = "linear"
    smoothing_s: float = _opt(0.0, lo=0.0, hi=60.0)  # time constant of the glide to a new value
    takeover: bool = True                            # a knob acts only once it crosses the current value


def _row(**kw: Any) -> BindingSettings:
    return BindingSettings(**kw)


# the MIDI spec leaves controllers 102..119 undefined: one per symptom, by name (a symptom added
# later gets OSC only until someone maps it)
_SYMPTOM_CC: dict[str, int] = {
    "synapse_loss": 102, "neuron_death": 103, "weight_noise": 104, "precision_loss": 105, "bit_rot": 106,
    "regression": 107, "feature_dropout": 108, "plaques": 109, "tangles": 110, "static": 111, "forgetting": 112,
    "confusion": 113, "perseveration": 114, "hesitation": 115, "lapses": 116, "fading": 117,
    "misidentification": 118, "noise_swell": 119,
    "detail_loss": 85,      # 120..127 are channel mode messages; 85..87 are undefined too
}

_DEFAULT_BINDINGS: dict[str, BindingSettings] = {
    "decay": _row(midi="cc 1", osc="/decay", lo=-1.0, hi=1.0, smoothing_s=0.15),
    "speed": _row(midi="pitchbend", osc="/walk/speed", lo=0.25, hi=4.0, curve="exp", smoothing_s=0.2),
    "progress": _row(midi="cc14 3", osc="/course/progress", smoothing_s=0.5),
    **{name: _row(midi=f"cc {_SYMPTOM_CC[name]}" if name in _SYMPTOM_CC else "", osc=f"/symptom/{name}",
                  smoothing_s=0.1) for name in SYMPTOM_NAMES},
    "pause": _row(midi="note 36", osc="/pause"),
    "revive": _row(midi="note 37", osc="/revive"),
    "rebirth": _row(midi="note 38", osc="/rebirth"),
    "lucid": _row(midi="note 39", osc="/lucid"),
    "release": _row(midi="note 40", osc="/release"),
    "course_back": _row(midi="note 41", osc="/course/back"),
    "course_forward": _row(midi="note 42", osc="/course/forward"),
    "decay_down": _row(midi="note 43", osc="/decay/down"),
    "decay_up": _row(midi="note 44", osc="/decay/up"),
    "slower": _row(midi="note 45", osc="/walk/slower"),
    "faster": _row(midi="note 46", osc="/walk/faster"),
    "visit": _row(osc="/visit", presence="arrive"),
    "hud": _row(osc="/hud"),
    "screenshot": _row(osc="/screenshot"),
    "learn": _row(), "select_prev": _row(), "select_next": _row(),
}


@dataclass(frozen=True)
class SceneSettings:
    key: str = ""                                    # a key that recalls it ("" = none)
    midi: str = ""                                   # a note (or button) that recalls it
    fade_s: float = _opt(3.0, lo=0.0, hi=600.0)      # crossfade from the present values
    release: bool = False                            # symptoms not named in values follow the course again
    values: Mapping[str, float] = _opt(factory=lambda: _frozen_map({}), keys=PARAMETER_NAMES, what="parameter")


_DEFAULT_SCENES: dict[str, SceneSettings] = {
    "course": SceneSettings(key="f1", midi="note 48", fade_s=3.0, release=True,
                            values=_frozen_map({"decay": 0.0, "speed": 1.0})),
    "remember": SceneSettings(key="f2", midi="note 49", fade_s=6.0, release=True,
                              values=_frozen_map({"decay": -0.8, "speed": 0.6})),
    "drift": SceneSettings(key="f3", midi="note 50", fade_s=4.0,
                           values=_frozen_map({"speed": 0.5, "hesitation": 0.6, "confusion": 0.5})),
    "storm": SceneSettings(key="f4", midi="note 51", fade_s=1.5,
                           values=_frozen_map({"speed": 2.0, "static": 0.8, "lapses": 0.5})),
}


@dataclass(frozen=True)
class MidiSettings:
    enabled: bool = True
    ports: str = "*"
    channel: int = _opt(0, lo=0, hi=16)
    rescan_s: float = _opt(1.0, gt=0.0, hi=3.0)


@dataclass(frozen=True)
class OscSettings:
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = _opt(9000, lo=0, hi=65535)
    send_to: str = ""
    send_rate_hz: float = _opt(10.0, gt=0.0, lo=0.01, hi=100.0)    # the sender waits 1/rate: <= 100 s


@dataclass(frozen=True)
class PresenceSettings:
    enabled: bool = False
    camera: int = _opt(0, lo=0, hi=63)
    check_every_s: float = _opt(0.5, gt=0.0, hi=60.0)
    leave_after_s: float = _opt(5.0, gt=0.0, hi=3600.0)
    gap_s: float = _opt(120.0, lo=0.0, hi=86400.0)


@dataclass(frozen=True)
class InputSettings:
    mappings_file: str = "mappings.yaml"
    midi: MidiSettings = field(default_factory=MidiSettings)
    osc: OscSettings = field(default_factory=OscSettings)
    presence: PresenceSettings = field(default_factory=PresenceSettings)
    map: Mapping[str, BindingSettings] = _opt(factory=lambda: _frozen_map(_DEFAULT_BINDINGS), keys=TARGET_NAMES,
                                              what="parameter or action")
    scenes: Mapping[str, SceneSettings] = _opt(factory=lambda: _frozen_map(_DEFAULT_SCENES), what="scene")

    def _check(self, path: str) -> None:
        from installation.inputs import spec
        try:
            spec.port_patterns(self.midi.ports)
        except ValueError as e:
            raise SettingsError(f"{path}.midi.ports: {e}") from None
        try:
            spec.parse_host_port(self.osc.send_to, "send_to address")
        except ValueError as e:
            raise SettingsError(f"{path}.osc.send_to: {e}") from None
        if not self.osc.host.strip() or " " in self.osc.host:
            raise SettingsError(f"{path}.osc.host: {self.osc.host!r} is not a host; allowed: an address such as "
                                f"127.0.0.1 (this machine only) or 0.0.0.0 (every network)")
        used_midi: dict[tuple, str] = {}
        used_osc: dict[str, str] = {}
        rows = [(f"{path}.map.{name}", name, row.midi, row.osc) for name, row in self.map.items()]
        rows += [(f"{path}.scenes.{name}", None, scene.midi, "") for name, scene in self.scenes.items()]
        for where, target, midi_text, osc_text in rows:
            try:
                midi = spec.parse_midi(midi_text)
            except ValueError as e:
                raise SettingsError(f"{where}.midi: {e}") from None
            try:
                spec.check_osc_address(osc_text)
            except ValueError as e:
                raise SettingsError(f"{where}.osc: {e}") from None
            is_parameter = target in PARAMETER_LIMITS
            if midi is not None and self.midi.channel and midi.channel not in (None, self.midi.channel):
                _fail(f"{where}.midi", midi_text, f"channel {self.midi.channel} or none (inputs.midi.channel is "
                      f"{self.midi.channel}: only that channel is heard)", "is never heard")
            if midi is not None:
                if is_parameter and not midi.continuous:
                    _fail(f"{where}.midi", midi_text, "a cc, cc14 or pitchbend for a parameter",
                          "is a note, which has no position")
                if not is_parameter and midi.kind in ("cc14", "pitchbend"):
                    _fail(f"{where}.midi", midi_text, "a note or a cc (a button) for an action or scene")
                for key in midi.footprint():
                    if key in used_midi:
                        _fail(f"{where}.midi", midi_text, "a control no other row uses",
                              f"is already used by {used_midi[key]}")
                    used_midi[key] = f"{where}.midi"
            if osc_text:
                if osc_text in used_osc:
                    _fail(f"{where}.osc", osc_text, "an address no other row uses", f"is already used by {used_osc[osc_text]}")
                used_osc[osc_text] = f"{where}.osc"
        for name, row in self.map.items():
            if name not in PARAMETER_LIMITS:
                continue
            lo, hi = PARAMETER_LIMITS[name]
            for end in ("lo", "hi"):
                v = getattr(row, end)
                if not lo <= v <= hi:
                    _fail(f"{path}.map.{name}.{end}", v, f"a number from {lo:g} to {hi:g}", "is out of range")
            if row.lo == row.hi:
                _fail(f"{path}.map.{name}.hi", row.hi, f"a number other than lo ({row.lo!r})", "leaves no range")
            if row.curve == "exp" and (row.lo <= 0 or row.hi <= 0):
                _fail(f"{path}.map.{name}.curve", row.curve, "linear, square, sqrt or smooth (exp needs lo and hi > 0)")
            if row.presence:
                _fail(f"{path}.map.{name}.presence", row.presence, '"" (presence triggers actions, not parameters)')
        for name, scene in self.scenes.items():
            if not re.fullmatch(r"[A-Za-z0-9_-]+", str(name)):
                _fail(f"{path}.scenes.{name}", name, "a name of letters, digits, _ and -", "is not a scene name")
            for pname, v in scene.values.items():
                lo, hi = PARAMETER_LIMITS[pname]
                if not lo <= v <= hi:
                    _fail(f"{path}.scenes.{name}.values.{pname}", v, f"a number from {lo:g} to {hi:g}", "is out of range")


@dataclass(frozen=True)
class Settings:
    model: ModelSettings = field(default_factory=ModelSettings)
    display: DisplaySettings = field(default_factory=DisplaySettings)
    sound: SoundSettings = field(default_factory=SoundSettings)
    walk: WalkSettings = field(default_factory=WalkSettings)
    course: CourseSettings = field(default_factory=CourseSettings)
    symptoms: Mapping[str, SymptomSettings] = _opt(
        factory=lambda: _frozen_map({name: SymptomSettings() for name in SYMPTOM_NAMES}), keys=SYMPTOM_NAMES,
        what="symptom")
    kiosk: KioskSettings = field(default_factory=KioskSettings)
    keys: KeySettings = field(default_factory=KeySettings)
    inputs: InputSettings = field(default_factory=InputSettings)
    source: str = field(default="", compare=False, metadata={"internal": True})  # the file these came from

    def _check(self, path: str) -> None:
        taken = {key: f"keys.{action}" for key, action in self.keys.action_of().items()}
        for name, scene in self.inputs.scenes.items():
            key = scene.key.strip().lower()
            if key and key in taken:
                _fail(f"inputs.scenes.{name}.key", scene.key, "a key that no action or other scene uses",
                      f"is already used by {taken[key]}")
            if key:
                _check_key_name(f"inputs.scenes.{name}.key", scene.key, key)
                taken[key] = f"inputs.scenes.{name}"

    def as_dict(self) -> dict:
        return _plain(self)

    def to_yaml(self) -> str:
        head = f"# Lapses settings, resolved (from {self.source or 'defaults'})\n"
        return head + yaml.dump(self.as_dict(), Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=120)

    def state_path(self, environ: Mapping[str, str] | None = None) -> Path:
        """The kiosk's state file (KioskSettings.state_path), a relative one beside the settings file."""
        return self.kiosk.state_path(environ, Path(self.source).resolve().parent if self.source else None)

    def resolve_path(self, value: str) -> Path:
        """A path from the settings: relative ones are looked up beside the settings file, then in
        the project (where the bundled assets live)."""
        p = Path(os.path.expandvars(os.path.expanduser(value)))
        if p.is_absolute():
            return p
        candidates = ([Path(self.source).resolve().parent / p] if self.source else []) + [REPO_ROOT / p]
        return next((c for c in candidates if c.exists()), candidates[0])

    def beside_settings(self, value: str) -> Path:
        """A path the piece writes as well as reads (inputs.mappings_file): a relative one is beside the
        settings file (the project folder for the project's own settings or none), and nowhere else, so
        reading and writing find the same file and a rehearsal's file never reaches another settings'."""
        p = Path(os.path.expandvars(os.path.expanduser(value)))
        if p.is_absolute():
            return p
        return (Path(self.source).resolve().parent if self.source else REPO_ROOT) / p

    @property
    def model_path(self) -> Path:
        return self.resolve_path(self.model.path)

    def disabled_symptoms(self) -> frozenset[str]:
        return frozenset(name for name, s in self.symptoms.items() if not s.enabled)


# ---------------------------------------------------------------------------------------------
# generic validation, driven by the field types

_TYPE_WORDS = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}


class _Given:
    """An override value as typed on the command line: YAML-parsed, but a string field takes the text
    as written (so `--set keys.decay_down=-` and `--set keys.pause=1` mean what they say)."""

    def __init__(self, parsed: Any, text: str):
        self.parsed, self.text = parsed, text


def _unwrap(value: Any, tp: Any) -> Any:
    if isinstance(value, _Given):
        if tp is not str:
            return value.parsed
        quoted = len(value.text) >= 2 and value.text[0] == value.text[-1] and value.text[0] in "'\""
        return value.parsed if quoted and isinstance(value.parsed, str) else value.text   # "cc 5" as settings.yaml writes it
    return value


def _fail(path: str, value: Any, allowed: str, problem: str = "") -> typing.NoReturn:
    shown = "null" if value is None else repr(value)
    raise SettingsError(f"{path}: {shown} {problem or 'is not allowed'}; allowed: {allowed}")


def split_combo(text: str) -> tuple[str, frozenset[str]]:
    """"ctrl+shift+q" -> ("q", {"ctrl", "shift"}); ValueError for no key or an unknown modifier."""
    parts = [p.strip().lower() for p in text.split("+") if p.strip()]
    mods = frozenset(parts[:-1])
    if not parts or mods - {"ctrl", "shift", "alt"}:
        raise ValueError(f"{text!r}: write modifiers (ctrl, shift, alt) and one key joined by +, e.g. ctrl+shift+q")
    return parts[-1], mods


KEY_NAMES_ALLOWED = "a key name as pygame writes it, such as 'space', 'r', 'f11', '=', 'page up'"


def _check_key_name(path: str, value: str, key: str, problem: str = "is not a key name") -> None:
    """A key the event loop can ever see: pygame knows the name and writes it back the same way
    (the loop compares pygame.key.name of each key pressed). A typo would leave an action dead."""
    import warnings
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    import pygame
    with warnings.catch_warnings():          # names need no display: pygame warns before init all the same
        warnings.simplefilter("ignore")
        try:
            known = pygame.key.name(pygame.key.key_code(key)).lower() == key
        except ValueError:
            known = False
    if not known:
        _fail(path, value, KEY_NAMES_ALLOWED, problem)


def _convert(value: Any, tp: Any, path: str, meta: Mapping[str, Any]) -> Any:
    value = _unwrap(value, tp)
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, path)
    if tp is bool:
        if not isinstance(value, bool):
            _fail(path, value, "true or false", "is the wrong type")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            _fail(path, value, _with_range("an integer", meta), "is the wrong type")
        return _in_range(value, path, meta)
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not _finite(value):
            _fail(path, value, _with_range("a number", meta),
                  "is out of range" if isinstance(value, int) else "is the wrong type")
        return _in_range(float(value), path, meta)
    if tp is str:
        if not isinstance(value, str):
            _fail(path, value, "a string (put it in quotes)", "is the wrong type")
        return value
    if tp is Duration:
        try:
            parse_duration(value)
        except ValueError:
            _fail(path, value, DURATION_HELP, "is not a duration")
        return Duration(str(value))
    if tp is Curve:
        return _curve(value, path)
    if origin is Literal:
        allowed = typing.get_args(tp)
        if value not in allowed:
            _fail(path, value, ", ".join(str(a) if a != "" else '""' for a in allowed))
        return value
    if origin in (Mapping, dict, typing.get_origin(Mapping[str, int])):
        key_tp, value_tp = typing.get_args(tp)
        if not isinstance(value, dict):
            _fail(path, value, "a mapping of name: value", "is the wrong type")
        allowed_keys = meta.get("keys")
        out = {}
        for k, v in value.items():
            if allowed_keys is not None and k not in allowed_keys:
                unknown(f"{path}.{k}", k, allowed_keys, meta.get("what", "key"))
            out[str(k)] = _convert(v, value_tp, f"{path}.{k}", {})
        return MappingProxyType(out)
    raise TypeError(f"settings: no validator for type {tp!r} at {path}")  # a programming error


def _finite(x: int | float) -> bool:
    """A number that is a finite float: an integer too large for one (YAML reads 1000...0 as an
    int) is not, and math.isfinite would raise OverflowError on it."""
    try:
        return math.isfinite(x)
    except OverflowError:
        return False


def _with_range(word: str, meta: Mapping[str, Any]) -> str:
    parts = []
    if "gt" in meta:
        parts.append(f"> {meta['gt']}")
    if "lo" in meta:
        parts.append(f">= {meta['lo']}")
    if "hi" in meta:
        parts.append(f"<= {meta['hi']}")
    return word + (" " + " and ".join(parts) if parts else "")


def _in_range(value: float, path: str, meta: Mapping[str, Any]) -> float:
    if ("gt" in meta and not value > meta["gt"]) or ("lo" in meta and value < meta["lo"]) \
            or ("hi" in meta and value > meta["hi"]):
        word = "an integer" if isinstance(value, int) else "a number"
        _fail(path, value, _with_range(word, meta), "is out of range")
    return value


def _curve(value: Any, path: str) -> tuple:
    allowed = "a list of [progress, intensity] points, progress increasing within 0..1, intensity within 0..1"
    if not isinstance(value, (list, tuple)) or not value:
        _fail(path, value, allowed, "is not a curve")
    points = []
    for i, pt in enumerate(value):
        ok = (isinstance(pt, (list, tuple)) and len(pt) == 2
              and all(isinstance(x, (int, float)) and not isinstance(x, bool) and _finite(x) for x in pt))
        if not ok:
            _fail(f"{path}[{i}]", pt, allowed, "is not a [progress, intensity] point")
        p, v = float(pt[0]), float(pt[1])
        if not 0.0 <= p <= 1.0:
            _fail(f"{path}[{i}]", list(pt), allowed, "has progress out of range")
        if not 0.0 <= v <= 1.0:
            _fail(f"{path}[{i}]", list(pt), allowed, "has intensity out of range")
        if points and p <= points[-1][0]:
            _fail(f"{path}[{i}]", list(pt), allowed, "does not increase in progress")
        points.append((p, v))
    return tuple(points)


def unknown(path: str, key: Any, allowed: Iterable[str], what: str = "key") -> typing.NoReturn:
    """Raise SettingsError for an unknown key at path, naming the allowed ones and the nearest match."""
    allowed = list(allowed)
    near = difflib.get_close_matches(str(key), allowed, n=1)
    hint = f" (did you mean {near[0]!r}?)" if near else ""
    raise SettingsError(f"{path}: unknown {what} {key!r}{hint}; allowed: {', '.join(allowed)}")


def _build(cls: type, raw: Any, path: str) -> Any:
    if raw is None:  # a section with every key commented out
        raw = {}
    if not isinstance(raw, dict):
        _fail(path or "settings", raw, "a mapping of key: value", "is the wrong type")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if not f.metadata.get("internal")}
    for key in raw:
        if key not in fields:
            unknown(f"{path}.{key}" if path else str(key), key, fields)
    values = {name: _convert(raw[name], hints[name], f"{path}.{name}" if path else name, f.metadata)
              for name, f in fields.items() if name in raw}
    obj = cls(**values)
    if hasattr(obj, "_check"):
        obj._check(path)
    return obj


def _plain(obj: Any) -> Any:
    """Settings -> plain dicts, lists and scalars (what YAML and JSON take)."""
    if dataclasses.is_dataclass(obj):
        return {f.name: _plain(getattr(obj, f.name)) for f in dataclasses.fields(obj) if not f.metadata.get("internal")}
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


class _Dumper(yaml.SafeDumper):
    """Sections as blocks, short lists (curve points) on one line: reads like settings.yaml."""


def _represent_list(dumper: yaml.SafeDumper, data: list) -> yaml.Node:
    flat = all(not isinstance(v, (dict, list)) for v in data) or all(
        isinstance(v, list) and all(not isinstance(x, (dict, list)) for x in v) for v in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flat)


_Dumper.add_representer(list, _represent_list)


def _merge(base: Any, top: Any) -> Any:
    """Lay `top` over `base`: mappings merge key by key, anything else replaces."""
    if isinstance(base, dict) and isinstance(top, dict):
        out = dict(base)
        for k, v in top.items():
            out[k] = _merge(base[k], v) if k in base else v
        return out
    if isinstance(base, dict) and top is None:
        return base
    return top


def _apply_override(raw: dict, text: str) -> None:
    if "=" not in text:
        raise SettingsError(f"--set {text!r}: expected key.path=value, e.g. course.duration=2h")
    key_path, value_text = text.split("=", 1)
    keys = [k.strip() for k in key_path.strip().split(".")]
    if not all(keys):
        raise SettingsError(f"--set {text!r}: {key_path!r} is not a key path; allowed: names joined by dots, "
                            f"e.g. walk.dwell_s")
    try:
        parsed = yaml.safe_load(value_text) if value_text.strip() else ""
    except yaml.YAMLError:
        parsed = value_text
    except RecursionError:
        raise SettingsError(f"--set {key_path}=...: the value holds lists or mappings nested too deep to read; "
                            f"allowed: a value as settings.yaml writes it, e.g. walk.wander=0.1") from None
    node = raw
    for i, k in enumerate(keys[:-1]):
        child = node.get(k)
        if not isinstance(child, dict):
            if child is not None:
                raise SettingsError(f"{'.'.join(keys[:i + 1])}: is a value, not a section; cannot set {key_path}")
            child = node[k] = {}
        node = child
    node[keys[-1]] = parsed if isinstance(parsed, dict) else _Given(parsed, value_text.strip())


# ---------------------------------------------------------------------------------------------

def settings_from_dict(raw: Mapping | None, overrides: Iterable[str] = (), source: str = "") -> Settings:
    """Validate a plain mapping (as read from YAML) laid over the defaults."""
    if raw is not None and not isinstance(raw, Mapping):
        raise SettingsError(f"{source or 'settings'}: the top level must be a mapping of sections, got "
                            f"{type(raw).__name__}")
    user: dict = _merge({}, dict(raw or {}))
    for text in overrides:
        _apply_override(user, text)
    merged = _merge(_plain(Settings()), user)
    settings = _build(Settings, merged, "")
    return dataclasses.replace(settings, source=source)


def load_settings(path: str | os.PathLike | None = None, overrides: Iterable[str] = ()) -> Settings:
    """Read settings.yaml (default: the project's), lay `key.path=value` overrides on top, validate.

    Raises SettingsError naming the file or the key path, the value and what is allowed."""
    path = Path(path) if path is not None else DEFAULT_SETTINGS_PATH
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SettingsError(f"{path}: settings file not found") from None
    except IsADirectoryError:
        raise SettingsError(f"{path}: is a folder, not a settings file; give the path of a YAML file "
                            f"such as settings.yaml") from None
    except (OSError, UnicodeDecodeError) as e:
        raise SettingsError(f"{path}: cannot read settings file ({e})") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as e:
        where = getattr(e, "problem_mark", None)
        line = f" line {where.line + 1}" if where is not None else ""
        raise SettingsError(f"{path}:{line} is not valid YAML ({getattr(e, 'problem', e)})") from None
    except RecursionError:          # PyYAML composes nested nodes recursively: ~1000 deep is too many
        raise SettingsError(f"{path}: holds lists or mappings nested too deep to read; settings are sections "
                            f"of key: value (see the project's settings.yaml)") from None
    _refuse_duplicate_keys(text, path)
    return settings_from_dict(raw, overrides, source=str(path))


def _refuse_duplicate_keys(text: str, path: Path) -> None:
    """YAML lets a key appear twice and silently keeps the last: a second `course:` section
    appended at the end of a copy of settings.yaml would replace the whole first one. Refuse it,
    naming both lines. (Only the node tree is composed: nothing is constructed.)"""
    def walk(node: Any, where: str) -> None:
        if isinstance(node, yaml.MappingNode):
            seen: dict[str, int] = {}
            for key_node, value_node in node.value:
                if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = key_node.value
                key_path = f"{where}.{key}" if where else key
                line = key_node.start_mark.line + 1
                if key in seen:
                    raise SettingsError(f"{path}: line {line}: {key_path} is given twice (first on line {seen[key]}); "
                                        f"allowed: each key once - merge the two into one")
                seen[key] = line
                walk(value_node, key_path)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                walk(item, f"{where}[{i}]")

    try:
        walk(yaml.compose(text, Loader=yaml.SafeLoader), "")
    except yaml.YAMLError:     # safe_load took it; nothing more to say
        pass
