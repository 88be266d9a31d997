"""Settings: the shipped file loads, and every mistake an artist can make names its key."""
import dataclasses
import re

import pytest
import yaml

from installation.course import parse_duration
from installation.settings import (DEFAULT_SETTINGS_PATH, SYMPTOM_NAMES, Settings, SettingsError, load_settings,
                                   settings_from_dict)


def _error(overrides=(), raw=None) -> str:
    with pytest.raises(SettingsError) as e:
        if raw is not None:
            settings_from_dict(raw, overrides)
        else:
            load_settings(overrides=list(overrides))
    return str(e.value)


def test_shipped_file_loads_and_equals_the_defaults():
    s = load_settings()
    assert s == Settings()  # settings.yaml documents exactly the defaults the code falls back on
    assert s.course.duration_s == 8 * 3600
    assert set(s.symptoms) == set(SYMPTOM_NAMES)
    assert set(s.course.curves) == set(SYMPTOM_NAMES)
    assert s.source == str(DEFAULT_SETTINGS_PATH)


def test_every_key_in_the_shipped_file_has_a_comment():
    lines = DEFAULT_SETTINGS_PATH.read_text().splitlines()
    previous = ""
    for line in lines:
        if re.match(r"^\s*[A-Za-z_]+:", line):
            assert "#" in line or previous.lstrip().startswith("#"), f"undocumented key: {line.strip()}"
        if line.strip():
            previous = line


def test_loads_from_any_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert load_settings() == Settings()


def test_settings_are_frozen():
    s = load_settings()
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.walk.dwell_s = 1.0
    with pytest.raises(TypeError):
        s.course.curves["fading"] = ()


def test_a_partial_file_is_laid_over_the_defaults(tmp_path):
    path = tmp_path / "gallery.yaml"
    path.write_text("course:\n  duration: 30d\n  curves:\n    fading: [[0, 0], [1, 0.5]]\ndisplay:\n")
    s = load_settings(path)
    assert s.course.duration_s == 30 * 86400
    assert s.course.curves["fading"] == ((0.0, 0.0), (1.0, 0.5))
    assert s.course.curves["plaques"] == Settings().course.curves["plaques"]
    assert s.display == Settings().display


def test_overrides_parse_values_as_yaml():
    s = load_settings(overrides=["course.duration=90m", "display.width=1920", "display.hud=true",
                                 "walk.mode=loop", "course.curves.static=[[0, 0.1], [1, 0.2]]",
                                 "keys.decay_down=-", "keys.pause=1", "symptoms.fading.enabled=false"])
    assert s.course.duration_s == 5400
    assert s.display.width == 1920 and s.display.hud is True
    assert s.walk.mode == "loop"
    assert s.course.curves["static"] == ((0.0, 0.1), (1.0, 0.2))
    assert s.keys.decay_down == "-" and s.keys.pause == "1"
    quoted = load_settings(overrides=['inputs.map.decay.midi="cc 5"', "keys.pause='k'"])   # as settings.yaml writes them
    assert quoted.inputs.map["decay"].midi == "cc 5" and quoted.keys.pause == "k"
    assert s.disabled_symptoms() == {"fading"}
    assert s.walk.dwell_s == 4.0 and isinstance(s.walk.dwell_s, float)


@pytest.mark.parametrize("override, path, value, allowed", [
    ("display.fulscreen=true", "display.fulscreen", "fulscreen", "fullscreen"),   # unknown key
    ("colour.hue=3", "colour", "colour", "model"),                               # unknown section
    ("display.fullscreen=maybe", "display.fullscreen", "maybe", "true or false"),  # wrong type
    ("display.width=wide", "display.width", "wide", "an integer"),
    ("walk.wander=2", "walk.wander", "2", "<= 0.5"),                             # out of range
    ("walk.seconds_per_memory=0", "walk.seconds_per_memory", "0", "> 0"),
    ("display.scale=stretch", "display.scale", "stretch", "fit, fill"),           # not a choice
    ("course.duration=8x", "course.duration", "8x", "'30d'"),                     # bad duration
    ("course.curves.fadding=[[0, 0]]", "course.curves.fadding", "fadding", "fading"),  # unknown symptom
    ("symptoms.memory.enabled=false", "symptoms.memory", "memory", "synapse_loss"),
    ("course.curves.fading=[[0.5, 0], [0.2, 1]]", "course.curves.fading[1]", "0.2", "increasing"),
    ("course.curves.fading=[[0, 0], [1, 1.5]]", "course.curves.fading[1]", "1.5", "intensity within 0..1"),
    ("course.curves.fading=[[0, 0], [1]]", "course.curves.fading[1]", "[1]", "[progress, intensity]"),
    ("course.curves.fading=[]", "course.curves.fading", "[]", "[progress, intensity]"),
    ("walk.dwell_s=20", "walk.dwell_s", "20", "seconds_per_memory"),              # cross-field
    ("keys.quit=r", "keys.quit", "r", "no other action"),                         # one key, one action
    ("keys.pause=spacebarr", "keys.pause", "spacebarr", "'page up'"),             # a key that never fires
    ("inputs.scenes.storm.key=f44", "inputs.scenes.storm.key", "f44", "a key name"),
    ("kiosk.quit_combo=ctrl+shift+qq", "kiosk.quit_combo", "'qq', which is not a key", "a key name"),
    ("kiosk.quit_combo=ctrl+shft+q", "kiosk.quit_combo", "shft", "ctrl, shift, alt"),
    ("course.lucid.depth=-0.1", "course.lucid.depth", "-0.1", ">= 0.0"),
    ("display.height=1", "display.height", "1", ">= 2"),                          # no 1-pixel output
])
def test_errors_name_the_key_path_the_value_and_what_is_allowed(override, path, value, allowed):
    message = _error([override])
    assert message.startswith(path + ":"), message
    assert value in message and allowed in message, message


def test_bad_top_level_and_sections_are_named():
    assert _error(raw=["not", "a", "mapping"]).startswith("settings")
    assert _error(raw={"display": 5}).startswith("display:")


def test_override_without_equals_sign_is_explained():
    assert "key.path=value" in _error(["course.duration"])


def test_missing_file_names_the_path(tmp_path):
    with pytest.raises(SettingsError, match=re.escape(str(tmp_path / "nope.yaml"))):
        load_settings(tmp_path / "nope.yaml")


def test_invalid_yaml_names_the_file_and_line(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("display:\n  width: [1920\n")
    with pytest.raises(SettingsError, match=r"broken\.yaml: line \d"):
        load_settings(path)


@pytest.mark.parametrize("text, seconds", [("45s", 45), ("90m", 5400), ("8h", 28800), ("30d", 2592000),
                                           ("2w", 1209600), ("1h30m", 5400), ("1.5h", 5400), (" 10 s ", 10),
                                           ("120", 120), (3600, 3600)])
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "8x", "h", "-5m", "0s", "8h-", "1e999", "nan", "ten minutes", True, None])
def test_parse_duration_refuses_bad_strings(text):
    with pytest.raises(ValueError, match="allowed"):
        parse_duration(text)


def test_print_settings_round_trips():
    s = load_settings(overrides=["course.end=rebirth", "walk.wander=0.1"])
    text = s.to_yaml()
    assert "course" in text and "rebirth" in text
    assert settings_from_dict(yaml.safe_load(text)) == s
    assert s.as_dict()["course"]["curves"]["fading"][0] == [0.0, 0.0]


def test_relative_model_path_is_found_beside_the_file_then_in_the_project(tmp_path, monkeypatch):
    import installation.settings as settings_module
    project = tmp_path / "project"
    (project / "assets").mkdir(parents=True)
    (project / "assets" / "memories.safetensors").write_bytes(b"")
    monkeypatch.setattr(settings_module, "REPO_ROOT", project)
    gallery = tmp_path / "gallery"
    gallery.mkdir()
    (gallery / "mine.safetensors").write_bytes(b"")
    path = gallery / "s.yaml"
    path.write_text("model: {path: mine.safetensors}\n")
    assert load_settings(path).model_path == gallery / "mine.safetensors"
    bundled = load_settings(path, overrides=["model.path=assets/memories.safetensors"])
    assert bundled.model_path == project / "assets" / "memories.safetensors"
    assert load_settings(path, overrides=[f"model.path={gallery}/mine.safetensors"]).model_path == gallery / "mine.safetensors"


def test_kiosk_state_file_defaults_to_the_users_state_directory(tmp_path):
    from installation.kiosk.persist import state_file
    kiosk = Settings().kiosk
    assert state_file(kiosk, {"XDG_STATE_HOME": str(tmp_path), "HOME": "/home/x"}) == tmp_path / "lapses" / "state.json"
    assert str(state_file(kiosk, {"HOME": "/home/x"})) == "/home/x/.local/state/lapses/state.json"
    mine = dataclasses.replace(kiosk, state_file=str(tmp_path / "s.json"))
    assert state_file(mine, {}) == tmp_path / "s.json"


def test_a_relative_state_file_lies_beside_the_settings_file_wherever_it_is_started(tmp_path, monkeypatch):
    gallery = tmp_path / "gallery"
    gallery.mkdir()
    path = gallery / "settings.yaml"
    path.write_text("kiosk: {state_file: state/course.json}\n")
    from installation.kiosk.persist import state_path
    monkeypatch.chdir(tmp_path)
    assert state_path(load_settings(path), {}) == gallery / "state" / "course.json"
    absolute = load_settings(path, overrides=[f"kiosk.state_file={tmp_path}/elsewhere.json"])
    assert state_path(absolute, {}) == tmp_path / "elsewhere.json"


def test_a_key_given_twice_names_both_lines(tmp_path):
    # YAML would silently keep the last: a second `course:` appended to a copy of settings.yaml
    # would throw away every curve of the first
    path = tmp_path / "twice.yaml"
    path.write_text("course:\n  duration: 2h\nwalk:\n  wander: 0.1\ncourse:\n  end: rebirth\n")
    with pytest.raises(SettingsError, match=r"twice\.yaml: line 5: course is given twice \(first on line 1\)"):
        load_settings(path)
    path.write_text("course:\n  curves:\n    fading: [[0, 0], [1, 1]]\n    fading: [[0, 0], [1, 0.5]]\n")
    with pytest.raises(SettingsError, match=r"line 4: course\.curves\.fading is given twice"):
        load_settings(path)


def test_a_folder_given_as_the_settings_file_is_named(tmp_path):
    with pytest.raises(SettingsError, match=re.escape(f"{tmp_path}: is a folder, not a settings file")):
        load_settings(tmp_path)


def test_a_set_into_a_value_names_what_was_given_not_an_internal_object():
    with pytest.raises(SettingsError) as e:
        settings_from_dict({}, ["display.fps_limit.x=1"])
    assert str(e.value) == "display.fps_limit: {'x': 1} is the wrong type; allowed: an integer >= 0 and <= 1000"
