"""What a visitor sees of a model's memories: the pictures a calibration measures by.

MEMORIES memories, spread from first to last, each compared by SSIM with its own healthy picture
(blackouts left out), for each of SEEDS; shared by the course's calibration
(installation/calibration.py), the faders' (installation/faders.py) and benchmarks/controls.py.
"""
from __future__ import annotations

import numpy as np

SEEDS = (1, 2)
MEMORIES = 8


def memory_latents(engine, memories: int = MEMORIES):
    """The latents of `memories` memories, spread from first to last (sheet.sheet_latents)."""
    from .sheet import sheet_latents
    return sheet_latents(engine, min(memories, max(1, len(engine.anchors))), 1, spread=True)


def healthy_pictures(engine, z, seed: int) -> list[np.ndarray]:
    from .state import FrameState
    return engine.small_frames(z, FrameState(t=3.0, seed=seed))


def seen(engine, z, healthy: list[np.ndarray], seed: int, intensities, progress: float = 0.0) -> tuple[float, float, float]:
    """What a visitor sees of the memories `z` under these intensities (blackouts left out): the share
    whose picture is still nearest (SSIM) its own healthy picture, the mean light against the healthy
    pictures', and the mean SSIM of each against its own healthy picture."""
    from .sheet import ssim
    from .state import FrameState
    frames = engine.small_frames(z, FrameState(t=3.0, seed=seed, progress=progress,
                                               intensities={**intensities, "lapses": 0.0}))
    scores = np.array([[ssim(f, h) for h in healthy] for f in frames])
    own = np.arange(len(frames))
    return (float(np.mean(scores.argmax(axis=1) == own)), float(np.mean(frames) / max(1e-6, float(np.mean(healthy)))),
            float(scores[own, own].mean()))
