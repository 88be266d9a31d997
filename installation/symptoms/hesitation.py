"""hesitation: the walk stalls and stutters.

`warp(phase, intensity, seed)` maps the walk's phase to a hesitant phase. The phase is cut
into SEGMENT_S-long segments; each segment has a seeded onset, and once the intensity passes it
the walk stops for a while somewhere inside the segment (at a seeded place) and then catches up,
so every segment still starts and ends on time: hesitation never changes where the walk is
going or how long it takes to get there, only how it moves. The stall grows smoothly with the
intensity (no jumps when a course raises it), and above STUTTER_FROM the stall turns into
small back-steps — a word found, lost, found again.

Properties the walk relies on: identity at intensity 0; warp(k * SEGMENT_S) == k * SEGMENT_S;
continuous in phase; non-decreasing in phase while intensity <= STUTTER_FROM.
"""
from __future__ import annotations

import math

from .base import HesitationSymptom, clean_intensity, unit_hash

SEGMENT_S = 4.0                 # phase per segment, in the walk's units (seconds of walk at speed 1)
GROW = 0.3                      # intensity above a segment's onset for its stall to reach full length
LONGEST_STALL = 0.6             # share of a segment spent standing still, at most (then 2.5x to catch up)
STUTTER_FROM = 0.5              # intensity above which stalls step back and forth
BACK_STEP = 0.35                # largest back-step, as a share of the way into the segment


def _segment_warp(u: float, stall: float, centre: float, stutter: float, steps: int) -> float:
    """Warp of u in [0, 1] within one segment: go, stand at `centre` for `stall`, go again."""
    before = centre * (1.0 - stall)             # where the stall starts, in u
    if u <= before:
        return u * centre / before if before > 0 else centre
    if u >= before + stall:
        rest = 1.0 - before - stall
        return 1.0 - (1.0 - u) * (1.0 - centre) / rest if rest > 0 else centre
    v = (u - before) / stall                    # 0..1 through the stall
    # back-steps scale with the stall's length, so a short stall stutters gently, not in a blur
    depth = stutter * BACK_STEP * centre * stall / LONGEST_STALL
    return centre - depth * math.sin(math.pi * steps * v) ** 2


def warp(phase: float, intensity: float, seed: int) -> float:
    """Hesitant phase for the walk's `phase`."""
    intensity = clean_intensity(intensity)
    if intensity == 0.0:
        return phase
    k = math.floor(phase / SEGMENT_S)
    onset = unit_hash(seed, "hesitation", "onset", k)
    stall = LONGEST_STALL * min(1.0, max(0.0, (intensity - onset) / GROW))
    if stall == 0.0:
        return phase
    centre = 0.2 + 0.6 * unit_hash(seed, "hesitation", "where", k)
    steps = 1 + int(3 * unit_hash(seed, "hesitation", "steps", k))
    stutter = max(0.0, (intensity - STUTTER_FROM) / (1.0 - STUTTER_FROM))
    u = phase / SEGMENT_S - k
    return (k + _segment_warp(u, stall, centre, stutter, steps)) * SEGMENT_S


SYMPTOM = HesitationSymptom(
    name="hesitation", level="walk", default_target="",
    description="the walk stalls and stutters",
    fn=warp,
)
