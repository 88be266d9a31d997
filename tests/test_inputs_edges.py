"""Live inputs at their edges, as a performer or a gallery meets them: OSC datagrams that are cut
off or padded, a port another program holds, a 14-bit knob learned, a controller learned on a
knob that settings.yaml later gave to another row, and a camera that sees a visitor at a distance
but does not look again at a room that has not changed.

Real UDP on 127.0.0.1 (ephemeral ports), synthetic mido messages, the bundled astronaut photograph.
"""
import logging
import socket
import time

import mido
import numpy as np
import pytest
import yaml

from installation.inputs import osc as osc_module
from installation.inputs.live import PAIR_S, Inputs
from installation.inputs.osc import malformed
from installation.inputs.presence import FaceDetector, SceneGate
from installation.piece import Piece
from installation.settings import SettingsError
from test_inputs import input_settings, wait_until, cc   # the same settings and helpers as the main input tests

def _message(address, *args):
    from pythonosc.osc_message_builder import OscMessageBuilder
    b = OscMessageBuilder(address)
    for a in args:
        b.add_arg(a)
    return b.build().dgram


# ------------------------------------------------------------------ OSC datagrams

def test_well_formed_osc_passes_and_cut_or_padded_datagrams_do_not():
    from pythonosc.osc_bundle_builder import IMMEDIATELY, OscBundleBuilder
    from pythonosc.osc_message_builder import OscMessageBuilder
    bundle = OscBundleBuilder(IMMEDIATELY)
    bundle.add_content(OscMessageBuilder("/revive").build())
    inner = OscBundleBuilder(IMMEDIATELY)
    inner.add_content(OscMessageBuilder("/pause").build())
    bundle.add_content(inner.build())
    good = [_message("/decay", 0.5), _message("/scene", "storm"), _message("/pause"), b"/pause\x00\x00",
            _message("/x", 1, 2.5, "abc", b"blob", True, False, None), bundle.build().dgram]
    for d in good:
        assert malformed(d) is None, d
    decay = _message("/decay", 0.8)
    bad = [b"", b"garbage\x00\x01", decay[:-4], decay[:-1], decay + b"\x00" * 4,
           b"/decay\x00\x00,fx\x00" + b"\x00" * 8,                      # unknown type tag
           _message("/scene", "storm")[:-4], bundle.build().dgram[:-4], b"#bundle\x00" + b"\x00" * 4]
    for d in bad:
        assert malformed(d), d


def test_a_cut_off_osc_argument_is_ignored_not_read_as_zero(tmp_path, caplog):
    # python-osc pads a missing float with zeros: `/decay` cut after its type tags used to arrive as /decay 0
    s = input_settings(tmp_path, "inputs.osc.enabled=true", "inputs.osc.port=0", "inputs.map.decay.smoothing_s=0")
    piece, inputs = Piece(s), Inputs(s)
    caplog.set_level(logging.WARNING, logger="lapses.osc")
    inputs.start()
    raw = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        piece.act("revive")                                        # decay -1: a stray 0 would show
        decay = _message("/decay", 0.8)
        for d in (decay[:-4], decay[:-4], decay + b"\x00" * 4, b"/decay\x00\x00,fx\x00" + b"\x00" * 8):
            raw.sendto(d, ("127.0.0.1", inputs.osc_port))
        raw.sendto(_message("/decay/up"), ("127.0.0.1", inputs.osc_port))   # a good one after them
        t = 0.0
        end = time.monotonic() + 3.0
        while time.monotonic() < end and piece.course_state.overrides.decay == -1.0:
            t += 0.02
            inputs.drain(piece, t)
            time.sleep(0.01)
        inputs.drain(piece, t + 0.02)
        assert piece.course_state.overrides.decay == pytest.approx(-1.0 + s.course.decay_step)
    finally:
        raw.close()
        inputs.close()
    said = [r.getMessage() for r in caplog.records if r.name == "lapses.osc" and "not OSC" in r.getMessage()]
    assert len(said) == 1, said                                     # said once, for four bad datagrams


# ------------------------------------------------------------------ a port another program holds

def test_a_busy_port_is_taken_once_it_is_free(tmp_path, caplog, monkeypatch):
    monkeypatch.setattr(osc_module, "RETRY_S", 0.05)
    busy = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    busy.bind(("127.0.0.1", 0))
    port = busy.getsockname()[1]
    s = input_settings(tmp_path, "inputs.osc.enabled=true", f"inputs.osc.port={port}")
    piece, inputs = Piece(s), Inputs(s)
    with caplog.at_level(logging.INFO, logger="lapses.osc"):
        inputs.start()
        try:
            assert inputs.osc_port is None and "busy" in inputs.hud_line()
            time.sleep(0.3)                                          # several retries: still one line
            assert len([r for r in caplog.records if r.name == "lapses.osc"]) == 1
            assert "inputs.osc.port" in caplog.records[0].getMessage()
            busy.close()                                             # the other program lets go
            assert wait_until(lambda: inputs.osc_port == port)
            assert f"osc :{port}" in inputs.hud_line()
            raw = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            raw.sendto(_message("/pause"), ("127.0.0.1", port))
            raw.close()
            assert wait_until(lambda: (inputs.drain(piece, 0.0), piece.paused)[1])
        finally:
            inputs.close()


def test_strict_inputs_refuse_a_busy_port_naming_the_key(tmp_path):
    busy = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    busy.bind(("127.0.0.1", 0))
    port = busy.getsockname()[1]
    try:
        s = input_settings(tmp_path, "inputs.osc.enabled=true", f"inputs.osc.port={port}")
        with pytest.raises(SettingsError) as e:
            Inputs(s, strict=True)
        assert str(e.value).startswith("inputs.osc.port:") and str(port) in str(e.value) and "allowed" in str(e.value)
    finally:
        busy.close()
    inputs = Inputs(s, strict=True)                 # free now: taken at once, before any window
    try:
        assert inputs.osc is not None and inputs.osc_port == port
        inputs.start()
        assert inputs.osc_port == port
    finally:
        inputs.close()


# ------------------------------------------------------------------ MIDI learn

def _learn(inputs, piece, target, now=0.0):
    while inputs.learn.selected != target:
        inputs.learn.select(1)
    inputs.post(("action", "learn"))
    inputs.drain(piece, now)


def test_learn_takes_a_14_bit_knob_as_its_pair(tmp_path):
    s = input_settings(tmp_path, "inputs.map.progress.smoothing_s=0", "inputs.map.progress.takeover=false")
    piece, inputs = Piece(s), Inputs(s)
    _learn(inputs, piece, "progress")
    inputs.post(cc(7, 64))                          # MSB first ...
    inputs.post(cc(39, 5))                          # ... then its LSB: a 14-bit knob
    said = inputs.drain(piece, 0.1)
    assert said[-1] == (None, "learned progress = ch 1 cc14 7")
    assert yaml.safe_load((tmp_path / "mappings.yaml").read_text())["midi"]["progress"] == "ch 1 cc14 7"
    inputs.post(cc(7, 64))
    inputs.post(cc(39, 100))
    inputs.drain(piece, 0.2)
    assert piece.sample().point.progress == pytest.approx((64 * 128 + 100) / 16383, abs=1e-6)   # 14 bits
    assert Inputs(s).bindings["progress"].midi == "ch 1 cc14 7"          # and so after a restart


def test_learn_keeps_a_7_bit_knob_and_a_late_neighbour_does_not_pair(tmp_path):
    s = input_settings(tmp_path)
    piece, inputs = Piece(s), Inputs(s)
    _learn(inputs, piece, "static")
    inputs.post(cc(7, 10))
    inputs.post(cc(7, 11))                          # the same knob again: no LSB
    assert inputs.drain(piece, 0.0)[0] == (None, "learned static = ch 1 cc 7")
    inputs.post(cc(39, 3))                          # another knob, moved later
    inputs.drain(piece, PAIR_S + 0.1)
    assert inputs.bindings["static"].midi == "ch 1 cc 7"
    _learn(inputs, piece, "fading", 1.0)
    inputs.post(cc(8, 10))
    inputs.drain(piece, 1.0)
    inputs.post(cc(40, 3, channel=3))               # cc 40 but on another channel: not its pair
    inputs.drain(piece, 1.1)
    assert inputs.bindings["fading"].midi == "ch 1 cc 8"


def test_a_learned_knob_wins_over_a_row_settings_yaml_gave_it_later(tmp_path, caplog):
    (tmp_path / "mappings.yaml").write_text("midi:\n  static: ch 1 cc 21\n")
    s = input_settings(tmp_path, "inputs.map.lapses.midi=cc 21", "inputs.map.static.takeover=false",
                  "inputs.map.static.smoothing_s=0", "inputs.map.lapses.takeover=false")
    with caplog.at_level(logging.WARNING, logger="lapses.inputs"):
        inputs = Inputs(s)
    assert inputs.bindings["static"].midi == "ch 1 cc 21" and inputs.bindings["lapses"].midi == ""
    said = [r.getMessage() for r in caplog.records if r.name == "lapses.inputs"]
    assert len(said) == 1 and "lapses" in said[0] and "static" in said[0]
    piece = Piece(s)
    inputs.post(cc(21, 127))
    inputs.drain(piece, 0.0)
    assert dict(piece.course_state.overrides.pinned) == {"static": 1.0}      # one knob, one thing
    _learn(inputs, piece, "fading")                 # a later learn keeps it so
    inputs.post(cc(22, 0))
    inputs.drain(piece, 0.1)
    assert inputs.bindings["lapses"].midi == "" and inputs.bindings["static"].midi == "ch 1 cc 21"


# ------------------------------------------------------------------ presence

def _visitor(face_share: float, width: int = 1280, height: int = 720) -> np.ndarray:
    """The astronaut in a webcam frame, her face `face_share` of the frame's width (her face is
    about 100 of the photograph's 512 pixels)."""
    import cv2
    from skimage import data
    side = int(512 * face_share * width / 100)
    photo = cv2.resize(data.astronaut(), (side, side), interpolation=cv2.INTER_AREA)
    frame = np.full((height, width, 3), 60, np.uint8)
    h, w = min(side, height), min(side, width)
    y0, x0 = (height - h) // 2, (width - w) // 2
    frame[y0:y0 + h, x0:x0 + w] = photo[:h, :w]
    return frame


@pytest.fixture(scope="module")
def detector():
    return FaceDetector()


def test_the_detector_sees_a_visitor_standing_back_from_the_camera(detector):
    # a face a tenth of a 720p webcam's width: someone a metre or two from a 60-70 degree webcam
    assert detector.present(_visitor(0.1))
    assert detector.present(_visitor(0.1, 640, 480))
    assert not detector.present(np.full((720, 1280, 3), 60, np.uint8))


def test_the_gate_looks_again_only_when_the_scene_changes():
    rng = np.random.default_rng(1)
    room = np.full((480, 640, 3), 60, np.uint8)

    def noisy(frame):                              # a camera's noise is not a change
        return np.clip(frame + rng.normal(0, 6, frame.shape), 0, 255).astype(np.uint8)
    gate = SceneGate()
    assert gate.changed(noisy(room), 0.0)                                  # the first frame is looked at
    assert [gate.changed(noisy(room), 0.5 * k) for k in range(1, 6)] == [False] * 5
    visitor = _visitor(0.2, 640, 480)
    assert gate.changed(noisy(visitor), 3.0)                               # someone came in
    assert not gate.changed(noisy(visitor), 3.5)                           # and stands still
    assert gate.changed(noisy(room), 4.0)                                  # and left
    assert gate.changed(noisy(room), 4.0 + SceneGate().max_s)              # and now and then anyway


def test_a_missing_camera_is_our_one_line_and_not_opencvs(tmp_path, caplog, capfd):
    s = input_settings(tmp_path, "inputs.presence.enabled=true", "inputs.presence.camera=63")   # no such camera
    inputs = Inputs(s)
    with caplog.at_level(logging.INFO, logger="lapses.presence"):
        inputs.start()
        camera = inputs.camera
        inputs.close()
    err = capfd.readouterr().err
    assert not camera.watching and len([r for r in caplog.records if r.name == "lapses.presence"]) == 1
    assert "WARN" not in err and "VIDEOIO" not in err, err
