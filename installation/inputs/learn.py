"""MIDI learn and the mappings file it writes.

A performer selects a row of the mapping table in the HUD (select_prev / select_next), arms
learn, and moves a control: that control is bound to the row. The binding is saved to a
separate small file (`inputs.mappings_file`, e.g. mappings.yaml) rather than into settings.yaml,
so the artist's commented settings file is never rewritten. The file holds only MIDI specs:

    midi:
      decay: "ch 1 cc 74"          # a learned knob
      pause: ""                    # unbound (its note now serves another row)
      scene:storm: "ch 10 note 40"

It is laid over settings.yaml's table at start; a control learned for one row is taken from any
other row that used it, so one knob never does two things. Writes are atomic (temp, fsync, rename).
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Mapping

import yaml

from models import atomic_write
from installation.settings import PARAMETER_LIMITS, SettingsError, unknown
from installation.inputs.spec import MidiSpec, parse_midi

HEADER = ("# Lapses: MIDI controls bound by MIDI learn (written by the piece; laid over the mapping table\n"
          "# in settings.yaml, inputs.map). Delete this file to forget them.\n")


def targets(bindings: Mapping, scenes: Mapping) -> tuple[str, ...]:
    """What learn can bind, in the HUD's order: the table's rows, then the scenes."""
    return tuple(bindings) + tuple(f"scene:{name}" for name in scenes)


def load_mappings(path: Path, bindings: Mapping, scenes: Mapping) -> dict[str, str]:
    """target -> MIDI spec text from the mappings file ({} if there is none); SettingsError if bad."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as e:
        raise SettingsError(f"{path}: cannot read the mappings file ({e})") from None
    try:
        raw = yaml.safe_load(text) or {}
    except yaml.YAMLError as e:
        raise SettingsError(f"{path}: is not valid YAML ({getattr(e, 'problem', e)})") from None
    except RecursionError:
        raise SettingsError(f"{path}: lists or mappings nested too deep to read; expected a 'midi:' mapping "
                            f"of parameter or action -> MIDI control (delete the file to forget them)") from None
    if not isinstance(raw, dict) or set(raw) - {"midi"} or not isinstance(raw.get("midi") or {}, dict):
        raise SettingsError(f"{path}: expected a 'midi:' mapping of parameter or action -> MIDI control")
    allowed = targets(bindings, scenes)
    out: dict[str, str] = {}
    for target, value in (raw.get("midi") or {}).items():
        if target not in allowed:
            unknown(f"{path}: midi.{target}", target, allowed, "parameter, action or scene")
        try:
            spec = parse_midi("" if value is None else str(value))
        except ValueError as e:
            raise SettingsError(f"{path}: midi.{target}: {e}") from None
        if spec is not None:
            is_parameter = target in PARAMETER_LIMITS
            if (not spec.continuous) if is_parameter else spec.kind in ("cc14", "pitchbend"):
                allowed = "cc, cc14 or pitchbend" if is_parameter else "a note or a cc (a button)"
                raise SettingsError(f"{path}: midi.{target}: {value!r} cannot serve a "
                                    f"{'parameter' if is_parameter else 'action or scene'}; allowed: {allowed}")
        out[str(target)] = "" if spec is None else spec.text()
    return out


def apply_mappings(bindings: Mapping, scenes: Mapping, learned: Mapping[str, str]) -> tuple[dict, dict]:
    """The table and scenes with the learned MIDI specs in place."""
    b, s = dict(bindings), dict(scenes)
    for target, text in learned.items():
        if target.startswith("scene:"):
            name = target[len("scene:"):]
            if name in s:
                s[name] = replace(s[name], midi=text)
        elif target in b:
            b[target] = replace(b[target], midi=text)
    return b, s


def free_overlaps(bindings: Mapping, scenes: Mapping, learned: Mapping[str, str]) -> tuple[dict, dict, list]:
    """Learned controls win over the table: a row of settings.yaml (edited since the controller
    was learned) whose MIDI control a learned row also uses is left without MIDI, so one knob
    never does two things. Returns the table, the scenes and [(row, its control, learned row)]."""
    b, s = dict(bindings), dict(scenes)
    rows = {name: row.midi for name, row in b.items()}
    rows.update({f"scene:{name}": scene.midi for name, scene in s.items()})
    won = {t: parse_midi(text) for t, text in learned.items() if text}
    freed = []
    for name, text in rows.items():
        if name in learned or not text:
            continue
        spec = parse_midi(text)
        winner = next((t for t, w in won.items() if w is not None and w.overlaps(spec)), None)
        if winner is None:
            continue
        freed.append((name, text, winner))
        if name.startswith("scene:"):
            s[name[len("scene:"):]] = replace(s[name[len("scene:"):]], midi="")
        else:
            b[name] = replace(b[name], midi="")
    return b, s, freed


def bind(bindings: Mapping, scenes: Mapping, learned: Mapping[str, str], target: str,
         spec: MidiSpec) -> dict[str, str]:
    """The learned set after binding `spec` to `target`, freeing it from every other row."""
    out = dict(learned)
    rows = [(name, row.midi) for name, row in bindings.items()]
    rows += [(f"scene:{name}", scene.midi) for name, scene in scenes.items()]
    for name, text in rows:
        current = parse_midi(out.get(name, text))
        if name != target and current is not None and current.overlaps(spec):
            out[name] = ""
    out[target] = spec.text()
    return out


def save_mappings(path: Path, learned: Mapping[str, str]) -> None:
    """Write the mappings file atomically: a crash mid-write leaves the old file, never half of one."""
    body = yaml.safe_dump({"midi": dict(sorted(learned.items()))}, sort_keys=False, allow_unicode=True)
    atomic_write(Path(path), lambda tmp: Path(tmp).write_text(HEADER + body, encoding="utf-8"))


class Learn:
    """The HUD's selected row and whether learn is armed."""

    def __init__(self, choices: tuple[str, ...]):
        self.choices = choices
        self.index = 0
        self.armed = False

    @property
    def selected(self) -> str:
        return self.choices[self.index]

    def select(self, step: int) -> str:
        self.index = (self.index + step) % len(self.choices)
        return f"selected {self.selected}"

    def toggle(self) -> str:
        self.armed = not self.armed
        return f"learn {self.selected}: move a control" if self.armed else "learn off"
