"""The generic half of the settings: YAML text -> plain data -> checked, frozen dataclasses.

Why it exists: the schema (installation/settings/__init__.py) should read as a table of fields,
so the validation that every field shares lives here, driven by the field types and their
metadata (`lo`, `hi`, `gt`, `keys`, `what`): a bad value is named with its full key path, the
value and what is allowed. Also here: laying a file and `--set` overrides over the defaults,
reading a settings file (refusing duplicate keys) and writing settings back as YAML.
"""
from __future__ import annotations

import dataclasses
import difflib
import math
import typing
from dataclasses import field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Iterable, Literal, Mapping, NewType

import yaml

from installation.duration import DURATION_HELP, parse_duration

Duration = NewType("Duration", str)                  # '8h', '30d', '90m', '45s', '1h30m'
Curve = NewType("Curve", tuple)                      # ((progress, intensity), ...), progress increasing


class SettingsError(Exception):
    """A settings problem, worded for the person who edits settings.yaml."""


def opt(default: Any = dataclasses.MISSING, *, factory: Any = dataclasses.MISSING, **meta: Any) -> Any:
    """A field with validation metadata: lo/hi (inclusive), gt (exclusive lower), keys (allowed mapping keys)."""
    if factory is not dataclasses.MISSING:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


def frozen_map(d: Mapping) -> Mapping:
    return MappingProxyType(dict(d))


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


def _as_given(value: Any) -> Any:
    """A value as the person gave it: an override's text inside a mapping shown as its value."""
    if isinstance(value, _Given):
        return value.parsed
    if isinstance(value, dict):
        return {k: _as_given(v) for k, v in value.items()}
    return value


def fail(path: str, value: Any, allowed: str, problem: str = "") -> typing.NoReturn:
    shown = "null" if value is None else repr(_as_given(value))
    raise SettingsError(f"{path}: {shown} {problem or 'is not allowed'}; allowed: {allowed}")


def _convert(value: Any, tp: Any, path: str, meta: Mapping[str, Any]) -> Any:
    value = _unwrap(value, tp)
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        return build(tp, value, path)
    if tp is bool:
        if not isinstance(value, bool):
            fail(path, value, "true or false", "is the wrong type")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            fail(path, value, _with_range("an integer", meta), "is the wrong type")
        return _in_range(value, path, meta)
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not _finite(value):
            fail(path, value, _with_range("a number", meta),
                  "is out of range" if isinstance(value, int) else "is the wrong type")
        return _in_range(float(value), path, meta)
    if tp is str:
        if not isinstance(value, str):
            fail(path, value, "a string (put it in quotes)", "is the wrong type")
        return value
    if tp is Duration:
        try:
            parse_duration(value)
        except ValueError:
            fail(path, value, DURATION_HELP, "is not a duration")
        return Duration(str(value))
    if tp is Curve:
        return _curve(value, path)
    if origin is Literal:
        allowed = typing.get_args(tp)
        if value not in allowed:
            fail(path, value, ", ".join(str(a) if a != "" else '""' for a in allowed))
        return value
    if origin in (Mapping, dict, typing.get_origin(Mapping[str, int])):
        key_tp, value_tp = typing.get_args(tp)
        if not isinstance(value, dict):
            fail(path, value, "a mapping of name: value", "is the wrong type")
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
        fail(path, value, _with_range(word, meta), "is out of range")
    return value


def _curve(value: Any, path: str) -> tuple:
    allowed = "a list of [progress, intensity] points, progress increasing within 0..1, intensity within 0..1"
    if not isinstance(value, (list, tuple)) or not value:
        fail(path, value, allowed, "is not a curve")
    points = []
    for i, pt in enumerate(value):
        ok = (isinstance(pt, (list, tuple)) and len(pt) == 2
              and all(isinstance(x, (int, float)) and not isinstance(x, bool) and _finite(x) for x in pt))
        if not ok:
            fail(f"{path}[{i}]", pt, allowed, "is not a [progress, intensity] point")
        p, v = float(pt[0]), float(pt[1])
        if not 0.0 <= p <= 1.0:
            fail(f"{path}[{i}]", list(pt), allowed, "has progress out of range")
        if not 0.0 <= v <= 1.0:
            fail(f"{path}[{i}]", list(pt), allowed, "has intensity out of range")
        if points and p <= points[-1][0]:
            fail(f"{path}[{i}]", list(pt), allowed, "does not increase in progress")
        points.append((p, v))
    return tuple(points)


def unknown(path: str, key: Any, allowed: Iterable[str], what: str = "key") -> typing.NoReturn:
    """Raise SettingsError for an unknown key at path, naming the allowed ones and the nearest match."""
    allowed = list(allowed)
    near = difflib.get_close_matches(str(key), allowed, n=1)
    hint = f" (did you mean {near[0]!r}?)" if near else ""
    raise SettingsError(f"{path}: unknown {what} {key!r}{hint}; allowed: {', '.join(allowed)}")


def build(cls: type, raw: Any, path: str) -> Any:
    if raw is None:  # a section with every key commented out
        raw = {}
    if not isinstance(raw, dict):
        fail(path or "settings", raw, "a mapping of key: value", "is the wrong type")
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


def plain(obj: Any) -> Any:
    """Settings -> plain dicts, lists and scalars (what YAML and JSON take)."""
    if dataclasses.is_dataclass(obj):
        return {f.name: plain(getattr(obj, f.name)) for f in dataclasses.fields(obj) if not f.metadata.get("internal")}
    if isinstance(obj, Mapping):
        return {str(k): plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [plain(v) for v in obj]
    return obj


class Dumper(yaml.SafeDumper):
    """Sections as blocks, short lists (curve points) on one line: reads like settings.yaml."""


def _represent_list(dumper: yaml.SafeDumper, data: list) -> yaml.Node:
    flat = all(not isinstance(v, (dict, list)) for v in data) or all(
        isinstance(v, list) and all(not isinstance(x, (dict, list)) for x in v) for v in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flat)


Dumper.add_representer(list, _represent_list)


def merge(base: Any, top: Any) -> Any:
    """Lay `top` over `base`: mappings merge key by key, anything else replaces."""
    if isinstance(base, dict) and isinstance(top, dict):
        out = dict(base)
        for k, v in top.items():
            out[k] = merge(base[k], v) if k in base else v
        return out
    if isinstance(base, dict) and top is None:
        return base
    return top


def apply_override(raw: dict, text: str) -> None:
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


def refuse_duplicate_keys(text: str, path: Path) -> None:
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


def read_settings_file(path: Path) -> Any:
    """A settings file's plain data (what safe_load gives), or SettingsError naming the file:
    missing, a folder, unreadable, not YAML, nested too deep, or a key given twice."""
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
    refuse_duplicate_keys(text, path)
    return raw


def to_yaml(data: Any) -> str:
    """Plain settings data as YAML that reads like settings.yaml."""
    return yaml.dump(data, Dumper=Dumper, sort_keys=False, allow_unicode=True, width=120)
