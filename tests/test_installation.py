"""The engine, the piece, the contact sheet, the live app (headless) and its command line."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

from installation.course import Course
from installation.engine import BUNDLED_MODEL, Engine, load_model
from installation.piece import Piece
from installation.settings import settings_from_dict
from installation.sheet import decay_rows, make_sheet
from installation.state import FrameState

from conftest import make_tiny_checkpoint, run_main

ROOT = Path(__file__).resolve().parent.parent


def _settings(model_path, *overrides):
    # OSC on any free port (inputs.osc.port=0): the default 9000 may be another program's
    return settings_from_dict({}, [f"model.path={model_path}", "model.device=cpu", "inputs.osc.port=0", *overrides])


def _engine(settings, w=96, h=64):
    return Engine.from_settings(settings, w, h)


# ------------------------------------------------------------------ engine

def test_same_state_same_frame_across_engines(tiny_checkpoint):
    s = _settings(tiny_checkpoint)
    course = Course(s.course)
    state = FrameState(t=3.7, progress=0.8, intensities=course.curve_intensities(0.8), walk_phase=21.3, seed=5)
    a, b = _engine(s), _engine(s)
    fa, fb = a.render(state), b.render(state)
    assert fa.dtype == np.uint8 and fa.shape == (64, 96, 3)
    assert np.array_equal(fa, fb)
    # and the pristine frame differs from the damaged one
    assert not np.array_equal(a.render(state.with_(intensities={})), fa)
    a.close(), b.close()


@pytest.mark.parametrize("scale", ["fit", "fill"])
def test_output_fits_or_fills_any_aspect(tiny_checkpoint, scale):
    s = _settings(tiny_checkpoint, f"display.scale={scale}", "display.grain=0", "display.vignette=0")
    e = _engine(s, 200, 100)
    frame = e.render(FrameState(t=0.0, walk_phase=1.0))
    assert frame.shape == (100, 200, 3)
    bars = frame[:, :40].max()
    if scale == "fit":
        assert bars == 0                    # black bars left and right of a square picture
    else:
        assert frame[:, :40].std() > 0      # the picture covers the whole screen
    e.close()


def test_extreme_damage_stays_finite_and_in_range(tiny_checkpoint):
    s = _settings(tiny_checkpoint)
    e = _engine(s)
    every = {name: 1.0 for name in Course(s.course).symptom_names}
    frame = e.render(FrameState(t=1.0, progress=1.0, intensities=every, walk_phase=5.0, seed=3))
    assert frame.dtype == np.uint8 and frame.shape == (64, 96, 3)   # uint8: in range by construction
    z = e.latent(FrameState(walk_phase=5.0, intensities=every, seed=3))
    assert torch.isfinite(z).all()
    e.close()


def test_walk_follows_the_life_seed(tiny_checkpoint):
    e = _engine(_settings(tiny_checkpoint))
    z1 = e.latent(FrameState(walk_phase=30.0, seed=1))
    z2 = e.latent(FrameState(walk_phase=30.0, seed=2))
    assert not torch.allclose(z1, z2)
    assert torch.allclose(z1, e.latent(FrameState(walk_phase=30.0, seed=1)))
    e.close()


# ------------------------------------------------------------------ piece

def test_piece_actions(tiny_checkpoint):
    s = _settings(tiny_checkpoint, "course.duration=100s", "course.lucid.enabled=false")
    p = Piece(s)
    p.step(10.0)
    assert p.t == 10.0 and p.walk_phase == 10.0
    p.act("faster")
    p.step(1.0)
    assert p.walk_phase == pytest.approx(11.25)
    p.act("pause")
    p.step(5.0)
    assert p.t == 11.0
    p.act("pause")
    before = p.sample().point.progress
    message = p.act("course_forward")
    assert p.course_state.elapsed_s == pytest.approx(13.0)
    assert "course at 13.0% of 100s" in message     # the course moves visibly even on a plateau of progress
    after = p.sample().point.progress                # here, 11% -> 13% of the time is off a plateau: it moves
    assert after > before and f"progress {after:.3f}" in message
    p.act("decay_up")
    assert p.course_state.overrides.decay == pytest.approx(0.05)
    p.act("revive")
    assert all(v == 0.0 for v in p.sample().intensities.values())
    seed = p.sample().point.seed
    p.act("rebirth")
    assert p.sample().point.seed != seed and p.course_state.elapsed_s == 0.0
    with pytest.raises(ValueError, match="unknown action"):
        p.act("explode")


# ------------------------------------------------------------------ decay is visible (bundled model)

def _bundled():
    if not BUNDLED_MODEL.exists():
        pytest.fail(f"the bundled model {BUNDLED_MODEL} is missing: it is part of the project")
    s = settings_from_dict({}, ["model.device=cpu"])
    return Engine.from_settings(s, 64, 64), Course(s.course)


def test_decay_is_visible_and_progressive_on_the_bundled_model():
    engine, course = _bundled()
    progresses = np.linspace(0.0, 1.0, 20)
    rows = decay_rows(engine, course, progresses, columns=4, seed=1)
    scores = np.array([r.ssim for r in rows])
    rho = spearmanr(progresses, scores).statistic
    at = dict(zip(np.round(progresses, 3), scores))
    p03 = float(np.interp(0.3, progresses, scores))
    print("SSIM vs pristine:", " ".join(f"{p:.2f}:{v:.2f}" for p, v in zip(progresses, scores)))
    assert rho <= -0.9, f"Spearman rho {rho:.3f}"
    assert p03 > 0.5, f"SSIM at progress 0.3 is {p03:.3f}"
    assert scores[-1] < 0.15, f"SSIM at progress 1 is {scores[-1]:.3f}"
    assert at[0.0] == pytest.approx(1.0)
    engine.close()


def _recognised_and_light(model: str, progresses) -> list[tuple[float, float]]:
    """For eight memories (first to last) at each progress (the model's calibrated course, blackouts
    left out): the share whose picture is still nearest its own healthy picture (SSIM), and the mean
    light against the healthy pictures' (installation.calibration.story)."""
    from installation.calibration import course_for, story
    s = settings_from_dict({}, ["model.device=cpu", f"model.path={ROOT / 'assets' / model}"])
    engine = Engine.from_settings(s, 64, 64)
    course = course_for(s, engine.model.meta)
    assert course.calibration is not None, f"{model} carries no course calibration (python -m installation calibrate)"
    out = story(engine, course, progresses)
    engine.close()
    return out


def test_each_stage_looks_as_it_is_named_on_the_bundled_models():
    """The stages' story (course.STAGES) on the bundled models, each following its calibration:
    every memory still recognisable at 0.5, three in four at 0.7, glimpses of some while severe,
    at most a quarter once gone, and dark; and the brain's tissue dims at every step, the black
    around it never lighting up. (The old curves wiped the memories out by 0.5 and lit the brain's
    room grey as it went; written for the memories, they left a quarter of the brain by 0.5.)"""
    for model, progresses in (("memories.safetensors", (0.5, 0.7, 0.8, 0.9, 1.0)),
                              ("brain.safetensors", (0.3, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0))):
        told = dict(zip(progresses, _recognised_and_light(model, progresses)))
        print(model, "recognised/light:", told)
        assert told[0.5][0] == 1.0 and told[0.7][0] >= 0.75, model
        assert 0.0 < told[0.9][0] < 1.0, model                                # glimpses: some, not all
        assert told[1.0][0] <= 0.25 and told[1.0][1] < 0.15, model           # gone, and dark
    light = [told[p][1] for p in progresses]                                 # the brain
    assert all(later <= earlier + 0.02 for earlier, later in zip(light, light[1:])) and light[0] > 0.8
    assert light[-1] < 0.1


@pytest.mark.parametrize("name", ["bit_rot", "precision_loss"])
def test_a_violent_symptom_spreads_over_its_fader_on_the_bundled_model(name):
    """A performer's fader must not be a switch: bit_rot used to wreck the picture by 5% of its
    travel (exponent flips clamped at 16x), precision_loss showed nothing until 70% (16 bits)."""
    from installation.sheet import sheet_latents, ssim
    engine, _ = _bundled()
    z = sheet_latents(engine, 4, 1, spread=True)
    healthy = engine.small_frames(z, FrameState(t=3.0, seed=1))
    scores = []
    for level in (0.1, 0.25, 0.5, 0.75, 1.0):
        frames = engine.small_frames(z, FrameState(t=3.0, seed=1, intensities={name: level}))
        scores.append(float(np.mean([ssim(f, h) for f, h in zip(frames, healthy)])))
    print(name, scores)
    assert scores[0] > 0.9 and scores[1] > 0.6 and scores[3] < 0.6
    assert all(b < a + 0.02 for a, b in zip(scores[:4], scores[1:4]))
    engine.close()


def test_sheet_has_one_labelled_row_per_stage(tiny_checkpoint):
    s = _settings(tiny_checkpoint)
    e = _engine(s)
    img, rows = make_sheet(e, Course(s.course), stages=4, columns=3)
    assert len(rows) == 4 and [r.progress for r in rows] == [0.0, 1 / 3, 2 / 3, 1.0]
    assert img.ndim == 3 and img.shape[0] > 4 * 160 and img.shape[1] > 3 * 160
    label_area = img[60:200, :200]
    assert label_area.max() > 200          # text was drawn
    e.close()


def test_the_contact_sheet_spreads_its_columns_over_many_memories(tmp_path):
    """Seven anchors in three columns: the first, the middle and the last, not three neighbours."""
    from conftest import make_tiny_checkpoint, run_main
    from installation.sheet import sheet_latents
    s = _settings(make_tiny_checkpoint(tmp_path / "seven.safetensors", anchors=7))
    e = _engine(s)
    a = e.anchors.cpu()
    shell = a * (e.latent_size ** 0.5) / a.norm(dim=1, keepdim=True)
    assert torch.allclose(sheet_latents(e, 3, seed=1, spread=True), shell[[0, 3, 6]])
    assert torch.allclose(sheet_latents(e, 3, seed=1), shell[:3])
    assert torch.allclose(sheet_latents(e, 9, seed=1, spread=True)[:7], shell)   # all of them, then random points
    rows = make_sheet(e, Course(s.course), stages=2, columns=3)[1]
    direct = e.small_frames(shell[[0, 3, 6]], FrameState(seed=1))
    assert all(np.array_equal(f, g) for f, g in zip(rows[0].frames, direct))
    e.close()


# ------------------------------------------------------------------ the live app, headless

def test_app_runs_headless_with_scripted_keys(tiny_checkpoint, tmp_path):
    from installation.app import App, RunOptions
    s = _settings(tiny_checkpoint, "display.fullscreen=false", "display.width=160", "display.height=120",
                  "course.duration=60s", "display.fps_limit=0")
    piece = Piece(s)
    script = {2: ["right"], 3: ["="], 4: ["up"], 5: ["h"], 6: ["s"], 7: ["b"], 8: ["space"], 12: ["escape"]}
    report = App(s).run(RunOptions(windowed=True, seconds=60, screenshot_dir=tmp_path, script=script), piece)
    assert report.frames == 13                                   # escape on frame 12 ended it
    assert piece.speed == pytest.approx(s.walk.speed_step)
    assert piece.paused
    assert piece.course_state.cycle == 1                         # rebirth happened
    assert len(report.screenshots) == 1
    shot = report.screenshots[0]
    assert shot.exists() and "_p0." in shot.name and "_seed" in shot.name
    import cv2
    assert cv2.imread(str(shot)).shape == (120, 160, 3)


def test_screenshots_are_one_a_second_and_stop_before_the_disk_is_full(tiny_checkpoint, tmp_path, monkeypatch):
    """A stuck key or a flood of OSC /screenshot must not fill the disk the kiosk saves its state on."""
    import collections
    from installation import app as app_module
    from installation.app import App, RunOptions
    s = _settings(tiny_checkpoint, "display.fullscreen=false", "display.width=64", "display.height=64",
                  "course.duration=60s", "display.fps_limit=0")
    script = {f: ["s"] for f in range(2, 8)}
    script[9] = ["escape"]
    monkeypatch.setattr(app_module, "SHOT_GAP_S", 3600.0)              # however slow the machine, within the gap
    report = App(s).run(RunOptions(windowed=True, seconds=60, screenshot_dir=tmp_path / "a", script=script), Piece(s))
    assert report.frames == 10 and len(report.screenshots) == 1          # six asks within the gap: one shot
    monkeypatch.setattr(app_module, "SHOT_GAP_S", 0.0)
    report = App(s).run(RunOptions(windowed=True, seconds=60, screenshot_dir=tmp_path / "c", script=script), Piece(s))
    assert len(report.screenshots) == 6                                  # no gap: each ask a shot
    usage = collections.namedtuple("usage", "total used free")
    monkeypatch.setattr(app_module.shutil, "disk_usage", lambda path: usage(10 << 30, (10 << 30) - (100 << 20), 100 << 20))
    report = App(s).run(RunOptions(windowed=True, seconds=60, screenshot_dir=tmp_path / "b", script={2: ["s"], 4: ["escape"]}),
                        Piece(s))
    assert report.frames == 5 and report.screenshots == [] and not list((tmp_path / "b").glob("*.png"))


def test_a_seek_by_midi_or_osc_is_as_urgent_as_the_same_key(tiny_checkpoint, monkeypatch):
    """A course seek moves only the course time (not the overrides): from MIDI/OSC it must reach
    the frame it was played on, as the key does, while the course's own creep stays unhurried."""
    from installation.app import App, RunOptions
    from installation.inputs.live import Inputs
    s = _settings(tiny_checkpoint, "display.fullscreen=false", "display.width=64", "display.height=64",
                  "display.fps_limit=0")
    urgent, drains = [], []
    render = Engine.render
    monkeypatch.setattr(Engine, "render", lambda self, state, **kw: urgent.append(kw.get("urgent")) or
                        render(self, state, **kw))
    drain = Inputs.drain

    def drain_and_seek(self, piece, now):
        drains.append(now)
        if len(drains) in (4, 8):                       # an OSC /course/forward, a MIDI note for rebirth
            self.post(("action", "course_forward" if len(drains) == 4 else "rebirth"))
        return drain(self, piece, now)
    monkeypatch.setattr(Inputs, "drain", drain_and_seek)
    piece = Piece(s)
    App(s).run(RunOptions(windowed=True, seconds=60, script={10: ["escape"]}), piece)
    assert urgent[3] is True and urgent[7] is True
    assert urgent[5] is False and urgent[9] is False
    assert piece.course_state.cycle == 1


def test_kiosk_ignores_escape_and_quits_on_the_combo(tiny_checkpoint):
    from installation.app import App, RunOptions
    s = _settings(tiny_checkpoint, "display.fullscreen=false", "display.width=64", "display.height=64",
                  "display.fps_limit=0")
    piece = Piece(s)
    script = {1: ["escape", "space", "r"], 5: ["ctrl+shift+q"]}
    report = App(s).run(RunOptions(kiosk=True, seconds=60, script=script), piece)
    assert report.frames == 6
    assert not piece.paused and piece.course_state.overrides.decay == 0.0   # stray keys did nothing


# ------------------------------------------------------------------ command line

def _cli(*args, cwd=None):
    return run_main("installation", *args, cwd=cwd or ROOT)


def test_cli_runs_headless_and_exits_0(tiny_checkpoint):
    """In a real process, as a person types it: `python -m installation` starts, runs and exits 0."""
    env = dict(os.environ, SDL_VIDEODRIVER="dummy", SDL_AUDIODRIVER="dummy")
    r = subprocess.run([sys.executable, "-m", "installation", "--model", str(tiny_checkpoint), "--seconds", "1.5",
                        "--set", "display.width=128", "--set", "display.height=96", "--set", "inputs.osc.port=0"],
                       capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "frames in" in r.stdout and "Traceback" not in r.stderr


@pytest.mark.parametrize("args, words", [
    (["--set", "display.nonsense=1"], "display.nonsense"),
    (["--set", "walk.wander=7"], "walk.wander"),
    (["--set", "display.fps_limit=fast"], "display.fps_limit"),
    (["--model", "/no/such/model.safetensors"], "does not exist"),
    (["--settings", "/no/such/settings.yaml"], "not found"),
    (["--seconds", "-1"], "--seconds"),
    (["--set", "kiosk.quit_combo=hyper+q"], "quit_combo"),
])
def test_cli_user_mistakes_exit_2_with_a_message(args, words):
    r = _cli(*args)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert words in r.stderr and "Traceback" not in r.stderr


def test_cli_refuses_a_broken_checkpoint(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00" * 100)
    r = _cli("--model", str(bad), "--seconds", "1")
    assert r.returncode == 2 and "model.path" in r.stderr and "Traceback" not in r.stderr


def test_cli_refuses_a_checkpoint_with_nan_weights(tmp_path):
    """Saved by save_generator itself, digests right: still refused before a window opens, naming the file."""
    nan = make_tiny_checkpoint(tmp_path / "diverged.safetensors", nan=True)
    r = _cli("--model", str(nan), "--seconds", "1")
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert f"model.path: {nan}: its weights hold NaN" in r.stderr and "Traceback" not in r.stderr


def test_default_window_fits_a_small_monitor():
    from installation.app import WINDOW_DEFAULT, window_default
    assert window_default((1920, 1080)) == WINDOW_DEFAULT
    w, h = window_default((1280, 720))                  # a 1024x768 window would hang off a 720-line screen
    assert w <= 0.9 * 1280 and h <= 0.9 * 720 and abs(w / h - 4 / 3) < 0.01 and w % 2 == h % 2 == 0


def test_cli_print_settings_says_what_was_changed():
    r = _cli("--print-settings", "--set", "course.duration=2h", "--hud")
    assert r.returncode == 0
    assert r.stdout.split("\n", 1)[0].endswith("settings.yaml, with --set course.duration=2h, --hud)")


def test_cli_model_path_is_relative_to_where_the_command_runs(tiny_checkpoint, tmp_path):
    import shutil
    shutil.copy(tiny_checkpoint, tmp_path / "mine.safetensors")
    r = _cli("--print-settings", "--model", "mine.safetensors", cwd=tmp_path)
    assert r.returncode == 0 and f"path: {tmp_path / 'mine.safetensors'}" in r.stdout
    r = _cli("--model", "nothere.safetensors", "--seconds", "1", cwd=tmp_path)   # not here, not in the project
    assert r.returncode == 2 and "nothere.safetensors does not exist" in r.stderr and "Traceback" not in r.stderr


def test_cli_screenshots_must_be_a_folder():
    r = _cli("--screenshots", "README.md", "--seconds", "1")
    assert r.returncode == 2 and "--screenshots README.md" in r.stderr and "Traceback" not in r.stderr


def test_cli_print_settings_round_trips(tmp_path):
    r = _cli("--print-settings", "--set", "course.duration=2h")
    assert r.returncode == 0
    f = tmp_path / "s.yaml"
    f.write_text(r.stdout)
    assert _cli("--settings", str(f), "--print-settings").stdout.split("\n", 1)[1] == r.stdout.split("\n", 1)[1]
    assert "duration: 2h" in r.stdout


def test_cli_sheet_writes_and_never_overwrites(tiny_checkpoint, tmp_path):
    out = tmp_path / "sheet.png"
    r = _cli("sheet", "--model", str(tiny_checkpoint), "--out", str(out), "--stages", "3", "--columns", "2")
    assert r.returncode == 0, r.stderr
    assert out.exists() and "SSIM" in r.stdout
    before = out.read_bytes()
    r = _cli("sheet", "--model", str(tiny_checkpoint), "--out", str(out))
    assert r.returncode == 2 and "--overwrite" in r.stderr and out.read_bytes() == before
    r = _cli("sheet", "--model", str(tiny_checkpoint), "--out", str(out), "--stages", "2", "--columns", "1",
             "--overwrite")                                  # as every other command names it
    assert r.returncode == 0 and out.read_bytes() != before
    r = _cli("sheet", "--model", str(tiny_checkpoint), "--out", str(tmp_path / "nodir" / "x.png"))
    assert r.returncode == 2 and "does not exist" in r.stderr


def test_grain_moves_every_frame_and_is_repeatable():
    from installation.output import Output, OutputSpec
    grey = np.full((32, 32, 3), 128, np.uint8)
    out = Output(OutputSpec(120, 80, scale="fill", grain=0.3, vignette=0.0))
    a, b, a2 = out(grey, 5), out(grey, 6), Output(OutputSpec(120, 80, scale="fill", grain=0.3))(grey, 5)
    assert np.array_equal(a, a2)                        # same frame index, same grain
    assert (a != b).mean() > 0.5                        # the next frame has other grain
    assert 2.0 < a.astype(float).std() < 20.0           # visible, not a snowstorm
    assert abs(a.astype(float).mean() - 128) < 2.0      # grain does not shift the brightness


def test_a_busy_osc_port_stops_the_piece_before_its_window_naming_the_key(tiny_checkpoint):
    import socket
    busy = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    busy.bind(("127.0.0.1", 0))
    try:
        r = _cli("--model", str(tiny_checkpoint), "--windowed", "--seconds", "2", "--set", "inputs.osc.enabled=true",
                 "--set", f"inputs.osc.port={busy.getsockname()[1]}", "--set", "sound.enabled=false")
    finally:
        busy.close()
    assert r.returncode == 2, r.stderr
    assert "inputs.osc.port" in r.stderr and "Traceback" not in r.stderr


def test_grain_falls_on_the_picture_and_leaves_the_bars_black():
    from installation.output import Output, OutputSpec
    grey = np.full((32, 32, 3), 128, np.uint8)
    out = Output(OutputSpec(160, 80, scale="fit", grain=1.0, vignette=0.0))     # bars left and right
    frame = out(grey, 3)
    sw, sh, x0, y0 = out.placement(32, 32)
    assert x0 > 0 and frame[:, :x0].max() == 0 and frame[:, x0 + sw:].max() == 0
    assert frame[:, x0:x0 + sw].std() > 5                                      # grain on the picture
