"""A course calibrated per model: the same perceived story on every network.

The default curves were written for the bundled memories model, but how much a given intensity of
a *network* symptom (weights, activations, latents) changes the picture depends on the network: a
model trained on other photographs lost three memories in four by half the course. So each model
carries a calibration, measured once (`python -m installation calibrate`, which `./lapses train`
runs at the end) and stored in its checkpoint: a monotone map from the course's progress to the
position along the curves at which that network's symptoms are drawn, so that what a visitor
perceives — the share of memories still recognisable — follows STORY on every model:

    progress    0.5   0.7      0.9                      1.0
    recognised  all   >= 3/4   some, not all (1/8..7/8)  the curves' end: gone

"Recognised": each memory's picture (blackouts left out) is nearer, by SSIM, its own healthy
picture than any other memory's, for MEMORIES memories under each of SEEDS, the least of the seeds
counting. Each knot starts where the curves put it (or at the knot before, if that is further) and
moves in steps of STEP only as far as the story asks: on, where too much is still recognised; back,
where too little is (the knots before come back with it). So a model the curves suit keeps them,
and the course's end stays the curves' end. The screen's own symptoms (fading, lapses, the walk's
and the detail's) keep the curves' timing, so the dimming and the blackouts come as written on
every model; with `course.calibrated: false` the curves are used exactly as written.
"""
from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass

import numpy as np

from . import faders
from .course import Course, curve_value
from .visitor import MEMORIES, SEEDS, healthy_pictures, memory_latents, seen

log = logging.getLogger("lapses")

# (progress, least, most share of the memories recognised there)
STORY: tuple[tuple[float, float, float], ...] = ((0.5, 1.0, 1.0), (0.7, 0.75, 1.0), (0.9, 0.125, 0.875))
STEP = 0.02
NETWORK_LEVELS = ("weights", "activations", "latent")
KEY = "course_calibration"          # the checkpoint's metadata: extra.course_calibration
VERSION = 1


class CalibrationError(ValueError):
    """A stored calibration that cannot be used; the message says what is wrong."""


@dataclass(frozen=True)
class Calibration:
    """Where on the curves a network's symptoms are drawn at each progress."""
    knots: tuple[tuple[float, float], ...]        # (progress, position), both rising from (0, 0) to (1, 1)
    network: frozenset[str]                       # the symptoms it moves; the rest follow progress
    story: tuple[tuple[float, float], ...] = ()   # (progress, share recognised) measured with it

    def position(self, progress: float) -> float:
        return curve_value(self.knots, progress)

    def to_json(self) -> str:
        return json.dumps({"version": VERSION, "knots": [list(k) for k in self.knots],
                           "network": sorted(self.network), "story": [list(s) for s in self.story]})

    @classmethod
    def from_json(cls, text: str) -> "Calibration":
        try:
            d = json.loads(text)
            version = int(d["version"])
            knots = tuple((float(p), float(q)) for p, q in d["knots"])
            network = frozenset(str(n) for n in d["network"])
            story = tuple((float(p), float(r)) for p, r in d.get("story", ()))
        except (KeyError, TypeError, ValueError) as e:
            raise CalibrationError(f"its course calibration is damaged ({type(e).__name__}: {e})") from None
        if version != VERSION:
            raise CalibrationError(f"its course calibration is of version {version}; this Lapses reads {VERSION}")
        values = [v for k in knots for v in k]
        if (len(knots) < 2 or not all(math.isfinite(v) and 0.0 <= v <= 1.0 for v in values)
                or knots[0] != (0.0, 0.0) or knots[-1] != (1.0, 1.0)
                or any(b[0] <= a[0] or b[1] < a[1] for a, b in zip(knots, knots[1:]))):
            raise CalibrationError(f"its course calibration's knots {list(knots)} do not rise from (0, 0) to (1, 1)")
        return cls(knots, network, story)


def network_symptoms() -> frozenset[str]:
    from .symptoms import SYMPTOMS
    return frozenset(n for n, s in SYMPTOMS.items() if s.level in NETWORK_LEVELS)


def stored_text(settings, meta, key: str) -> str | None:
    """The model's metadata `extra.<key>` (`meta`, else read from settings.model.path's header)."""
    if meta is not None:
        return meta.extra.get(key)
    from models import read_header
    return read_header(settings.model_path).get(f"extra.{key}")


def for_settings(settings, meta=None, key: str = KEY, parse=None):
    """The calibration the piece follows: the model's (`meta`, else read from settings.model.path's
    header), unless `course.calibrated` is false; `key` and `parse` read the faders' instead
    (installation/faders.py). A damaged or unreadable one is a log line, and none."""
    if not settings.course.calibrated:
        return None
    parse = parse or Calibration.from_json
    try:
        text = stored_text(settings, meta, key)
        return None if text is None else parse(text)
    except ValueError as e:      # CalibrationError, FaderCalibrationError
        log.warning("%s: %s; %s as written (recalibrate with `python -m installation calibrate`)",
                    settings.model_path, e, "the course follows its curves" if key == KEY else "the faders are")
    except Exception:       # no header to read (a missing or broken file): the model loader says why
        pass
    return None


# ------------------------------------------------------------------ measuring

class StoryProbe:
    """The perceived story on one model: the share of memories recognised for a course position of
    the network symptoms and a progress of the screen's own."""

    def __init__(self, engine, course: Course, memories: int = MEMORIES, seeds=SEEDS):
        self.engine, self.course, self.seeds = engine, course, tuple(seeds)
        self.z = memory_latents(engine, memories)
        self.healthy = {s: healthy_pictures(engine, self.z, s) for s in self.seeds}
        self.network = network_symptoms()

    def intensities(self, progress: float, position: float) -> dict[str, float]:
        at_progress, at_position = self.course.curve_intensities(progress), self.course.curve_intensities(position)
        return {n: (at_position[n] if n in self.network else v) for n, v in at_progress.items()}

    def recognised(self, progress: float, position: float) -> float:
        """The least, over the seeds, share of memories whose picture is nearest its own healthy one."""
        intensities = self.intensities(progress, position)
        return min(seen(self.engine, self.z, self.healthy[s], s, intensities, progress)[0] for s in self.seeds)


def calibrate(engine, course: Course, story=STORY, step: float = STEP, progress=None) -> Calibration:
    """Measure this engine's model and return its calibration (see the module's docstring). The
    course must follow its curves as written (no calibration of its own)."""
    probe = StoryProbe(engine, course)
    positions: list[float] = []
    for k, (p, lo, hi) in enumerate(story):
        q = max(p, positions[-1]) if positions else p
        share = probe.recognised(p, q)
        while share > hi and q < 1.0:           # too little of the illness shows: further on
            q = min(1.0, round(q + step, 6))
            share = probe.recognised(p, q)
        while share < lo and q > 0.0:           # too much: back, and the knots before with it
            q = max(0.0, round(q - step, 6))
            share = probe.recognised(p, q)
        positions = [min(v, q) for v in positions] + [q]
        if progress is not None:
            progress(k + 1, len(story) + 1)
    knots = ((0.0, 0.0), *((p, q) for (p, _, _), q in zip(story, positions)), (1.0, 1.0))
    measured = tuple((p, probe.recognised(p, q)) for p, q in knots[1:])
    if progress is not None:
        progress(len(story) + 1, len(story) + 1)
    return Calibration(knots, probe.network, measured)


def course_for(settings, meta=None) -> Course:
    """The settings' course, following the model's calibration and its faders' (`meta`, else the
    settings' model file)."""
    return Course(settings.course, disabled=settings.disabled_symptoms(), calibration=for_settings(settings, meta),
                  faders=for_settings(settings, meta, faders.KEY, faders.FaderCalibration.from_json))


def story(engine, course: Course, progresses, memories: int = MEMORIES, seed: int = 1) -> list[tuple[float, float]]:
    """What a visitor sees at each progress, the course's intensities as they are (blackouts left
    out): (the share of memories still nearest their own healthy picture, the mean light against
    the healthy pictures')."""
    z = memory_latents(engine, memories)
    healthy = healthy_pictures(engine, z, seed)
    return [seen(engine, z, healthy, seed, course.curve_intensities(p), p)[:2] for p in progresses]
