"""Property-based tests (Hypothesis) of the settings loader: `--set key=value` strings, whole YAML
documents, durations and curves; and of training's `--set key=value` overrides of its presets.

Each property: the settings are refused with a SettingsError, or accepted with every value of the
right type, finite and within its field's declared range (lo, hi, gt), and usable by what reads
them: the course gives a progress and intensities in [0, 1] at any time, the walk a finite
latent at any phase, and `print-settings` writes text that loads back to the same settings.

The example budget is the "ci" profile in conftest.py (HYPOTHESIS_PROFILE=hunt tries many more).
"""
import dataclasses
import math
import threading
from typing import Mapping

import pytest
import torch
import yaml
from hypothesis import example, given, strategies as st

from installation.course import DURATION_HELP, Course, CourseState, parse_duration
from installation.settings import Settings, SettingsError, load_settings, settings_from_dict
from installation.walk import Walk
from models import DCGANConfig, StyleGANConfig
from training.presets import PRESETS, ConfigError, TrainConfig, build_config


def _leaves(d, path=""):
    for k, v in d.items():
        here = f"{path}.{k}" if path else k
        if isinstance(v, dict) and v:
            yield from _leaves(v, here)
        else:
            yield here, v


LEAVES = sorted(_leaves(Settings().as_dict()))
SECTIONS = sorted(Settings().as_dict())
HUGE = 10 ** 400                                # an integer past any float: YAML reads it as an int

text = st.text(st.characters(codec="utf-8"), max_size=16)
numbers = st.one_of(st.floats(), st.integers(), st.sampled_from([HUGE, -HUGE, 5e-324, 1e-300, 1e-9, 1e308, 0, 0.0,
                                                                 0.5, 1, -1, 2 ** 63, math.nan, math.inf]))
scalars = st.one_of(numbers, st.booleans(), st.none(), text)
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
                           max_leaves=8)
durations = st.one_of(st.from_regex(r"\A *([0-9]{1,4}(\.[0-9]{0,3})? *[smhdwSMHDW] *){1,3}\Z"),
                      st.sampled_from(["5e-324", "1e-300", "1e-9", "0.001", "1e308", "1" * 400, "8h", "0", "-5"]),
                      numbers)
unit = st.floats(0.0, 1.0) | st.sampled_from([0, 1, 0.5])
curves = st.one_of(
    st.lists(st.tuples(unit, unit), min_size=1, max_size=5).map(lambda pts: sorted(map(list, pts))),
    st.lists(st.lists(numbers, min_size=0, max_size=3), max_size=4),
    json_values)
# text that is not what any field wants: YAML's odd corners included
odd_text = st.one_of(text, st.sampled_from([
    "!!python/object/apply:os.system ['echo pwned']", "!!binary aGVsbG8=", "2001-12-14", "&a [*a]", "{a: 1}",
    ".nan", "-.inf", "0x1F", "0o17", "1_000", "~", "''", '"', "[1, 2", "? [1, 2]\n: 3", "[" * 1200]))


def _value_for(path, default):
    """Values near what the field takes (its own type, its edges, past them), and anything else."""
    if path.endswith(".duration"):
        typed = durations
    elif isinstance(default, bool):
        typed = st.booleans()
    elif isinstance(default, (int, float)):
        typed = numbers
    elif isinstance(default, list):
        typed = curves
    elif isinstance(default, str):
        typed = text
    else:
        typed = json_values
    return st.one_of(typed, json_values)


def _yaml_text(value) -> str:
    """A value as one line of YAML, as someone would type it after --set key=."""
    out = yaml.safe_dump(value, default_flow_style=True, width=10 ** 9, allow_unicode=True)
    return out[:-len("\n...\n")] if out.endswith("\n...\n") else out.rstrip("\n")


leaf = st.sampled_from(LEAVES)
key_paths = leaf.map(lambda lv: lv[0]) | st.lists(text, min_size=1, max_size=3).map(".".join)
overrides = st.one_of(
    leaf.flatmap(lambda lv: st.tuples(st.just(lv[0]), _value_for(*lv).map(_yaml_text) | odd_text)),
    st.tuples(key_paths, odd_text | json_values.map(_yaml_text)),
).map(lambda kv: f"{kv[0]}={kv[1]}") | text


# ------------------------------------------------------------------ what accepted settings must be

ANCHORS = torch.randn(4, 8, generator=torch.Generator().manual_seed(0))


def _in_range(value, meta, where):
    assert math.isfinite(value), where
    if "gt" in meta:
        assert value > meta["gt"], where
    if "lo" in meta:
        assert value >= meta["lo"], where
    if "hi" in meta:
        assert value <= meta["hi"], where


def _check_fields(obj, where=""):
    for f in dataclasses.fields(obj):
        if f.metadata.get("internal"):
            continue
        value, here = getattr(obj, f.name), f"{where}.{f.name}".lstrip(".")
        items = value.items() if isinstance(value, Mapping) else [(None, value)]
        for key, v in items:
            at = here if key is None else f"{here}.{key}"
            if dataclasses.is_dataclass(v):
                _check_fields(v, at)
            elif isinstance(v, bool) or isinstance(v, str):
                pass
            elif isinstance(v, (int, float)):
                assert key is not None or type(v).__name__ == f.type, at       # an int field holds an int
                _in_range(v, f.metadata if key is None else {}, at)
            elif isinstance(v, tuple):                              # a curve
                assert v and all(0.0 <= p <= 1.0 and 0.0 <= i <= 1.0 for p, i in v), at
                assert all(a[0] < b[0] for a, b in zip(v, v[1:])), at
            else:
                raise AssertionError(f"{at}: {v!r} of type {type(v).__name__}")


def assert_usable(s: Settings):
    """Accepted settings: in range, and the course, the walk and print-settings work with them."""
    _check_fields(s)
    duration = parse_duration(s.course.duration)
    assert math.isfinite(duration) and duration >= 1.0
    course = Course(s.course, disabled=s.disabled_symptoms())
    for elapsed in (0.0, duration / 3, duration, min(2.5 * duration, 1e300), 3e7):
        sample = course.sample(CourseState(elapsed_s=elapsed, seed=s.course.seed))
        assert 0.0 <= sample.point.progress <= 1.0 and 0.0 <= sample.lucid <= 1.0, (elapsed, sample)
        assert all(0.0 <= v <= 1.0 for v in sample.intensities.values()), (elapsed, sample)
    walk = Walk.from_settings(s.walk, ANCHORS, 8, seed=s.course.seed)
    for phase in (0.0, 1.7, 3.5 * s.walk.seconds_per_memory, 3e7):
        assert torch.isfinite(walk.z_at(phase)).all(), phase
    assert 1.0 / s.inputs.osc.send_rate_hz < threading.TIMEOUT_MAX     # the OSC sender's wait between sends
    assert settings_from_dict(yaml.safe_load(s.to_yaml())) == s        # print-settings loads back


def _load(overrides_=(), raw=None):
    try:
        return settings_from_dict(raw, list(overrides_))
    except SettingsError as e:
        assert str(e), e
        return None


# ------------------------------------------------------------------ --set key=value

@given(st.lists(overrides, min_size=1, max_size=3))
@example([f"walk.wander={HUGE}"])                              # an integer too large for a float
@example([f"course.curves.fading=[[0, 0], [{HUGE}, 1]]"])
@example([f"inputs.scenes.storm.values.speed={HUGE}"])
@example([f"course.duration={HUGE}"])
@example(["course.duration=5e-324"])                            # positive, and far below any frame
@example(["course.lucid.every_s=1.0e-320"])
@example(["walk.seconds_per_memory=1.0e-320", "walk.dwell_s=0"])
@example(["walk.wander_period_s=1.0e-320"])
@example(["walk.mode=loop", "walk.loop_period_s=1.0e-320"])
@example(["inputs.osc.send_rate_hz=1.0e-10"])                   # the sender thread's wait overflowed
@example(["walk.wander=" + "[" * 1200])                         # nested deeper than the YAML parser recurses
@example(["course.duration=!!python/object/apply:os.system ['echo pwned']"])
def test_set_overrides_are_refused_or_give_usable_settings(texts):
    s = _load(texts)
    if s is not None:
        assert_usable(s)


@given(leaf.flatmap(lambda lv: st.tuples(st.just(lv[0]), _value_for(*lv))))
def test_each_setting_with_a_value_near_its_type(path_value):
    path, value = path_value
    s = _load([f"{path}={_yaml_text(value)}"])
    if s is not None:
        assert_usable(s)


# ------------------------------------------------------------------ whole YAML documents

@st.composite
def documents(draw):
    """A settings file: some real keys with values near their type, and sections of anything."""
    doc = {}
    for path, default in draw(st.lists(leaf, max_size=5)):
        node = doc
        *parents, last = path.split(".")
        for p in parents:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                break
        else:
            node[last] = draw(_value_for(path, default))
    doc.update(draw(st.dictionaries(st.sampled_from(SECTIONS) | text, json_values, max_size=2)))
    return yaml.safe_dump(doc, allow_unicode=True)


@given(documents() | text | st.binary(max_size=40))
@example("walk:\n  wander: " + "[" * 1200)
@example("course: !!python/object/apply:os.system ['echo pwned']\n")
@example(b"\xff\xfe\x00w\x00a\x00l\x00k")
@example("walk:\n  wander: 0.1\nwalk:\n  ease: 0.2\n")
@example("- just\n- a list\n")
def test_a_settings_file_is_refused_or_gives_usable_settings(tmp_path_factory, doc):
    path = tmp_path_factory.getbasetemp() / "settings-property.yaml"
    path.write_bytes(doc if isinstance(doc, bytes) else doc.encode("utf-8"))
    try:
        s = load_settings(path)
    except SettingsError as e:
        assert str(e), e
        return
    assert_usable(s)


# ------------------------------------------------------------------ durations and curves

@given(durations | text | json_values)
@example(HUGE)
@example("1" * 400 + "s")
@example("1e-320")
def test_a_duration_is_seconds_or_refused_saying_what_is_allowed(value):
    try:
        seconds = parse_duration(value)
    except ValueError as e:
        assert DURATION_HELP in str(e), e
        return
    assert isinstance(seconds, float) and math.isfinite(seconds) and seconds >= 1.0


@given(st.sampled_from(sorted(Settings().course.curves)), curves)
def test_a_curve_is_refused_or_rises_through_the_unit_square(name, points):
    s = _load([f"course.curves.{name}={_yaml_text(points)}"])
    if s is not None:
        assert_usable(s)
        assert s.course.curves[name] == tuple((float(p), float(i)) for p, i in points)


# ------------------------------------------------------------------ training's --set key=value

TRAIN_KEYS = sorted({f.name for f in dataclasses.fields(TrainConfig)} - {"model", "preset"}
                    | {f"model.{f.name}" for cls in (DCGANConfig, StyleGANConfig) for f in dataclasses.fields(cls)})


@given(st.sampled_from(sorted(PRESETS)),
       st.lists(st.tuples(st.sampled_from(TRAIN_KEYS) | text, json_values.map(_yaml_text) | odd_text).map("=".join)
                | text, max_size=3))
@example("lapses-memory", ["steps=[1"])                         # not YAML
@example("lapses-memory", [f"lr_g={HUGE}"])                     # an integer too large for a float
@example("lapses-memory", ["model.d_dropout=" + "[" * 1200])    # nested deeper than the YAML parser recurses
def test_training_overrides_are_refused_or_give_a_config_that_builds(preset, texts):
    try:
        cfg = build_config(preset, texts)
    except ConfigError as e:
        assert str(e), e
        return
    for obj in (cfg, cfg.model_config()):
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            if f.type in ("int", "float", "str", "bool"):
                assert type(value).__name__ == f.type, (f.name, value)
            if isinstance(value, float):
                assert math.isfinite(value), (f.name, value)
