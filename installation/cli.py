"""`python -m installation [options]` shows the piece; `python -m installation sheet` draws the
decay on one page. A user mistake (settings, model file, paths) exits 2 with a message naming it."""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

log = logging.getLogger("lapses")


class UsageError(Exception):
    pass


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--settings", type=Path, metavar="FILE", help="settings file (default: the project's settings.yaml)")
    p.add_argument("--set", action="append", default=[], metavar="KEY.PATH=VALUE",
                   help="change one setting, e.g. --set course.duration=2h (repeatable)")
    p.add_argument("--model", type=Path, help="generator checkpoint (.safetensors); same as --set model.path=...")


def _run_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m installation",
                                description="Lapses: a generator walks its memories while it forgets. "
                                            "Also: python -m installation sheet --help")
    _common(p)
    p.add_argument("--print-settings", action="store_true", help="print the resolved settings and exit")
    p.add_argument("--windowed", action="store_true", help="a window instead of fullscreen")
    p.add_argument("--seconds", type=float, help="quit after this many seconds (tests, timed shows)")
    p.add_argument("--kiosk", action="store_true", help="gallery mode: only kiosk.quit_combo quits, other keys ignored")
    p.add_argument("--hud", action="store_true", help="show the heads-up display from the start")
    p.add_argument("--screenshots", type=Path, default=Path("."), metavar="DIR",
                   help="folder for screenshots (the screenshot key); default: the current folder")
    return p


def _sheet_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m installation sheet",
                                description="Contact sheet: one row per stage of the course, the same memories "
                                            "in each column, labelled with progress, stage and SSIM.")
    _common(p)
    p.add_argument("--out", type=Path, required=True, help="PNG to write")
    p.add_argument("--stages", type=int, default=8, help="rows, from progress 0 to 1 (default 8)")
    p.add_argument("--columns", type=int, default=6, help="memories per row (default 6)")
    p.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    return p


def _settings(args):
    from .settings import load_settings
    overrides = list(args.set)
    if args.model is not None:
        overrides.append(f"model.path={args.model}")
    return load_settings(args.settings, overrides)


def _model(settings):
    """Load the settings' model before any window opens, so a bad file is a message, not a crash."""
    from models import CheckpointError
    from .engine import load_model, pick_device
    path = settings.model_path
    if not path.exists():
        raise UsageError(f"model.path: {path} does not exist. Train one (python -m training train ...) or "
                         f"use the bundled assets/memories.safetensors")
    try:
        return load_model(path, pick_device(settings.model.device))
    except CheckpointError as e:
        raise UsageError(f"model.path: {e}") from None
    except ValueError as e:
        raise UsageError(str(e)) from None


def _run(argv) -> int:
    import dataclasses
    from .app import App, QuitCombo, RunOptions
    args = _run_parser().parse_args(argv)
    settings = _settings(args)
    if args.hud:
        settings = dataclasses.replace(settings, display=dataclasses.replace(settings.display, hud=True))
    if args.print_settings:
        print(settings.to_yaml(), end="")
        return 0
    if args.seconds is not None and not args.seconds > 0:
        raise UsageError(f"--seconds {args.seconds}: must be more than 0")
    try:
        QuitCombo.parse(settings.kiosk.quit_combo)
    except ValueError as e:
        raise UsageError(str(e)) from None
    model = _model(settings)
    from .engine import Engine
    app = App(settings, engine_factory=lambda w, h: Engine.from_settings(settings, w, h, model=model))
    report = app.run(RunOptions(windowed=args.windowed, seconds=args.seconds, kiosk=args.kiosk,
                                screenshot_dir=args.screenshots))
    print(f"{report.frames} frames in {report.seconds:.1f} s: {report.fps:.1f} fps, frame-time p99 "
          f"{report.p99_ms:.1f} ms, progress {report.progress:.3f}")
    return 0


def _sheet(argv) -> int:
    import cv2
    from .course import Course
    from .sheet import make_sheet
    args = _sheet_parser().parse_args(argv)
    if args.stages < 2 or args.columns < 1:
        raise UsageError("--stages must be at least 2 and --columns at least 1")
    out = args.out
    if out.suffix.lower() != ".png":
        raise UsageError(f"--out {out}: the sheet is a PNG; give a name ending in .png")
    if out.exists() and not args.force:
        raise UsageError(f"--out {out} exists; choose another name or add --force to overwrite it")
    if not out.parent.is_dir():
        raise UsageError(f"--out {out}: folder {out.parent} does not exist")
    settings = _settings(args)
    from .engine import Engine
    engine = Engine.from_settings(settings, 64, 64, model=_model(settings))
    course = Course(settings.course, disabled=settings.disabled_symptoms())
    img, rows = make_sheet(engine, course, args.stages, args.columns, seed=settings.course.seed)
    engine.close()
    if not cv2.imwrite(str(out), cv2.cvtColor(img, cv2.COLOR_RGB2BGR)):
        raise UsageError(f"--out {out}: could not write the file")
    print(f"{'progress':>8}  {'stage':<14} {'SSIM vs pristine':>16}")
    for row in rows:
        print(f"{row.progress:8.3f}  {row.stage:<14} {row.ssim:16.3f}")
    print(f"wrote {out}")
    return 0


def main(argv=None) -> int:
    from .settings import SettingsError
    argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    try:
        if argv[:1] == ["sheet"]:
            return _sheet(argv[1:])
        return _run(argv)
    except (SettingsError, UsageError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
