"""The unattended kiosk: the course survives SIGKILL and bad files, systemd hears of presented
frames, broken frames are stepped back from, a fatal error exits non-zero, a day runs steady."""
import logging
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pygame
import pytest
import torch

from installation.course import CourseState, Overrides
from installation.engine import Engine
from installation.kiosk import persist
from installation.damage import is_device_fatal
from installation.kiosk.faults import FrameGuard, frame_fault
from installation.kiosk.health import rss_bytes
from installation.kiosk.notify import Notifier
from installation.kiosk.persist import RunRecord, SavedState, StateStore, decide
from installation.kiosk.runtime import KioskError, KioskRun
from installation.piece import Piece
from installation.settings import settings_from_dict
from installation.state import FrameState

from conftest import make_tiny_checkpoint

ROOT = Path(__file__).resolve().parent.parent
SAVE_S = 0.5        # kiosk.save_interval_s in the subprocess tests
SLACK_S = 0.5       # a frame (dt is capped at 0.25 s) and a watchdog ping's granularity


@pytest.fixture(autouse=True)
def _no_file_logging_left_behind():
    """KioskRun.start adds a rotating file handler to the root logger; take it away again."""
    before = list(logging.getLogger().handlers)
    yield
    for h in logging.getLogger().handlers:
        if h not in before:
            logging.getLogger().removeHandler(h)
            h.close()


def _settings(model, state_file, *more):
    # OSC on any free port (inputs.osc.port=0): the default 9000 may be another program's
    return settings_from_dict({}, [f"model.path={model}", "model.device=cpu", f"kiosk.state_file={state_file}",
                                   "sound.enabled=false", "inputs.osc.port=0", *more])


def _saved(elapsed_s, running=False, run_s=1000.0, quick=0, boot=None, decay=0.0, drawing=True):
    return SavedState(course=CourseState(elapsed_s=elapsed_s, seed=1, overrides=Overrides(decay=decay)),
                      t=elapsed_s, walk_phase=elapsed_s,
                      run=RunRecord(running=running, run_s=run_s, quick_crashes=quick, drawing=drawing,
                                    boot_id=persist.boot_id() if boot is None else boot),
                      saved_at_s=time.time())


# ------------------------------------------------------------------ the state file

def test_state_round_trips_and_a_torn_write_leaves_the_old_state(tmp_path):
    store = StateStore(tmp_path / "state.json")
    a = _saved(1234.5, decay=-0.25)
    assert store.write(a)
    again = store.read()
    assert again.course == a.course and again.t == a.t and again.run == a.run
    # a power cut while writing: the temp file is half there, the rename never happened
    (tmp_path / "state.json.tmp").write_bytes(persist.encode(_saved(9999.0))[:40])
    assert store.read().course.elapsed_s == 1234.5
    store.write_later(_saved(2000.0))
    store.write(_saved(3000.0))                     # newer: a late background write must not undo it
    store.close()
    assert store.read().course.elapsed_s == 3000.0


def test_a_kiosk_stopped_by_a_bad_target_ends_cleanly(tmp_path, tiny_checkpoint, capsys, monkeypatch):
    """A mistake in the settings found before the window opens is no crash: the state says ended."""
    from installation.cli import main
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    state = tmp_path / "state.json"
    assert main(["--kiosk", "--seconds", "1", "--model", str(tiny_checkpoint), "--set", f"kiosk.state_file={state}",
                 "--set", "symptoms.plaques.target=up99"]) == 2
    assert "symptoms.plaques.target: 'up99'" in capsys.readouterr().err
    assert not StateStore(state).read().run.running


def test_a_kiosk_given_a_model_with_nan_weights_shows_the_bundled_one_and_says_why(tmp_path, caplog, monkeypatch):
    from installation import cli, engine
    bundled = make_tiny_checkpoint(tmp_path / "bundled.safetensors", seed=3)
    monkeypatch.setattr(engine, "BUNDLED_MODEL", bundled)
    nan = make_tiny_checkpoint(tmp_path / "diverged.safetensors", nan=True)
    run = KioskRun.start(_settings(nan, tmp_path / "state.json"), environ={"HOME": str(tmp_path)})
    with caplog.at_level(logging.INFO, logger="lapses.kiosk"):
        model = run.load_model(cli.load_settings_model, (cli.UsageError,))
    run.close()
    assert model.path == bundled
    assert f"the model {nan} cannot be used" in caplog.text and "NaN" in caplog.text
    assert "falling back to the bundled model" in caplog.text


def test_only_the_newest_files_set_aside_are_kept(tmp_path):
    """A piece that crashes in a loop for weeks sets its state aside once per crash window: the
    newest ten of each reason stay for a technician, older ones go, and other files are never touched."""
    path = tmp_path / "state.json"
    old = [tmp_path / f"state.json.crashed-202611{d:02d}-120000" for d in range(1, 13)]
    old.append(tmp_path / "state.json.crashed-20261112-120000-2")           # a second one that second
    others = [tmp_path / "state.json.corrupt-20261101-120000", tmp_path / "state.json.crashed-by-hand",
              tmp_path / "notes.txt"]
    for p in old + others:
        p.write_text(p.name)
    path.write_bytes(persist.encode(_saved(10.0)))
    new = StateStore(path).set_aside("crashed")
    kept = sorted(p.name for p in tmp_path.glob("state.json.crashed-2*"))
    assert len(kept) == persist.KEEP_ASIDE == 10 and new.name in kept
    assert kept[0] == "state.json.crashed-20261105-120000"                  # 13 old + the new: 4 went
    assert "state.json.crashed-20261112-120000-2" in kept
    assert all(p.exists() for p in others) and not path.exists()
    later = tmp_path / "later"                                  # a clock set back (no RTC before NTP):
    later.mkdir()                                               # the new file's name sorts oldest, and stays
    for d in range(1, 11):
        (later / f"state.json.crashed-202701{d:02d}-120000").write_text("old")
    (later / "state.json").write_bytes(persist.encode(_saved(10.0)))
    new = StateStore(later / "state.json").set_aside("crashed")
    assert new.exists() and len(list(later.glob("state.json.crashed-*"))) == 10
    assert not (later / "state.json.crashed-20270101-120000").exists()


@pytest.mark.parametrize("damage", ["truncated", "nan decay", "not ours", "binary"])
def test_a_corrupt_state_is_set_aside_and_the_course_restarts(tmp_path, tiny_checkpoint, caplog, damage):
    path = tmp_path / "state.json"
    good = persist.encode(_saved(5000.0))
    bad = {"truncated": good[: len(good) // 2],
           "nan decay": good.replace(b'"decay": 0.0', b'"decay": NaN'),
           "not ours": b'{"elapsed_s": 5000}',
           "binary": b"\xff\xfe\x00garbage"}[damage]
    assert bad != good
    path.write_bytes(bad)
    with caplog.at_level(logging.INFO, logger="lapses.kiosk"):
        run = KioskRun.start(_settings(tiny_checkpoint, path), environ={"HOME": str(tmp_path)})
    assert run.piece.course_state.elapsed_s == 0.0                 # from the settings
    aside = list(tmp_path.glob("state.json.corrupt-*"))
    assert len(aside) == 1 and aside[0].read_bytes() == bad        # kept for a technician, not lost
    assert "cannot be used" in caplog.text
    run.close()
    assert not StateStore(path).read().run.running


def test_a_relative_state_file_is_kept_beside_the_settings_whatever_folder_the_kiosk_starts_in(
        tmp_path, tiny_checkpoint, monkeypatch):
    from installation.settings import load_settings
    gallery = tmp_path / "gallery"
    gallery.mkdir()
    settings_file = gallery / "settings.yaml"
    settings_file.write_text(f"model: {{path: {tiny_checkpoint}, device: cpu}}\nsound: {{enabled: false}}\n"
                             "kiosk: {state_file: state/course.json}\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)                  # as a service started from its own folder
    KioskRun.start(load_settings(settings_file), environ={"HOME": str(tmp_path)}).close()
    assert StateStore(gallery / "state" / "course.json").read() is not None
    assert not any(elsewhere.iterdir())


def test_a_state_file_that_names_a_folder_or_the_settings_is_refused_untouched(tmp_path, tiny_checkpoint):
    from installation.settings import load_settings
    settings_file = tmp_path / "gallery.yaml"
    text = f"model: {{path: {tiny_checkpoint}, device: cpu}}\nsound: {{enabled: false}}\n"
    settings_file.write_text(text)
    folder = tmp_path / "states"
    folder.mkdir()
    for target in (settings_file, folder, tiny_checkpoint):
        s = load_settings(settings_file, [f"kiosk.state_file={target}"])
        with pytest.raises(KioskError, match="kiosk.state_file"):
            KioskRun.start(s, environ={"HOME": str(tmp_path)})
    assert settings_file.read_text() == text and folder.is_dir() and tiny_checkpoint.is_file()
    assert not list(tmp_path.glob("*.corrupt-*"))                     # nothing renamed aside


def test_a_state_file_that_names_a_device_or_another_programs_file_is_refused_untouched(tmp_path, tiny_checkpoint,
                                                                                        capsys):
    """A mistyped kiosk.state_file (/dev/null, /etc/passwd, a YAML, the log) is a mistake to say, exit 2: the
    start, `status` and `reset-course` would otherwise rename it aside and write a state in its place."""
    from installation.cli import main
    from installation.kiosk.runtime import KioskError
    fifo = tmp_path / "fifo"                                  # a device or pipe, like /dev/null
    os.mkfifo(fifo)
    passwd = tmp_path / "passwd"
    passwd.write_text("root:x:0:0:root:/root:/bin/bash\n")
    notes = tmp_path / "gallery notes.yaml"
    notes.write_text("course: {duration: 30d}\n")
    log = tmp_path / "lapses.log"                             # the piece's own log, even before it exists
    empty = tmp_path / "empty.yaml"
    empty.write_text("{}\n")
    texts = {passwd: passwd.read_text(), notes: notes.read_text()}
    for target in (passwd, notes, log, fifo):             # (without the check, a pipe would hang the start)
        with pytest.raises(KioskError, match="kiosk.state_file"):
            KioskRun.start(_settings(tiny_checkpoint, target), environ={"HOME": str(tmp_path)})
        for command in ("status", "reset-course"):
            assert main([command, "--settings", str(empty), "--set", f"kiosk.state_file={target}"]) == 2
            err = capsys.readouterr().err
            assert "kiosk.state_file" in err and "Traceback" not in err
    assert fifo.is_fifo() and not log.exists() and {p: p.read_text() for p in texts} == texts
    assert "e.g. ~/.local/state/lapses/state.json" in persist.refusal(Path("/dev/null"))   # not /dev/state.json
    assert not [p.name for p in tmp_path.iterdir() if any(w in p.name for w in (".corrupt-", ".reset-", ".lock"))]
    # where the piece has kept its state before (its lock file beside it), whatever is there is its own: set aside
    (tmp_path / "passwd.lock").write_text("")
    KioskRun.start(_settings(tiny_checkpoint, passwd), environ={"HOME": str(tmp_path)}).close()
    assert [p.read_text() for p in tmp_path.glob("passwd.corrupt-*")] == [texts[passwd]]
    assert not StateStore(passwd).read().run.running


def test_crash_window_decisions():
    assert decide(None, 120, "b").restore is False
    assert decide(_saved(10, running=False, run_s=5, boot="b"), 120, "b").restore            # clean exit
    first = decide(_saved(10, running=True, run_s=5, boot="b"), 120, "b")                    # a quick crash
    assert first.restore and first.quick_crashes == 1
    second = decide(_saved(10, running=True, run_s=5, quick=1, boot="b"), 120, "b")         # a second one
    assert not second.restore and second.set_aside == "crashed"
    assert decide(_saved(10, running=True, run_s=500, quick=1, boot="b"), 120, "b").restore  # after long
    assert decide(_saved(10, running=True, run_s=5, quick=1, boot="old"), 120, "b").restore  # a power cut
    assert decide(_saved(10, running=True, run_s=5, quick=5, boot="b"), 0, "b").restore      # 0 = always
    # stopped before it drew (no display yet, a stop during the start): the course cannot be the cause
    early = decide(_saved(10, running=True, run_s=5, quick=1, boot="b", drawing=False), 120, "b")
    assert early.restore and early.quick_crashes == 1 and not early.set_aside


# ------------------------------------------------------------------ sd_notify

class NotifySink:
    """A fake systemd: a unix datagram socket that keeps what it receives, with arrival times."""

    def __init__(self, address):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(address)
        self.sock.settimeout(0.1)
        self.messages: list[tuple[float, dict]] = []
        self._stop = False
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self):
        while not self._stop:
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            fields = dict(line.split("=", 1) for line in data.decode().splitlines() if "=" in line)
            self.messages.append((time.monotonic(), fields))

    def wait_for(self, key, since=0, timeout=60.0, proc=None):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            for i, (_, m) in enumerate(self.messages[since:], since):
                if key in m:
                    return i, m
            if proc is not None and proc.poll() is not None:
                raise AssertionError(f"the piece exited ({proc.returncode}) before sending {key}: "
                                     f"{proc.err_path.read_text()}")
            time.sleep(0.02)
        raise AssertionError(f"no {key} within {timeout} s")

    def elapsed(self, since=0):
        return [float(m["X_LAPSES_ELAPSED_S"]) for _, m in self.messages[since:] if "X_LAPSES_ELAPSED_S" in m]

    def close(self):
        self._stop = True
        self.sock.close()


def test_notify_speaks_the_datagram_protocol(tmp_path):
    sink = NotifySink(str(tmp_path / "notify"))
    n = Notifier.from_env({"NOTIFY_SOCKET": str(tmp_path / "notify"), "WATCHDOG_USEC": "2000000",
                           "WATCHDOG_PID": str(os.getpid())})
    assert n.ping_every_s == 1.0
    assert n.ready("up") and n.watchdog(100.0, "X_A=1") and not n.watchdog(100.5) and n.watchdog(101.0)
    sink.wait_for("X_A")
    end = time.monotonic() + 10.0                             # all three sent; wait for the reader, not a fixed nap
    while len(sink.messages) < 3 and time.monotonic() < end:
        time.sleep(0.01)
    time.sleep(0.05)                                          # and nothing more than three comes
    kinds = [m for _, m in sink.messages]
    assert kinds[0]["READY"] == "1" and kinds[0]["STATUS"] == "up" and sum("WATCHDOG" in m for m in kinds) == 2
    sink.close()
    abstract = f"lapses-test-{os.getpid()}"
    sink = NotifySink("\0" + abstract)                        # '@name' = Linux's abstract namespace
    assert Notifier(f"@{abstract}").send("STATUS=abstract")
    sink.wait_for("STATUS")
    sink.close()
    assert Notifier.from_env({"NOTIFY_SOCKET": str(tmp_path / "nobody")}).send("READY=1") is False   # never raises
    other = Notifier.from_env({"NOTIFY_SOCKET": "/x", "WATCHDOG_USEC": "1000", "WATCHDOG_PID": "1"})
    assert other.ping_every_s is None                         # the watchdog is another process's job


# ------------------------------------------------------------------ broken frames

def test_frame_guard_steps_back_from_broken_frames_but_not_from_intended_lapses(tiny_checkpoint):
    from installation.symptoms.lapses import darkness
    s = settings_from_dict({}, [f"model.path={tiny_checkpoint}", "model.device=cpu", "display.grain=0",
                                "display.vignette=0"])
    e = Engine.from_settings(s, 64, 64)
    guard = e.guard = FrameGuard(e.damage, e.hooks)
    ok = FrameState(t=1.0, walk_phase=2.0, seed=1, intensities={"synapse_loss": 0.3})
    e.render(ok)
    assert guard.faults == 0
    good_key = e.damage.live()[0]
    dead = ok.with_(intensities={"synapse_loss": 1.0})         # every weight gone: one flat colour
    assert frame_fault(e.generator(e.latent(dead))) is None    # (still the 0.3 weights loaded)
    frame = e.render(dead)
    assert guard.faults == 1 and e.damage.live()[0] == good_key
    assert frame.std() > 0                                     # the last good picture, not an empty one
    e.render(dead.with_(t=1.1))                                # stays at the good level: no flicker, no new fault
    assert guard.faults == 1 and e.damage.live()[0] == good_key
    e.render(ok.with_(intensities={"synapse_loss": 0.2}))      # below the failed level: followed again
    assert e.damage.live()[0] != good_key and guard.faults == 1
    # NaN from the weights (as exponent bit flips give): stepped back as well
    hook = e.generator.to_rgb.register_forward_hook(
        lambda m, i, out: out * float("nan") if dict((e.damage.live()[0] or ((),))[0]).get("bit_rot") else None)
    frame = e.render(ok.with_(intensities={"synapse_loss": 0.2, "bit_rot": 0.5}))
    assert guard.faults == 2 and np.isfinite(frame).all() and frame.std() > 0
    hook.remove()
    # an intended blackout is no fault: lapses act after the guard looked
    t = next(t for t in np.arange(0, 200, 0.05) if darkness(t, 1.0, 1) == 1.0)
    black = e.render(FrameState(t=float(t), walk_phase=2.0, seed=1, intensities={"lapses": 1.0}))
    assert black.max() == 0 and guard.faults == 2
    e.close()


def test_an_unexpected_error_ends_the_run_non_zero_and_counts_as_a_crash(tmp_path, tiny_checkpoint, capsys):
    class Broken:
        def run(self, opts, piece):
            piece.step(30.0)
            raise ValueError("something nobody foresaw")

    path = tmp_path / "state.json"
    run = KioskRun.start(_settings(tiny_checkpoint, path), environ={"HOME": str(tmp_path)})
    run.begin_drawing()                                  # as the app does before each frame
    with pytest.raises(SystemExit) as e:
        run.run(Broken(), None)
    assert e.value.code == 3 and "restarts" in capsys.readouterr().err
    saved = StateStore(path).read()
    assert saved.run.running and "nobody foresaw" in saved.run.error and saved.course.elapsed_s == 30.0
    assert decide(saved, 120, persist.boot_id()).quick_crashes == 1


def test_failing_before_the_first_frame_never_sets_the_course_aside(tmp_path, tiny_checkpoint, capsys):
    """A display that is not ready at login fails before anything is drawn, again and again:
    that is no fault of the saved course, which must survive it (two quick crashes would not)."""
    class NoDisplay:
        def run(self, opts, piece):
            raise RuntimeError("nosuch not available")

    path = tmp_path / "state.json"
    run = KioskRun.start(_settings(tiny_checkpoint, path), environ={"HOME": str(tmp_path)})
    run.piece.step(40.0)
    run.close()                                          # a course 40 s along, ended cleanly
    for _ in range(3):
        run = KioskRun.start(_settings(tiny_checkpoint, path), environ={"HOME": str(tmp_path)})
        assert run.piece.course_state.elapsed_s == 40.0
        with pytest.raises(SystemExit):
            run.run(NoDisplay(), None)
    assert not list(tmp_path.glob("state.json.crashed-*")) and StateStore(path).read().run.quick_crashes == 0
    capsys.readouterr()


def test_device_errors_are_fatal_and_others_are_not():
    assert is_device_fatal(RuntimeError("CUDA error: an illegal memory access was encountered"))
    assert is_device_fatal(torch.cuda.OutOfMemoryError("CUDA out of memory"))
    assert not is_device_fatal(ValueError("CUDA error"))
    assert not is_device_fatal(RuntimeError("shape mismatch"))


# ------------------------------------------------------------------ the display changes under the app

def test_kiosk_display_hints_and_bounded_logs(tmp_path, monkeypatch):
    from installation.kiosk import display, health
    calls = []
    monkeypatch.setattr(display.shutil, "which", lambda name: f"/usr/bin/{name}")
    env = {"DISPLAY": ":0", "SDL_VIDEO_MINIMIZE_ON_FOCUS_LOSS": "1"}      # a technician's own choice stays
    done = display.prepare(env, run=lambda args, **kw: calls.append(args) or subprocess.CompletedProcess(args, 0))
    assert env["SDL_VIDEO_ALLOW_SCREENSAVER"] == "0" and env["SDL_VIDEO_MINIMIZE_ON_FOCUS_LOSS"] == "1"
    assert calls == [["/usr/bin/xset", "s", "off", "s", "noblank", "-dpms"]] and len(done) == 2
    assert display.prepare({"SDL_VIDEODRIVER": "dummy", "DISPLAY": ":0"}, run=None)   # no X11: no xset, no error
    path = health.setup_file_logging(tmp_path)
    handler = next(h for h in logging.getLogger().handlers if getattr(h, "baseFilename", "") == str(path))
    assert handler.maxBytes * (handler.backupCount + 1) <= 10_000_000                 # ~10 MB at most, ever


def test_a_display_change_and_a_lost_display_do_not_end_the_show(tiny_checkpoint, monkeypatch):
    from installation.app import App, RunOptions
    s = _settings(tiny_checkpoint, "/dev/null", "display.fullscreen=false", "display.width=96",
                  "display.height=64", "display.fps_limit=0", "display.vsync=false")
    engines = []

    class Hooks:                                  # stands in for a KioskRun: told of each presented frame
        frames = 0
        sizes = []

        def begin_drawing(self):
            pass

        def presented(self, piece):
            self.frames += 1
            self.sizes.append((engines[0].output.spec.width, engines[0].output.spec.height))
            if self.frames == 3:                  # the monitor's mode changed under the window
                pygame.display.set_mode((80, 60))
                pygame.event.post(pygame.event.Event(pygame.VIDEORESIZE, size=(80, 60), w=80, h=60))

    real_flip, failures = pygame.display.flip, []

    def flip():                                   # once: the display is gone (a monitor unplugged)
        if hooks.frames == 6 and not failures:
            failures.append(1)
            raise pygame.error("video system not initialized")
        real_flip()

    hooks = Hooks()
    monkeypatch.setattr(pygame.display, "flip", flip)
    app = App(s, engine_factory=lambda w, h: engines.append(Engine.from_settings(s, w, h)) or engines[-1])
    report = app.run(RunOptions(windowed=True, seconds=60, script={12: ["escape"]}, kiosk_run=hooks))
    assert failures and report.frames == 13 and hooks.frames == 13
    assert hooks.sizes[:3] == [(96, 64)] * 3 and (80, 60) in hooks.sizes[3:6]          # followed the mode change
    assert hooks.sizes[-1] == (96, 64) and len(engines) == 1      # reopened at the settings' size, same engine


# ------------------------------------------------------------------ a simulated day

@pytest.mark.slow
def test_soak_a_simulated_day_keeps_memory_and_frame_time_steady(tiny_checkpoint, tmp_path):
    frames = 2400
    s = _settings(tiny_checkpoint, tmp_path / "state.json", "course.duration=12h", "course.end=rebirth",
                  "course.lucid.every_s=1200")
    engine = Engine.from_settings(s, 64, 48)
    guard = engine.guard = FrameGuard(engine.damage, engine.hooks)
    piece = Piece(s)
    store = StateStore(tmp_path / "state.json")
    dt = 86400.0 / frames                                   # a day of course time in `frames` frames
    times, rss = [], []
    for i in range(frames):
        piece.step(dt)
        t0 = time.perf_counter()
        frame = engine.render(piece.frame_state(), sync=False)   # as live: damage on the worker
        times.append(time.perf_counter() - t0)
        assert frame.shape == (48, 64, 3)
        if i % 50 == 0:
            store.write_later(SavedState(course=piece.course_state, t=piece.t, walk_phase=piece.walk_phase))
            rss.append(rss_bytes())
    engine.close()
    store.close()
    assert piece.sample().point.cycle >= 1                     # a whole life passed, and a rebirth
    # the day is two lives of 12 h: the second half of each (the heavy, late course) is compared, so
    # a frame time that grows over the run shows, and the late course's own cost does not count as growth
    q = frames // 4
    first, last = statistics.median(times[q:2 * q]), statistics.median(times[-q:])
    growth_mb = (max(rss[len(rss) // 4:]) - rss[len(rss) // 4]) / 2**20
    print(f"soak: median frame, late course, first life {first * 1e3:.2f} -> second {last * 1e3:.2f} ms, "
          f"RSS growth {growth_mb:.1f} MB, {guard.faults} stepped-back frames")
    assert last < 1.5 * first + 0.0005, (first, last)
    assert growth_mb < 40, growth_mb
    assert StateStore(tmp_path / "state.json").read().course.elapsed_s > 0.9 * 86400


# ------------------------------------------------------------------ the app in a subprocess

LAUNCH = """\
import os, sys
from pathlib import Path
sys.path.insert(0, {root!r})
from installation import engine
if os.environ.get("TEST_BUNDLED"):                    # the bundled model, for this test
    engine.BUNDLED_MODEL = Path(os.environ["TEST_BUNDLED"])
fail_after = int(os.environ.get("TEST_CUDA_FAIL_AFTER", "0"))
if fail_after:                                        # the GPU dies after a few frames
    render, count = engine.Engine.render, [0]
    def failing(self, state, sync=True, **kw):
        count[0] += 1
        if count[0] > fail_after:
            raise RuntimeError("CUDA error: an illegal memory access was encountered")
        return render(self, state, sync, **kw)
    engine.Engine.render = failing
hang_after = int(os.environ.get("TEST_HANG_AFTER", "0"))
if hang_after:                                        # a stuck driver: the render never returns
    import time
    render_, count_ = engine.Engine.render, [0]
    def hanging(self, state, sync=True, **kw):
        count_[0] += 1
        if count_[0] > hang_after:
            time.sleep(3600)
        return render_(self, state, sync, **kw)
    engine.Engine.render = hanging
from installation.cli import main
sys.exit(main(sys.argv[1:]))
"""


class Kiosk:
    """Starts the piece in kiosk mode in a subprocess with a fake systemd listening."""

    def __init__(self, tmp_path, model, *more):
        self.tmp = tmp_path
        self.state = tmp_path / "state" / "state.json"
        (tmp_path / "empty.yaml").write_text("{}\n")        # the dataclass defaults, not the shared file
        self.launch = tmp_path / "launch.py"
        self.launch.write_text(LAUNCH.format(root=str(ROOT)))
        self.args = ["--settings", str(tmp_path / "empty.yaml"), "--kiosk", "--windowed", "--model", str(model),
                     *[a for kv in ["display.width=96", "display.height=64", "display.fps_limit=30",
                                    "sound.enabled=false", "inputs.osc.port=0", f"kiosk.state_file={self.state}",
                                    f"kiosk.save_interval_s={SAVE_S}", "kiosk.health_every_s=1",
                                    "course.duration=1d", *more] for a in ("--set", kv)]]
        self.sink = NotifySink(str(tmp_path / "notify"))
        self.procs = []

    def close(self):
        """Whatever a failed assertion left running is killed: a kiosk without --seconds never ends."""
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=30)
        self.sink.close()

    def start(self, *extra, **env):
        full = dict(os.environ, SDL_VIDEODRIVER="dummy", SDL_AUDIODRIVER="dummy", OMP_NUM_THREADS="1",
                    NOTIFY_SOCKET=str(self.tmp / "notify"), WATCHDOG_USEC="200000")
        full.update(env)
        full.pop("WATCHDOG_PID", None)
        for name in [name for name, value in full.items() if value is None]:     # NAME=None: unset
            del full[name]
        self.since = len(self.sink.messages)
        self.runs = getattr(self, "runs", 0) + 1
        err_path = self.tmp / f"run{self.runs}.err"
        with open(err_path, "w") as err:             # a file, not a pipe: a pipe nobody reads can fill and stall it
            proc = subprocess.Popen([sys.executable, str(self.launch), *self.args, *extra], cwd=ROOT, env=full,
                                    stdout=subprocess.DEVNULL, stderr=err)
        proc.err_path = err_path
        self.procs.append(proc)
        return proc

    def first_elapsed(self, proc):
        i, _ = self.sink.wait_for("READY", self.since, proc=proc)
        self.sink.wait_for("X_LAPSES_ELAPSED_S", i, proc=proc)
        return self.sink.elapsed(i)[0]

    def saved(self):
        return StateStore(self.state).read()

    def log(self):
        return (self.state.parent / "lapses.log").read_text()


def _kill(proc):
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)


def _finish(proc, timeout=60) -> str:
    proc.wait(timeout=timeout)
    return proc.err_path.read_text()


@pytest.fixture
def kiosk(tmp_path):
    made = []
    yield lambda *a: made.append(Kiosk(tmp_path, *a)) or made[-1]
    for k in made:
        k.close()


@pytest.mark.slow
def test_sigkill_at_random_points_resumes_from_a_recent_state(kiosk, tiny_checkpoint):
    rng = random.Random(6)
    k = kiosk(tiny_checkpoint, "kiosk.crash_window_s=0")
    k.state.parent.mkdir()
    StateStore(k.state).write(_saved(1000.0))
    floor = 1000.0
    # killed while starting (imports, model), before any frame: the saved course is untouched
    proc = k.start()
    time.sleep(rng.uniform(0.2, 1.0))
    _kill(proc)
    assert k.saved().course.elapsed_s >= floor
    for _ in range(3):                                   # killed at random moments of the show
        proc = k.start()
        resumed = k.first_elapsed(proc)
        assert resumed >= floor - 1e-5                   # resumed: the memories did not return
        time.sleep(rng.uniform(0.0, 1.5))
        killed_at = time.time()
        _kill(proc)
        time.sleep(0.2)                                  # datagrams sent before the kill, still in flight
        last_seen = max(k.sink.elapsed(k.since))
        saved = k.saved()
        print(f"resumed at {resumed:.2f} s, last reported {last_seen:.2f} s, saved {saved.course.elapsed_s:.2f} s "
              f"{killed_at - saved.saved_at_s:.2f} s before the kill")
        assert saved.run.running                         # the next start knows this was no clean exit
        assert saved.course.elapsed_s >= last_seen - SAVE_S - SLACK_S, (saved.course.elapsed_s, last_seen)
        assert killed_at - saved.saved_at_s <= SAVE_S + 1.0
        floor = saved.course.elapsed_s


@pytest.mark.slow
def test_two_quick_crashes_begin_afresh_and_a_gpu_failure_exits_non_zero(kiosk, tiny_checkpoint):
    k = kiosk(tiny_checkpoint, "kiosk.crash_window_s=60")
    k.state.parent.mkdir()
    StateStore(k.state).write(_saved(5000.0))
    proc = k.start()                                     # crash 1: killed soon after its start
    assert k.first_elapsed(proc) >= 5000.0
    _kill(proc)
    proc = k.start(TEST_CUDA_FAIL_AFTER="10")            # crash 2: the GPU fails
    assert k.first_elapsed(proc) >= 5000.0               # one quick crash: still restored
    err = _finish(proc)
    assert proc.returncode == 3, err                     # non-zero: the supervisor restarts it
    assert "illegal memory access" in err and "restarts" in err
    assert k.saved().run.running and "CUDA error" in k.saved().run.error
    assert "fatal error" in k.log()
    proc = k.start()                                     # a second quick crash: begin afresh
    assert k.first_elapsed(proc) < 100.0
    proc.send_signal(signal.SIGTERM)                     # systemctl stop: a clean end
    err = _finish(proc)
    assert proc.returncode == 0, err
    aside = list(k.state.parent.glob("state.json.crashed-*"))
    assert len(aside) == 1 and StateStore(aside[0]).read().course.elapsed_s >= 5000.0
    assert "crashed 2 times in a row" in k.log()
    assert not k.saved().run.running


@pytest.mark.slow
def test_the_watchdog_hears_only_of_presented_frames(kiosk, tiny_checkpoint):
    """READY=1 after the first frame, WATCHDOG=1 while frames reach the screen, and silence once they stop:
    a render that hangs (a stuck driver) leaves the process alive and systemd's watchdog to kill it."""
    k = kiosk(tiny_checkpoint)
    proc = k.start(TEST_HANG_AFTER="20")                 # the 21st frame never comes
    i, ready = k.sink.wait_for("READY", k.since, proc=proc)
    assert ready["READY"] == "1" and ready["MAINPID"] == str(proc.pid)
    assert not any("WATCHDOG" in m for _, m in k.sink.messages[k.since:i])   # nothing before the first frame
    k.sink.wait_for("WATCHDOG", i, proc=proc)
    end = time.monotonic() + 120.0                       # pings every 0.1 s (WATCHDOG_USEC=200000) ... until the hang
    while time.monotonic() - k.sink.messages[-1][0] < 3.0:
        assert time.monotonic() < end, "the watchdog pings never stopped"
        assert proc.poll() is None, proc.err_path.read_text()
        time.sleep(0.1)
    heard = len(k.sink.messages)
    time.sleep(4.0)
    assert proc.poll() is None                           # hung, not ended: the supervisor's watchdog must act
    assert len(k.sink.messages) == heard                 # and it hears nothing while no frame is presented
    pings = [m for _, m in k.sink.messages[i:] if "WATCHDOG" in m]
    assert 2 <= len(pings) <= 21                         # at most one a frame: 20 frames were presented
    _kill(proc)


@pytest.mark.slow
def test_truncated_state_and_model_fall_back_and_status_reports(kiosk, tmp_path, tiny_checkpoint, capsys):
    from installation.cli import main
    bundled = make_tiny_checkpoint(tmp_path / "bundled.safetensors", seed=3)
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(tiny_checkpoint.read_bytes()[:3000])
    k = kiosk(broken)
    k.state.parent.mkdir()
    truncated = persist.encode(_saved(5000.0))[:100]
    k.state.write_bytes(truncated)
    proc = k.start("--seconds", "1.5", TEST_BUNDLED=str(bundled))
    err = _finish(proc)
    assert proc.returncode == 0, err
    log = k.log()
    assert "falling back to the bundled model" in log and str(broken) in log
    assert "cannot be used" in log
    assert [p.read_bytes() for p in k.state.parent.glob("state.json.corrupt-*")] == [truncated]
    saved = k.saved()
    assert not saved.run.running and saved.course.elapsed_s < 100.0      # from the settings
    capsys.readouterr()
    args = ["--settings", str(tmp_path / "empty.yaml"), "--set", f"kiosk.state_file={k.state}"]
    assert main(["status", *args]) == 0
    out = capsys.readouterr().out
    assert "progress 0.0000" in out and "ended cleanly" in out and "health fps=" in out
    assert main(["status", "--settings", str(tmp_path / "empty.yaml"), "--set",
                 f"kiosk.state_file={tmp_path / 'nowhere' / 'state.json'}"]) == 2
    assert "nothing saved yet" in capsys.readouterr().err


def test_a_kiosk_with_no_display_exits_for_systemd_to_retry_naming_it(kiosk, tiny_checkpoint):
    """No DISPLAY, no Wayland, SDL_VIDEODRIVER unset (a unit started before the desktop): SDL would fall
    back to 'offscreen' and the piece report healthy frames to a black screen. It exits non-zero, not 2
    (which the unit never restarts), and no fault of the saved course is counted."""
    k = kiosk(tiny_checkpoint)
    proc = k.start("--seconds", "5", SDL_VIDEODRIVER=None, DISPLAY=None, WAYLAND_DISPLAY=None)
    err = _finish(proc)
    assert proc.returncode not in (0, 2) and proc.returncode == 3, err
    assert "no display: DISPLAY and WAYLAND_DISPLAY are not set" in err and "Traceback" not in err
    assert "'offscreen' video driver" in err or "'dummy' video driver" in err
    assert "no display" in k.log() and "first frame" not in k.log()
    saved = k.saved()
    assert not saved.run.drawing and "no display" in saved.run.error
    assert not [m for _, m in k.sink.messages if "READY=1" in m]


def test_no_display_is_said_plainly_and_the_health_line_names_the_video_driver(tiny_checkpoint, monkeypatch,
                                                                                 caplog):
    from installation.app import App, RunOptions, unseen_display
    from installation.kiosk.health import Health
    assert unseen_display("x11", {}) is None and unseen_display("kmsdrm", {}) is None
    assert unseen_display("dummy", {"SDL_VIDEODRIVER": "dummy"}) is None          # asked for: the tests, say
    assert "DISPLAY=:9 could not be opened" in unseen_display("offscreen", {"DISPLAY": ":9"})
    assert "SDL_VIDEODRIVER=offscreen" in unseen_display("offscreen", {})         # how to mean it
    for name in ("DISPLAY", "WAYLAND_DISPLAY"):
        monkeypatch.delenv(name, raising=False)
    # SDL keeps the dummy driver the tests ask for (an in-process fall-back to 'offscreen' left SDL in a
    # state where a later test's set_mode crashed), and the piece is told nothing asked for it
    import installation.app as app_module
    seen = app_module.unseen_display
    monkeypatch.setattr(app_module, "unseen_display",
                        lambda driver, environ: seen(driver, {k: v for k, v in environ.items() if k != "SDL_VIDEODRIVER"}))
    s = _settings(tiny_checkpoint, "/dev/null", "display.width=64", "display.height=48", "display.fps_limit=0")
    lines = []

    class Hooks:                                  # a kiosk run's part in the loop: the health line
        def begin_drawing(self):
            pass

        def presented(self, piece):
            lines.append(Health(1).line(piece))
    with caplog.at_level(logging.INFO, logger="lapses.app"):
        report = App(s).run(RunOptions(windowed=True, seconds=60, script={3: ["escape"]}, kiosk_run=Hooks()))
    assert report.frames == 4                     # not a kiosk: it runs, and says so
    assert "no display: DISPLAY and WAYLAND_DISPLAY are not set" in caplog.text
    driver = lines[0].rsplit("video=", 1)[1]
    assert driver in ("offscreen", "dummy") and f"SDL video driver {driver}" in caplog.text


# ------------------------------------------------------------------ the service

def test_install_service_writes_a_supervised_unit_and_never_overwrites(tmp_path, monkeypatch, capsys):
    from installation.cli import main
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    empty = tmp_path / "empty.yaml"
    empty.write_text("{}\n")
    assert main(["install-service", "--print", "--settings", str(empty)]) == 0
    printed = capsys.readouterr().out
    for line in ("Type=notify", "WatchdogSec=", "Restart=always", "StartLimitIntervalSec=", "StartLimitBurst=",
                 "RestartPreventExitStatus=2", "--kiosk", str(empty)):
        assert line in printed
    assert not (tmp_path / "config").exists()                       # --print writes nothing
    unit = tmp_path / "config" / "systemd" / "user" / "lapses.service"
    assert main(["install-service", "--settings", str(empty)]) == 0
    assert unit.exists() and (tmp_path / "config" / "autostart" / "lapses.desktop").exists()
    assert main(["install-service", "--settings", str(empty)]) == 0   # the same again: fine
    before = unit.read_text()
    assert main(["install-service", "--settings", str(empty), "--set", "course.duration=30d"]) == 2
    assert "--force" in capsys.readouterr().err and unit.read_text() == before
    assert main(["install-service", "--settings", str(empty), "--set", "course.duration=30d", "--force"]) == 0
    assert "course.duration=30d" in unit.read_text()
    assert [p.read_text() for p in unit.parent.glob("lapses.service.bak-*")] == [before]
    assert main(["install-service", "--settings", str(empty), "--set", "course.duration=never"]) == 2
    assert "course.duration" in capsys.readouterr().err                        # a bad setting: nothing written


def test_install_service_says_when_this_machine_would_not_run_the_unit(tmp_path, monkeypatch, capsys):
    """Written where there is no systemd (a container, another init) the unit would never start: it is
    written all the same (it may be meant for another machine), with a note that says so and what to do."""
    from installation.cli import main
    from installation.kiosk import service
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    empty = tmp_path / "empty.yaml"
    empty.write_text("{}\n")
    monkeypatch.setattr(service.shutil, "which", lambda name: None)
    assert main(["install-service", "--settings", str(empty)]) == 0
    err = capsys.readouterr().err
    assert "no systemctl" in err and "./lapses run --kiosk" in err
    assert (tmp_path / "config" / "systemd" / "user" / "lapses.service").exists()
    monkeypatch.setattr(service.shutil, "which", lambda name: "/usr/bin/" + name)
    assert "not started by systemd" in service.systemd_problem(tmp_path / "no-such-dir")
    assert service.systemd_problem(tmp_path) is None


def test_status_says_when_its_course_settings_are_not_the_pieces(tmp_path, capsys):
    """Progress is a function of course time and the course settings: `status` without the piece's own
    settings would show another progress, and says so."""
    from installation.cli import main
    from installation.course import Course
    empty = tmp_path / "empty.yaml"
    empty.write_text("{}\n")
    piece_settings = settings_from_dict({}, ["course.duration=2m"])
    point = Course(piece_settings.course).progress_at(60.0, seed=1)
    StateStore(tmp_path / "state.json").write(
        SavedState(course=CourseState(elapsed_s=60.0, seed=1), run=RunRecord(running=False), saved_at_s=time.time(),
                   progress=point.progress, stage=point.stage_name))
    args = ["status", "--settings", str(empty), "--set", f"kiosk.state_file={tmp_path / 'state.json'}"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert f"the piece saved progress {point.progress:.4f}" in out and "same --settings" in out
    assert main([*args, "--set", "course.duration=2m"]) == 0
    out = capsys.readouterr().out
    assert f"progress {point.progress:.4f}" in out and "the piece saved progress" not in out


def test_a_full_disk_at_the_start_does_not_keep_the_piece_dark(tmp_path, tiny_checkpoint, monkeypatch, caplog):
    """The folder is writable but nothing can be written now: the piece starts all the same (a
    usage error, exit 2, would leave the screen dark for good) and saves once there is room."""
    path = tmp_path / "state.json"
    real = StateStore._write
    monkeypatch.setattr(StateStore, "_write", lambda self, seq, saved: False)
    with caplog.at_level(logging.ERROR, logger="lapses.kiosk"):
        run = KioskRun.start(_settings(tiny_checkpoint, path), environ={"HOME": str(tmp_path)})
    assert "cannot write the state" in caplog.text and not path.exists()
    monkeypatch.setattr(StateStore, "_write", real)      # room again
    run.piece.step(12.0)
    run.close()
    assert StateStore(path).read().course.elapsed_s == 12.0


@pytest.mark.slow
def test_a_start_waits_out_a_status_that_holds_the_lock_for_a_moment(tmp_path, tiny_checkpoint):
    """`status` (a monitoring script, say) takes the lock briefly to look; a piece that systemd
    starts at that moment waits for it instead of refusing to start (exit 2, never restarted)."""
    import threading
    path = tmp_path / "state.json"
    looker = StateStore(path)
    looker.lock()
    threading.Timer(0.5, looker.unlock).start()
    run = KioskRun.start(_settings(tiny_checkpoint, path), environ={"HOME": str(tmp_path)})
    run.close()
    holder = StateStore(path)
    holder.lock()                                          # a piece that really runs: refused, after the wait
    started = time.monotonic()
    with pytest.raises(KioskError, match="another Lapses"):
        KioskRun.start(_settings(tiny_checkpoint, path), environ={"HOME": str(tmp_path)})
    assert time.monotonic() - started >= persist.LOCK_WAIT_S
    holder.unlock()


def test_reset_course_sets_the_state_aside_and_refuses_while_running(tmp_path, capsys):
    from installation.cli import main
    empty = tmp_path / "empty.yaml"
    empty.write_text("{}\n")
    args = ["--settings", str(empty), "--set", f"kiosk.state_file={tmp_path / 'state.json'}"]
    store = StateStore(tmp_path / "state.json")
    store.write(_saved(5000.0))
    store.lock()                                          # as a running piece holds it
    assert main(["reset-course", *args]) == 2
    assert "stop it first" in capsys.readouterr().err and store.read().course.elapsed_s == 5000.0
    store.unlock()
    assert main(["reset-course", *args]) == 0
    assert not (tmp_path / "state.json").exists()
    assert StateStore(next(tmp_path.glob("state.json.reset-*"))).read().course.elapsed_s == 5000.0   # kept
    (tmp_path / "lapses.log").write_text("2026-11-25 10:36:00 INFO lapses.health: health fps=59.9 progress=0.27\n")
    assert main(["status", *args]) == 0                    # the log is there, the state is not: say so
    assert "none saved (after reset-course" in capsys.readouterr().out
