"""`python -m installation [options]` shows the piece; `python -m installation sheet` draws the
decay on one page, `still` each memory as the piece shows it, `calibrate` fits the course to a model; `render` makes a film of it, `sound` its soundtrack alone, `concat` joins film
segments; `status`, `reset-course` and `install-service` look after a gallery kiosk (kiosk/).
A user mistake (settings, model file, paths) exits 2 with a message naming it."""
from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from pathlib import Path

log = logging.getLogger("lapses")

SOUND_PICTURE = 64    # `sound` renders the picture this small: it only reads its brightness and colour


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
                                            "Also: python -m installation sheet|still|calibrate|render|sound|concat|status|"
                                            "reset-course|install-service --help")
    _common(p)
    p.add_argument("--print-settings", action="store_true", help="print the resolved settings and exit")
    p.add_argument("--windowed", action="store_true", help="a window instead of fullscreen")
    p.add_argument("--seconds", type=float, help="quit after this many seconds (tests, timed shows)")
    p.add_argument("--kiosk", action="store_true", help="gallery mode: only kiosk.quit_combo quits, other keys ignored; "
                                                         "the course is saved and resumed, systemd's watchdog fed, "
                                                         "logs and health lines kept beside the state file")
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
    p.add_argument("--overwrite", "--force", dest="force", action="store_true", help="replace --out if it exists")
    return p


def _still_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m installation still",
                                description="One PNG per memory, named after its training image, as the piece shows "
                                            "it at a progress of the course (blackouts left out, no vignette or "
                                            "grain): to print the memories, or to check a model.")
    _common(p)
    p.add_argument("--out", type=Path, required=True, help="folder for the PNGs (made if missing)")
    p.add_argument("--size", type=int, default=512, help="side of each PNG in pixels (default 512)")
    p.add_argument("--progress", type=float, default=0.0, help="where in the course, 0 (healthy) .. 1 (default 0)")
    p.add_argument("--overwrite", action="store_true", help="replace PNGs of the same names in --out")
    return p


def _calibrate_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m installation calibrate",
                                description="Measure a model's course calibration and store it in the checkpoint: "
                                            "where on the course's curves this network's own damage is drawn, so "
                                            "that every memory is recognisable at 0.5, most at 0.7, glimpses at 0.9 "
                                            "and none at 1, whatever the network (installation/calibration.py); and "
                                            "each symptom's fader, so that its change is spread over its travel "
                                            "(installation/faders.py).")
    _common(p)
    p.add_argument("--out", type=Path, help="write the calibrated checkpoint here (default: in place)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    return p


def _render_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m installation render",
                                description="Render the piece to an H.264 MP4 (or PNG frames), frame for frame as "
                                            "the live installation shows it; t = frame / fps.")
    _common(p)
    out = p.add_mutually_exclusive_group(required=True)
    out.add_argument("--out", type=Path, help="MP4 file to write")
    out.add_argument("--frames", type=Path, metavar="DIR", help="write numbered PNGs into DIR instead")
    p.add_argument("--seconds", type=float, help="length of the film (not with --replay: the file's states set it)")
    p.add_argument("--fps", type=float, default=30.0, help="frames per second (default 30)")
    p.add_argument("--size", default="1280x720", metavar="WxH", help="frame size, even numbers (default 1280x720)")
    p.add_argument("--from", dest="start", type=float, metavar="P0",
                   help="fraction of the course's time at the first frame (0 = healthy; the staircase turns "
                        "time into the HUD's progress); with --to, the course is compressed into the film; "
                        "without, it runs at the live pace from its start")
    p.add_argument("--to", dest="end", type=float, metavar="P1",
                   help="fraction of the course's time at the last frame (1 = gone)")
    p.add_argument("--seed", type=int, help="the piece's seed (default: course.seed)")
    p.add_argument("--crf", type=int, default=18, help="quality, 0 (lossless) .. 51 (default 18): x264's CRF, "
                                                       "NVENC's constant quality")
    p.add_argument("--preset", default="veryfast", help="encoder speed: x264's ultrafast .. veryslow (default "
                                                        "veryfast); NVENC takes the preset of like speed, or p1 .. p7")
    p.add_argument("--encoder", default="auto", choices=["auto", "x264", "nvenc"],
                   help="auto: the GPU's h264_nvenc where there is a CUDA GPU with a hardware encoder, else x264")
    p.add_argument("--segment", default="1/1", metavar="I/N", help="render only the I-th of N equal stretches "
                                                                  "(join them with `concat`)")
    p.add_argument("--state-log", type=Path, metavar="FILE", help="write each frame's state as JSON lines")
    p.add_argument("--replay", type=Path, metavar="FILE", help="render the states of a --state-log file (e.g. at "
                                                                 "another size) instead of the course")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def _sound_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m installation sound",
                                description="Render the soundtrack alone to a 16-bit stereo WAV: the sound a film "
                                            "of the same --seconds, --fps, --from/--to and --seed carries (its "
                                            "picture cues read from a small frame: within -80 dBFS of the film's) "
                                            "(settings.yaml's sound: section sets it), then print its loudness, "
                                            "flatness and silences per stage of the course.")
    _common(p)
    p.add_argument("--out", type=Path, required=True, help="WAV file to write")
    p.add_argument("--seconds", type=float, required=True, help="length of the sound")
    p.add_argument("--fps", type=float, default=30.0, help="frames per second whose states drive the sound, as for "
                                                          "render (default 30)")
    p.add_argument("--from", dest="start", type=float, metavar="P0",
                   help="fraction of the course's time at the start (0 = healthy); with --to, the course is "
                        "compressed into the sound; without, it runs at the live pace from its start")
    p.add_argument("--to", dest="end", type=float, metavar="P1", help="fraction of the course's time at the end "
                                                                       "(1 = gone)")
    p.add_argument("--seed", type=int, help="the piece's seed (default: course.seed)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def _settings(args):
    from .settings import load_settings
    overrides = list(args.set)
    if args.model is not None:      # a path typed here is relative to where the command runs
        here = Path.cwd() / args.model
        overrides.append(f"model.path={here if here.exists() else args.model}")
    return load_settings(args.settings, overrides)


def load_settings_model(settings):
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
    from .app import App, NoDisplay, RunOptions
    args = _run_parser().parse_args(argv)
    settings = _settings(args)
    if args.hud:
        settings = dataclasses.replace(settings, display=dataclasses.replace(settings.display, hud=True))
    if args.print_settings:
        text = settings.to_yaml()
        changed = list(args.set) + ([f"model.path={args.model}"] if args.model is not None else [])
        if changed or args.hud:       # say so on the first line: "(from settings.yaml, with --set ...)"
            head, rest = text.split("\n", 1)
            given = ", ".join([f"--set {c}" for c in changed] + (["--hud"] if args.hud else []))
            text = (head[:-1] + f", with {given})" if head.endswith(")") else f"{head} (with {given})") + "\n" + rest
        print(text, end="")
        return 0
    if args.seconds is not None and not args.seconds > 0:
        raise UsageError(f"--seconds {args.seconds}: must be more than 0")
    if args.screenshots.exists() and not args.screenshots.is_dir():
        raise UsageError(f"--screenshots {args.screenshots}: is a file, not a folder; give a folder for the "
                         f"screenshots (it is made if missing)")
    kiosk = None
    if args.kiosk or settings.kiosk.enabled:   # unattended: resume the saved course, supervise, log (kiosk/)
        from .kiosk.runtime import KioskError, KioskRun
        try:
            kiosk = KioskRun.start(settings)
        except KioskError as e:
            raise UsageError(str(e)) from None
    from .engine import Engine

    def checked_model(s):                       # a target that selects nothing: before the window opens
        model = load_settings_model(s)
        Engine.check_targets(s, model)
        return model
    # (a kiosk run that stops here ends cleanly: a mistake to fix, no crash)
    model = kiosk.load_model(checked_model, (UsageError,)) if kiosk else checked_model(settings)

    def engine_factory(w, h):
        engine = Engine.from_settings(settings, w, h, model=model)
        return kiosk.attach(engine) if kiosk else engine

    app = App(settings, engine_factory=engine_factory)
    opts = RunOptions(windowed=args.windowed, seconds=args.seconds, kiosk=args.kiosk,
                      screenshot_dir=args.screenshots, kiosk_run=kiosk)
    try:
        report = kiosk.run(app, opts) if kiosk else app.run(opts)
    except NoDisplay as e:          # (a kiosk exits itself, with a status systemd restarts)
        print(f"error: {e}", file=sys.stderr)
        return 1                    # not 2: the same command works once there is a display
    print(f"{report.frames} frames in {report.seconds:.1f} s: {report.fps:.1f} fps, frame-time p99 "
          f"{report.p99_ms:.1f} ms, progress {report.progress:.3f}")
    return 0


def _sheet(argv) -> int:
    import cv2
    from .calibration import course_for
    from .sheet import make_sheet
    args = _sheet_parser().parse_args(argv)
    if args.stages < 2 or args.columns < 1:
        raise UsageError("--stages must be at least 2 and --columns at least 1")
    out = args.out
    if out.suffix.lower() != ".png":
        raise UsageError(f"--out {out}: the sheet is a PNG; give a name ending in .png")
    if out.exists() and not args.force:
        raise UsageError(f"--out {out} exists; choose another name or add --overwrite to replace it")
    if not out.parent.is_dir():
        raise UsageError(f"--out {out}: folder {out.parent} does not exist")
    settings = _settings(args)
    from .engine import Engine
    engine = Engine.from_settings(settings, 64, 64, model=load_settings_model(settings))
    course = course_for(settings, engine.model.meta)
    img, rows = make_sheet(engine, course, args.stages, args.columns, seed=settings.course.seed)
    engine.close()
    if not cv2.imwrite(str(out), cv2.cvtColor(img, cv2.COLOR_RGB2BGR)):
        raise UsageError(f"--out {out}: could not write the file")
    print(f"{'progress':>8}  {'stage':<14} {'SSIM vs pristine':>16}")
    for row in rows:
        print(f"{row.progress:8.3f}  {row.stage:<14} {row.ssim:16.3f}")
    print(f"wrote {out}")
    return 0


def _still_name(name: str) -> str:
    """A training image's name (maybe in a subfolder, maybe a volume:slice) -> a PNG file name."""
    stem = name.replace("/", "_").replace("\\", "_").replace(":", "_")
    for suffix in (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"):
        if stem.lower().endswith(suffix):
            stem = stem[:-len(suffix)]
    return f"{stem}.png"


def _still(argv) -> int:
    import cv2
    from .calibration import course_for
    from .sheet import stills
    args = _still_parser().parse_args(argv)
    if not 16 <= args.size <= 8192:
        raise UsageError(f"--size {args.size}: a side from 16 to 8192 pixels")
    if not 0.0 <= args.progress <= 1.0:
        raise UsageError(f"--progress {args.progress}: a fraction of the course, 0 .. 1")
    out = args.out
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out}: is a file; give a folder for the PNGs")
    settings = _settings(args)
    model = load_settings_model(settings)
    names = [_still_name(a.name) for a in model.meta.anchors]
    if not names:
        raise UsageError(f"model.path: {settings.model_path} has no memories (anchors): a checkpoint from during "
                         f"training; give the run's generator.safetensors or a bundle")
    taken = [n for n in names if (out / n).exists()]
    if taken and not args.overwrite:
        raise UsageError(f"--out {out}: {len(taken)} of the PNGs exist already ({', '.join(taken[:3])}"
                         f"{' …' if len(taken) > 3 else ''}); choose another folder or add --overwrite")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"--out {out}: cannot make the folder ({e.strerror})") from None
    from .engine import Engine
    engine = Engine.from_settings(settings, 64, 64, model=model)
    course = course_for(settings, model.meta)
    try:
        pictures = stills(engine, course, args.progress, args.size, seed=settings.course.seed)
    finally:
        engine.close()
    for file_name, (_, picture) in zip(names, pictures):
        if not cv2.imwrite(str(out / file_name), cv2.cvtColor(picture, cv2.COLOR_RGB2BGR)):
            raise UsageError(f"--out {out}: could not write {file_name}")
    detail = f"detail stage {engine.detail.size} px" if engine.detail is not None else "no detail stage"
    print(f"wrote {len(names)} memories at {args.size} px, progress {args.progress:g} ({detail}) to {out}")
    return 0


def _calibrate(argv) -> int:
    import dataclasses
    from models import load_generator, save_generator
    from models.checkpoint import out_problem
    from . import faders
    from .calibration import KEY, calibrate, course_for, story
    from .course import Course
    from .engine import Engine
    from .symptoms import SYMPTOMS
    args = _calibrate_parser().parse_args(argv)
    settings = _settings(args)
    path = settings.model_path
    out = args.out or path
    problem = out_problem(out, args.out is not None, args.overwrite)
    if problem:
        raise UsageError(problem)
    model = load_settings_model(settings)
    if not model.meta.anchors:
        raise UsageError(f"model.path: {path} has no memories (anchors) to recognise: give a run's "
                         f"generator.safetensors or a bundle, not a checkpoint from during training")
    as_written = dataclasses.replace(settings, course=dataclasses.replace(settings.course, calibrated=False))
    engine = Engine.from_settings(as_written, 64, 64, model=model)
    try:
        print(f"measuring {path} ({len(model.meta.anchors)} memories) ...", flush=True)
        cal = calibrate(engine, Course(settings.course, disabled=settings.disabled_symptoms()),
                        progress=lambda k, n: print(f"  {k}/{n}", flush=True))
        checks = (0.5, 0.7, 0.8, 0.9, 1.0)
        before = story(engine, course_for(as_written), checks)
        after = story(engine, Course(settings.course, disabled=settings.disabled_symptoms(), calibration=cal), checks)
        print("measuring each symptom's fader ...", flush=True)
        fitted = faders.calibrate(engine, list(SYMPTOMS), progress=lambda k, n: print(f"  {k}/{n}", flush=True))
    finally:
        engine.close()
    g, meta, snaps = load_generator(path, device="cpu", with_snapshots=True)
    meta.extra[KEY] = cal.to_json()
    meta.extra[faders.KEY] = fitted.to_json()
    save_generator(out, g, meta, snaps)
    print("network damage drawn at: " + ", ".join(f"{p:g} -> {q:.2f}" for p, q in cal.knots[1:-1]))
    print(f"{'progress':>8}  {'recognised, as written':>22}  {'calibrated':>10}  {'light':>5}")
    for p, (r0, _), (r1, light) in zip(checks, before, after):
        print(f"{p:8.2f}  {r0:22.0%}  {r1:10.0%}  {light:5.2f}")
    print("faders (change / change at full, at " + " / ".join(f"{f:g}" for f in faders.CHECKS) + "): "
          + ", ".join(f"{n} " + "/".join(f"{v:.2f}" for v in m) for n, m in fitted.measured.items()))
    print(f"wrote {out}")
    return 0


def _check_out(path: Path, overwrite: bool, what: str) -> None:
    if path.exists() and not overwrite:
        raise UsageError(f"{what} {path} exists; choose another name or add --overwrite to replace it")
    if not path.parent.is_dir():
        raise UsageError(f"{what} {path}: folder {path.parent} does not exist")
    if not os.access(path.parent, os.W_OK):
        raise UsageError(f"{what} {path}: folder {path.parent} is not writable")


def _check_span(args) -> None:
    """--fps, --seconds and --from/--to, as render and sound take them."""
    if not args.fps > 0 or not args.seconds > 0:
        raise UsageError(f"--fps {args.fps} / --seconds {args.seconds}: both must be more than 0")
    if (args.start is None) != (args.end is None):
        raise UsageError("--from and --to go together, e.g. --from 0 --to 1 for the whole course")
    if args.start is not None and not (0 <= args.start <= 1 and 0 <= args.end <= 1):
        raise UsageError(f"--from {args.start} --to {args.end}: both are fractions of the course, 0 .. 1")


def _parse_render(args):
    from .render import RenderJob, available_memory, size_problem
    try:
        w, h = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        raise UsageError(f"--size {args.size}: write it as WIDTHxHEIGHT, e.g. 1920x1080") from None
    if w < 16 or h < 16 or w % 2 or h % 2:
        raise UsageError(f"--size {args.size}: width and height must be even and at least 16 (H.264 with yuv420p)")
    if args.seconds is None:
        if args.replay is None:
            raise UsageError("--seconds: how long the film is, e.g. --seconds 60 (only --replay goes without)")
        args.seconds = 1.0 / args.fps if args.fps > 0 else 1.0   # unused: a replay renders its file's states
    _check_span(args)
    if not 0 <= args.crf <= 51:
        raise UsageError(f"--crf {args.crf}: must be 0 .. 51")
    problem = size_problem(w, h, args.fps, args.preset if args.out is not None else None, available_memory())
    if problem:
        raise UsageError(problem)
    try:
        i, n = (int(v) for v in args.segment.split("/"))
        assert 1 <= i <= n
    except (ValueError, AssertionError):
        raise UsageError(f"--segment {args.segment}: write it as I/N with 1 <= I <= N, e.g. 2/4") from None
    if args.out is not None:
        if args.out.suffix.lower() != ".mp4":
            raise UsageError(f"--out {args.out}: the film is an MP4; give a name ending in .mp4 (or use --frames DIR)")
        _check_out(args.out, args.overwrite, "--out")
    else:
        if args.frames.exists() and not args.frames.is_dir():
            raise UsageError(f"--frames {args.frames} is a file; give a folder for the numbered PNGs")
    if args.state_log is not None:
        _check_out(args.state_log, args.overwrite, "--state-log")
    if args.replay is not None and not args.replay.is_file():
        raise UsageError(f"--replay {args.replay}: file not found")
    job = RenderJob(args.seconds, args.fps, w, h, args.start, args.end, args.seed, (i - 1, n))
    if args.out is None and args.frames.is_dir() and not args.overwrite:
        # segments share a folder: refuse only frames this render would write over (a replay's
        # numbers come from its file, so there any frame already there counts)
        mine = None if args.replay is not None else {f"frame_{k:07d}.png" for k in job.frame_range()}
        clash = sorted(p.name for p in args.frames.iterdir() if mine is None or p.name in mine)
        if clash:
            what = (f"already holds {clash[0]}" + (f" and {len(clash) - 1} more" if len(clash) > 1 else "")
                    + (" of this render's frames" if mine is not None else " (a replay's frame numbers come from its file)"))
            raise UsageError(f"--frames {args.frames} {what}; choose another folder or add --overwrite")
    return job


def _render(argv) -> int:
    import torch
    from models.progress import progress_bar
    from .engine import Engine
    from .audio import Soundscape
    from .audio.track import FilmSound
    from .render import (FramesSink, VideoSink, choose_encoder, frame_states, render, replay_states,
                         share_cores_with_encoder, tail_state)
    args = _render_parser().parse_args(argv)
    job = _parse_render(args)
    replayed = None
    if args.replay is not None:     # read before anything is opened: a wrong file is a usage error
        try:
            replayed = list(replay_states(args.replay))
        except ValueError as e:     # "FILE line N: not a state line ...", like the messages below
            raise UsageError(f"--replay {e}") from None
        if not replayed:
            raise UsageError(f"--replay {args.replay}: holds no states; give a file written by --state-log")
        frames = [i for i, _ in replayed]
        twice = next((i for a, i in zip(frames, frames[1:]) if i <= a), None)
        if twice is not None:
            raise UsageError(f"--replay {args.replay}: frame {twice} does not come after the one before it (two "
                             f"screenshots' states joined?); replay each screenshot's .json on its own")
    encoder = None
    if args.out is not None:        # the encoder is opened once before any work: a preset or a GPU it
        try:                        # cannot use is a clear message, not a traceback from its thread
            encoder, chosen = choose_encoder(args.encoder, job.width, job.height, args.crf, args.preset,
                                             torch.cuda.is_available())
        except ValueError as e:
            raise UsageError(str(e)) from None
        if not args.quiet:
            print(f"encoder: {chosen}")
    settings = _settings(args)
    engine = Engine.from_settings(settings, job.width, job.height, model=load_settings_model(settings))
    if args.out is not None:
        share_cores_with_encoder(engine)
    tail = keep = None
    if args.replay is not None:
        states, total = replayed, len(replayed)
    else:   # whole generation blocks around the segment, so that segments join exactly
        states, total = frame_states(settings, job, job.block_range()), len(job.frame_range())
        keep = job.frame_range()
        tail = tail_state(settings, job)
    sound = None
    if args.out is not None and settings.sound.enabled:
        sound = FilmSound(Soundscape(settings.sound, len(engine.anchors)), job.fps)
    if args.frames is not None:
        sink = FramesSink(args.frames)
    else:
        sink = VideoSink(args.out, job.width, job.height, job.fps, args.crf, args.preset, encoder,
                         sample_rate=sound.sample_rate if sound else None)
    with progress_bar(total, unit="frame", disable=args.quiet) as bar:
        n = render(engine, states, sink, args.state_log, progress=bar, sound=sound, tail=tail, keep=keep)
        rate = bar.format_dict["rate"] or 0.0
    engine.close()
    target = args.out or args.frames
    print(f"wrote {n} frames ({job.width}x{job.height}, {job.fps:g} fps"
          + (f", AAC sound at {sound.sample_rate} Hz" if sound else "") + f") to {target}"
          + (f" at {rate:.1f} frames/s" if rate else ""))
    return 0


def _sound(argv) -> int:
    from models.progress import progress_bar
    from .audio import Soundscape
    from .audio.features import cues_for
    from .audio.track import FilmSound, StageMeters, WavWriter
    from .course import stage_of
    from .engine import Engine
    from .render import RenderJob, frame_states
    args = _sound_parser().parse_args(argv)
    _check_span(args)
    if args.out.suffix.lower() != ".wav":
        raise UsageError(f"--out {args.out}: the sound is written as WAV; give a name ending in .wav")
    _check_out(args.out, args.overwrite, "--out")
    settings = _settings(args)
    job = RenderJob(args.seconds, args.fps, SOUND_PICTURE, SOUND_PICTURE, args.start, args.end, args.seed)
    engine = Engine.from_settings(settings, SOUND_PICTURE, SOUND_PICTURE, model=load_settings_model(settings))
    if engine.device.type == "cpu":       # a 64 px picture: a second thread costs more than it gives,
        import torch                      # and on a busy machine far more (3 s of sound: 9.1 s, 1 thread 3.8 s)
        torch.set_num_threads(1)
    sound = FilmSound(Soundscape(settings.sound, len(engine.anchors)), job.fps)
    wav = WavWriter(args.out, sound.sample_rate)
    stages = StageMeters(sound)
    ok = False
    try:
        with progress_bar(job.total_frames, unit="frame", disable=args.quiet) as bar:
            for i, state in frame_states(settings, job):
                frame = engine.render(state, sync=True)    # the picture tells the sound its brightness
                stages.frame(i, stage_of(state.progress)[1], state.progress)
                for start, samples in sound.add(i, state, cues_for(engine, state, frame)):
                    wav.write(samples)
                    stages.add(start, samples)
                bar.update(1)
            for start, samples in sound.finish():
                wav.write(samples)
                stages.add(start, samples)
        ok = True
    finally:
        wav.close(ok)
        engine.close()
    print(f"{'stage':<10} {'progress':>11} {'seconds':>8} {'RMS dBFS':>9} {'peak dBFS':>10} {'flatness':>9} "
          f"{'silent':>7}")
    for name, (p0, p1, meter) in stages.rows.items():
        f = meter.figures()
        seconds = meter.samples / sound.sample_rate
        print(f"{name:<10} {p0:5.2f}-{p1:<5.2f} {seconds:8.1f} {f.rms_db:9.1f} {f.peak_db:10.1f} {f.flatness:9.4f} "
              f"{f.silent:6.0%}")
    print(f"wrote {args.out} ({wav.samples / sound.sample_rate:.2f} s, {sound.sample_rate} Hz stereo, 16-bit)")
    return 0


def _concat(argv) -> int:
    from .render import concat
    p = argparse.ArgumentParser(prog="python -m installation concat",
                                description="Join MP4 segments of one render (--segment i/n) without re-encoding.")
    p.add_argument("out", type=Path)
    p.add_argument("parts", type=Path, nargs="+", help="the segments, in order")
    p.add_argument("--overwrite", action="store_true")
    args = p.parse_args(argv)
    for part in args.parts:
        if not part.is_file():
            raise UsageError(f"{part}: segment not found")
    if args.out.suffix.lower() != ".mp4":
        raise UsageError(f"{args.out}: give a name ending in .mp4")
    _check_out(args.out, args.overwrite, "output")
    from av.error import FFmpegError
    try:
        packets = concat(args.parts, args.out)
    except FFmpegError as e:            # PyAV's (some are ValueErrors too): a part that is no film it can read
        where = getattr(e, "filename", None) or "a segment"
        raise UsageError(f"{where}: not a film that can be joined ({e.strerror or e}); give the MP4 parts "
                         f"that render --segment I/N wrote") from None
    except ValueError as e:
        raise UsageError(str(e)) from None
    print(f"wrote {args.out} ({packets} packets from {len(args.parts)} segments)")
    return 0


def _status(argv) -> int:
    from .kiosk.status import status
    return status(argv, UsageError)


def _reset_course(argv) -> int:
    from .kiosk.status import reset_course
    return reset_course(argv, UsageError)


def _install_service(argv) -> int:
    from .kiosk.service import install_service
    return install_service(argv, UsageError)


def _interrupt(*_) -> None:
    raise KeyboardInterrupt


def main(argv=None) -> int:
    from .settings import SettingsError
    argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    try:
        commands = {"sheet": _sheet, "still": _still, "calibrate": _calibrate, "render": _render, "sound": _sound, "concat": _concat, "status": _status,
                    "reset-course": _reset_course, "install-service": _install_service}
        if argv[:1] and argv[0] in commands:
            if argv[0] in ("render", "sound", "concat"):    # a kill (SIGTERM) cleans up as Ctrl-C does
                signal.signal(signal.SIGTERM, _interrupt)
            return commands[argv[0]](argv[1:])
        return _run(argv)
    except (SettingsError, UsageError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        if argv[:1] in (["render"], ["sound"], ["concat"]):  # the file appears only when complete
            print("interrupted: nothing was written", file=sys.stderr)
        return 130
    except BrokenPipeError:            # `status | head`: the reader left; not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
