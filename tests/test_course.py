"""The course: decline that is stepwise, seeded and persistent, with lucid intervals that grow rarer."""
import dataclasses
import json

import numpy as np
import pytest

from installation.course import Course, CourseState, Overrides, stage_of
from installation.settings import SYMPTOM_NAMES, Settings, load_settings

GENTLE = {"fading", "static", "hesitation", "synapse_loss", "detail_loss"}   # detail_loss: the gist stays
STRONG = ("plaques", "lapses", "fading")   # what ends the picture; the weight damage holds back until "gone"


def _course(**changes) -> Course:
    lucid = changes.pop("lucid", {})
    settings = Settings().course
    settings = dataclasses.replace(settings, lucid=dataclasses.replace(settings.lucid, **lucid), **changes)
    return Course(settings)


def _progress(course: Course, elapsed_s: np.ndarray, seed=None) -> np.ndarray:
    return np.array([course.progress_at(e, seed).progress for e in elapsed_s])


def test_hold_is_monotone_and_reaches_one_at_the_end():
    course = _course(duration="1h", end="hold")
    elapsed = np.linspace(0, 7200, 2001)
    p = _progress(course, elapsed)
    assert p[0] == 0.0
    assert np.all(np.diff(p) >= 0.0)
    assert course.progress_at(3600).progress == pytest.approx(1.0)
    assert np.all(p[elapsed >= 3600] == 1.0)
    assert {course.progress_at(e).cycle for e in elapsed} == {0}
    assert all(type(course.progress_at(e).progress) is float for e in elapsed[::50])  # plain data


def test_decline_is_a_seeded_staircase_near_steady_decline():
    course = _course(duration="100s", steps=10)
    elapsed = np.linspace(0, 100, 5001)
    p = _progress(course, elapsed)
    flat = np.isclose(np.diff(p), 0.0)
    assert 0.4 < flat.mean() < 0.9                   # plateaus and drops
    assert np.max(np.abs(p - elapsed / 100)) < 0.35  # the curves keep their timing
    assert np.array_equal(p, _progress(_course(duration="100s", steps=10), elapsed))  # deterministic
    assert not np.array_equal(p, _progress(course, elapsed, seed=99))                  # seeded
    smooth = _progress(_course(duration="100s", steps=0), elapsed)
    assert np.allclose(smooth, elapsed / 100)


def test_rebirth_starts_again_with_a_new_seed():
    course = _course(duration="10m", end="rebirth", seed=7)
    first, late, second = course.progress_at(0), course.progress_at(599.9), course.progress_at(600 + 1)
    assert first.seed == 7 and first.cycle == 0
    assert late.progress > 0.99
    assert second.cycle == 1 and second.seed != 7 and second.progress < 0.05
    assert course.progress_at(1201).seed not in (7, second.seed)
    assert course.progress_at(601).seed == second.seed  # derived, so a restart finds the same life
    end = course.progress_at(600)                       # the last instant of a life is still that life:
    assert end.seed == 7 and end.cycle == 0 and end.progress > 0.99   # a film to --to 1 ends gone, not reborn


def test_reverse_goes_back_down_then_up_again():
    course = _course(duration="10m", end="reverse")
    up, down = course.progress_at(450), course.progress_at(750)
    assert up.progress == pytest.approx(down.progress)  # retraces the same staircase
    assert up.seed == down.seed and down.cycle == 1
    assert course.progress_at(1200).progress == pytest.approx(0.0)
    p = _progress(course, np.linspace(600, 1200, 301))
    assert np.all(np.diff(p) <= 0.0)


def test_manual_rebirth_and_seek_transform_the_state():
    course = _course(duration="1h", end="hold", seed=3)
    state = course.initial_state()
    state = course.advance(state, 1800.0)
    state = dataclasses.replace(state, overrides=Overrides(decay=0.4))
    reborn = course.rebirth(state)
    assert reborn.elapsed_s == 0.0 and reborn.cycle == 1 and reborn.overrides == Overrides()
    assert course.point(reborn).seed != course.point(state).seed
    assert course.seek(state, 0.9).elapsed_s == 3600.0  # hold: no seeking past the end
    assert course.seek(state, -0.9).elapsed_s == 0.0


def _lucid_starts(course, progress, seed, span_s=200 * 600.0):
    return course.lucid_intervals(0.0, span_s, progress, seed)


def test_lucid_intervals_are_seeded():
    course = _course()
    a, b = _lucid_starts(course, 0.2, seed=1), _lucid_starts(course, 0.2, seed=1)
    assert a == b and len(a) > 50
    assert a != _lucid_starts(course, 0.2, seed=2)
    for interval in a[:5]:
        t = np.arange(interval.start_s - 2.0, interval.end_s + 2.0, 0.25)
        lucid = np.array([course.lucidity(x, 0.2, 1) for x in t])
        assert lucid[0] == 0.0 and lucid[-1] == 0.0 and lucid.max() == pytest.approx(interval.strength, abs=0.01)
        assert np.max(np.abs(np.diff(lucid))) < 0.1  # smooth ramps, no pops


def test_lucid_intervals_grow_rarer_and_shorter():
    course = _course()
    early, late = _lucid_starts(course, 0.05, 1), _lucid_starts(course, 0.8, 1)
    assert len(late) < 0.5 * len(early)
    assert np.mean([i.end_s - i.start_s for i in late]) < np.mean([i.end_s - i.start_s for i in early])
    assert _lucid_starts(course, 0.97, 1) == []  # none left at the very end


def test_lucid_interval_eases_symptoms_toward_zero():
    course = _course()
    interval = next(i for i in _lucid_starts(course, 0.5, 1) if i.strength == 1.0)
    middle = (interval.start_s + interval.end_s) / 2
    normal = course.intensities(0.5, interval.start_s - 1.0, 1)
    lucid = course.intensities(0.5, middle, 1)
    assert normal == course.curve_intensities(0.5)
    for name in SYMPTOM_NAMES:
        assert lucid[name] <= 0.2 * normal[name] + 1e-9
        assert type(lucid[name]) is float  # plain data, ready for JSON


def test_intensities_stay_in_range_and_follow_the_story():
    course = Course(load_settings().course)
    for p in np.linspace(0, 1, 41):
        for t in (0.0, 1234.5, 98765.0):
            values = course.intensities(float(p), t, 1)
            assert set(values) == set(SYMPTOM_NAMES)
            assert all(0.0 <= v <= 1.0 for v in values.values())
    assert all(v == pytest.approx(0.0) for v in course.intensities(0.0, 0.0, 1).values())
    at_third = course.curve_intensities(0.3)
    assert {n for n, v in at_third.items() if v > 0} <= GENTLE  # still recognisable
    assert max(v for n, v in at_third.items() if n != "detail_loss") <= 0.25
    assert at_third["detail_loss"] == 1.0        # the verbatim detail goes first, wholly, the gist stays
    end = course.intensities(1.0, 12345.0, 1)
    assert all(end[name] >= 0.9 for name in STRONG)
    mean = [np.mean([v for n, v in course.curve_intensities(p).items() if n != "detail_loss"])
            for p in (0.0, 1 / 3, 2 / 3, 1.0)]
    assert mean[1] - mean[0] < mean[2] - mean[1] < mean[3] - mean[2]  # the decline accelerates


def test_stages_are_named_and_ordered():
    assert stage_of(0.0) == (0, "healthy")
    assert stage_of(1.0)[1] == "gone"
    indices = [stage_of(p)[0] for p in np.linspace(0, 1, 101)]
    assert indices == sorted(indices) and len(set(indices)) >= 5


def test_overrides_clamp_revive_and_push_along_the_story():
    """decay moves the piece along the course's own story: +x from progress p shows the course at
    p + x (1 - p), -x at p (1 - x); pins set a symptom directly. (It used to push every intensity
    toward its end value, the weight damage the course holds back until 0.92 included, so the knob
    at +0.3 from the start already showed the grey field of the course's end.)"""
    course = _course(duration="100s", steps=0, lucid={"enabled": False})
    base = course.curve_intensities(0.6)
    assert Overrides().pin_into(base) == base
    assert Overrides(decay=0.5).story_progress(0.0) == pytest.approx(0.5)
    assert Overrides(decay=0.5).story_progress(0.6) == pytest.approx(0.8)
    assert Overrides(decay=-0.5).story_progress(0.6) == pytest.approx(0.3)
    assert Overrides(decay=1.0).story_progress(0.2) == 1.0 and Overrides().revive().story_progress(0.7) == 0.0
    for decay, p, seen in ((0.5, 0.0, 0.5), (1.0, 0.6, 1.0), (-0.5, 0.6, 0.3), (-1.0, 0.6, 0.0), (0.3, 0.4, 0.58)):
        state = CourseState(elapsed_s=100.0 * p, seed=1, overrides=Overrides(decay=decay))
        assert course.sample(state).intensities == pytest.approx(course.curve_intensities(seen)), (decay, p)
    knob = course.sample(CourseState(elapsed_s=0.0, seed=1, overrides=Overrides(decay=0.5))).intensities
    end = course.curve_intensities(1.0)
    for held_back in ("neuron_death", "feature_dropout", "weight_noise", "tangles", "precision_loss", "bit_rot"):
        assert knob[held_back] <= 0.1 * end[held_back], held_back       # as the story holds it back to 0.5
    pinned = Overrides().pin("bit_rot", 3.0).nudge_decay(-5.0)
    assert pinned.decay == -1.0 and pinned.pin_into(base)["bit_rot"] == 1.0
    assert "bit_rot" not in pinned.release("bit_rot").pinned


def test_sample_applies_lucidity_overrides_and_disabled_symptoms():
    settings = Settings()
    course = Course(settings.course, disabled={"fading"})
    state = CourseState(elapsed_s=7 * 3600.0, seed=1, overrides=Overrides().pin("static", 0.5))
    sample = course.sample(state)
    assert sample.point.progress > 0.7
    assert sample.intensities["fading"] == 0.0 and sample.intensities["static"] == 0.5
    revived = course.sample(dataclasses.replace(state, overrides=Overrides().revive()))
    assert all(v == 0.0 for v in revived.intensities.values())


def test_state_round_trips_through_json():
    state = CourseState(elapsed_s=12345.678, seed=42, cycle=2,
                        overrides=Overrides(decay=-0.25, pinned={"plaques": 0.7}))
    again = CourseState.from_dict(json.loads(json.dumps(state.to_dict())))
    assert again == state
    course = _course(end="rebirth")
    assert course.sample(again) == course.sample(state)
    with pytest.raises((KeyError, ValueError)):
        CourseState.from_dict({"elapsed_s": "nan", "seed": 1})
    # a NaN decay used to clamp to -1 ("revived": every memory given back); it is refused instead
    for bad in ({"decay": float("nan")}, {"decay": "inf"}, {"pinned": {"plaques": float("nan")}}):
        with pytest.raises(ValueError, match="not a finite number"):
            Overrides.from_dict(bad)
        with pytest.raises(ValueError):
            CourseState.from_dict({"elapsed_s": 1.0, "seed": 1, "overrides": bad})
    assert Overrides.from_dict({"decay": 5.0}).decay == 1.0        # finite values are still clamped
