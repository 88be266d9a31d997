"""Every speed figure Lapses promises, with its target and the machine, in one table.

    .venv/bin/python benchmarks/run.py [--quick] [--model FILE]

Runs, one after another on this machine: the live app against a naive loop and the control
latency (live_speed.py), the offline render against the encoder alone (render_speed.py),
training against a plain fp32 loop (train_speed.py), and resident/GPU memory over an hour of
the piece compressed into a minute, twice (the first fills bounded caches; the second would show a
leak). Targets marked "(GPU)" are judged only where CUDA is present, "(CPU)" only where it is
not. Run it on an idle machine: a training beside it halves every figure. --quick shortens each
part (for a smoke run; the figures are then rough).
"""
from __future__ import annotations

import argparse
import time

from common import BUNDLED, Figure, headless, machine, print_figures, run_main

headless()

import torch  # noqa: E402

import live_speed  # noqa: E402
import render_speed  # noqa: E402
import train_speed  # noqa: E402
from installation.engine import Engine  # noqa: E402
from installation.kiosk.health import gpu_bytes, rss_bytes  # noqa: E402
from installation.piece import Piece  # noqa: E402
from installation.settings import load_settings  # noqa: E402

RSS_GROWTH_MB = 50     # over a compressed hour, once the first has filled the bounded caches


def memory(model, size, frames: int = 1800) -> list[Figure]:
    """An hour of the course in `frames` frames, twice over (the same life again): RSS (and GPU
    memory) over each. The first hour fills what is bounded by design — the seeded fields of each
    weight symptom as it begins (FieldCache, at most FIELD_CACHE_BYTES), the detail stage's
    residuals (at most its CACHE_BYTES) — and the allocator's high-water mark; growth over the
    second, which draws nothing new, is what a leak would show."""
    from installation.symptoms.base import FIELD_CACHE_BYTES, FIELDS
    w, h = size
    settings = load_settings(overrides=[f"model.path={model}", "course.duration=1h", "course.lucid.enabled=false"])
    engine = Engine.from_settings(settings, w, h)
    dt = 3600.0 / frames
    hours = []
    for _ in range(2):
        piece = Piece(settings)
        start = start_fields = None
        for i in range(frames):
            piece.step(dt)
            engine.render(piece.frame_state(), sync=False)
            if i == (frames // 10 if not hours else 0):       # the first hour after a warm-up
                start, start_fields = (rss_bytes(), gpu_bytes()), FIELDS.nbytes
        hours.append((start, (rss_bytes(), gpu_bytes()), FIELDS.nbytes - start_fields))
    engine.close()
    MB = 2 ** 20
    ((rss0, _), (rss1, _), fields), ((rss2, gpu2), (rss3, gpu3), _) = hours
    figs = [Figure("memory: RSS over a compressed hour, the first", f"{rss0 / MB:.0f} -> {rss1 / MB:.0f} MB "
                   f"({(rss1 - rss0) / MB:+.1f}; symptom fields drawn +{fields / MB:.0f} MB, bounded at "
                   f"{FIELD_CACHE_BYTES / MB:.0f})", "", None),
            Figure("memory: RSS over the same hour again", f"{rss2 / MB:.0f} -> {rss3 / MB:.0f} MB "
                   f"({(rss3 - rss2) / MB:+.1f})", f"growth < {RSS_GROWTH_MB} MB", (rss3 - rss2) / MB < RSS_GROWTH_MB)]
    if gpu2 is not None:
        figs.append(Figure("memory: GPU over the same hour again", f"{gpu2 / MB:.0f} -> {gpu3 / MB:.0f} MB",
                           "flat", gpu3 - gpu2 <= 0))
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
    figs += render_speed.measure(args.model, size, frames=30 if quick else 150, repeat=1 if quick else 5,
                                 show=lambda *a: None)
    print("training ...", flush=True)
    figs += train_speed.measure(steps=5 if quick or not torch.cuda.is_available() else 50)
    print("memory ...", flush=True)
    figs += memory(args.model, size, frames=300 if quick else 1800)
    print()
    print_figures(f"Lapses benchmarks ({time.perf_counter() - t0:.0f} s) on {machine()}", figs)
    return 0


if __name__ == "__main__":
    raise SystemExit(run_main(main))
