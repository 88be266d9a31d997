"""perseveration: the walk keeps returning to the same few memories, in ever smaller loops.

The walk visits memories one after another (visit k = the k-th memory it travels to). Each
visit has a seeded onset; once the intensity passes it, that visit does not go somewhere new but
repeats the visit `loop_length` visits back — which may itself be a repeat, so the walk settles
into a loop. The loop shrinks from LONGEST_LOOP visits to SHORTEST_LOOP as intensity rises. A
FRESH share of visits stays new even at intensity 1, so the loop is occasionally broken by a
memory that surfaces and is then repeated too.

`source_visit` is the core (which earlier visit does visit k repeat?); `visit` turns it into an
anchor index given the walk's own sequence of anchors. Give `visit` that sequence (a function
visit -> anchor) so a repeat really returns to the memory shown at the earlier visit.
"""
from __future__ import annotations

import numbers
from typing import Callable, Sequence, Union

from .base import PerseverationSymptom, clean_intensity, unit_hash

LONGEST_LOOP = 6                # visits per loop when perseveration begins
SHORTEST_LOOP = 2               # at intensity 1: back and forth between two memories
FRESH = 0.05                    # share of visits that stay new even at intensity 1
MAX_HOPS = 256                  # bound on following repeats back (0.95^256 ~ 2e-6)


def loop_length(intensity: float) -> int:
    return round(LONGEST_LOOP + (SHORTEST_LOOP - LONGEST_LOOP) * clean_intensity(intensity))


def repeats(k: int, intensity: float, seed: int) -> bool:
    """Whether visit k repeats an earlier one instead of going somewhere new."""
    return clean_intensity(intensity) * (1.0 - FRESH) > unit_hash(seed, "perseveration", k)


def source_visit(k: int, intensity: float, seed: int) -> int:
    """The earlier (or same) visit whose memory visit k returns to; k itself when healthy."""
    loop = loop_length(intensity)
    for _ in range(MAX_HOPS):
        if not repeats(k, intensity, seed):
            break
        k -= loop
    return k


AnchorSequence = Union[int, Sequence[int], Callable[[int], int]]


def visit(k: int, base_anchor: AnchorSequence, n_anchors: int, intensity: float, seed: int) -> int:
    """Anchor index of the k-th visit.

    `base_anchor` is the walk's unperturbed sequence: a function visit -> anchor index (best), or
    a sequence indexed by visit (cyclically). A plain int is taken as the unperturbed anchor of
    visit k alone; the memory a repeat returns to then cannot be looked up, so it is a seeded
    stand-in for the earlier visit — repeats of the same visit still show the same memory, so
    loops form, but the first showing of a memory is not part of its loop.
    Returns an index in [0, n_anchors); identity (the base of visit k) at intensity 0."""
    if n_anchors <= 0:
        raise ValueError("perseveration needs at least one anchor")
    j = source_visit(k, intensity, seed)
    if callable(base_anchor):
        anchor = base_anchor(j)
    elif not isinstance(base_anchor, numbers.Integral):
        anchor = base_anchor[j % len(base_anchor)]
    elif j == k:
        anchor = int(base_anchor)
    else:
        anchor = int(unit_hash(seed, "perseveration", "stand-in", j) * n_anchors)
    return int(anchor) % n_anchors


SYMPTOM = PerseverationSymptom(
    name="perseveration", level="walk", default_target="",
    description="the walk returns to the same few memories, loops shrink",
    fn=visit,
)
