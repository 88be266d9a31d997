"""Offline render speed against the encoder alone, side by side in one run.

    .venv/bin/python benchmarks/render_speed.py [--size 1920x1080] [--fps 30] [--frames 150] [--preset veryfast]
                                                [--repeat 3] [--encoder auto|x264|nvenc]

For each stretch of the piece, the encoder (x264, or NVENC where `--encoder auto` finds one)
first encodes its frames already rendered (the encoder alone: the ceiling on this machine for
those frames), then the whole render makes the same
frames from nothing — walk, course, damage, generator, upscaling, grain, sound, encoding — as
`python -m installation render` runs it. Stretches: the course's start at its live pace; the
middle of the whole course compressed into a 5-minute film (`--from 0 --to 1 --seconds 300`, the
render issue's example: the weight damage changes every few frames); and, for information, the
whole course squeezed into the benchmark's few seconds. The figure is the worse ratio of the
first two. Each stretch is measured `--repeat` times, the encoder alone and the whole render
taking turns (so a slow spell of the machine falls on both); the table shows medians: of the
frame rates, and of the ratio of each turn's pair. Prints frames/s, the ratio to the encoder
alone and the ratio to real time.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import cv2  # noqa: E402
import torch  # noqa: E402

from installation.audio import Soundscape  # noqa: E402
from installation.audio.track import FilmSound  # noqa: E402
from installation.engine import Engine  # noqa: E402
from installation.render import (RenderJob, VideoSink, choose_encoder, generated_frames, frame_states,  # noqa: E402
                                 render, share_cores_with_encoder)
from installation.settings import load_settings  # noqa: E402


def _encode_alone(frames: list, out: Path, size, fps: float, preset: str, encoder: str) -> float:
    """Seconds the encoder takes for frames that are already rendered: the ceiling for those frames."""
    t0 = time.perf_counter()
    sink = VideoSink(out, *size, fps, 18, preset, encoder)
    for i, f in enumerate(frames):
        sink.write(i, f)
    sink.close(True)
    return time.perf_counter() - t0


def measure(model=str(ROOT / "assets" / "memories.safetensors"), size=(1920, 1080), fps: float = 30.0,
            frames: int = 150, preset: str = "veryfast", repeat: int = 3, show=print, encoder: str = "auto") -> list:
    """Per stretch of the piece: the encoder alone on its frames, then the whole render of the same frames.

    Each stretch has its own encoder-alone figure because the encoder's speed depends on the picture:
    the static and grain of a late course cost it far more than a healthy early picture."""
    from common import Figure
    w, h = size
    encoder, chosen = choose_encoder(encoder, w, h, 18, preset, torch.cuda.is_available())   # as the CLI chooses
    settings = load_settings(overrides=[f"model.path={model}"])
    engine = Engine.from_settings(settings, w, h)
    seconds = frames / fps
    film = RenderJob(300.0, fps, w, h, start=0.0, end=1.0)          # the course in a 5-minute film
    stretches = (("live pace, course start", RenderJob(seconds, fps, w, h), None),
                 ("course in a 5-min film, middle", film, range(film.total_frames // 2, film.total_frames // 2 + frames)),
                 ("(whole course in these frames)", RenderJob(seconds, fps, w, h, start=0.0, end=1.0), None))
    threads_before, cv_threads_before = torch.get_num_threads(), cv2.getNumThreads()
    share_cores_with_encoder(engine)          # as `python -m installation render` does
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, job, span in stretches:
            # already rendered, in the form the render hands the encoder (YUV 4:2:0, VideoSink.form)
            prepared = [f for _, _, f in generated_frames(engine, frame_states(settings, job, span), VideoSink.form)]
            turns = []
            for _ in range(max(1, repeat)):
                alone = frames / _encode_alone(prepared, Path(tmp) / "enc.mp4", size, fps, preset, encoder)
                t0 = time.perf_counter()
                sound = FilmSound(Soundscape(settings.sound, len(engine.anchors)), fps)   # as the CLI: with sound
                render(engine, frame_states(settings, job, span),
                       VideoSink(Path(tmp) / "r.mp4", w, h, fps, 18, preset, encoder, sample_rate=sound.sample_rate),
                       sound=sound)
                turns.append((alone, frames / (time.perf_counter() - t0)))
            del prepared
            rows.append((name, statistics.median(a for a, _ in turns), statistics.median(b for _, b in turns),
                         statistics.median(b / a for a, b in turns)))
    engine.close()
    render_threads, device = torch.get_num_threads(), engine.device_name
    torch.set_num_threads(threads_before)     # the other benchmarks of a run get the whole machine
    cv2.setNumThreads(cv_threads_before)
    show(f"{frames} frames at {w}x{h}, {fps:g} fps, {chosen}, preset {preset}, with sound, "
         f"{render_threads} torch thread(s) beside the encoder, {device}; medians of {max(1, repeat)} turns")
    show(f"{'stretch':<32} {'enc. alone':>11} {'whole render':>13} {'vs encoder':>11} {'x real time':>12}")
    for name, enc, whole, ratio in rows:
        show(f"{name:<32} {enc:9.1f}/s {whole:11.1f}/s {ratio:10.1%} {whole / fps:11.2f}x")
    name, enc, whole, ratio = min(rows[:2], key=lambda r: r[3])        # the figure: the worse of the two
    gpu = torch.cuda.is_available()
    slowest = min(r[2] for r in rows[:2])
    figs = [Figure(f"offline {w}x{h}: {'x264' if encoder == 'libx264' else 'NVENC'} {preset} alone", f"{enc:.1f} frames/s ({name})", "", None),
            Figure("offline: whole render / encoder alone", f"{ratio:.1%} ({whole:.1f} frames/s, {name}; "
                   f"median of {max(1, repeat)})", ">= 70% (CPU)", None if gpu else ratio >= 0.7),
            Figure("offline: whole render / real time", f"{slowest / fps:.2f}x", ">= 3x (GPU)",
                   slowest / fps >= 3 if gpu else None)]
    return figs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="1920x1080")
    ap.add_argument("--fps", type=float, default=30.0)
    ap.add_argument("--frames", type=int, default=150)
    ap.add_argument("--preset", default="veryfast")
    ap.add_argument("--repeat", type=int, default=3, help="turns per stretch (medians are shown)")
    ap.add_argument("--encoder", default="auto", choices=["auto", "x264", "nvenc"], help="as render's --encoder")
    ap.add_argument("--model", default=str(ROOT / "assets" / "memories.safetensors"))
    args = ap.parse_args()
    size = tuple(int(v) for v in args.size.lower().split("x"))
    measure(args.model, size, args.fps, args.frames, args.preset, args.repeat, encoder=args.encoder)


if __name__ == "__main__":
    from common import run_main
    raise SystemExit(run_main(main))
