"""The settings: settings.yaml -> validated, typed, frozen dataclasses — the schema, read as a table.

Artists and technicians tune the piece in a YAML file; a typo there must not surface hours
later as a crash in the gallery. So every key is checked once, at start, against the types of
the dataclasses below, and a bad one is named with its full key path, the value and what is
allowed. The dataclass defaults are the base; the file is laid over them, then `--set` overrides.
Validation is generic (loader.py) — driven by field types and field metadata (`lo`, `hi`, `gt`,
`keys`) — so adding a setting means adding one field (and its comment in settings.yaml). The
larger default data lives in defaults.py; the mapping table's rules in installation/inputs/rules.py,
key names in installation/inputs/keys.py.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Literal, Mapping

from installation.duration import parse_duration
from installation.inputs import rules
from installation.inputs.keys import COMBO_ALLOWED, KEY_NAMES_ALLOWED, is_key_name, split_combo
from installation.inputs.rules import ACTION_NAMES, PARAMETER_LIMITS, PARAMETER_NAMES, TARGET_NAMES
from installation.symptoms import SYMPTOM_NAMES   # the one list of symptom names that settings accept

from . import defaults
from .defaults import SCALES
from .loader import (Curve, Duration, SettingsError, apply_override, build, fail, frozen_map, merge, opt, plain,
                     read_settings_file, to_yaml, unknown)

__all__ = ["SettingsError", "Settings", "load_settings", "settings_from_dict", "DEFAULT_SETTINGS_PATH",
           "REPO_ROOT", "SYMPTOM_NAMES", "ModelSettings", "DisplaySettings", "WalkSettings", "LucidSettings",
           "CourseSettings", "SymptomSettings", "KioskSettings", "KeySettings", "SoundSettings", "SoundFollowSettings",
           "SCALES",
           "InputSettings", "BindingSettings", "SceneSettings", "PARAMETER_LIMITS", "PARAMETER_NAMES", "ACTION_NAMES",
           "TARGET_NAMES", "unknown", "split_combo", "KEY_NAMES_ALLOWED"]

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
DEFAULT_SETTINGS_PATH = REPO_ROOT / "settings.yaml"

# The shortest time a time constant of the walk or the lucid schedule may be: a hundredth of a
# second, below any frame's time. A tinier positive one (1e-320) showed nothing and broke the
# arithmetic: phase / seconds_per_memory overflowed into an OverflowError, a wander period gave
# NaN latents.
MIN_SECONDS = 0.01


# ---------------------------------------------------------------------------------------------
# the settings (defaults here must equal settings.yaml; a test holds them together)

@dataclass(frozen=True)
class ModelSettings:
    path: str = "assets/memories.safetensors"
    device: Literal["auto", "cpu", "cuda"] = "auto"


@dataclass(frozen=True)
class DisplaySettings:
    fullscreen: bool = True
    monitor: int = opt(0, lo=0, hi=15)
    width: int = opt(0, lo=0, hi=16384)
    height: int = opt(0, lo=0, hi=16384)
    scale: Literal["fit", "fill"] = "fit"
    vsync: bool = True
    fps_limit: int = opt(60, lo=0, hi=1000)
    hud: bool = False
    grain: float = opt(0.04, lo=0.0, hi=1.0)
    vignette: float = opt(0.25, lo=0.0, hi=1.0)
    upscale: Literal["nearest", "bilinear", "bicubic", "lanczos"] = "bicubic"
    detail: bool = True

    def _check(self, path: str) -> None:
        for name in ("width", "height"):
            if getattr(self, name) == 1:      # the output needs at least 2 pixels each way
                fail(f"{path}.{name}", 1, "0 (the monitor's size) or an integer >= 2 and <= 16384", "is out of range")


# which symptom drives a part of the sound; "" = none
SymptomOrNone = Literal[("",) + SYMPTOM_NAMES]

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
    level: float = opt(0.5, lo=0.0, hi=1.0)
    sample_rate: int = opt(48000, lo=8000, hi=192000)
    root: int = opt(38, lo=24, hi=60)
    scale: Literal["minor", "dorian", "major", "lydian", "pentatonic"] = "dorian"
    drone: float = opt(0.8, lo=0.0, hi=1.0)
    chords: float = opt(0.7, lo=0.0, hi=1.0)
    motif: float = opt(0.6, lo=0.0, hi=1.0)
    motif_every_s: float = opt(9.0, lo=2.0, hi=600.0)
    space: float = opt(0.45, lo=0.0, hi=0.9)
    silence_with_lapses: bool = True
    retry_s: float = opt(5.0, gt=0.0, hi=3600.0)
    follow: SoundFollowSettings = field(default_factory=SoundFollowSettings)


@dataclass(frozen=True)
class WalkSettings:
    mode: Literal["anchors", "random", "loop"] = "anchors"
    seconds_per_memory: float = opt(14.0, gt=0.0, lo=MIN_SECONDS, hi=86400.0)
    dwell_s: float = opt(4.0, lo=0.0, hi=86400.0)
    ease: float = opt(0.3, lo=0.0, hi=0.5)
    wander: float = opt(0.08, lo=0.0, hi=0.5)
    wander_period_s: float = opt(11.0, gt=0.0, lo=MIN_SECONDS, hi=86400.0)
    loop_period_s: float = opt(0.0, lo=0.0, hi=86400.0)
    loop_memories: int = opt(0, lo=0, hi=100000)
    speed_step: float = opt(1.25, gt=1.0, hi=10.0)

    def _check(self, path: str) -> None:
        if 0.0 < self.loop_period_s < MIN_SECONDS:
            fail(f"{path}.loop_period_s", self.loop_period_s, f"0 (loop_memories x seconds_per_memory) or a number "
                  f">= {MIN_SECONDS}", "is out of range")
        if self.dwell_s >= self.seconds_per_memory:
            raise SettingsError(f"{path}.dwell_s: {self.dwell_s!r} is out of range; allowed: less than "
                                f"walk.seconds_per_memory ({self.seconds_per_memory!r})")


@dataclass(frozen=True)
class LucidSettings:
    enabled: bool = True
    every_s: float = opt(600.0, gt=0.0, lo=MIN_SECONDS)
    length_s: float = opt(40.0, gt=0.0)
    ramp_s: float = opt(8.0, lo=0.0)
    depth: float = opt(0.85, lo=0.0, hi=1.0)
    rarer: float = opt(5.0, lo=1.0, hi=1000.0)
    shorter: float = opt(0.35, gt=0.0, hi=1.0)
    until: float = opt(0.9, lo=0.0, hi=1.0)


@dataclass(frozen=True)
class CourseSettings:
    duration: Duration = Duration("8h")
    end: Literal["hold", "rebirth", "reverse"] = "hold"
    seed: int = opt(1, lo=0, hi=2**31 - 1)
    steps: int = opt(14, lo=0, hi=10000)
    unevenness: float = opt(0.7, lo=0.0, hi=1.0)
    drop_share: float = opt(0.35, gt=0.0, hi=1.0)
    seek_fraction: float = opt(0.02, gt=0.0, hi=1.0)
    decay_step: float = opt(0.05, gt=0.0, hi=1.0)
    lucid: LucidSettings = field(default_factory=LucidSettings)
    calibrated: bool = True         # follow the model's course calibration (installation/calibration.py)
    curves: Mapping[str, Curve] = opt(factory=lambda: frozen_map(defaults.CURVES), keys=SYMPTOM_NAMES,
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
    save_interval_s: float = opt(5.0, gt=0.0, hi=3600.0)
    crash_window_s: float = opt(120.0, lo=0.0, hi=86400.0)
    health_every_s: float = opt(60.0, lo=1.0, hi=86400.0)
    quit_combo: str = "ctrl+shift+q"

    def _check(self, path: str) -> None:
        try:
            key, _ = split_combo(self.quit_combo)
        except ValueError:
            fail(f"{path}.quit_combo", self.quit_combo, COMBO_ALLOWED)
        _check_key(f"{path}.quit_combo", self.quit_combo, key, f"ends in {key!r}, which is not a key name")


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
            _check_key(f"{path}.{f.name}", getattr(self, f.name), key)
            seen[key] = f.name

    def action_of(self) -> dict[str, str]:
        """Key name -> action, for the event loop."""
        return {getattr(self, f.name).strip().lower(): f.name for f in dataclasses.fields(self)}


# ---------------------------------------------------------------------------------------------
# live inputs: one mapping table from keys, MIDI, OSC and presence to parameters and actions
# (installation/inputs gives them their meaning; the names are here so a typo stops at start)

@dataclass(frozen=True)
class BindingSettings:
    """One row of the mapping table; range, curve, smoothing and takeover matter for parameters only."""
    midi: str = ""                                   # see inputs/spec.py MIDI_HELP
    osc: str = ""                                    # an address, e.g. /decay
    presence: Literal["", "arrive", "leave"] = ""    # a visitor event (actions only)
    lo: float = 0.0                                  # the parameter's value with the control at its minimum
    hi: float = 1.0                                  # ... and at its maximum
    curve: Literal["linear", "square", "sqrt", "smooth", "exp"] = "linear"
    smoothing_s: float = opt(0.0, lo=0.0, hi=60.0)  # time constant of the glide to a new value
    takeover: bool = True                            # a knob acts only once it crosses the current value


@dataclass(frozen=True)
class SceneSettings:
    key: str = ""                                    # a key that recalls it ("" = none)
    midi: str = ""                                   # a note (or button) that recalls it
    fade_s: float = opt(3.0, lo=0.0, hi=600.0)      # crossfade from the present values
    release: bool = False                            # symptoms not named in values follow the course again
    values: Mapping[str, float] = opt(factory=lambda: frozen_map({}), keys=PARAMETER_NAMES, what="parameter")


def _default_bindings() -> Mapping[str, BindingSettings]:
    return frozen_map({name: BindingSettings(**row) for name, row in defaults.BINDINGS.items()})


def _default_scenes() -> Mapping[str, SceneSettings]:
    return frozen_map({name: SceneSettings(**{**scene, "values": frozen_map(scene.get("values", {}))})
                       for name, scene in defaults.SCENES.items()})


@dataclass(frozen=True)
class MidiSettings:
    enabled: bool = True
    ports: str = "*"
    channel: int = opt(0, lo=0, hi=16)
    rescan_s: float = opt(1.0, gt=0.0, hi=3.0)


@dataclass(frozen=True)
class OscSettings:
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = opt(9000, lo=0, hi=65535)
    send_to: str = ""
    send_rate_hz: float = opt(10.0, gt=0.0, lo=0.01, hi=100.0)    # the sender waits 1/rate: <= 100 s


@dataclass(frozen=True)
class PresenceSettings:
    enabled: bool = False
    camera: int = opt(0, lo=0, hi=63)
    check_every_s: float = opt(0.5, gt=0.0, hi=60.0)
    leave_after_s: float = opt(5.0, gt=0.0, hi=3600.0)
    gap_s: float = opt(120.0, lo=0.0, hi=86400.0)


@dataclass(frozen=True)
class InputSettings:
    mappings_file: str = "mappings.yaml"
    midi: MidiSettings = field(default_factory=MidiSettings)
    osc: OscSettings = field(default_factory=OscSettings)
    presence: PresenceSettings = field(default_factory=PresenceSettings)
    map: Mapping[str, BindingSettings] = opt(factory=lambda: _default_bindings(), keys=TARGET_NAMES,
                                              what="parameter or action")
    scenes: Mapping[str, SceneSettings] = opt(factory=lambda: _default_scenes(), what="scene")

    def _check(self, path: str) -> None:
        try:
            rules.check_inputs(self, path)
        except ValueError as e:
            raise SettingsError(str(e)) from None


@dataclass(frozen=True)
class Settings:
    model: ModelSettings = field(default_factory=ModelSettings)
    display: DisplaySettings = field(default_factory=DisplaySettings)
    sound: SoundSettings = field(default_factory=SoundSettings)
    walk: WalkSettings = field(default_factory=WalkSettings)
    course: CourseSettings = field(default_factory=CourseSettings)
    symptoms: Mapping[str, SymptomSettings] = opt(
        factory=lambda: frozen_map({name: SymptomSettings() for name in SYMPTOM_NAMES}), keys=SYMPTOM_NAMES,
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
                fail(f"inputs.scenes.{name}.key", scene.key, "a key that no action or other scene uses",
                      f"is already used by {taken[key]}")
            if key:
                _check_key(f"inputs.scenes.{name}.key", scene.key, key)
                taken[key] = f"inputs.scenes.{name}"

    def as_dict(self) -> dict:
        return plain(self)

    def to_yaml(self) -> str:
        return f"# Lapses settings, resolved (from {self.source or 'defaults'})\n" + to_yaml(self.as_dict())

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


def _check_key(path: str, value: str, key: str, problem: str = "is not a key name") -> None:
    """A typo in a key name would leave an action dead: refuse a key the loop can never see."""
    if not is_key_name(key):
        fail(path, value, KEY_NAMES_ALLOWED, problem)


# ---------------------------------------------------------------------------------------------

def settings_from_dict(raw: Mapping | None, overrides: Iterable[str] = (), source: str = "") -> Settings:
    """Validate a plain mapping (as read from YAML) laid over the defaults."""
    if raw is not None and not isinstance(raw, Mapping):
        raise SettingsError(f"{source or 'settings'}: the top level must be a mapping of sections, got "
                            f"{type(raw).__name__}")
    user: dict = merge({}, dict(raw or {}))
    for text in overrides:
        apply_override(user, text)
    merged = merge(plain(Settings()), user)
    settings = build(Settings, merged, "")
    return dataclasses.replace(settings, source=source)


def load_settings(path: str | os.PathLike | None = None, overrides: Iterable[str] = ()) -> Settings:
    """Read settings.yaml (default: the project's), lay `key.path=value` overrides on top, validate.

    Raises SettingsError naming the file or the key path, the value and what is allowed."""
    path = Path(path) if path is not None else DEFAULT_SETTINGS_PATH
    return settings_from_dict(read_settings_file(path), overrides, source=str(path))
