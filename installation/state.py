"""`FrameState`: the plain data that fully determines one frame.

The engine turns a FrameState into a frame and reads nothing else — no wall clock, no unseeded
random numbers — so the live app (real-time clock) and the offline renderer (t = i / fps) show
the same picture for the same state.
"""
from __future__ import annotations

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
        return cls(t=float(d["t"]), progress=float(d["progress"]), walk_phase=float(d["walk_phase"]),
                   seed=int(d["seed"]), intensities={k: float(v) for k, v in d["intensities"].items()})
