"""lapses: blackouts, more frequent and longer as the illness goes on.

Time (t) is cut into SLOT_S slots. Each slot has a seeded onset and a seeded start; while the
intensity exceeds a slot's onset, the picture falls to black in that slot for a duration that
grows with the intensity, with a FADE_S ramp at each end so it is a swoon, not a cut. Windows
only ever lengthen at their end, so a darker intensity covers what a lighter one did.
"""
from __future__ import annotations

import math

import torch

from .base import OutputSymptom, unit_hash

SLOT_S = 9.0                    # at most one lapse per slot of this many seconds
SHORTEST_S = 0.4                # lapse length just past its onset
LONGEST_S = 5.5                 # lapse length at intensity 1
FADE_S = 0.35                   # fade to and from black
BLACK = -1.0


def darkness(t: float, intensity: float, seed: int) -> float:
    """How far the picture has fallen to black at time t: 0 = fully there, 1 = black."""
    slot = math.floor(t / SLOT_S)
    if intensity <= unit_hash(seed, "lapses", "onset", slot):
        return 0.0
    latest_start_s = SLOT_S - LONGEST_S - 2 * FADE_S
    start_s = slot * SLOT_S + unit_hash(seed, "lapses", "start", slot) * latest_start_s
    length_s = SHORTEST_S + (LONGEST_S - SHORTEST_S) * intensity
    into_s = t - start_s
    if into_s <= 0.0 or into_s >= length_s + 2 * FADE_S:
        return 0.0
    return min(1.0, into_s / FADE_S, (length_s + 2 * FADE_S - into_s) / FADE_S)


def _effect(img: torch.Tensor, intensity: float, seed: int, t: float) -> torch.Tensor:
    dark = darkness(t, intensity, seed)
    if dark == 0.0:
        return img
    return img + dark * (BLACK - img)


SYMPTOM = OutputSymptom(
    name="lapses", level="output", default_target="",
    description="blackouts, more frequent and longer",
    fn=_effect,
)
