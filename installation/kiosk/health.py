"""Logs a technician can read a week later: rotating files, and one health line a minute.

Why it exists: nobody watches a gallery PC, so what happened must be on disk, in bounded space
(a few rotating files beside the state, never a full disk after a month), and slow trouble —
a memory leak, frame times creeping up, a GPU filling — must show as a trend. The health line
carries fps, frame-time p99, resident memory, GPU memory (with CUDA), progress, how often the
frame guard stepped back and the SDL video driver (so a screen that shows nothing is seen); `python -m installation status` prints the last one.
"""
from __future__ import annotations

import logging
import logging.handlers
import os
import resource
from collections import deque
from pathlib import Path

import numpy as np

LOG_NAME = "lapses.log"
LOG_BYTES = 2_000_000          # per file; with the backups at most ~10 MB in all
LOG_BACKUPS = 4
HEALTH_LOGGER = "lapses.health"
HEALTH_MARK = f" {HEALTH_LOGGER}: health "

log = logging.getLogger(HEALTH_LOGGER)


def log_path(folder: Path) -> Path:
    return Path(folder) / LOG_NAME


def setup_file_logging(folder: Path) -> Path:
    """Send every log line (root logger, INFO and up) to a rotating file in `folder` as well."""
    path = log_path(folder)
    root = logging.getLogger()
    for h in root.handlers:
        if isinstance(h, logging.handlers.RotatingFileHandler) and Path(h.baseFilename) == path.resolve():
            return path
    handler = logging.handlers.RotatingFileHandler(path, maxBytes=LOG_BYTES, backupCount=LOG_BACKUPS,
                                                   encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s",
                                           datefmt="%Y-%m-%d %H:%M:%S"))
    root.addHandler(handler)
    if root.level > logging.INFO or root.level == logging.NOTSET:
        root.setLevel(logging.INFO)
    return path


def flush_logs() -> None:
    for h in logging.getLogger().handlers:
        try:
            h.flush()
        except Exception:     # a closed stream at exit is not worth a traceback
            pass


def rss_bytes() -> int:
    """Resident memory now (from /proc; the peak from getrusage where there is no /proc)."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def gpu_bytes() -> int | None:
    """Memory the CUDA caching allocator holds, or None without CUDA in use."""
    import sys
    torch = sys.modules.get("torch")
    if torch is None or not torch.cuda.is_available() or not torch.cuda.is_initialized():
        return None
    return int(torch.cuda.memory_reserved())


def video_driver() -> str:
    """The SDL video driver the display runs on ('x11', 'wayland', 'kmsdrm'; 'offscreen' shows nothing),
    or '-' before the display is up."""
    import sys
    pygame = sys.modules.get("pygame")
    if pygame is None or not pygame.display.get_init():
        return "-"
    return pygame.display.get_driver()


TIMES_KEPT = 36_000    # ten minutes at 60 fps: plenty for a median and a p99


class Health:
    """Frame times between health lines, and the line itself."""

    def __init__(self, every_s: float):
        self.every_s = float(every_s)
        # the newest frame times only: a health line every day at 60 fps must not hold 5 M floats
        self._times: deque[float] = deque(maxlen=TIMES_KEPT)
        self._next_s: float | None = None
        self.frames = 0

    def add(self, dt_s: float, now: float) -> None:
        if self._next_s is None:
            self._next_s = now + self.every_s
        self._times.append(dt_s)
        self.frames += 1

    def due(self, now: float) -> bool:
        return self._next_s is not None and now >= self._next_s

    def figures(self) -> tuple[float, float]:
        """(fps, p99 frame time in ms) over the frames since the last line."""
        times = np.asarray(self._times or [0.0], dtype=np.float64)
        total = float(times.sum())
        return (len(times) / total if total > 0 else 0.0), float(np.percentile(times, 99)) * 1000

    def line(self, piece, faults: int = 0) -> str:
        fps, p99_ms = self.figures()
        s = piece.sample().point
        gpu = gpu_bytes()
        return (f"health fps={fps:.1f} p99_ms={p99_ms:.1f} rss_mb={rss_bytes() / 2**20:.1f} "
                f"gpu_mb={'-' if gpu is None else f'{gpu / 2**20:.1f}'} progress={s.progress:.4f} "
                f"stage={s.stage_name} life={s.cycle} course_s={piece.course_state.elapsed_s:.0f} "
                f"frames={self.frames} faults={faults} video={video_driver()}")

    def report(self, piece, now: float, faults: int = 0) -> str:
        """Log the line and start a new interval."""
        text = self.line(piece, faults)
        log.info("%s", text)
        self._times.clear()
        self._next_s = now + self.every_s
        return text


def last_health_line(folder: Path) -> str | None:
    """The newest health line in the rotating logs of `folder`, or None."""
    base = log_path(folder)
    for path in [base] + [base.with_name(f"{LOG_NAME}.{i}") for i in range(1, LOG_BACKUPS + 1)]:
        try:
            lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            continue
        for line in reversed(lines):
            if HEALTH_MARK in line:
                return line
    return None
