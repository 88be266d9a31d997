"""A real soak: the engine for hours (24 by default), headless, paced and supervised as the kiosk runs it.

    .venv/bin/python benchmarks/soak.py [--hours 24] [--every 60] [--size 1920x1080] [--fps 30]
                                        [--course 24h] [--settings FILE] [--set KEY=VALUE ...]

Frames are rendered at the live pace (a frame limiter at --fps, weight damage on the worker
thread, the kiosk's frame guard on) and the course runs its whole length in --course (default:
the soak's length, so every stage of the illness passes); the state is saved every
kiosk.save_interval_s as the kiosk saves it. Every --every minutes it prints a row — hours,
frames, fps, median and p99 render time, resident memory, GPU memory, progress, stage, frames
the guard stepped back from — and at the end a verdict: steady if resident memory grew less than
RSS_GROWTH_MB after the first row and every row's p99 render time fits in a frame at --fps. (The
median render time is printed too; it rises with the damage, so its drift is no verdict.)
Ctrl+C ends it early and still prints the summary.
The tests run a compressed day of this in seconds (tests/test_kiosk.py); this is the real one.
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

import numpy as np  # noqa: E402

from installation.engine import Engine  # noqa: E402
from installation.kiosk.faults import FrameGuard  # noqa: E402
from installation.kiosk.health import gpu_bytes, rss_bytes  # noqa: E402
from installation.kiosk.persist import SavedState, StateStore  # noqa: E402
from installation.piece import Piece  # noqa: E402
from installation.settings import load_settings  # noqa: E402

RSS_GROWTH_MB = 100     # after the first row: more than this over a day is a leak worth chasing


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hours", type=float, default=24.0)
    ap.add_argument("--every", type=float, default=60.0, help="minutes between rows (default 60)")
    ap.add_argument("--size", default="1920x1080", help="frame size, WxH (default 1920x1080)")
    ap.add_argument("--fps", type=float, default=30.0, help="frame limiter (default 30)")
    ap.add_argument("--course", help="course.duration for the soak (default: the soak's length)")
    ap.add_argument("--settings", type=Path)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = ap.parse_args()
    if not (args.hours > 0 and args.every > 0 and args.fps > 0):
        ap.error("--hours, --every and --fps must be more than 0")
    w, h = (int(v) for v in args.size.lower().split("x"))
    course = args.course or f"{args.hours * 3600:.0f}s"
    settings = load_settings(args.settings, [*args.set, f"course.duration={course}"])
    engine = Engine.from_settings(settings, w, h)
    guard = engine.guard = FrameGuard(engine.damage, engine.hooks)
    piece = Piece(settings)
    folder = Path(tempfile.mkdtemp(prefix="lapses-soak-"))
    store = StateStore(folder / "state.json")
    print(f"soak: {args.hours:g} h at {w}x{h}, {args.fps:g} fps limit, course {course}, on {engine.device_name}; "
          f"state in {folder}", flush=True)
    print(f"{'hours':>6} {'frames':>9} {'fps':>6} {'p50 ms':>7} {'p99 ms':>7} {'RSS MB':>8} {'GPU MB':>7} "
          f"{'progress':>8} {'stage':<9} {'guarded':>7}", flush=True)
    rows: list[tuple[float, float, float]] = []   # (median render s, p99 render s, RSS bytes) per row
    frames, times = 0, []
    start = last = row_start = time.perf_counter()
    next_row, next_save = start + args.every * 60, start
    end = start + args.hours * 3600
    try:
        while True:
            t0 = time.perf_counter()
            if t0 >= end:
                break
            piece.step(min(t0 - last, 0.25))
            last = t0
            engine.render(piece.frame_state(), sync=False)
            t1 = time.perf_counter()
            times.append(t1 - t0)
            frames += 1
            if t1 >= next_save:
                next_save = t1 + settings.kiosk.save_interval_s
                store.write_later(SavedState(course=piece.course_state, t=piece.t, walk_phase=piece.walk_phase))
            if t1 >= next_row:
                rows.append(_row(t1 - start, frames, times, t1 - row_start, piece, guard))
                times, row_start, next_row = [], t1, next_row + args.every * 60
            time.sleep(max(0.0, 1 / args.fps - (time.perf_counter() - t0)))
    except KeyboardInterrupt:
        print("(stopped early)")
    if times:
        rows.append(_row(time.perf_counter() - start, frames, times, time.perf_counter() - row_start, piece, guard))
    engine.close()
    store.close()
    if len(rows) < 2:
        print("too short for a verdict: at least two rows are needed")
        return 0
    growth_mb = (max(r[2] for r in rows[1:]) - rows[0][2]) / 2**20
    worst_p99 = max(r[1] for r in rows)
    ok = growth_mb < RSS_GROWTH_MB and worst_p99 < 1 / args.fps
    print(f"RSS growth after the first row {growth_mb:+.1f} MB (limit {RSS_GROWTH_MB}); worst p99 render time "
          f"{worst_p99 * 1e3:.1f} ms (a frame at {args.fps:g} fps: {1e3 / args.fps:.1f} ms); median x"
          f"{rows[-1][0] / rows[0][0]:.2f} from the first row to the last: {'steady' if ok else 'NOT steady'}")
    return 0 if ok else 1


def _row(elapsed_s, frames, times, span_s, piece, guard) -> tuple[float, float, float]:
    p50, p99 = statistics.median(times), float(np.percentile(times, 99))
    rss, gpu = rss_bytes(), gpu_bytes()
    point = piece.sample().point
    print(f"{elapsed_s / 3600:6.2f} {frames:9d} {len(times) / span_s:6.1f} {p50 * 1e3:7.2f} {p99 * 1e3:7.2f} "
          f"{rss / 2**20:8.1f} {'-' if gpu is None else f'{gpu / 2**20:.0f}':>7} {point.progress:8.4f} "
          f"{point.stage_name:<9} {guard.faults:7d}", flush=True)
    return p50, p99, rss


if __name__ == "__main__":
    from common import run_main
    raise SystemExit(run_main(main))
