"""The course calibrated per model (installation/calibration.py): stored in the checkpoint, followed
by the network's symptoms only, measured by `python -m installation calibrate`, and the stage story
on a model the suite trains itself from images it makes."""
import dataclasses
import json
import logging

import pytest
from conftest import make_tiny_checkpoint

from installation.calibration import (KEY, Calibration, CalibrationError, calibrate, course_for, for_settings,
                                      network_symptoms, story)
from installation.cli import main as installation_main
from installation.course import Course, curve_value
from installation.engine import Engine
from installation.piece import Piece
from installation.settings import settings_from_dict
from models import load_generator, read_header, save_generator

HALF = Calibration(((0.0, 0.0), (0.5, 0.25), (1.0, 1.0)), network_symptoms())
CHECKS = (0.5, 0.7, 0.9, 1.0)


def _settings(path, *overrides, doc=None):
    return settings_from_dict(doc or {}, ["model.device=cpu", f"model.path={path}", *overrides])


def _with_calibration(path, text):
    g, meta, snaps = load_generator(path, with_snapshots=True)
    meta.extra[KEY] = text
    save_generator(path, g, meta, snaps)
    return path


def test_a_calibration_round_trips_and_a_damaged_one_is_refused_by_name():
    again = Calibration.from_json(HALF.to_json())
    assert again == HALF and again.position(0.5) == 0.25 and again.position(0.75) == pytest.approx(0.625)
    d = json.loads(HALF.to_json())
    for bad, why in ((dict(d, knots=[[0, 0], [0.5, 0.6], [0.4, 0.7], [1, 1]]), "do not rise"),
                     (dict(d, knots=[[0, 0], [0.5, float("nan")], [1, 1]]), "do not rise"),
                     (dict(d, knots=[[0, 0], [1, 0.9]]), "do not rise"),
                     (dict(d, version=7), "version 7"), ({"knots": 3}, "damaged")):
        with pytest.raises(CalibrationError, match=why):
            Calibration.from_json(json.dumps(bad))
    with pytest.raises(CalibrationError, match="damaged"):
        Calibration.from_json("{not json")


def test_the_course_draws_only_the_network_symptoms_where_the_calibration_says(tmp_path):
    settings = settings_from_dict({})
    course, plain = Course(settings.course, calibration=HALF), Course(settings.course)
    curves = settings.course.curves
    assert {"neuron_death", "feature_dropout", "forgetting"} <= HALF.network
    assert not {"fading", "lapses", "detail_loss", "hesitation"} & HALF.network
    at = course.curve_intensities(0.7)
    assert at["neuron_death"] == pytest.approx(curve_value(curves["neuron_death"], HALF.position(0.7)))
    assert at["plaques"] == pytest.approx(curve_value(curves["plaques"], HALF.position(0.7)))
    assert at["fading"] == plain.curve_intensities(0.7)["fading"]       # the screen keeps the curves' timing
    assert course.curve_intensities(1.0) == plain.curve_intensities(1.0)  # the end is the curves' end
    assert course.curve_intensities(0.0) == plain.curve_intensities(0.0)


def test_the_piece_follows_its_models_calibration_unless_told_not_to(tmp_path, caplog):
    path = _with_calibration(make_tiny_checkpoint(tmp_path / "cal.safetensors"), HALF.to_json())
    assert Piece(_settings(path)).course.calibration == HALF
    assert Piece(_settings(path, "course.calibrated=false")).course.calibration is None
    assert for_settings(_settings(make_tiny_checkpoint(tmp_path / "plain.safetensors"))) is None
    g, meta = load_generator(path)
    piece = Piece(_settings(tmp_path / "plain.safetensors"))
    piece.follow_model(meta)                    # the model actually shown (a kiosk's fall-back, say)
    assert piece.course.calibration == HALF
    broken = _with_calibration(make_tiny_checkpoint(tmp_path / "broken.safetensors"), '{"version": 1, "knots": 5}')
    with caplog.at_level(logging.WARNING, logger="lapses"):
        assert course_for(_settings(broken)).calibration is None           # the curves as written, and why
    assert "course calibration is damaged" in caplog.text and "installation calibrate" in caplog.text


# ------------------------------------------------------------------ a model the suite trains itself

def _told(shares_and_light):
    """The stages' story: all recognisable at 0.5, >= 3/4 at 0.7, glimpses (some, not all) at 0.9,
    <= 1/4 and dark at 1."""
    (r5, _), (r7, _), (r9, _), (r10, light) = shares_and_light
    return r5 == 1.0 and r7 >= 0.75 and 0.0 < r9 < 1.0 and r10 <= 0.25 and light < 0.15


HARSH = {"course": {"curves": {"neuron_death": [[0, 0], [0.2, 0.5], [1, 0.8]],
                               "feature_dropout": [[0, 0], [0.3, 0.4], [1, 0.6]]}}}


@pytest.mark.parametrize("doc", [{}, HARSH], ids=["default curves", "curves too harsh for this network"])
def test_each_stage_looks_as_it_is_named_on_a_model_the_suite_trains(own_memories, doc):
    """The default course on a model trained here tells the stages' story once calibrated; and a
    course whose network damage comes far too early for this model (every memory gone by 0.5)
    tells it too, the calibration drawing that damage later."""
    settings = _settings(own_memories, doc=doc)
    engine = Engine.from_settings(settings, 64, 64)
    written = Course(settings.course)
    cal = calibrate(engine, written)
    as_written, calibrated = story(engine, written, CHECKS), story(engine, Course(settings.course, calibration=cal), CHECKS)
    engine.close()
    print("as written:", as_written, "calibrated:", calibrated, "knots:", cal.knots)
    assert _told(calibrated), calibrated
    assert all(a <= b for (a, _), (b, _) in zip(cal.knots, cal.knots[1:])) and cal.knots[-1] == (1.0, 1.0)
    if doc is HARSH:
        assert as_written[0][0] < 0.5            # the written course loses the memories by the middle
        assert cal.position(0.5) < 0.25          # and the calibration holds the damage back


@pytest.mark.slow
def test_calibrate_writes_the_calibration_into_the_checkpoint_and_names_mistakes(own_memories, tmp_path, capsys):
    trained = own_memories
    out = tmp_path / "calibrated.safetensors"
    assert installation_main(["calibrate", "--model", str(trained), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "recognised, as written" in printed and f"wrote {out}" in printed
    cal = Calibration.from_json(read_header(out)[f"extra.{KEY}"])
    assert cal.knots[0] == (0.0, 0.0) and len(cal.story) == len(cal.knots) - 1
    assert Piece(_settings(out)).course.calibration == cal
    assert load_generator(out)[1].anchors == load_generator(trained)[1].anchors    # the rest as it was
    before = out.read_bytes()
    assert installation_main(["calibrate", "--model", str(trained), "--out", str(out)]) == 2
    assert "exists" in capsys.readouterr().err and out.read_bytes() == before          # nothing overwritten
    assert installation_main(["calibrate", "--model", str(trained), "--out", str(tmp_path / "x.pt")]) == 2
    assert ".safetensors" in capsys.readouterr().err
    g, meta, snaps = load_generator(trained, with_snapshots=True)
    bare = tmp_path / "no-anchors.safetensors"
    save_generator(bare, g, dataclasses.replace(meta, anchors=[]), snaps)
    assert installation_main(["calibrate", "--model", str(bare)]) == 2
    assert "no memories" in capsys.readouterr().err
