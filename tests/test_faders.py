"""Faders that travel a symptom evenly (installation/faders.py): fitted per model by `python -m
installation calibrate`, stored in the checkpoint, drawn by a pinned symptom, and on every model the
change a fader makes is spread over its travel: (1 - SSIM against healthy) over its value at full
intensity within 0.15 of the fader's position at 0.25, 0.5 and 0.75."""
import math
from pathlib import Path

import numpy as np
import pytest

from installation import faders
from installation.calibration import course_for
from installation.visitor import healthy_pictures, memory_latents, seen
from installation.cli import main as installation_main
from installation.course import Course, CourseState, Overrides
from installation.engine import Engine
from installation.piece import Piece
from installation.settings import Settings, settings_from_dict
from installation.symptoms import SYMPTOMS
from installation.symptoms.lapses import SLOT_S, darkness
from models import read_header

ROOT = Path(__file__).resolve().parents[1]
BUNDLED = (ROOT / "assets" / "memories.safetensors", ROOT / "assets" / "brain.safetensors")
BAR = 0.15


def _settings(path, *overrides):
    return settings_from_dict({}, ["model.device=cpu", f"model.path={path}", "course.lucid.enabled=false", *overrides])


def _spread(probe, name, intensity_at) -> list[float]:
    """The change at CHECKS (drawn by `intensity_at(position)`) over the change at full intensity."""
    full = probe.change(name, 1.0)
    return [probe.change(name, intensity_at(f)) / full for f in faders.CHECKS]


@pytest.mark.parametrize("shape", ["early", "late", "switch", "comes back"])
def test_a_fitted_fader_draws_the_intensity_where_the_change_reaches_its_position(shape):
    curves = {"early": lambda x: 1 - math.exp(-25 * x), "late": lambda x: x ** 4,
              "switch": lambda x: min(1.0, max(0.0, (x - 0.6) / 0.1)),
              "comes back": lambda x: min(1.0, 3 * x) * (1.0 if x < 0.6 else 0.7)}
    change = curves[shape]
    grid = sorted({*faders.GRID, *np.linspace(0, 1, 201).round(4)})
    knots = faders.fit({x: change(x) for x in grid})
    assert knots[0] == (0.0, 0.0) and knots[-1] == (1.0, 1.0)
    assert all(b[1] >= a[1] for a, b in zip(knots, knots[1:]))             # a fader never turns a symptom down
    cal = faders.FaderCalibration({"s": knots})
    for f in (0.1, 0.25, 0.5, 0.75, 0.9):
        assert change(cal.intensity("s", f)) / change(1.0) == pytest.approx(f, abs=0.02), (shape, f)
        assert cal.intensity("s", cal.position("s", cal.intensity("s", f))) == pytest.approx(cal.intensity("s", f))
    assert faders.fit({x: 0.001 * x for x in faders.GRID}) is None            # changes nothing: the plain fader


def test_a_fader_calibration_round_trips_and_a_damaged_one_is_refused_by_name():
    cal = faders.FaderCalibration({"static": ((0.0, 0.0), (0.5, 0.2), (1.0, 1.0))}, {"static": (0.25, 0.5, 0.75)})
    assert faders.FaderCalibration.from_json(cal.to_json()) == cal
    assert cal.intensity("static", 0.5) == 0.2 and cal.intensity("fading", 0.5) == 0.5     # no knots: the position
    assert cal.position("static", 0.6) == pytest.approx(0.75)
    for text, words in (("{", "damaged"), ('{"version": 9, "knots": {}}', "version 9"),
                        ('{"version": 1, "knots": {"static": [[0, 0], [0.5, 0.7], [1, 0.6]]}}', "static")):
        with pytest.raises(faders.FaderCalibrationError, match=words):
            faders.FaderCalibration.from_json(text)


def test_a_pinned_symptom_draws_its_faders_intensity_and_is_picked_up_where_the_course_stands():
    from installation.inputs.mapping import parameter
    cal = faders.FaderCalibration({"static": ((0.0, 0.0), (0.5, 0.1), (1.0, 1.0))})
    settings = Settings()
    course = Course(settings.course, faders=cal)
    state = CourseState(elapsed_s=0.0, seed=1, overrides=Overrides().pin("static", 0.5))
    assert course.sample(state).intensities["static"] == pytest.approx(0.1)
    assert Course(settings.course).sample(state).intensities["static"] == pytest.approx(0.5)   # uncalibrated

    class FakePiece:                       # what the input mapping reads: the course and its sample
        def __init__(self, st):
            self.course, self.course_state = course, st

        def sample(self):
            return course.sample(self.course_state)
    at = course.seek(CourseState(seed=1), 0.9)
    drawn = course.sample(at).intensities["static"]
    assert parameter("static").get(FakePiece(at)) == pytest.approx(cal.position("static", drawn))
    assert parameter("static").get(FakePiece(state)) == 0.5                     # a pinned one: the fader itself


def test_lapses_come_more_often_and_longer_as_the_fader_rises():
    """Not a switch: the share of slots with a blackout, and the blackouts' length, both grow with
    the intensity; and the calibrated fader spreads the dark time over its travel."""
    def blackouts(intensity):
        lengths = []
        for slot in range(faders.LAPSE_SLOTS):
            dark = [darkness(t, intensity, 1) for t in np.arange(slot * SLOT_S, (slot + 1) * SLOT_S, 0.05)]
            if max(dark) > 0.5:
                lengths.append(0.05 * sum(d > 0.5 for d in dark))
        return len(lengths), float(np.mean(lengths)) if lengths else 0.0
    seen_ = [blackouts(x) for x in (0.1, 0.25, 0.5, 0.75, 1.0)]
    counts, lengths = zip(*seen_)
    assert all(a < b for a, b in zip(counts, counts[1:])) and all(a < b for a, b in zip(lengths, lengths[1:])), seen_
    assert counts[0] > 0.05 * faders.LAPSE_SLOTS                                # a few even at a tenth
    knots = faders.fit({x: faders.dark_share(x, 1) for x in faders.GRID})
    cal = faders.FaderCalibration({"lapses": knots})
    full = faders.dark_share(1.0, 1)
    for f in faders.CHECKS:
        assert faders.dark_share(cal.intensity("lapses", f), 1) / full == pytest.approx(f, abs=BAR)
    assert faders.dark_share(0.5, 1) / full < 0.5 - BAR                          # the plain fader: late


@pytest.mark.slow
def test_calibrate_fits_every_fader_on_a_model_the_suite_trains(own_memories, tmp_path, capsys):
    """On a model trained here, every symptom that changes what a visitor sees changes it evenly
    over its fader's travel once calibrated (measured afresh, not read back); with the plain fader
    some do not; the rest change nothing here, and keep the plain fader."""
    out = tmp_path / "calibrated.safetensors"
    assert installation_main(["calibrate", "--model", str(own_memories), "--out", str(out)]) == 0
    assert "faders (change / change at full" in capsys.readouterr().out
    cal = faders.FaderCalibration.from_json(read_header(out)[f"extra.{faders.KEY}"])
    assert Piece(_settings(out)).course.faders == cal
    assert Piece(_settings(out, "course.calibrated=false")).course.faders is None
    engine = Engine.from_settings(_settings(out), 64, 64)
    probe = faders.FaderProbe(engine)
    uneven = []
    for name in SYMPTOMS:
        if name not in cal.knots:
            assert probe.change(name, 1.0) < faders.QUIET, name
            continue
        spread = _spread(probe, name, lambda f: cal.intensity(name, f))
        assert all(abs(s - f) <= BAR for s, f in zip(spread, faders.CHECKS)), (name, spread)
        if any(abs(s - f) > BAR for s, f in zip(_spread(probe, name, lambda f: f), faders.CHECKS)):
            uneven.append(name)
    engine.close()
    assert len(cal.knots) >= 12 and uneven, (sorted(cal.knots), uneven)


@pytest.mark.slow
@pytest.mark.parametrize("path", BUNDLED, ids=lambda p: p.stem)
def test_the_bundled_models_faders_travel_their_symptoms_evenly(path):
    settings = _settings(path)
    cal = course_for(settings).faders
    assert cal is not None, f"{path.name} has no fader calibration: python -m installation calibrate --model {path}"
    engine = Engine.from_settings(settings, 64, 64)
    probe = faders.FaderProbe(engine)
    for name in cal.knots:
        spread = _spread(probe, name, lambda f: cal.intensity(name, f))
        assert all(abs(s - f) <= BAR for s, f in zip(spread, faders.CHECKS)), (name, spread)
    engine.close()


@pytest.mark.parametrize("path", BUNDLED, ids=lambda p: p.stem)
def test_the_decay_knob_at_half_from_the_start_leaves_every_memory_recognisable(path):
    settings = _settings(path)
    engine = Engine.from_settings(settings, 64, 64)
    course = course_for(settings, engine.model.meta)
    z = memory_latents(engine)
    for seed in (1, 2):
        healthy = healthy_pictures(engine, z, seed)
        knob = course.sample(CourseState(elapsed_s=0.0, seed=seed, overrides=Overrides(decay=0.5))).intensities
        recognised, light, _ = seen(engine, z, healthy, seed, knob)
        assert recognised == 1.0 and light > 0.5, (seed, recognised, light)
    engine.close()
