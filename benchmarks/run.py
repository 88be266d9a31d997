"""Every speed figure Lapses promises, with its target and the machine, in one table.

    .venv/bin/python benchmarks/run.py [--quick] [--model FILE]

Runs, one after another on this machine: the live app against a naive loop and the control
latency (live_speed.py), the offline render against the encoder alone (render_speed.py),
training against a plain fp32 loop (train_speed.py), and resident/GPU memory over an hour of
the piece compressed into a minute. Targets marked "(GPU)" are judged only where CUDA is
present, "(CPU)" only where it is not. Run it on an idle machine: a training beside it halves
every figure. --quick shortens each part (for a smoke run; the figures are then rough).
"""
from __future__ import annotations

import argparse
import time

from common import BUNDLED, Figure, headless, machine, print_figures

headless()

import torch  # noqa: E402

import live_speed  # noqa: E402
import render_speed  # noqa: E402
import train_speed  # noqa: E402
from installation.engine import Engine  # noqa: E402
from installation.kiosk.health import gpu_bytes, rss_bytes  # noqa: E402
from installation.piece import Piece  # noqa: E402
from installation.settings import load_settings  # noqa: E402

RSS_GROWTH_MB = 50     # over a compressed hour, after warm-up


def memory(model, size, frames: int = 1800) -> list[Figure]:
    """An hour of the course in `frames` frames: RSS (and GPU memory) after warm-up and at the end."""
    w, h = size
    settings = load_settings(overrides=[f"model.path={model}", "course.duration=1h", "course.lucid.enabled=false"])
    engine = Engine.from_settings(settings, w, h)
    piece = Piece(settings)
    dt = 3600.0 / frames
    start_rss = start_gpu = None
    for i in range(frames):
        piece.step(dt)
        engine.render(piece.frame_state(), sync=False)
        if i == frames // 10:
            start_rss, start_gpu = rss_bytes(), gpu_bytes()
    end_rss, end_gpu = rss_bytes(), gpu_bytes()
    engine.close()
    grow = (end_rss - start_rss) / 2**20
    figs = [Figure("memory: RSS over a compressed hour", f"{start_rss / 2**20:.0f} -> {end_rss / 2**20:.0f} MB "
                   f"({grow:+.1f})", f"growth < {RSS_GROWTH_MB} MB", grow < RSS_GROWTH_MB)]
    if start_gpu is not None:
        g = (end_gpu - start_gpu) / 2**20
        figs.append(Figure("memory: GPU over a compressed hour", f"{start_gpu / 2**20:.0f} -> {end_gpu / 2**20:.0f} MB",
                           "flat", g <= 0))
    return figs


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=str(BUNDLED))
    ap.add_argument("--size", default="1920x1080")
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    size = tuple(int(v) for v in args.size.lower().split("x"))
    quick = args.quick
    t0 = time.perf_counter()
    figs: list[Figure] = []
    print("live ...", flush=True)
    figs += live_speed.measure(args.model, size, 6.0 if quick else 30.0)
    print("offline render ...", flush=True)
    figs += render_speed.measure(args.model, size, frames=30 if quick else 150, repeat=1 if quick else 3,
                                 show=lambda *a: None)
    print("training ...", flush=True)
    figs += train_speed.measure(steps=5 if quick or not torch.cuda.is_available() else 50)
    print("memory ...", flush=True)
    figs += memory(args.model, size, frames=300 if quick else 1800)
    print()
    print_figures(f"Lapses benchmarks ({time.perf_counter() - t0:.0f} s) on {machine()}", figs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
