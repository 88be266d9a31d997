"""`python -m installation status` and `reset-course`: the technician's two questions.

Why it exists: "how has the piece been?" must be answerable in one command from a terminal (or
over ssh) without reading JSON or logs — where the course stands, whether the last run is still
going or how it ended, when the next lucid interval comes, and the last health line. And "begin
the course again" (a new exhibition) must not mean deleting files by hand: `reset-course` sets
the saved state aside, and refuses while a piece is running with it.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from .health import last_health_line, log_path
from .persist import StateError, StateStore, piece_files, refusal, state_path

PROGRESS_SAME = 5e-4    # saved and recomputed progress closer than this: the same course settings


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--settings", type=Path, metavar="FILE", help="settings file (default: the project's settings.yaml)")
    p.add_argument("--set", action="append", default=[], metavar="KEY.PATH=VALUE",
                   help="change one setting, e.g. --set kiosk.state_file=/srv/lapses/state.json (repeatable)")


def _duration(seconds: float) -> str:
    seconds = max(0.0, float(seconds))
    d, rest = divmod(int(seconds), 86400)
    h, rest = divmod(rest, 3600)
    m, s = divmod(rest, 60)
    parts = [f"{d}d"] * bool(d) + [f"{h}h"] * bool(h) + [f"{m}m"] * bool(m and not d)
    parts += [f"{s}s"] * bool(s and not d and not h)
    return " ".join(parts) or "0s"


def _seconds(x) -> bool:
    """A number of seconds `_duration` can write (the file's lucid schedule may hold anything)."""
    return isinstance(x, (int, float)) and not isinstance(x, bool) and abs(x) < 1e15


def _alive(pid: int) -> bool:
    return pid > 0 and Path(f"/proc/{pid}").exists()


def _when(wall_s: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(wall_s))


def _state_path(settings, usage_error) -> Path:
    """The settings' state file, unless it names something that is no state file (persist.refusal)."""
    path = state_path(settings)
    why = refusal(path, [*piece_files(settings), log_path(path.parent)])
    if why:
        raise usage_error(f"kiosk.state_file: {why}")
    return path


def status(argv, usage_error) -> int:
    from ..calibration import course_for
    from ..settings import load_settings
    p = argparse.ArgumentParser(prog="python -m installation status",
                                description="Where the kiosk's course stands, how its last run is doing or ended, "
                                            "and its last health line.")
    _common(p)
    p.add_argument("--json", action="store_true", help="print the saved state file as it is")
    args = p.parse_args(argv)
    settings = load_settings(args.settings, args.set)
    path = _state_path(settings, usage_error)
    store = StateStore(path)
    health = last_health_line(path.parent)
    if not path.exists() and health is None:
        raise usage_error(f"nothing saved yet at {path}: the piece has not run in kiosk mode with these settings "
                          f"(python -m installation --kiosk, or the service: python -m installation install-service)")
    if args.json:
        if not path.exists():
            raise usage_error(f"no state file at {path}")
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError as e:                     # a folder, no permission: say so, no traceback
            raise usage_error(f"cannot read {path} ({e.strerror})") from None
        print(text, end="")
        return 0
    now = time.time()
    print(f"state file  {path}")
    try:
        saved = store.read()
    except StateError as e:
        saved = None
        print(f"            cannot be used ({e}); the next start sets it aside and begins from the settings")
    if saved is None and not path.exists():   # a log from before, and no state (reset-course set it aside)
        print("            none saved (after reset-course, say): the next start begins the course from the settings")
    if saved is not None:
        course = course_for(settings)
        sample = course.sample(saved.course)
        point = sample.point
        o = saved.course.overrides
        pinned = ", ".join(f"{k} {v:.2f}" for k, v in sorted(o.pinned.items())) or "none"
        print(f"saved       {_when(saved.saved_at_s)} ({_duration(now - saved.saved_at_s)} ago)")
        print(f"course      progress {point.progress:.4f}, stage {point.stage_name}, life {point.cycle}, seed "
              f"{point.seed}; {_duration(saved.course.elapsed_s)} of course time (course.duration "
              f"{settings.course.duration}, end: {settings.course.end})")
        if abs(saved.progress - point.progress) > PROGRESS_SAME:
            # progress is a function of course time *and* the course settings: these are not the piece's
            print(f"            the piece saved progress {saved.progress:.4f} ({saved.stage}) with its own course "
                  f"settings; give status the same --settings/--set as the piece (or its service) to see "
                  f"what it shows")
        print(f"overrides   decay {o.decay:+.2f}, pinned: {pinned}")
        nxt = saved.lucid.get("next") if isinstance(saved.lucid, dict) else None   # for people: never trusted
        if sample.lucid > 0:
            print(f"lucid       in a lucid interval now ({sample.lucid:.2f})")
        elif isinstance(nxt, list) and len(nxt) == 2 and all(_seconds(x) for x in nxt):
            print(f"lucid       the next interval in {_duration(nxt[0] - saved.course.elapsed_s)} of course time, "
                  f"for {_duration(nxt[1] - nxt[0])}")
        else:
            print("lucid       no more lucid intervals ahead")
        run = saved.run
        holder = store.holder()
        if holder:
            state = f"running now (pid {holder}), for {_duration(run.run_s)} at the last save, {run.frames} frames"
        elif not run.running:
            state = f"ended cleanly after {_duration(run.run_s)}, {run.frames} frames"
        elif run.error:
            state = f"ended by a fatal error after {_duration(run.run_s)}: {run.error}"
        else:
            state = (f"ended without a clean exit (crash, kill or power cut) {_duration(run.run_s)} after its start"
                     + ("" if not _alive(run.pid) else f"; pid {run.pid} is alive but holds no lock"))
        print(f"last run    started {_when(run.started_at_s)}; {state}")
        if run.quick_crashes:
            print(f"            {run.quick_crashes} quick crash(es) in a row before it (kiosk.crash_window_s)")
    print(f"log         {log_path(path.parent)}")
    print(f"health      {health or 'no health line yet (one every kiosk.health_every_s)'}")
    return 0


def reset_course(argv, usage_error) -> int:
    from ..settings import load_settings
    p = argparse.ArgumentParser(prog="python -m installation reset-course",
                                description="Begin the course again at the next start (a new exhibition): the saved "
                                            "state is renamed aside, not deleted.")
    _common(p)
    args = p.parse_args(argv)
    settings = load_settings(args.settings, args.set)
    path = _state_path(settings, usage_error)
    store = StateStore(path)
    if not path.exists():
        raise usage_error(f"no saved course at {path}: the next start begins from the settings anyway")
    holder = store.holder()
    if holder:
        raise usage_error(f"Lapses is running with {path} (pid {holder}); stop it first "
                          f"(systemctl --user stop lapses.service), then reset, then start it again")
    aside = store.set_aside("reset")
    if aside is None:
        raise usage_error(f"could not rename {path}; check the folder's permissions")
    print(f"the saved course is now {aside}; the next start begins from the settings")
    return 0


def saved_json(path: Path) -> dict:
    """The saved file as plain data (tests, tools)."""
    return json.loads(Path(path).read_text(encoding="utf-8"))
