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
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown {cls.ARCHITECTURE_LABEL} config keys: {', '.join(unknown)}")
        return cls(**values)
