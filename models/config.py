"""How an architecture's frozen config dataclass travels in a checkpoint: as sorted JSON, read back
with unknown keys refused (a checkpoint from a newer version must not be half-understood)."""
from __future__ import annotations

import dataclasses
import json


class ConfigJSON:
    """Mixin for the frozen config dataclasses of models/."""

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_dict(cls, values: dict):
        if not isinstance(values, dict):
            raise ValueError(f"a {cls.ARCHITECTURE_LABEL} config is a mapping of name: value, not "
                             f"{type(values).__name__}")
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(map(str, set(values) - set(fields)))
        if unknown:
            raise ValueError(f"unknown {cls.ARCHITECTURE_LABEL} config keys: {', '.join(unknown)}")
        return cls(**{name: _typed(cls, fields[name], value) for name, value in values.items()})


_TYPES = {"int": int, "float": float, "str": str, "bool": bool}


def _typed(cls, f: dataclasses.Field, value):
    """`value` as the field's type (int, float, str, bool), an int for a float field as a float; a
    ValueError otherwise: a width of 4.0 passed the range checks and broke building the network."""
    tp = _TYPES.get(f.type if isinstance(f.type, str) else getattr(f.type, "__name__", ""))
    if tp is None:
        return value
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if type(value) is not tp:
        word = {int: "an integer", float: "a number", str: "text", bool: "true or false"}[tp]
        raise ValueError(f"{cls.ARCHITECTURE_LABEL} config {f.name}={value!r}: must be {word}")
    return value
