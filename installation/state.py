"""`FrameState`: the plain data that fully determines one frame.

The engine turns a FrameState into a frame and reads nothing else — no wall clock, no unseeded
random numbers — so the live app (real-time clock) and the offline renderer (t = i / fps) show
the same picture for the same state.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Mapping


@dataclass(frozen=True)
class FrameState:
    t: float = 0.0                                   # seconds since the piece started (live clock or i / fps)
    progress: float = 0.0                            # course of the illness, 0 = healthy, 1 = gone
    intensities: Mapping[str, float] = field(default_factory=dict)  # symptom name -> [0, 1]; missing = 0
    walk_phase: float = 0.0                          # distance along the walk (see installation.walk)
    seed: int = 0                                    # the piece's seed (changes on rebirth)

    def intensity(self, name: str) -> float:
        return float(self.intensities.get(name, 0.0))

    def with_(self, **changes) -> "FrameState":
        return replace(self, **changes)

    def to_dict(self) -> dict:
        return {"t": self.t, "progress": self.progress, "walk_phase": self.walk_phase, "seed": self.seed,
                "intensities": dict(sorted(self.intensities.items()))}

    @classmethod
    def from_dict(cls, d: Mapping) -> "FrameState":
        """A state as to_dict wrote it (a --state-log line, a screenshot's .json); ValueError naming the
        key that is missing, not a finite number or out of its range."""
        intensities = d["intensities"]
        if not isinstance(intensities, Mapping):
            raise ValueError(f"intensities: {intensities!r:.40} is not a mapping of symptom: intensity")
        seed = d["seed"]
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= 2 ** 31 - 1:
            raise ValueError(f"seed: {seed!r:.40} is not an integer from 0 to {2 ** 31 - 1}")
        return cls(t=_number(d, "t"), progress=_number(d, "progress", 0.0, 1.0), walk_phase=_number(d, "walk_phase"),
                   seed=seed, intensities={str(k): _number(intensities, k, 0.0, 1.0, f"intensities.{k}")
                                           for k in intensities})


def _number(d: Mapping, key, lo: float | None = None, hi: float | None = None, name: str | None = None) -> float:
    value = d[key]
    try:
        ok = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
    except OverflowError:           # an integer too large for a float
        ok = False
    if not ok or (lo is not None and value < lo) or (hi is not None and value > hi):
        allowed = "a finite number" if lo is None else f"a number from {lo:g} to {hi:g}"
        raise ValueError(f"{name or key}: {value!r:.40} is not {allowed}")
    return float(value)
