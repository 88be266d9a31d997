"""The contact sheet: the decay made visible on one page.

One row per stage of the course (progress 0 .. 1), the same memories in every column, each row
labelled with its progress, stage name and its SSIM against the pristine row. The same figures
are returned (and printed by the CLI), so a sheet is also a measurement.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch
from skimage.metrics import structural_similarity

from .course import Course, stage_of
from .engine import Engine
from .state import FrameState

LABEL_W = 230
TILE = 160
DETAIL_TILE = 256       # a model with a detail stage: tiles large enough to see its detail go


@dataclass
class SheetRow:
    progress: float
    stage: str
    ssim: float                 # mean SSIM of the row's frames against the pristine ones
    frames: list[np.ndarray]


def sheet_latents(engine: Engine, columns: int, seed: int, spread: bool = False) -> torch.Tensor:
    """The memories' anchors (the first, as many as there are columns; with `spread`, chosen
    evenly from first to last, so that 137 brain slices show from the base of the brain to its
    crown rather than six neighbours), then seeded random shell points (a style model's anchors
    and random points are in w: see Engine.random_latents)."""
    anchors = engine.anchors.cpu()
    if spread and len(anchors) > columns:
        anchors = anchors[torch.linspace(0, len(anchors) - 1, columns).round().long()]
    anchors = anchors[:columns]
    L = engine.latent_size
    extra = columns - len(anchors)
    if getattr(engine, "space", "z") == "w":    # w has no shell: anchors as they are, then mapped latents
        return torch.cat([anchors, engine.random_latents(extra, seed)]) if extra > 0 else anchors
    if extra > 0:
        g = torch.Generator().manual_seed(seed)
        rand = torch.randn(extra, L, generator=g)
        anchors = torch.cat([anchors, rand]) if len(anchors) else rand
    return anchors * (L ** 0.5) / anchors.norm(dim=1, keepdim=True).clamp_min(1e-12)


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    return float(structural_similarity(a, b, channel_axis=2, data_range=255))


def decay_rows(engine: Engine, course: Course, progresses, columns: int = 6, seed: int = 1,
               t: float = 0.0, spread: bool = False) -> list[SheetRow]:
    """Pictures of fixed latents (sheet_latents) at each progress (course curves, no lucid
    interval, no overrides), as the piece shows them before the screen's scaling: through the detail
    stage when the model has one (Engine.pictures)."""
    z = sheet_latents(engine, columns, seed, spread)
    rows, pristine = [], None
    for p in progresses:
        state = FrameState(t=t, progress=float(p), intensities=course.curve_intensities(float(p)), seed=seed)
        frames = engine.pictures(z, state)
        if pristine is None:
            pristine = engine.pictures(z, FrameState(t=t, seed=seed))
        score = float(np.mean([ssim(f, q) for f, q in zip(frames, pristine)]))
        rows.append(SheetRow(float(p), stage_of(float(p))[1], score, frames))
    return rows


def _label(img: np.ndarray, lines: list[str], x: int, y: int, scale: float = 0.6) -> None:
    for i, text in enumerate(lines):
        cv2.putText(img, text, (x, y + i * int(34 * scale + 6)), cv2.FONT_HERSHEY_SIMPLEX, scale,
                    (235, 235, 235), 1, cv2.LINE_AA)


def compose(rows: list[SheetRow], title: str) -> np.ndarray:
    """RGB uint8 image: a title band, then one labelled row per stage."""
    cols = len(rows[0].frames)
    tile = DETAIL_TILE if rows[0].frames[0].shape[0] >= 2 * DETAIL_TILE else TILE
    gap, head = 6, 44
    W = LABEL_W + cols * (tile + gap) + gap
    H = head + len(rows) * (tile + gap) + gap
    sheet = np.full((H, W, 3), 18, np.uint8)
    _label(sheet, [title], 12, 28, 0.7)
    for r, row in enumerate(rows):
        y = head + gap + r * (tile + gap)
        _label(sheet, [f"progress {row.progress:.2f}", row.stage, f"SSIM {row.ssim:.2f}"], 12, y + 40)
        for c, frame in enumerate(row.frames):
            x = LABEL_W + gap + c * (tile + gap)
            # a thin frame round each tile, so a picture that has gone black still reads as a picture
            cv2.rectangle(sheet, (x - 1, y - 1), (x + tile, y + tile), (58, 58, 58), 1)
            shrink = frame.shape[0] > tile
            sheet[y:y + tile, x:x + tile] = cv2.resize(frame, (tile, tile),
                                                       interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LANCZOS4)
    return sheet


def make_sheet(engine: Engine, course: Course, stages: int = 8, columns: int = 6, seed: int = 1,
               title: str = "") -> tuple[np.ndarray, list[SheetRow]]:
    progresses = np.linspace(0.0, 1.0, max(2, stages))
    rows = decay_rows(engine, course, progresses, columns, seed, spread=True)
    return compose(rows, title or f"Lapses - {engine.model.path.name} - seed {seed}"), rows


def stills(engine: Engine, course: Course, progress: float, size: int, seed: int = 1) -> list[tuple[str, np.ndarray]]:
    """Each memory (its anchor) as the piece shows it at this progress (course curves, no lucid
    interval, blackouts left out, as on the sheet), at size x size without the screen's vignette
    and grain: (the name of its training image, RGB uint8)."""
    names = [a.name for a in engine.model.meta.anchors]
    intensities = {**course.curve_intensities(float(progress)), "lapses": 0.0}
    state = FrameState(t=0.0, progress=float(progress), intensities=intensities, seed=seed)
    out = []
    for i in range(0, len(names), 16):
        for name, picture in zip(names[i:i + 16], engine.pictures(engine.anchors[i:i + 16].cpu(), state)):
            interp = cv2.INTER_AREA if picture.shape[0] > size else cv2.INTER_CUBIC
            out.append((name, cv2.resize(picture, (size, size), interpolation=interp)))
    return out
