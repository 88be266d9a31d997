"""What a training run leaves to look at: sample grids, the loss CSV and plot, a progress film."""
from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import torch


def to_uint8(img: torch.Tensor) -> np.ndarray:
    """img [N, C, H, W] in [-1, 1] -> uint8 [N, H, W, 3]."""
    x = ((img.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    return x.permute(0, 2, 3, 1).numpy()


def grid(frames: np.ndarray, cols: int | None = None, pad: int = 2) -> np.ndarray:
    """uint8 [N, H, W, 3] -> one uint8 image, tiles on a black ground."""
    n, h, w, _ = frames.shape
    cols = cols or math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    out = np.zeros((rows * (h + pad) + pad, cols * (w + pad) + pad, 3), np.uint8)
    for i, f in enumerate(frames):
        r, c = divmod(i, cols)
        out[pad + r * (h + pad): pad + r * (h + pad) + h, pad + c * (w + pad): pad + c * (w + pad) + w] = f
    return out


def save_png(path: Path, image: np.ndarray) -> None:
    import imageio.v3 as iio
    path.parent.mkdir(parents=True, exist_ok=True)
    iio.imwrite(path, image)


class LossLog:
    """Append-only CSV of training losses (survives resume: rows past the resume step are dropped)."""

    FIELDS = ["step", "d_loss", "g_loss", "recall_loss", "d_real", "d_fake", "images_per_s"]

    def __init__(self, path: Path, resume_step: int | None = None):
        self.path = path
        if resume_step is not None and path.is_file():
            rows = [r for r in self.read(path) if int(r["step"]) <= resume_step]
            self._write_all(rows)
        elif not path.is_file() or resume_step is None:
            self._write_all([])

    def _write_all(self, rows: list[dict]) -> None:
        with open(self.path, "w", newline="") as f:
            w = csv.DictWriter(f, self.FIELDS)
            w.writeheader()
            w.writerows(rows)

    def append(self, row: dict) -> None:
        with open(self.path, "a", newline="") as f:
            csv.DictWriter(f, self.FIELDS).writerow({k: row.get(k, "") for k in self.FIELDS})

    @staticmethod
    def read(path: Path) -> list[dict]:
        with open(path, newline="") as f:
            return list(csv.DictReader(f))


def plot_losses(csv_path: Path, out: Path, steps: tuple[int, int] | None = None, title: str = "") -> None:
    """The losses over training, or over the steps in (first, last] (one resolution of a grown run)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    rows = LossLog.read(csv_path)
    if steps is not None:
        rows = [r for r in rows if steps[0] < int(r["step"]) <= steps[1]]
    if not rows:
        return
    step = [int(r["step"]) for r in rows]
    fig, ax = plt.subplots(figsize=(8, 4), dpi=100)
    for key, label in (("d_loss", "discriminator"), ("g_loss", "generator"), ("recall_loss", "recall")):
        vals = [float(r[key]) if r[key] not in ("", None) else np.nan for r in rows]
        if not all(np.isnan(vals)):
            ax.plot(step, vals, label=label, linewidth=0.8)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_yscale("symlog", linthresh=0.1)  # seed 002's regret: losses want a log axis
    ax.legend()
    ax.grid(alpha=0.3)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)


def progress_film(grid_paths: list[Path], out: Path, fps: int = 4) -> Path | None:
    """An H.264 MP4 of the sample grids over training (PyAV), or None when there are none."""
    import av
    import imageio.v3 as iio
    from models import atomic_write
    if not grid_paths:
        return None
    frames = [iio.imread(p)[..., :3] for p in sorted(grid_paths)]
    h, w = frames[0].shape[:2]
    h2, w2 = h - h % 2, w - w % 2

    def write(tmp: str) -> None:
        with av.open(tmp, mode="w", format="mp4") as container:
            stream = container.add_stream("libx264", rate=fps)
            stream.width, stream.height, stream.pix_fmt = w2, h2, "yuv420p"
            for f in frames:
                if f.shape[:2] != (h, w):
                    continue
                for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f[:h2, :w2]), format="rgb24")):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)

    atomic_write(out, write)
    return out
