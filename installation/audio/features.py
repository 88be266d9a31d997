"""The cues the sound takes from the picture: where the walk is, how bright and colourful it looks.

Read from the frame the screen (or the film) shows, not from a second run of the generator: the
live app and the renderer have that frame already, so listening costs a few hundred pixel reads
per frame. Only the centre square is read (the picture is square; bars and crops lie outside it),
and only every few pixels of it, which also averages the film grain away.
"""
from __future__ import annotations

import numpy as np

from ..output import i420_planes, yuv_to_rgb
from ..state import FrameState
from .synth import Cues

SAMPLES_PER_SIDE = 48           # pixels read along each side of the centre square
COLOUR_GAIN = 2.5               # chroma of ordinary photographs is 0.1-0.3; this spreads it over 0..1
LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def picture_cues(frame: np.ndarray) -> tuple[float, float]:
    """(brightness, colour) of a uint8 frame, both in [0, 1]: RGB [H, W, 3], or YUV 4:2:0
    [H * 3/2, W] as a film's encoder takes it (output.Output.i420), read at the same pixels."""
    h, w = (frame.shape[0] * 2 // 3, frame.shape[1]) if frame.ndim == 2 else frame.shape[:2]
    side = min(h, w)
    y0, x0 = (h - side) // 2, (w - side) // 2
    step = max(1, side // SAMPLES_PER_SIDE)
    if frame.ndim == 2:
        Y, U, V = i420_planes(frame, w, h)
        if y0 % 2 == x0 % 2 == step % 2 == 0:      # the chroma samples under them lie on a stride too
            luma = Y[y0:y0 + side:step, x0:x0 + side:step]
            chroma = [P[y0 // 2:(y0 + side) // 2:step // 2, x0 // 2:(x0 + side) // 2:step // 2] for P in (U, V)]
        else:
            ys, xs = np.arange(y0, y0 + side, step), np.arange(x0, x0 + side, step)
            luma = Y[np.ix_(ys, xs)]
            chroma = [P[np.ix_(ys // 2, xs // 2)] for P in (U, V)]
        rgb = yuv_to_rgb(np.stack([luma, *chroma], axis=-1)) / 255.0
    else:
        rgb = frame[y0:y0 + side:step, x0:x0 + side:step, :3].astype(np.float32) / 255.0
    flat = rgb.reshape(-1, 3)
    r, g, b = flat[:, 0], flat[:, 1], flat[:, 2]
    brightness = float(flat.mean(axis=0) @ LUMA)
    chroma = float((np.maximum(np.maximum(r, g), b) - np.minimum(np.minimum(r, g), b)).mean())
    return min(1.0, max(0.0, brightness)), min(1.0, max(0.0, chroma * COLOUR_GAIN))


def walk_places(engine, state: FrameState) -> tuple[int, int, float]:
    """(from place, to place, fraction) of the walk at this state, as the picture walks it
    (perseveration and hesitation included). Without memories (a random walk) each stretch of
    the walk is a place of its own: a negative number."""
    where = engine.walk(state.seed).where(state.walk_phase, perseveration=state.intensity("perseveration"),
                                          hesitation=state.intensity("hesitation"))
    if where.from_anchor >= 0 and where.to_anchor >= 0:
        return where.from_anchor, where.to_anchor, float(where.fraction)
    return -2 - where.visit, -3 - where.visit, float(where.fraction)


def cues_for(engine, state: FrameState, frame: np.ndarray) -> Cues:
    """What the sound needs from the engine for this state and the frame it rendered for it."""
    brightness, colour = picture_cues(frame)
    from_place, to_place, fraction = walk_places(engine, state)
    return Cues(brightness=brightness, colour=colour, from_place=from_place, to_place=to_place,
                fraction=min(1.0, max(0.0, fraction)))
