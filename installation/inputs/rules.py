"""The rules of the mapping table (settings.yaml `inputs:`): what may be bound to what.

Why it exists: the settings check the table's shape (types, ranges, known names); whether a MIDI
control, an OSC address or a scene may be bound where it is — a note has no position for a
parameter, one control for two rows, a channel that is never heard — is the inputs' own
knowledge, so it lives beside them. Also here: the names of the parameters and actions the table
may drive, with the parameters' hard limits. Errors are ValueErrors worded in full for the person
editing settings.yaml (key path, value, what is allowed); the settings raise them as theirs.
"""
from __future__ import annotations

import re
from typing import Any, NoReturn

from installation.inputs import spec
from installation.symptoms import SYMPTOM_NAMES

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


def _refuse(path: str, value: Any, allowed: str, problem: str = "") -> NoReturn:
    shown = "null" if value is None else repr(value)
    raise ValueError(f"{path}: {shown} {problem or 'is not allowed'}; allowed: {allowed}")


def check_inputs(inputs: Any, path: str) -> None:
    """The inputs section (InputSettings), checked as a whole: ports, hosts, every row's MIDI and
    OSC binding, parameter ranges and curves, scene names and values. ValueError for the first
    problem found."""
    try:
        spec.port_patterns(inputs.midi.ports)
    except ValueError as e:
        raise ValueError(f"{path}.midi.ports: {e}") from None
    try:
        spec.parse_host_port(inputs.osc.send_to, "send_to address")
    except ValueError as e:
        raise ValueError(f"{path}.osc.send_to: {e}") from None
    if not inputs.osc.host.strip() or " " in inputs.osc.host:
        raise ValueError(f"{path}.osc.host: {inputs.osc.host!r} is not a host; allowed: an address such as "
                         f"127.0.0.1 (this machine only) or 0.0.0.0 (every network)")
    used_midi: dict[tuple, str] = {}
    used_osc: dict[str, str] = {}
    rows = [(f"{path}.map.{name}", name, row.midi, row.osc) for name, row in inputs.map.items()]
    rows += [(f"{path}.scenes.{name}", None, scene.midi, "") for name, scene in inputs.scenes.items()]
    for where, target, midi_text, osc_text in rows:
        try:
            midi = spec.parse_midi(midi_text)
        except ValueError as e:
            raise ValueError(f"{where}.midi: {e}") from None
        try:
            spec.check_osc_address(osc_text)
        except ValueError as e:
            raise ValueError(f"{where}.osc: {e}") from None
        is_parameter = target in PARAMETER_LIMITS
        if midi is not None and inputs.midi.channel and midi.channel not in (None, inputs.midi.channel):
            _refuse(f"{where}.midi", midi_text, f"channel {inputs.midi.channel} or none (inputs.midi.channel is "
                  f"{inputs.midi.channel}: only that channel is heard)", "is never heard")
        if midi is not None:
            if is_parameter and not midi.continuous:
                _refuse(f"{where}.midi", midi_text, "a cc, cc14 or pitchbend for a parameter",
                      "is a note, which has no position")
            if not is_parameter and midi.kind in ("cc14", "pitchbend"):
                _refuse(f"{where}.midi", midi_text, "a note or a cc (a button) for an action or scene")
            for key in midi.footprint():
                if key in used_midi:
                    _refuse(f"{where}.midi", midi_text, "a control no other row uses",
                          f"is already used by {used_midi[key]}")
                used_midi[key] = f"{where}.midi"
        if osc_text:
            if osc_text in used_osc:
                _refuse(f"{where}.osc", osc_text, "an address no other row uses", f"is already used by {used_osc[osc_text]}")
            used_osc[osc_text] = f"{where}.osc"
    for name, row in inputs.map.items():
        if name not in PARAMETER_LIMITS:
            continue
        lo, hi = PARAMETER_LIMITS[name]
        for end in ("lo", "hi"):
            v = getattr(row, end)
            if not lo <= v <= hi:
                _refuse(f"{path}.map.{name}.{end}", v, f"a number from {lo:g} to {hi:g}", "is out of range")
        if row.lo == row.hi:
            _refuse(f"{path}.map.{name}.hi", row.hi, f"a number other than lo ({row.lo!r})", "leaves no range")
        if row.curve == "exp" and (row.lo <= 0 or row.hi <= 0):
            _refuse(f"{path}.map.{name}.curve", row.curve, "linear, square, sqrt or smooth (exp needs lo and hi > 0)")
        if row.presence:
            _refuse(f"{path}.map.{name}.presence", row.presence, '"" (presence triggers actions, not parameters)')
    for name, scene in inputs.scenes.items():
        if not re.fullmatch(r"[A-Za-z0-9_-]+", str(name)):
            _refuse(f"{path}.scenes.{name}", name, "a name of letters, digits, _ and -", "is not a scene name")
        for pname, v in scene.values.items():
            lo, hi = PARAMETER_LIMITS[pname]
            if not lo <= v <= hi:
                _refuse(f"{path}.scenes.{name}.values.{pname}", v, f"a number from {lo:g} to {hi:g}", "is out of range")
