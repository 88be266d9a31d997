"""What every benchmark shares: the machine it ran on, the bundled model, frame-time statistics."""
from __future__ import annotations

import os
import platform
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

BUNDLED = ROOT / "assets" / "memories.safetensors"


def run_main(main) -> int:
    """A benchmark's entry point: main()'s exit code, and a user's mistake — a model, data folder or
    setting that is missing or unusable — one line naming it and exit code 2, not a traceback."""
    from installation.settings.loader import SettingsError
    from models.checkpoint import CheckpointError
    from models.detail import DetailError
    from training.data import DataError
    try:
        return int(main() or 0)
    except (CheckpointError, DataError, DetailError, SettingsError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


def headless() -> None:
    """No window, no sound card needed: SDL's dummy drivers, unless the caller chose others."""
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")


def machine() -> str:
    import torch
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (f"{cpu}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads; {gpu}; "
            f"torch {torch.__version__}, Python {platform.python_version()}")


@dataclass
class FrameStats:
    """Frame periods in seconds, as a visitor sees them."""
    periods_s: list[float]

    @property
    def fps_median(self) -> float:
        return 1.0 / statistics.median(self.periods_s)

    @property
    def p99_ms(self) -> float:
        return float(np.percentile(self.periods_s, 99)) * 1e3

    @property
    def max_ms(self) -> float:
        return max(self.periods_s) * 1e3

    def over_ms(self, limit_ms: float) -> int:
        return sum(p * 1e3 > limit_ms for p in self.periods_s)


@dataclass
class Figure:
    """One line of the summary table: what was measured, against which target."""
    name: str
    value: str
    target: str
    ok: bool | None          # None: not measurable here (no GPU), or no target

    @property
    def verdict(self) -> str:
        return {True: "met", False: "NOT met", None: "-"}[self.ok]


def print_figures(title: str, figures: list[Figure]) -> None:
    print(title)
    w = max(len(f.name) for f in figures)
    v = max(len(f.value) for f in figures)
    t = max(len(f.target) for f in figures)
    print(f"{'figure':<{w}}  {'measured':<{v}}  {'target':<{t}}  verdict")
    for f in figures:
        print(f"{f.name:<{w}}  {f.value:<{v}}  {f.target:<{t}}  {f.verdict}")
