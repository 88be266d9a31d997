"""Offline render speed against the encoder alone, side by side in one run.

    .venv/bin/python benchmarks/render_speed.py [--size 1920x1080] [--fps 30] [--frames 150] [--preset veryfast]

Row 1 encodes frames that are already rendered (x264 alone: the ceiling on this machine).
Row 2 is the whole render: walk, course, damage, generator, upscaling, grain, sound, encoding, as
`python -m installation render` runs it. Row 3 is the same with the whole course compressed into
the film (damage changes every frame). Prints frames/s, the ratio to the encoder alone and the
ratio to real time.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from installation.audio import Soundscape  # noqa: E402
from installation.audio.track import FilmSound  # noqa: E402
from installation.engine import Engine  # noqa: E402
from installation.render import RenderJob, VideoSink, frame_states, render, share_cores_with_encoder  # noqa: E402
from installation.settings import load_settings  # noqa: E402


def measure(model=str(ROOT / "assets" / "memories.safetensors"), size=(1920, 1080), fps: float = 30.0,
            frames: int = 150, preset: str = "veryfast", show=print) -> list:
    """Encoder alone, the whole render at live pace, the whole render with the course compressed."""
    from common import Figure
    w, h = size
    settings = load_settings(overrides=[f"model.path={model}"])
    engine = Engine.from_settings(settings, w, h)
    seconds = frames / fps
    live = RenderJob(seconds, fps, w, h)
    compressed = RenderJob(seconds, fps, w, h, start=0.0, end=1.0)
    prepared = [engine.render(s) for _, s in frame_states(settings, live)]
    threads_before = torch.get_num_threads()
    share_cores_with_encoder(engine)          # as `python -m installation render` does
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        sink = VideoSink(Path(tmp) / "enc.mp4", w, h, fps, 18, preset)
        for i, f in enumerate(prepared):
            sink.write(i, f)
        sink.close(True)
        rows.append(("x264 alone, frames prepared", time.perf_counter() - t0))
        for name, job in (("whole render, live pace", live), ("whole render, course 0 -> 1", compressed)):
            t0 = time.perf_counter()
            sound = FilmSound(Soundscape(settings.sound, len(engine.anchors)), fps)     # as the CLI: with sound
            render(engine, frame_states(settings, job),
                   VideoSink(Path(tmp) / "r.mp4", w, h, fps, 18, preset, sample_rate=sound.sample_rate), sound=sound)
            rows.append((name, time.perf_counter() - t0))
    engine.close()
    render_threads = torch.get_num_threads()
    torch.set_num_threads(threads_before)     # the other benchmarks of a run get the whole machine
    enc = frames / rows[0][1]
    show(f"{frames} frames at {w}x{h}, {fps:g} fps, x264 {preset}, "
         f"{render_threads} torch thread(s) beside the encoder, {engine.device_name}")
    show(f"{'':<30} {'frames/s':>9} {'vs encoder':>11} {'x real time':>12}")
    for name, secs in rows:
        r = frames / secs
        show(f"{name:<30} {r:9.1f} {r / enc:10.0%} {r / fps:11.2f}x")
    whole = min(frames / rows[1][1], frames / rows[2][1])
    gpu = torch.cuda.is_available()
    figs = [Figure(f"offline {w}x{h}: x264 {preset} alone", f"{enc:.1f} frames/s", "", None),
            Figure("offline: whole render / encoder alone", f"{whole / enc:.0%} ({whole:.1f} frames/s)",
                   ">= 70% (CPU)", None if gpu else whole / enc >= 0.7),
            Figure("offline: whole render / real time", f"{whole / fps:.2f}x", ">= 3x (GPU)",
                   whole / fps >= 3 if gpu else None)]
    return figs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="1920x1080")
    ap.add_argument("--fps", type=float, default=30.0)
    ap.add_argument("--frames", type=int, default=150)
    ap.add_argument("--preset", default="veryfast")
    ap.add_argument("--model", default=str(ROOT / "assets" / "memories.safetensors"))
    args = ap.parse_args()
    size = tuple(int(v) for v in args.size.lower().split("x"))
    measure(args.model, size, args.fps, args.frames, args.preset)


if __name__ == "__main__":
    main()
