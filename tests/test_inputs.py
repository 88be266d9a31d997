"""Live inputs: MIDI, OSC, scenes, presence and learn all reach the piece as the keyboard does.

No real devices and no network beyond loopback: MIDI is synthetic mido messages and a fake
backend whose port vanishes and returns; OSC is real UDP on 127.0.0.1 with ephemeral ports;
presence is the bundled astronaut photograph (a face) against a black frame.
"""
import logging
import socket
import time

import mido
import numpy as np
import pytest
import yaml

from installation.course import Course, Overrides
from installation.inputs import spec
from installation.inputs.live import Inputs
from installation.inputs.mapping import shape
from installation.inputs.midi import MidiPorts
from installation.inputs.presence import FaceDetector, PresenceTracker
from installation.piece import ACTIONS, Piece
from installation.settings import (ACTION_NAMES, PARAMETER_NAMES, SYMPTOM_NAMES, Settings, SettingsError,
                                   settings_from_dict)

QUIET = ["inputs.midi.enabled=false", "inputs.osc.enabled=false", "course.lucid.enabled=false",
         "course.duration=1h", "course.steps=0", "sound.enabled=false"]


def input_settings(tmp_path, *overrides):
    """Quiet settings with their mappings file in tmp_path, then overrides (shared with test_inputs_edges)."""
    return settings_from_dict({}, [*QUIET, f"inputs.mappings_file={tmp_path / 'mappings.yaml'}", *overrides])


def _rig(tmp_path, *overrides):
    s = input_settings(tmp_path, *overrides)
    return s, Piece(s), Inputs(s)


def cc(control, value, channel=0):
    return ("midi", mido.Message("control_change", control=control, value=value, channel=channel), "fake")


def wait_until(cond, timeout_s=3.0):
    """Poll cond until it holds or timeout_s passes; its last value."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.01)
    return cond()


# ------------------------------------------------------------------ the table in settings

def test_the_shipped_table_covers_every_action_and_parameter():
    s = Settings()
    assert set(ACTIONS) <= set(ACTION_NAMES)                      # every piece action can be mapped
    assert set(s.inputs.map) == set(PARAMETER_NAMES) | set(ACTION_NAMES)
    for name in SYMPTOM_NAMES:
        assert s.inputs.map[name].osc == f"/symptom/{name}"
    assert s.inputs.map["visit"].presence == "arrive"
    assert s.inputs.osc.host == "127.0.0.1" and not s.inputs.presence.enabled


@pytest.mark.parametrize("override, key", [
    ("inputs.map.decay.midi=cc 200", "inputs.map.decay.midi"),
    ("inputs.map.decay.midi=note 3", "inputs.map.decay.midi"),          # a note has no position
    ("inputs.map.decai.midi=cc 5", "inputs.map.decai"),                  # unknown parameter
    ("inputs.map.pause.midi=cc 1", "inputs.map.pause.midi"),             # cc 1 already moves decay
    ("inputs.map.decay.osc=decay", "inputs.map.decay.osc"),
    ("inputs.map.pause.osc=/state/x", "inputs.map.pause.osc"),
    ("inputs.map.decay.curve=wobbly", "inputs.map.decay.curve"),
    ("inputs.map.decay.lo=-3", "inputs.map.decay.lo"),
    ("inputs.map.decay.presence=arrive", "inputs.map.decay.presence"),
    ("inputs.map.speed.lo=0.02", None),                                  # allowed: inside the limits
    ("inputs.midi.ports=nano*,,korg", "inputs.midi.ports"),
    ("inputs.midi.ports=nano[", "inputs.midi.ports"),
    ("inputs.midi.channel=17", "inputs.midi.channel"),
    ("inputs.osc.port=70000", "inputs.osc.port"),
    ("inputs.osc.send_to=localhost", "inputs.osc.send_to"),
    ("inputs.scenes.storm.values.gloom=1", "inputs.scenes.storm.values.gloom"),
    ("inputs.scenes.storm.values.speed=100", "inputs.scenes.storm.values.speed"),
    ("inputs.scenes.storm.key=space", "inputs.scenes.storm.key"),        # pause's key
    ("inputs.scenes.storm.midi=note 36", "inputs.scenes.storm.midi"),    # pause's note
])
def test_bad_input_settings_name_their_key(override, key):
    if key is None:
        settings_from_dict({}, [override])
        return
    with pytest.raises(SettingsError) as e:
        settings_from_dict({}, [override])
    assert str(e.value).startswith(key), str(e.value)
    assert "allowed" in str(e.value)


def test_spec_parsing():
    assert spec.parse_midi("CH 2  cc 7") == spec.MidiSpec("cc", 7, 2)
    assert spec.parse_midi("pitchbend").text() == "pitchbend"
    assert spec.parse_midi("") is None
    for bad in ("cc", "cc14 40", "ch 0 cc 1", "note -1", "knob 3"):
        with pytest.raises(ValueError):
            spec.parse_midi(bad)
    pats = spec.port_patterns("nanoKONTROL*, Launch")
    assert spec.port_matches("nanoKONTROL2:nanoKONTROL2 MIDI 1 20:0", pats)
    assert spec.port_matches("Novation Launchpad", pats)        # no wildcard: contained anywhere
    assert not spec.port_matches("Midi Through Port-0", pats)


# ------------------------------------------------------------------ MIDI through the mapping

def test_midi_cc_pitchbend_14bit_and_notes_reach_the_piece(tmp_path):
    s, piece, inputs = _rig(tmp_path, "inputs.map.speed.smoothing_s=0", "inputs.map.progress.smoothing_s=0",
                            "inputs.map.progress.takeover=false")
    inputs.post(("midi", mido.Message("pitchwheel", pitch=0), "fake"))        # centre: x1, where speed is
    inputs.post(("midi", mido.Message("pitchwheel", pitch=8191), "fake"))     # top of 0.25..4 (exp)
    inputs.drain(piece, 0.0)
    assert piece.speed == pytest.approx(4.0, rel=1e-3)
    assert shape("exp", 0.5, 0.25, 4.0) == pytest.approx(1.0)

    inputs.post(cc(3, 64))                                                    # cc14 3: MSB...
    inputs.drain(piece, 0.1)
    coarse = piece.sample().point.progress
    inputs.post(cc(35, 100))                                                  # ...then LSB on cc 35
    inputs.drain(piece, 0.2)
    fine = piece.sample().point.progress
    assert coarse == pytest.approx(64 * 128 / 16383, abs=1e-6)
    assert fine == pytest.approx((64 * 128 + 100) / 16383, abs=1e-6)       # 14 bits, not 7

    out = []
    inputs.post(("midi", mido.Message("note_on", note=36, velocity=0), "fake"))   # a note-off in disguise
    inputs.post(("midi", mido.Message("note_on", note=36, velocity=90), "fake"))  # pause's note
    out += inputs.drain(piece, 0.3)
    assert piece.paused and (None, "paused") in out
    inputs.post(("midi", mido.Message("note_on", note=51, velocity=90), "fake"))  # scene storm's note
    out = inputs.drain(piece, 0.4)
    assert out == [(None, "scene storm (1.5 s)")]


def test_malformed_and_unexpected_messages_are_ignored(tmp_path):
    s, piece, inputs = _rig(tmp_path)
    before = (piece.course_state, piece.speed, piece.paused)
    for event in [("midi", mido.Message("sysex", data=[1, 2, 3]), "x"), ("midi", mido.Message("clock"), "x"),
                  ("midi", mido.Message("note_on", note=99, velocity=10), "x"), ("midi", "not a message", "x"),
                  ("midi", None, "x"), ("midi", object(), "x"), ("osc", 5, "x"), ("osc", "/decay", (1, 2)),
                  ("osc", "/decay", ("high",)), ("osc", "/decay", (float("nan"),)), ("osc", "/nowhere", ()),
                  ("osc", "/scene", ("nosuch",)), ("nonsense",), ("presence", "dance"), ("osc",), None, 42]:
        inputs.post(event)
    assert inputs.drain(piece, 0.0) == []
    assert (piece.course_state, piece.speed, piece.paused) == before


def test_ever_new_bad_addresses_neither_grow_memory_nor_flood_the_log(tmp_path, caplog):
    from installation.inputs.live import MAX_SAID
    s, piece, inputs = _rig(tmp_path)
    with caplog.at_level(logging.WARNING, logger="lapses.inputs"):
        for k in range(3 * MAX_SAID):                   # a scanner, or a sender numbering its addresses
            inputs.post(("osc", f"/probe/{k}/" + "x" * 1000, (1.0,)))
        assert inputs.drain(piece, 0.0) == []
    assert len(inputs._said) <= MAX_SAID + 1
    said = [r.getMessage() for r in caplog.records if r.name == "lapses.inputs"]
    assert len(said) == MAX_SAID + 1 and "not logged" in said[-1] and max(map(len, said)) < 300


def test_midi_channel_filter(tmp_path):
    s, piece, inputs = _rig(tmp_path, "inputs.midi.channel=2")
    inputs.post(("midi", mido.Message("note_on", note=36, velocity=90, channel=0), "fake"))   # channel 1
    inputs.drain(piece, 0.0)
    assert not piece.paused
    inputs.post(("midi", mido.Message("note_on", note=36, velocity=90, channel=1), "fake"))   # channel 2
    inputs.drain(piece, 0.1)
    assert piece.paused


def test_midi_channel_and_what_may_be_bound_or_learned_agree(tmp_path):
    with pytest.raises(SettingsError, match=r"inputs.map.decay.midi: 'ch 2 cc 1' is never heard; allowed: channel 3"):
        input_settings(tmp_path, "inputs.midi.channel=3", "inputs.map.decay.midi=ch 2 cc 1")
    s, piece, inputs = _rig(tmp_path, "inputs.midi.channel=3", "inputs.map.decay.midi=ch 3 cc 1")
    inputs.post(("action", "learn"))
    inputs.post(cc(20, 64, channel=1))              # channel 2: would be learned, then never heard
    said = inputs.drain(piece, 0.0)
    assert any("channel 2" in (m or "") and "not learned" in (m or "") for _, m in said) and inputs.learn.armed
    inputs.post(cc(20, 64, channel=2))              # channel 3: learned
    said = inputs.drain(piece, 0.1)
    assert any((m or "").startswith("learned") for _, m in said) and not inputs.learn.armed


def test_soft_takeover_waits_for_the_knob_to_cross(tmp_path):
    s, piece, inputs = _rig(tmp_path, "inputs.map.decay.smoothing_s=0")
    decay = lambda: piece.course_state.overrides.decay
    inputs.post(cc(1, 127))                         # knob far above the present value (0): nothing jumps
    said = inputs.drain(piece, 0.0)
    assert decay() == 0.0 and any("take over" in (m or "") for _, m in said)
    inputs.post(cc(1, 80))                          # still above
    inputs.drain(piece, 0.1)
    assert decay() == 0.0
    inputs.post(cc(1, 60))                          # crossed 0 on the way down: the knob has it
    inputs.drain(piece, 0.2)
    assert decay() == pytest.approx(-1 + 2 * 60 / 127)
    inputs.post(cc(1, 70))
    inputs.drain(piece, 0.3)
    assert decay() == pytest.approx(-1 + 2 * 70 / 127)
    piece.act("revive")                             # a key moves decay to -1: the knob lets go
    inputs.post(cc(1, 72))
    inputs.drain(piece, 0.4)
    assert decay() == -1.0
    inputs.post(cc(1, 0))                           # ...until it crosses -1 again (0 is -1: meets it)
    inputs.drain(piece, 0.5)
    assert decay() == -1.0
    inputs.post(cc(1, 10))
    inputs.drain(piece, 0.6)
    assert decay() == pytest.approx(-1 + 2 * 10 / 127)


def test_speed_takes_over_and_lets_go_in_ratios(tmp_path):
    """Speed spans 1/64 .. 64: its takeover window and its 'moved elsewhere' are ratios, not
    fractions of 64 (which let a pitch bend jump x1 -> x0.25 and lost a key pressed mid-glide)."""
    s, piece, inputs = _rig(tmp_path, "inputs.map.speed.smoothing_s=0")
    bend = lambda pitch: ("midi", mido.Message("pitchwheel", pitch=pitch), "fake")
    inputs.post(bend(-8192))                        # the wheel at the bottom (x0.25) while the walk is at x1
    said = inputs.drain(piece, 0.0)
    assert piece.speed == 1.0 and any("take over" in (m or "") for _, m in said)
    inputs.post(bend(-100))                         # just below the middle: near x1 (within 2% of the ratios)
    inputs.drain(piece, 0.1)
    assert piece.speed == pytest.approx(4.0 ** ((8192 - 100) / 16383 * 2 - 1), rel=1e-3)
    inputs.post(("action", "scene:storm"))          # a scene fades speed to x2 over 1.5 s...
    inputs.drain(piece, 0.2)                        # (the fade starts from the previous frame, 0.1)
    inputs.drain(piece, 0.85)
    gliding = piece.speed
    assert 1.0 < gliding < 2.0
    piece.act("slower")                             # ...a key pressed halfway through wins
    pressed = piece.speed
    assert pressed == pytest.approx(gliding / s.walk.speed_step)
    inputs.drain(piece, 2.0)
    inputs.drain(piece, 3.0)
    assert piece.speed == pressed


def test_smoothing_glides_with_its_time_constant(tmp_path):
    s, piece, inputs = _rig(tmp_path, "inputs.map.fading.smoothing_s=0.5", "inputs.map.fading.takeover=false")
    fading = lambda: piece.course_state.overrides.pinned.get("fading", 0.0)     # the fader's position
    inputs.drain(piece, 0.0)
    inputs.post(cc(102 + SYMPTOM_NAMES.index("fading"), 127))
    inputs.drain(piece, 0.1)                        # the very next frame already moves, by 1 - e^(-0.1/0.5)
    assert fading() == pytest.approx(1 - np.exp(-0.2), rel=1e-3)
    values = [fading()]
    for k in range(2, 40):
        inputs.drain(piece, 0.1 * k)
        values.append(fading())
    assert all(b >= a for a, b in zip(values, values[1:])) and values[-1] == pytest.approx(1.0, abs=1e-3)


def test_a_glide_after_a_revive_is_not_mistaken_for_an_overruled_one(tmp_path):
    # /decay 0, revive, /decay 0 again: the second glide used to be dropped at once, because the
    # mapper still remembered writing 0 and took the revive's -1 for someone else's move
    s, piece, inputs = _rig(tmp_path)
    decay = lambda: piece.course_state.overrides.decay
    t = 0.0
    for _ in range(2):
        inputs.post(("osc", "/revive", ()))
        inputs.drain(piece, t)
        assert decay() == -1.0
        inputs.post(("osc", "/decay", (0.0,)))
        for k in range(1, 60):
            inputs.drain(piece, t + 0.05 * k)
        assert decay() == pytest.approx(0.0, abs=1e-3)
        t += 5.0


def test_scenes_crossfade_and_release(tmp_path):
    s, piece, inputs = _rig(tmp_path)
    piece.pin("plaques", 0.4)
    inputs.drain(piece, 0.0)
    inputs.post(("action", "scene:storm"))          # speed 2, static 0.8, lapses 0.5 over 1.5 s
    inputs.drain(piece, 0.5)
    assert 1.0 < piece.speed < 2.0
    assert 0.0 < piece.course_state.overrides.pinned["static"] < 0.8
    inputs.drain(piece, 2.0)
    assert piece.speed == 2.0
    assert dict(piece.course_state.overrides.pinned) == {"plaques": 0.4, "static": 0.8, "lapses": 0.5}
    inputs.post(("osc", "/scene", ("course",)))     # back to the course: release pins, speed 1
    inputs.drain(piece, 2.1)
    inputs.drain(piece, 6.0)
    assert piece.speed == 1.0 and not piece.course_state.overrides.pinned
    assert inputs.key_action("f4") == "scene:storm"


# ------------------------------------------------------------------ MIDI ports: gone and back

class FakePort:
    def __init__(self, name, callback):
        self.name, self.callback, self.closed = name, callback, False

    def close(self):
        self.closed = True


class FakeBackend:
    def __init__(self, names):
        self.names = list(names)
        self.opened: list[FakePort] = []

    def get_input_names(self):
        return list(self.names)

    def open_input(self, name, callback=None):
        port = FakePort(name, callback)
        self.opened.append(port)
        return port


def test_a_port_that_vanishes_is_reopened_by_name(caplog):
    backend = FakeBackend(["Midi Through:0", "nanoKONTROL2 MIDI 1"])
    events = []
    ports = MidiPorts(spec.port_patterns("nanokontrol*"), events.append, rescan_s=0.05, backend_factory=lambda: backend)
    assert ports.start()
    try:
        assert ports.names() == ["nanoKONTROL2 MIDI 1"]              # the pattern chose it, not Midi Through
        first = backend.opened[0]
        first.callback(mido.Message("control_change", control=1, value=5))
        assert events and events[0][0] == "midi"
        backend.names.remove("nanoKONTROL2 MIDI 1")                   # unplugged
        assert wait_until(lambda: first.closed and not ports.names())
        backend.names.append("nanoKONTROL2 MIDI 1")                   # plugged back in
        t0 = time.monotonic()
        assert wait_until(lambda: ports.names() == ["nanoKONTROL2 MIDI 1"], 3.0)
        assert time.monotonic() - t0 < 3.0
        again = backend.opened[-1]
        assert again is not first and not again.closed
        again.callback(mido.Message("note_on", note=36, velocity=64))
        assert events[-1][1].type == "note_on"
    finally:
        ports.close()
    assert backend.opened[-1].closed


def test_no_midi_system_is_one_log_line_and_the_piece_runs_on(tmp_path, caplog):
    def no_backend():
        raise OSError("no MIDI here")
    s = input_settings(tmp_path, "inputs.midi.enabled=true")
    inputs = Inputs(s, midi_backend=no_backend)
    with caplog.at_level(logging.INFO, logger="lapses.midi"):
        inputs.start()
    try:
        assert inputs.midi is None
        assert len([r for r in caplog.records if r.name == "lapses.midi"]) == 1
        piece = Piece(s)
        inputs.post(("action", "pause"))
        inputs.drain(piece, 0.0)
        assert piece.paused
    finally:
        inputs.close()


# ------------------------------------------------------------------ MIDI learn

def test_midi_learn_binds_saves_and_reloads(tmp_path):
    s, piece, inputs = _rig(tmp_path)
    while inputs.learn.selected != "fading":
        inputs.post(("action", "select_next"))
        inputs.drain(piece, 0.0)
    inputs.post(("action", "learn"))
    inputs.post(("midi", mido.Message("note_on", note=60, velocity=100), "fake"))   # a note cannot be a fader
    inputs.post(cc(1, 0, channel=1))                # decay's knob, moved on channel 2: now it is fading's
    said = inputs.drain(piece, 0.1)
    assert (None, "learned fading = ch 2 cc 1") in said and not inputs.learn.armed
    saved = yaml.safe_load((tmp_path / "mappings.yaml").read_text())
    assert saved["midi"]["fading"] == "ch 2 cc 1"
    assert saved["midi"]["decay"] == ""             # one knob, one parameter
    assert not list(tmp_path.glob(".mappings.yaml.*"))   # the temp file was renamed, not left behind
    inputs.post(cc(1, 127, channel=1))              # fading sits at 0: the knob must come up through it
    inputs.drain(piece, 0.2)
    assert "fading" not in piece.course_state.overrides.pinned
    inputs.post(cc(1, 0, channel=1))
    inputs.post(cc(1, 127, channel=1))
    for k in range(3, 30):
        inputs.drain(piece, 0.1 * k)
    assert piece.course_state.overrides.pinned["fading"] == pytest.approx(1.0, abs=1e-3)
    assert piece.course_state.overrides.decay == 0.0
    reloaded = Inputs(s)                            # the next start reads the binding back
    assert reloaded.bindings["fading"].midi == "ch 2 cc 1" and reloaded.bindings["decay"].midi == ""
    assert s.inputs.map["decay"].midi == "cc 1"     # settings.yaml's table itself is untouched

    while reloaded.learn.selected != "revive":       # a pad that sends cc 127 / 0 can be an action
        reloaded.learn.select(1)
    reloaded.post(("action", "learn"))
    reloaded.post(cc(20, 0))                        # a release is not a press: still listening
    assert reloaded.drain(piece, 1.0)[-1] == (None, "learn revive: move a control")
    reloaded.post(cc(20, 127))
    assert reloaded.drain(piece, 1.1) == [(None, "learned revive = ch 1 cc 20")]
    reloaded.post(cc(20, 0))
    reloaded.post(cc(20, 127))
    reloaded.drain(piece, 1.2)
    assert piece.course_state.overrides.decay == -1.0 and not piece.course_state.overrides.pinned


def test_a_bad_mappings_file_names_itself(tmp_path):
    (tmp_path / "mappings.yaml").write_text("midi:\n  fadding: cc 4\n")
    with pytest.raises(SettingsError, match=r"mappings.yaml: midi.fadding.*did you mean 'fading'"):
        Inputs(input_settings(tmp_path))
    (tmp_path / "mappings.yaml").write_text("midi:\n  fading: note 4\n")
    with pytest.raises(SettingsError, match="midi.fading.*allowed: cc, cc14 or pitchbend"):
        Inputs(input_settings(tmp_path))
    (tmp_path / "mappings.yaml").write_text("midi:\n  pause: ch 3 cc 64\n  scene:storm: note 9\n")
    inputs = Inputs(input_settings(tmp_path))                    # a cc button for an action is fine
    assert inputs.bindings["pause"].midi == "ch 3 cc 64" and inputs.scenes["storm"].midi == "note 9"


def test_a_relative_mappings_file_is_read_and_written_beside_the_settings_file_only(tmp_path, monkeypatch):
    """A rehearsal's learned controls in the project folder never reach a gallery's settings elsewhere:
    a relative inputs.mappings_file is beside the settings file for reading and writing alike."""
    from installation import settings as settings_module
    from installation.kiosk.persist import piece_files
    from installation.settings import load_settings
    project, gallery = tmp_path / "project", tmp_path / "gallery"
    project.mkdir()
    gallery.mkdir()
    monkeypatch.setattr(settings_module, "REPO_ROOT", project)
    (project / "mappings.yaml").write_text("midi:\n  decay: ch 1 cc 74\n")        # learned at the rehearsal
    (gallery / "gallery.yaml").write_text("inputs:\n  mappings_file: mappings.yaml\n")
    s = load_settings(gallery / "gallery.yaml", QUIET)
    inputs = Inputs(s)
    assert inputs.mappings_path == gallery / "mappings.yaml" and inputs.learned == {}
    assert gallery / "mappings.yaml" in piece_files(s)
    assert settings_from_dict({}, QUIET).beside_settings("mappings.yaml") == project / "mappings.yaml"


# ------------------------------------------------------------------ OSC over real UDP

def test_osc_over_udp_moves_the_piece_and_sends_the_state_back(tmp_path, caplog):
    from pythonosc.dispatcher import Dispatcher
    from pythonosc.osc_server import BlockingOSCUDPServer
    from pythonosc.udp_client import SimpleUDPClient

    received: dict[str, tuple] = {}
    dispatcher = Dispatcher()
    dispatcher.set_default_handler(lambda address, *args: received.__setitem__(address, args))
    listener = BlockingOSCUDPServer(("127.0.0.1", 0), dispatcher)
    listener.timeout = 0.05
    out_port = listener.server_address[1]

    s, piece, inputs = _rig(tmp_path, "inputs.osc.enabled=true", "inputs.osc.port=0",
                            f"inputs.osc.send_to=127.0.0.1:{out_port}", "inputs.osc.send_rate_hz=50",
                            "inputs.map.fading.smoothing_s=0", "inputs.map.decay.smoothing_s=0")
    caplog.set_level(logging.WARNING)
    inputs.start()
    try:
        assert inputs.osc_port
        client = SimpleUDPClient("127.0.0.1", inputs.osc_port)
        raw = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        raw.sendto(b"\x00\x01garbage, not OSC", ("127.0.0.1", inputs.osc_port))      # logged once, ignored
        client.send_message("/nowhere", 1.0)
        client.send_message("/nowhere", 2.0)
        client.send_message("/decay", "lots")
        client.send_message("/symptom/fading", 0.7)
        client.send_message("/decay", -0.5)
        client.send_message("/pause", [])
        client.send_message("/scene", "storm")
        raw.close()
        t = 0.0
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline and not (piece.paused and "static" in piece.course_state.overrides.pinned):
            t += 0.02
            inputs.drain(piece, t)
            time.sleep(0.01)
        assert piece.paused
        assert piece.course_state.overrides.pinned["fading"] == pytest.approx(0.7)
        assert piece.course_state.overrides.decay == pytest.approx(-0.5)
        assert "static" in piece.course_state.overrides.pinned      # the scene began its crossfade

        deadline = time.monotonic() + 3.0                           # and the state comes back out
        arrived = lambda: (received.get("/state/paused") == (1,)                    # noqa: E731
                           and abs(received.get("/state/symptom/fading", (0.0,))[0] - 0.7) < 1e-6)
        while time.monotonic() < deadline and not arrived():                 # (stale states come first)
            inputs.drain(piece, t)
            listener.handle_request()
        # the state sent is the intensity shown: the fader's position drawn through the model's faders
        assert received["/state/symptom/fading"][0] == pytest.approx(piece.course.fader_intensity("fading", 0.7))
        assert piece.course.fader_intensity("fading", 0.7) != pytest.approx(0.7)
        assert received["/state/stage"] == (0, "healthy")
        assert 0.0 <= received["/state/progress"][0] <= 1.0
        assert received["/state/paused"] == (1,)
        said = [r.getMessage() for r in caplog.records]
        for words in ("not OSC", "unknown address /nowhere", "/decay wants one number"):
            assert len([m for m in said if words in m]) == 1, said          # each problem said once
    finally:
        inputs.close()
        listener.server_close()


def test_a_busy_osc_port_is_one_log_line(tmp_path, caplog):
    busy = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    busy.bind(("127.0.0.1", 0))
    s = input_settings(tmp_path, "inputs.osc.enabled=true", f"inputs.osc.port={busy.getsockname()[1]}")
    inputs = Inputs(s)
    with caplog.at_level(logging.INFO, logger="lapses.osc"):
        inputs.start()
    inputs.close()
    busy.close()
    assert inputs.osc_port is None and len([r for r in caplog.records if r.name == "lapses.osc"]) == 1


# ------------------------------------------------------------------ presence and lucid intervals

@pytest.fixture(scope="module")
def detector():
    return FaceDetector()


def test_the_detector_sees_the_astronaut_and_not_a_black_frame(detector):
    from skimage import data
    face = data.astronaut()
    assert detector.present(face)
    assert not detector.present(np.zeros_like(face))
    assert not detector.present(data.chelsea())                 # a cat is not a visitor
    assert not detector.present(np.zeros((4, 4), np.uint8))     # nor a scrap


def test_tracker_arrives_once_and_leaves_after_a_while():
    tr = PresenceTracker(leave_after_s=5.0)
    events = [tr.feed(seen, t) for seen, t in [(False, 0), (True, 1), (True, 2), (False, 3), (True, 4),
                                                (False, 6), (False, 9), (False, 10)]]
    assert events == [None, "arrive", None, None, None, None, "leave", None]


class FakeCamera:
    def __init__(self, frame, opened=True):
        self.frame, self.opened, self.released = frame, opened, False

    def isOpened(self):
        return self.opened

    def read(self):
        return True, self.frame

    def release(self):
        self.released = True


def test_a_visitor_brings_a_lucid_interval(tmp_path):
    from skimage import data
    s, piece, _ = _rig(tmp_path, "course.lucid.enabled=true", "inputs.presence.enabled=true",
                       "inputs.presence.check_every_s=0.01", "course.lucid.ramp_s=1")
    cam = FakeCamera(data.astronaut()[..., ::-1].copy())         # OpenCV hands over BGR
    inputs = Inputs(s, capture_factory=lambda index: cam)
    inputs.start()
    try:
        assert wait_until(lambda: not inputs.queue.empty(), 5.0)
        assert inputs.camera.watching
        said = inputs.drain(piece, 0.0)
    finally:
        inputs.close()
    assert cam.released and (None, "a lucid interval") in said
    assert piece.course_state.overrides.lucid_s == 0.0
    piece.step(2.0)
    assert piece.sample().lucid == pytest.approx(1.0)


def test_no_camera_is_one_log_line(tmp_path, caplog):
    s = input_settings(tmp_path, "inputs.presence.enabled=true")
    inputs = Inputs(s, capture_factory=lambda index: FakeCamera(None, opened=False))
    with caplog.at_level(logging.INFO, logger="lapses.presence"):
        inputs.start()
        camera = inputs.camera
        inputs.close()                  # joins the camera's thread
    assert not camera.watching and len([r for r in caplog.records if r.name == "lapses.presence"]) == 1


def test_a_camera_without_a_detector_is_one_log_line_and_is_released(tmp_path, caplog, monkeypatch):
    from installation.inputs import presence

    def no_detector():
        raise OSError("no face cascade here")
    monkeypatch.setattr(presence, "FaceDetector", no_detector)
    s = input_settings(tmp_path, "inputs.presence.enabled=true", "inputs.presence.check_every_s=0.01")
    cam = FakeCamera(np.zeros((32, 32, 3), np.uint8))
    inputs = Inputs(s, capture_factory=lambda index: cam)
    with caplog.at_level(logging.INFO, logger="lapses.presence"):
        inputs.start()
        camera = inputs.camera
        inputs.close()                  # joins the camera's thread, which released the camera
    assert cam.released and not camera.watching
    said = [r for r in caplog.records if r.name == "lapses.presence"]
    assert len(said) == 1 and "no face cascade" in said[0].getMessage()


def test_triggered_lucid_intervals_are_plain_state_shorter_and_rarer(tmp_path):
    s = input_settings(tmp_path, "course.lucid.enabled=true", "course.lucid.every_s=1000000", "course.duration=10000s")
    course = Course(s.course)
    lucid = s.course.lucid
    early = course.initial_state()
    a = course.trigger_lucid(early, gap_s=100.0)
    assert a.overrides.lucid_s == 0.0
    assert Overrides.from_dict(a.overrides.to_dict()) == a.overrides           # it persists as data
    soon = course.advance(a, 50.0)
    assert course.trigger_lucid(soon, gap_s=100.0) == soon                      # a visitor too soon: nothing
    assert course.trigger_lucid(soon).overrides.lucid_s == 50.0                 # a performer: always

    def length_at(progress):
        state = course.trigger_lucid(course.at_progress(early, progress))
        start, ts = state.elapsed_s, np.arange(0.0, 200.0, 0.25)
        return sum(course.triggered_lucidity(course.advance(state, dt), progress) > 0 for dt in ts) * 0.25, state

    early_len, _ = length_at(0.1)
    late_len, late = length_at(0.8)
    assert late_len < early_len                                                # shorter as the illness grows
    assert course.triggered_lucidity(course.advance(late, 5.0), 0.8) == course.triggered_lucidity(
        course.advance(late, 5.0), 0.8)                                         # pure
    gone = course.at_progress(early, lucid.until + 0.01)
    assert course.trigger_lucid(gone) == gone                                   # none past `until`
    late_then = course.advance(course.trigger_lucid(course.at_progress(early, 0.8)), 150.0)
    assert course.trigger_lucid(late_then, gap_s=100.0) == late_then            # the gap grew with progress
    assert course.trigger_lucid(course.advance(a, 150.0), gap_s=100.0).overrides.lucid_s == 150.0   # early it had not


def test_progress_fader_lands_on_the_staircase(tmp_path):
    s = input_settings(tmp_path, "course.steps=14")
    piece = Piece(s)
    for p in (0.0, 0.25, 0.61, 1.0, 0.3):          # the staircase is continuous: every progress is reached
        piece.set_progress(p)
        assert piece.sample().point.progress == pytest.approx(p, abs=1e-6)


# ------------------------------------------------------------------ the live app, headless

class SpyEngine:
    """The real engine, with a hook at each render: records the state each frame shows."""

    def __init__(self, engine, hook):
        self.engine, self.hook, self.states = engine, hook, []

    def __getattr__(self, name):
        return getattr(self.engine, name)

    def render(self, state, sync=False, **kw):
        self.states.append(state)
        self.hook(len(self.states) - 1)
        return self.engine.render(state, sync=sync, **kw)


def test_app_osc_and_midi_change_the_very_next_frame(tiny_checkpoint, tmp_path):
    from pythonosc.udp_client import SimpleUDPClient
    from installation.app import App, RunOptions
    from installation.engine import Engine
    s = settings_from_dict({}, [
        f"model.path={tiny_checkpoint}", "model.device=cpu", "display.fullscreen=false", "display.width=96",
        "display.height=64", "display.fps_limit=0", "sound.enabled=false", "course.lucid.enabled=false",
        "inputs.midi.enabled=false", "inputs.osc.port=0", f"inputs.mappings_file={tmp_path / 'm.yaml'}",
        "inputs.map.fading.smoothing_s=0", "inputs.map.decay.smoothing_s=0", "inputs.map.decay.takeover=false"])
    app = App(s)

    def hook(frame):
        if frame == 3:             # after this frame's drain: the packet must show in frame 4
            SimpleUDPClient("127.0.0.1", app.inputs.osc_port).send_message("/symptom/fading", 0.9)
            assert wait_until(lambda: not app.inputs.queue.empty(), 3.0)
        if frame == 6:             # a MIDI message queued as the port's callback would
            app.inputs.post(cc(1, 127))

    spy = {}
    app.engine_factory = lambda w, h: spy.setdefault("e", SpyEngine(Engine.from_settings(s, w, h), hook))
    piece = Piece(s)
    script = {1: ["h"], 8: ["]", "l"], 9: ["f4"], 11: ["escape"]}       # select the 2nd row and arm learn; scene storm
    report = app.run(RunOptions(windowed=True, seconds=60, script=script), piece)
    states = spy["e"].states
    assert report.frames == 12 and app.inputs.osc is None       # the server was closed at the end
    assert states[3].intensity("fading") != 0.9 and states[4].intensity("fading") == pytest.approx(0.9)
    end = Course(s.course).curve_intensities(1.0)
    assert states[6].intensity("static") < end["static"]
    assert states[7].intensity("static") == pytest.approx(end["static"])        # decay +1: as at the end
    assert states[9].intensity("static") != states[8].intensity("static")      # F4: the scene's fade began
    assert app.inputs.learn.armed and app.inputs.learn.selected == "speed"


def test_cli_names_a_bad_mapping_and_exits_2(tmp_path):
    from conftest import run_main
    r = run_main("installation", "--set", "inputs.map.revive.midi=knob 3", "--seconds", "1")
    assert r.returncode == 2 and "inputs.map.revive.midi" in r.stderr and "Traceback" not in r.stderr
