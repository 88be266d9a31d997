"""One unattended run of the live app: restore, supervise, save, and end so systemd can act.

Why it exists: the kiosk's parts (persist, notify, health, faults, display) each do one thing;
this is the one place that strings them along a run, so the app's loop needs a single call after
each presented frame and the command line a few lines:

    start   lock the state file, set a corrupt one aside, decide restore or fresh (crash window),
            build the Piece where the course stood, mark the run as running, file logging,
            kiosk display hints;
    frame   (`presented`, after display.flip) READY=1 once, WATCHDOG=1 at systemd's pace, the
            state every `kiosk.save_interval_s` (written off the render thread), a health line
            every `kiosk.health_every_s`;
    end     a clean end saves the state marked ended; a fatal error saves the progress but leaves
            it marked running (so the next start counts a crash), logs the traceback, and exits
            with EXIT_FATAL so the supervisor restarts the piece — at once, without Python's
            teardown, when the GPU is gone.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import sys
import time
from pathlib import Path

from ..app import NoDisplay
from ..piece import Piece
from ..settings import SettingsError
from . import display
from ..damage import is_device_fatal
from .faults import FrameGuard, load_model_or_bundled
from .health import Health, flush_logs, log_path, setup_file_logging
from .notify import Notifier
from .persist import (RunRecord, SavedState, StateError, StateLocked, StateStore, boot_id, decide, piece_files,
                      refusal, state_path)

log = logging.getLogger("lapses.kiosk")

EXIT_FATAL = 3          # not 2 (a user's mistake, which a restart would not mend): restart me
LUCID_LOOKAHEAD = 10    # lucid windows searched for the next interval (for `status`)


class KioskError(Exception):
    """The kiosk cannot start, said for the technician (the command line exits 2)."""


class KioskRun:
    def __init__(self, settings, store: StateStore, piece: Piece, quick_crashes: int, notifier: Notifier,
                 log_file: Path):
        self.settings = settings
        self.store = store
        self.piece = piece
        self.quick_crashes = quick_crashes
        self.notifier = notifier
        self.log_file = log_file
        self.health = Health(settings.kiosk.health_every_s)
        self.guard: FrameGuard | None = None
        self.boot_id = boot_id()
        self.started_at_s = time.time()
        self._t0 = time.monotonic()
        self._last: float | None = None
        self._next_save = 0.0
        self._ready = False
        self._closed = False
        self.frames = 0
        self.drawing = False

    # -- start ---------------------------------------------------------------------------------

    @classmethod
    def start(cls, settings, environ=None) -> "KioskRun":
        environ = os.environ if environ is None else environ
        path = state_path(settings, environ)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise KioskError(f"kiosk.state_file: cannot create the folder {path.parent} ({e.strerror})") from None
        if not os.access(path.parent, os.W_OK | os.X_OK):
            raise KioskError(f"kiosk.state_file: the folder {path.parent} is not writable")
        # an unreadable state is renamed aside and replaced: never do that to a folder, a device, the
        # piece's own files or another program's file named here by mistake (see persist.refusal)
        why = refusal(path, [*piece_files(settings), log_path(path.parent)])
        if why:
            raise KioskError(f"kiosk.state_file: {why}")
        try:
            log_file = setup_file_logging(path.parent)
        except OSError as e:
            raise KioskError(f"kiosk.state_file: cannot write the log {e.filename} beside it ({e.strerror})") from None
        store = StateStore(path)
        try:
            store.lock()
        except StateLocked as e:
            raise KioskError(str(e)) from None
        except OSError as e:
            raise KioskError(f"kiosk.state_file: cannot lock {store.lock_path} ({e.strerror})") from None
        try:
            prev = store.read()
        except StateError as e:
            aside = store.set_aside("corrupt")
            log.error("kiosk: the saved course %s cannot be used (%s); set aside as %s; the course begins again "
                      "from the settings", path, e, aside.name if aside else "nothing")
            prev = None
        resume = decide(prev, settings.kiosk.crash_window_s, boot_id())
        if resume.set_aside:
            aside = store.set_aside(resume.set_aside)
            log.warning("kiosk: %s (the state is kept as %s)", resume.reason, aside.name if aside else "nothing")
        else:
            log.info("kiosk: %s", resume.reason)
        piece = Piece(settings, course_state=prev.course if resume.restore else None)
        if resume.restore:
            piece.t, piece.walk_phase, piece.speed = prev.t, prev.walk_phase, prev.speed
            _log_restored(settings, piece, prev)
        run = cls(settings, store, piece, resume.quick_crashes, Notifier.from_env(environ), log_file)
        if not store.write(run.snapshot()):       # the running marker, before any frame
            # the folder is writable (checked above): a full disk, say. The show goes on, saving
            # again every kiosk.save_interval_s; the error is in the log (StateStore said why)
            log.error("kiosk: cannot write the state %s now; the piece runs and tries again every %g s (until "
                      "then a crash or power cut loses the progress since the last good save)", path,
                      settings.kiosk.save_interval_s)
        for what in display.prepare(environ):
            log.info("kiosk display: %s", what)
        log.info("kiosk: state %s (saved every %g s), log %s, systemd %s", path, settings.kiosk.save_interval_s,
                 log_file, "watchdog every %.1f s" % run.notifier.ping_every_s if run.notifier.ping_every_s
                 else ("notified" if run.notifier.enabled else "not present"))
        return run

    def load_model(self, load, errors):
        """The settings' model through the command line's loader; the bundled one if it is unusable.
        If neither loads (a mistake to fix, exit 2), the run ends cleanly: that was no crash."""
        try:
            return load_model_or_bundled(self.settings, load, errors)
        except BaseException:
            self.close(clean=True)
            raise

    def attach(self, engine):
        """Give the engine a frame guard (see faults.py); returns the engine."""
        self.guard = engine.guard = FrameGuard(engine.damage, engine.hooks)
        return engine

    @property
    def faults(self) -> int:
        return self.guard.faults if self.guard is not None else 0

    # -- every frame -----------------------------------------------------------------------------

    def begin_drawing(self) -> None:
        """Call before each frame is drawn; the first call records, at once, that this run got as
        far as drawing (a crash from here on may be the course's, and counts in the crash window)."""
        if not self.drawing:
            self.drawing = True
            self.store.write(self.snapshot())

    def presented(self, piece: Piece | None = None) -> None:
        """Call right after a frame reached the screen (after display.flip)."""
        piece = piece or self.piece
        now = time.monotonic()
        if self._last is not None:
            self.health.add(now - self._last, now)
        self._last = now
        self.frames += 1
        if not self._ready:
            self._ready = True
            self.notifier.ready(self._status(piece))
            log.info("kiosk: first frame on screen %.1f s after the start", now - self._t0)
        if self.notifier.ping_due(now):
            self.notifier.watchdog(now, f"STATUS={self._status(piece)}",
                                   f"X_LAPSES_ELAPSED_S={piece.course_state.elapsed_s:.6f}")
        if now >= self._next_save:
            self._next_save = now + self.settings.kiosk.save_interval_s
            self.store.write_later(self.snapshot(piece))
        if self.health.due(now):
            self.health.report(piece, now, self.faults)

    def _status(self, piece: Piece) -> str:
        p = piece.sample().point
        fps, _ = self.health.figures()
        return f"progress {p.progress:.3f} ({p.stage_name}), life {p.cycle}, {fps:.0f} fps"

    def snapshot(self, piece: Piece | None = None, running: bool = True, error: str = "") -> SavedState:
        piece = piece or self.piece
        sample = piece.sample()
        point = sample.point
        lucid = self.settings.course.lucid
        elapsed = piece.course_state.elapsed_s
        upcoming = piece.course.lucid_intervals(elapsed, elapsed + LUCID_LOOKAHEAD * lucid.every_s, point.progress,
                                                point.seed)
        record = RunRecord(running=running, pid=os.getpid(), boot_id=self.boot_id, started_at_s=self.started_at_s,
                           run_s=time.monotonic() - self._t0, quick_crashes=self.quick_crashes, frames=self.frames,
                           error=error, drawing=self.drawing)
        return SavedState(course=piece.course_state, t=piece.t, walk_phase=piece.walk_phase, speed=piece.speed,
                          run=record, saved_at_s=time.time(), progress=point.progress, stage=point.stage_name,
                          lucid={"schedule": dataclasses.asdict(lucid), "now": sample.lucid,
                                 "next": [upcoming[0].start_s, upcoming[0].end_s] if upcoming else None})

    # -- end -----------------------------------------------------------------------------------

    def run(self, app, opts):
        """app.run with this run's piece; saves at the end however it comes."""
        try:
            report = app.run(opts, self.piece)
        except (KeyboardInterrupt, SettingsError):   # Ctrl+C, or a mistake in a file (exit 2): no crash
            self.close(clean=True)
            raise
        except NoDisplay as e:      # nothing to show on: not 2, so systemd tries again (the desktop comes up)
            log.error("kiosk: %s; exiting with %d so the supervisor starts the piece again", e, EXIT_FATAL)
            self.close(clean=False, reason=str(e))
            print(f"error: {e}; exiting with {EXIT_FATAL} so the supervisor starts the piece again (see "
                  f"{self.log_file})", file=sys.stderr, flush=True)
            raise SystemExit(EXIT_FATAL) from None
        except Exception as e:
            device = is_device_fatal(e)
            self.close(clean=False, error=e)
            print(f"error: fatal{' GPU' if device else ''} error: {type(e).__name__}: {e} (details in "
                  f"{self.log_file}); exiting with {EXIT_FATAL} so the supervisor restarts the piece",
                  file=sys.stderr, flush=True)
            if device:                  # a dead CUDA context can hang Python's teardown
                os._exit(EXIT_FATAL)
            raise SystemExit(EXIT_FATAL) from None
        self.close(clean=True)
        return report

    def close(self, clean: bool = True, error: BaseException | None = None, reason: str = "") -> None:
        """Save the state (marked ended only if clean, with the error or `reason` it ended by), last
        health line, tell systemd, flush logs."""
        if self._closed:
            return
        self._closed = True
        if error is not None:
            log.critical("kiosk: fatal error after %d frames; the progress is saved, the next start counts a "
                         "crash", self.frames, exc_info=error)
        if self.health.frames:
            self.health.report(self.piece, time.monotonic(), self.faults)
        text = f"{type(error).__name__}: {error}" if error is not None else reason
        if not self.store.write(self.snapshot(running=not clean, error=text[:500])) and clean:
            log.error("kiosk: the last save failed (see above): the state file still says this run is going, so "
                      "the next start counts a crash")
        self.store.close()
        self.notifier.stopping("fatal error" if error is not None else reason[:80] or "stopping")
        self.notifier.close()
        log.info("kiosk: %s at progress %.4f", "ended cleanly" if clean else "ended by an error",
                 self.piece.sample().point.progress)
        flush_logs()


def _log_restored(settings, piece: Piece, prev: SavedState) -> None:
    p = piece.sample().point
    log.info("kiosk: resuming the course at progress %.4f (%s), life %d, %.0f s of course time, saved %s",
             p.progress, p.stage_name, p.cycle, piece.course_state.elapsed_s,
             time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(prev.saved_at_s)))
    if prev.course.seed != settings.course.seed:
        log.warning("kiosk: course.seed in the settings is %d but the saved course has seed %d; continuing the "
                    "saved course (`python -m installation reset-course` begins anew)", settings.course.seed,
                    prev.course.seed)
    saved_lucid = prev.lucid.get("schedule") if isinstance(prev.lucid, dict) else None
    if saved_lucid and saved_lucid != dataclasses.asdict(settings.course.lucid):
        log.info("kiosk: course.lucid changed since the last save; lucid intervals follow the new settings")
