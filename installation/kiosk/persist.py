"""The saved course: a kiosk that loses power must not give the memories back.

Why it exists: the course of the illness is a pure function of elapsed course time and a seed
(course.py), so saving those few numbers — with the performer's live overrides and where the
walk stood — every `kiosk.save_interval_s` is enough to resume a weeks-long course where it was.
The file is written atomically (temp file, fsync, rename, fsync of the folder): a power cut
leaves the old state or the new one, never half of either. It also carries a record of the run
that wrote it (still running or ended cleanly, for how long, on which boot), from which the next
start tells a clean exit, a power cut and a crash apart, and declines to restore a state after
two crashes in a row that each came soon after a start (that state may be what crashes it).

A file that cannot be read is never deleted: it is renamed aside (`state.json.corrupt-<time>`)
for a technician to look at, and the course begins again from the settings.
"""
from __future__ import annotations

import codecs
import fcntl
import json
import logging
import math
import os
import re
import threading
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

from ..course import CourseState

log = logging.getLogger("lapses.kiosk")

FORMAT = "lapses-state"
VERSION = 1
MAX_BYTES = 1_000_000      # a state is about a kilobyte: a bigger file is something else
MAX_WALL_S = 253402300799.0   # 9999-12-31 23:59:59 UTC: a later wall clock is none (time.localtime overflows)
MAX_SEED = 2 ** 31 - 1        # course.seed's range (and every life's seed, course.derive_seed)


class StateError(Exception):
    """The state file cannot be used: truncated, not JSON, not ours, or impossible values."""


class StateLocked(Exception):
    """Another running Lapses holds this state file."""

    def __init__(self, path: Path, pid: int | None):
        self.path, self.pid = path, pid
        who = f" (pid {pid})" if pid else ""
        super().__init__(f"another Lapses{who} is running with the state file {path}; stop it first "
                         f"(systemctl --user stop lapses.service) or give this one another kiosk.state_file")


# ---------------------------------------------------------------------------------------------
# plain data

@dataclass(frozen=True)
class RunRecord:
    """Who wrote the state, and how that run is doing (or how it ended)."""
    running: bool = True             # true until the run ends cleanly: still true after a crash or power cut
    pid: int = 0
    boot_id: str = ""                # the kernel's boot id: a different one means the machine restarted
    started_at_s: float = 0.0        # wall clock at the start (for people reading `status`)
    run_s: float = 0.0               # seconds the run had been going at this save (monotonic clock)
    quick_crashes: int = 0           # crashes in a row, each soon after its start, before this run began
    frames: int = 0                  # frames presented by this run
    error: str = ""                  # the fatal error that ended it, if one did
    drawing: bool = True             # false until it began to draw: a stop before cannot be the course's fault


@dataclass(frozen=True)
class SavedState:
    course: CourseState
    t: float = 0.0                   # the piece's clock (walk, lapses and static follow it)
    walk_phase: float = 0.0
    speed: float = 1.0
    run: RunRecord = field(default_factory=RunRecord)
    saved_at_s: float = 0.0          # wall clock
    # for people and `status`; recomputed from the above on restore, never trusted
    progress: float = 0.0
    stage: str = ""
    lucid: Mapping[str, Any] = field(default_factory=dict)   # the schedule's settings and the next interval

    def to_dict(self) -> dict:
        return {"format": FORMAT, "version": VERSION,
                "saved_at": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.saved_at_s)),
                "saved_at_s": self.saved_at_s,
                "progress": self.progress, "stage": self.stage,
                "course": self.course.to_dict(),
                "piece": {"t": self.t, "walk_phase": self.walk_phase, "speed": self.speed},
                "lucid": dict(self.lucid),
                "run": asdict(self.run)}


def encode(saved: SavedState) -> bytes:
    return (json.dumps(saved.to_dict(), indent=1) + "\n").encode("utf-8")


def _number(d: Mapping, key: str, where: str, lo: float | None = None, default: Any = None,
            hi: float | None = None) -> float:
    value = d.get(key, default)
    try:                # an integer too large for a float is no finite number (isfinite would overflow)
        finite = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
    except OverflowError:
        finite = False
    if not finite:
        raise StateError(f"{where}.{key}: {str(value)[:40]!r} is not a finite number")
    if lo is not None and value < lo:
        raise StateError(f"{where}.{key}: {value!r} is below {lo}")
    if hi is not None and value > hi:
        raise StateError(f"{where}.{key}: {value!r} is above {hi}")
    return float(value)


def _wall_clock(d: Mapping, key: str, where: str) -> float:
    """A wall-clock time in seconds, one that time.localtime can show (the log, `status`, the next save)."""
    return _number(d, key, where, lo=0.0, default=0.0, hi=MAX_WALL_S)


def _integer(d: Mapping, key: str, where: str, lo: int = 0, default: Any = None, hi: int | None = None) -> int:
    value = d.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < lo or (hi is not None and value > hi):
        upto = f" and <= {hi}" if hi is not None else ""
        raise StateError(f"{where}.{key}: {f'{value!r}'[:40]} is not an integer >= {lo}{upto}")
    return value


def _mapping(d: Mapping, key: str, where: str = "") -> Mapping:
    value = d.get(key)
    if not isinstance(value, dict):
        raise StateError(f"{where}{key}: missing or not a mapping")
    return value


def decode(text: str) -> SavedState:
    """The state in a file's text; StateError for anything short of a whole, sane state."""
    try:
        d = json.loads(text)
    except ValueError as e:
        raise StateError(f"not valid JSON ({e})") from None
    except RecursionError:
        raise StateError("not a Lapses state file (lists or objects nested too deep to read)") from None
    if not isinstance(d, dict) or d.get("format") != FORMAT:
        raise StateError("not a Lapses state file")
    if d.get("version") != VERSION:
        raise StateError(f"format version {d.get('version')!r}; this Lapses reads version {VERSION}")
    course = _mapping(d, "course")
    # CourseState.from_dict is lenient by design (it clamps); a saved file must be exact, because a
    # NaN decay would be clamped to "revived" and give every memory back
    _number(course, "elapsed_s", "course", lo=0.0)
    _integer(course, "seed", "course", hi=MAX_SEED)
    _integer(course, "cycle", "course", default=0)
    overrides = course.get("overrides", {})
    if not isinstance(overrides, dict):
        raise StateError("course.overrides: not a mapping")
    _number(overrides, "decay", "course.overrides", default=0.0)
    if overrides.get("lucid_s") is not None:
        _number(overrides, "lucid_s", "course.overrides")
    pinned = overrides.get("pinned", {})
    if not isinstance(pinned, dict):
        raise StateError("course.overrides.pinned: not a mapping")
    for name in pinned:
        _number(pinned, name, "course.overrides.pinned")
    try:
        course_state = CourseState.from_dict(course)
    except (KeyError, TypeError, ValueError) as e:
        raise StateError(f"course: {e}") from None
    piece = _mapping(d, "piece")
    run = _mapping(d, "run")
    lucid = d.get("lucid", {})
    for flag in ("running", "drawing"):
        if not isinstance(run.get(flag, True), bool):
            raise StateError(f"run.{flag}: {run.get(flag)!r} is not true or false")
    record = RunRecord(
        running=run.get("running", True), pid=_integer(run, "pid", "run", default=0),
        boot_id=str(run.get("boot_id", "")), started_at_s=_wall_clock(run, "started_at_s", "run"),
        run_s=_number(run, "run_s", "run", lo=0.0, default=0.0),
        quick_crashes=_integer(run, "quick_crashes", "run", default=0),
        frames=_integer(run, "frames", "run", default=0), error=str(run.get("error", "")),
        drawing=run.get("drawing", True))
    return SavedState(course=course_state, t=_number(piece, "t", "piece", lo=0.0, default=0.0),
                      walk_phase=_number(piece, "walk_phase", "piece", default=0.0),
                      speed=_number(piece, "speed", "piece", lo=1e-6, default=1.0), run=record,
                      saved_at_s=_wall_clock(d, "saved_at_s", ""),
                      progress=_number(d, "progress", "", default=0.0), stage=str(d.get("stage", "")),
                      lucid=lucid if isinstance(lucid, dict) else {})


# ---------------------------------------------------------------------------------------------
# what to do with the previous run's state

@dataclass(frozen=True)
class Resume:
    restore: bool          # resume the saved course (else begin from the settings)
    quick_crashes: int     # to record for this run
    reason: str            # one line for the log
    set_aside: str = ""    # rename the saved file aside with this word (it is not restored)


def decide(prev: SavedState | None, crash_window_s: float, boot_id: str) -> Resume:
    """Restore or begin afresh, from how the previous run ended. Pure, so it is easy to test."""
    if prev is None:
        return Resume(False, 0, "no saved course: beginning from the settings")
    run = prev.run
    if not run.running:
        return Resume(True, 0, "the last run ended cleanly")
    if run.boot_id and boot_id and run.boot_id != boot_id:
        return Resume(True, 0, "the machine restarted under the last run (a power cut?)")
    if not run.drawing:     # the display, the model, a stop during the start: the course never ran
        return Resume(True, run.quick_crashes, "the last run stopped before it began to draw (the display, the "
                                               "model, or a stop during its start): no fault of the saved course")
    if crash_window_s > 0 and run.run_s < crash_window_s:
        quick = run.quick_crashes + 1
        if quick >= 2:
            return Resume(False, 0, f"the piece crashed {quick} times in a row, each within kiosk.crash_window_s "
                                    f"({crash_window_s:g} s) of its start: not restoring the state that may be "
                                    f"the cause; beginning from the settings", set_aside="crashed")
        return Resume(True, quick, f"the last run crashed {run.run_s:.0f} s after its start")
    return Resume(True, 0, f"the last run ended without a clean exit after {run.run_s:.0f} s")


def state_file(kiosk, environ: Mapping[str, str] | None = None, beside: Path | None = None) -> Path:
    """Where the course state lives (KioskSettings): kiosk.state_file (a relative one beside the
    settings file, `beside`, so it does not depend on where the service was started), else
    $XDG_STATE_HOME/lapses, else ~/.local/state/lapses."""
    environ = os.environ if environ is None else environ
    if kiosk.state_file:
        p = Path(os.path.expandvars(os.path.expanduser(kiosk.state_file)))
        return p if p.is_absolute() or beside is None else beside / p
    base = environ.get("XDG_STATE_HOME") or ""
    root = Path(base) if base and Path(base).is_absolute() else Path(environ.get("HOME", str(Path.home()))) / ".local" / "state"
    return root / "lapses" / "state.json"


def state_path(settings, environ: Mapping[str, str] | None = None) -> Path:
    """The state file of a piece with these settings (state_file, beside its settings file)."""
    return state_file(settings.kiosk, environ, Path(settings.source).resolve().parent if settings.source else None)


def piece_files(settings) -> list[Path]:
    """The files a piece with these settings reads: never to be taken for its state file."""
    files = [Path(settings.source) if settings.source else None, settings.model_path]
    if settings.inputs.mappings_file:
        files.append(settings.beside_settings(settings.inputs.mappings_file))
    return [p for p in files if p is not None]


def refusal(path: Path, theirs=()) -> str | None:
    """Why `path` must not serve as the state file (None: it may). Starting, `status` and
    `reset-course` rename an unusable state aside and write a new one in its place: never do that
    to a folder, a device or pipe (/dev/null), one of the piece's own files (`theirs`: settings,
    model, mappings), or another program's text file named by mistake (/etc/passwd, a YAML, the
    log). A file that has been a state before (its lock file is beside it), an empty one, and
    anything that starts like JSON or is not text at all (what a power cut leaves) may be set aside."""
    path = Path(path)
    folder = path if path.is_dir() else path.parent
    if folder.resolve().parts[1:2] in (("dev",), ("proc",), ("sys",)):   # no place for a state: the usual one
        folder = Path("~/.local/state/lapses")
    fix = f"name a file of its own, e.g. {folder / 'state.json'}, or '' for the default"
    if path.is_dir():
        return f"{path} is a folder; {fix}"
    try:
        ours = path.resolve()
        if any(ours == Path(p).resolve() for p in theirs):
            return f"{path} is one of the piece's own files (settings, model, mappings, log); {fix}"
    except (OSError, RuntimeError):         # a symlink loop: the checks below say what it is
        pass
    if not path.exists():
        return None
    if not path.is_file():
        return f"{path} is not a plain file (a device, pipe or socket); {fix}"
    if path.with_name(path.name + ".lock").exists():
        return None                          # the piece has kept its state here before
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
    except OSError:
        return None                          # unreadable: set aside by the start, as a state would be
    try:
        text = codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return None                          # not text: garbage where a state was
    if not text.strip() or "\0" in text or text.lstrip().startswith("{"):
        return None                          # empty, zeroed or JSON: a state, damaged or not
    return (f"{path} is another program's file (text that is not a Lapses state, and no "
            f"{path.name}.lock beside it); it is left as it is; {fix}")


def boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


# ---------------------------------------------------------------------------------------------
# the file

def write_atomic(path: Path, data: bytes) -> None:
    """Temp file beside it, fsync, rename over, fsync the folder: all of the new data or none."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    try:
        dfd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)


KEEP_ASIDE = 10     # files set aside for one reason (corrupt, crashed, reset) kept, the newest
LOCK_WAIT_S = 3.0   # longer than `status` or `reset-course` holds the lock to look, far shorter than a run


class StateStore:
    """One state file: lock, read, set aside, write now or on a background thread."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.lock_path = self.path.with_name(self.path.name + ".lock")
        self._lock_file = None
        self._write_lock = threading.Lock()
        self._written_seq = 0
        self._failing = False
        self._cv = threading.Condition()
        self._queued: tuple[int, SavedState] | None = None
        self._seq = 0
        self._closing = False
        self._saver: threading.Thread | None = None

    # -- one writer at a time ----------------------------------------------------------------

    def lock(self, wait_s: float = LOCK_WAIT_S) -> None:
        """Hold the lock file while this run lives (the kernel drops it if the process dies).
        `status` and `reset-course` hold it for a moment to look: wait that out before refusing."""
        give_up = time.monotonic() + wait_s
        while True:
            try:
                f = self._acquire()
                break
            except StateLocked:
                if time.monotonic() >= give_up:
                    raise
                time.sleep(0.1)
        try:                    # who holds it, for the messages of others: a full disk must not stop the show
            f.seek(0)
            f.truncate()
            f.write(f"{os.getpid()}\n")
            f.flush()
        except OSError:
            pass
        self._lock_file = f

    def _acquire(self):
        f = open(self.lock_path, "a+", encoding="utf-8")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.seek(0)
            text = f.read().strip()
            f.close()
            raise StateLocked(self.path, int(text) if text.isdigit() else None) from None
        return f

    def holder(self) -> int | None:
        """The pid of a running Lapses that holds this state (-1 if it did not say), or None."""
        if not self.lock_path.exists():
            return None
        try:
            self._acquire().close()
        except StateLocked as e:
            return e.pid or -1
        except OSError:
            return None
        return None

    def unlock(self) -> None:
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    # -- reading -----------------------------------------------------------------------------

    def read(self) -> SavedState | None:
        """The saved state; None if there is none; StateError if it cannot be used."""
        try:
            with open(self.path, "rb") as f:
                data = f.read(MAX_BYTES + 1)
            text = data.decode("utf-8")
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as e:
            raise StateError(f"unreadable ({e})") from None
        if len(data) > MAX_BYTES:
            raise StateError(f"larger than {MAX_BYTES // 1000} kB: no state file is")
        return decode(text)

    def set_aside(self, why: str) -> Path | None:
        """Rename the state file out of the way (kept for a technician), e.g. state.json.corrupt-20261125-1032."""
        stamp = time.strftime("%Y%m%d-%H%M%S")
        target = self.path.with_name(f"{self.path.name}.{why}-{stamp}")
        n = 1
        while target.exists():
            n += 1
            target = self.path.with_name(f"{self.path.name}.{why}-{stamp}-{n}")
        try:
            os.replace(self.path, target)
        except FileNotFoundError:
            return None
        except OSError as e:
            log.error("could not set %s aside (%s); it will be overwritten", self.path, e)
            return None
        _fsync_dir(self.path.parent)
        self._prune_aside(why, target)
        return target

    def _prune_aside(self, why: str, keep: Path) -> None:
        """Keep the newest KEEP_ASIDE files set aside for one reason (and always `keep`, the one
        just set aside, even when a clock set back makes its name the oldest): a piece that crashes
        in a loop for weeks must not leave one file per crash window."""
        pattern = re.compile(re.escape(f"{self.path.name}.{why}-") + r"(\d{8}-\d{6})(?:-(\d+))?")
        aside = []
        for p in self.path.parent.iterdir():
            m = pattern.fullmatch(p.name)
            if m and p != keep:                         # when it was set aside (names, not mtimes: a
                aside.append((m[1], int(m[2] or 1), p))    # rename keeps the state's own)
        aside.sort()
        for *_, old in aside[:max(0, len(aside) - (KEEP_ASIDE - 1))]:
            try:
                old.unlink()
            except OSError as e:
                log.warning("could not remove the old %s (%s)", old, e)

    # -- writing -----------------------------------------------------------------------------

    def write(self, saved: SavedState) -> bool:
        """Write now (at start and at exit). Never raises: a full disk must not end the show."""
        with self._cv:
            self._seq += 1
            seq = self._seq
        return self._write(seq, saved)

    def write_later(self, saved: SavedState) -> None:
        """Write on the saver thread, so an fsync on a slow card never delays a frame."""
        with self._cv:
            self._seq += 1
            self._queued = (self._seq, saved)
            if self._saver is None:
                self._saver = threading.Thread(target=self._save_loop, name="lapses-state", daemon=True)
                self._saver.start()
            self._cv.notify()

    def _save_loop(self) -> None:
        while True:
            with self._cv:
                while self._queued is None and not self._closing:
                    self._cv.wait()
                if self._queued is None:
                    return
                seq, saved = self._queued
                self._queued = None
            self._write(seq, saved)

    def _write(self, seq: int, saved: SavedState) -> bool:
        with self._write_lock:
            if seq <= self._written_seq:          # a newer state is already on disk
                return True
            try:
                write_atomic(self.path, encode(saved))
            except OSError as e:
                if not self._failing:
                    log.error("could not save the course state to %s (%s); the show goes on, retrying", self.path, e)
                self._failing = True
                return False
            if self._failing:
                log.info("saving the course state works again")
            self._failing = False
            self._written_seq = seq
            return True

    def close(self) -> None:
        """Finish any queued write, stop the saver, let go of the lock."""
        with self._cv:
            self._closing = True
            self._cv.notify_all()
        if self._saver is not None:
            self._saver.join(timeout=10.0)
        self.unlock()


def with_run(saved: SavedState, **changes) -> SavedState:
    return replace(saved, run=replace(saved.run, **changes))
