"""From the generator's small image to what the screen shows: finite, in range, scaled to any
screen (fit with bars, or fill and crop), upscaled well, with optional vignette and film grain.

Vignette is applied at the generator's resolution (it is smooth, so upscaling keeps it) and
grain is one precomputed field seen through a window that moves with the frame number: both cost almost nothing per
frame, which matters on a small gallery PC.

A film is encoded as YUV 4:2:0, and `Output.i420` makes that frame directly: the small image is
converted to YUV at its own size (BT.601 limited range, as the RGB frame's conversion would be),
then its luma is upscaled to the picture and its chroma to half of that, and the grain goes on
the luma alone (equal grain on R, G and B changes only Y). That is half the upscaling and no
full-size colour conversion, which a CPU machine's encoder otherwise pays for every frame.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from models.detail import to_uint8

# names as in settings.yaml's display.upscale
INTERPOLATION = {"nearest": cv2.INTER_NEAREST, "bilinear": cv2.INTER_LINEAR, "bicubic": cv2.INTER_CUBIC,
                 "lanczos": cv2.INTER_LANCZOS4}


@dataclass(frozen=True)
class OutputSpec:
    width: int                 # output frame size in pixels
    height: int
    scale: str = "fit"         # "fit": whole image, black bars; "fill": cover the screen, crop
    upscale: str = "bicubic"   # nearest, bilinear, bicubic, lanczos
    vignette: float = 0.0      # 0 = none, 1 = corners fall to black
    grain: float = 0.0         # film grain strength, 0..1 (in 8-bit levels: grain * 24)


def img_to_uint8(img: torch.Tensor) -> np.ndarray:
    """img [C, H, W] float in [-1, 1] (NaN/Inf tolerated) -> uint8 [H, W, 3]; a batch [N, C, H, W]
    -> [N, H, W, 3] in one pass (models.detail.to_uint8, grey repeated)."""
    return to_uint8(img, rgb=True)


# BT.601 limited range (studio swing), RGB [0, 255] -> Y [16, 235], U and V [16, 240]
RGB_TO_YUV = np.array([[65.481, 128.553, 24.966], [-37.797, -74.203, 112.0], [112.0, -93.786, -18.214]],
                      np.float32) / 255.0
YUV_OFFSET = np.array([16.0, 128.0, 128.0], np.float32)
YUV_TO_RGB = np.linalg.inv(RGB_TO_YUV).astype(np.float32)
LUMA_RANGE = 219.0 / 255.0      # a step of one level on R, G and B is this much on Y
YUV_LIMITS = ((16, 235), (16, 240), (16, 240))     # what 8-bit RGB converts to


_RGB_TO_YUV_AFFINE = np.hstack([RGB_TO_YUV, YUV_OFFSET[:, None]]).astype(np.float32)


def rgb_to_yuv(rgb: np.ndarray) -> np.ndarray:
    """uint8 [h, w, 3] RGB -> uint8 [h, w, 3] YUV (BT.601, limited range), pixel for pixel (OpenCV's
    fixed-point transform: within one level of the exact value, an eighth of the float product's time)."""
    return cv2.transform(np.ascontiguousarray(rgb), _RGB_TO_YUV_AFFINE)


def yuv_to_rgb(yuv: np.ndarray) -> np.ndarray:
    """float or uint8 [..., 3] YUV (BT.601, limited range) -> float32 RGB in [0, 255]."""
    rgb = (np.asarray(yuv, np.float32) - YUV_OFFSET) @ YUV_TO_RGB.T
    return np.clip(rgb, 0.0, 255.0)


def i420_planes(buf: np.ndarray, width: int, height: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Views of the Y [H, W], U and V [H/2, W/2] planes of an I420 frame [H * 3/2, W] (OpenCV's layout)."""
    flat = buf.reshape(-1)
    q = (height // 2) * (width // 2)
    return (flat[:height * width].reshape(height, width),
            flat[height * width:height * width + q].reshape(height // 2, width // 2),
            flat[height * width + q:height * width + 2 * q].reshape(height // 2, width // 2))


def _place(plane: np.ndarray, small: np.ndarray, y0: int, y1: int, x0: int, x1: int, black: int,
           interp: int) -> None:
    """`small` scaled into plane[y0:y1, x0:x1] (a fit: wholly on it), the bars around it cleared to black."""
    plane[:y0] = black
    plane[y1:] = black
    plane[y0:y1, :x0] = black
    plane[y0:y1, x1:] = black
    place = plane[y0:y1, x0:x1]
    scaled = cv2.resize(small, (x1 - x0, y1 - y0), dst=place, interpolation=interp)
    if scaled is not place:     # OpenCV wrote elsewhere (it may, for a view it cannot use)
        place[...] = scaled


def vignette_mask(h: int, w: int, strength: float, channels: int = 1) -> np.ndarray:
    """[h, w, channels] float32: how much of each pixel the vignette leaves."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r = np.sqrt(((xx + 0.5) / w - 0.5) ** 2 + ((yy + 0.5) / h - 0.5) ** 2) / np.sqrt(0.5)
    mask = (1.0 - strength * np.clip(r, 0, 1) ** 2.2)[..., None].astype(np.float32)
    return np.ascontiguousarray(np.repeat(mask, channels, axis=2))


class Output:
    """Turns generator frames into screen frames of one fixed size."""

    GRAIN_MARGIN = 64   # grain window offsets: 64 x 64 distinct placements

    def __init__(self, spec: OutputSpec, seed: int = 0):
        if spec.width < 2 or spec.height < 2:
            raise ValueError(f"output size {spec.width}x{spec.height}: must be at least 2x2")
        if spec.upscale not in INTERPOLATION or spec.scale not in ("fit", "fill"):
            raise ValueError(f"output upscale {spec.upscale!r} / scale {spec.scale!r}: allowed upscale "
                             f"{', '.join(INTERPOLATION)}; scale fit, fill")
        self.spec = spec
        self._vignette: dict[tuple[int, int, int], np.ndarray] = {}    # (h, w, channels) -> mask
        self.grain_halves = None           # (bright, dark) uint8 [H + margin, W + margin, 3]; None: no grain
        if spec.grain > 0:
            # one grain field a little larger than the screen, split into its bright and dark
            # halves as uint8: each frame adds one and subtracts the other through a window that
            # moves with the frame index (saturating cv2 arithmetic: ~1 ms at 1080p, no int16 copy)
            rng = np.random.default_rng(seed)
            field = rng.standard_normal((spec.height + self.GRAIN_MARGIN, spec.width + self.GRAIN_MARGIN))
            field = field * spec.grain * 24.0
            rgb = np.repeat(field[..., None], 3, axis=2)
            self.grain_halves = (np.clip(rgb, 0, 255).astype(np.uint8), np.clip(-rgb, 0, 255).astype(np.uint8))
            # the same grain as it lands on Y: each level added to R, G and B is LUMA_RANGE on Y
            self._luma_grain = tuple(np.rint(g[..., 0] * LUMA_RANGE).astype(np.uint8) for g in self.grain_halves)

    def placement(self, src_h: int, src_w: int) -> tuple[int, int, int, int]:
        """(scaled width, scaled height, x offset, y offset) of the image on the output."""
        W, H = self.spec.width, self.spec.height
        s = min(W / src_w, H / src_h) if self.spec.scale == "fit" else max(W / src_w, H / src_h)
        sw, sh = max(1, round(src_w * s)), max(1, round(src_h * s))
        return sw, sh, (W - sw) // 2, (H - sh) // 2

    def _vignetted(self, small: np.ndarray) -> np.ndarray:
        if self.spec.vignette <= 0:
            return small
        h, w = small.shape[:2]
        mask = self._vignette_mask(h, w, 3)
        return cv2.multiply(small, mask, dtype=cv2.CV_8U)      # rounded; a quarter of numpy's time

    def _interpolation(self, sw: int, w: int) -> int:
        return INTERPOLATION[self.spec.upscale] if (sw >= w) else cv2.INTER_AREA

    def __call__(self, small: np.ndarray, frame_index: int = 0) -> np.ndarray:
        """small uint8 [h, w, 3] -> uint8 [H, W, 3] at the output size."""
        h, w = small.shape[:2]
        small = self._vignetted(small)
        sw, sh, x0, y0 = self.placement(h, w)
        interp = self._interpolation(sw, w)
        W, H = self.spec.width, self.spec.height
        # the placed image intersected with the screen (fit: bars; fill: crop)
        fx0, fy0 = max(0, x0), max(0, y0)
        fx1, fy1 = min(W, x0 + sw), min(H, y0 + sh)
        if (sw, sh) == (W, H):
            frame = cv2.resize(small, (sw, sh), interpolation=interp)
        elif x0 >= 0 and y0 >= 0:       # fit: scaled straight into its place, only the bars cleared
            frame = np.empty((H, W, 3), np.uint8)
            _place(frame, small, y0, y0 + sh, x0, x0 + sw, 0, interp)
        else:
            scaled = cv2.resize(small, (sw, sh), interpolation=interp)
            frame = np.zeros((H, W, 3), np.uint8)
            frame[fy0:fy1, fx0:fx1] = scaled[fy0 - y0:fy1 - y0, fx0 - x0:fx1 - x0]
        if self.grain_halves is not None:   # on the picture only: the bars stay black, as the room around it
            self._add_grain(frame[fy0:fy1, fx0:fx1], frame_index, fy0, fx0)
        return frame

    def i420(self, small: np.ndarray, frame_index: int = 0) -> np.ndarray:
        """small uint8 [h, w, 3] -> the same frame as YUV 4:2:0, uint8 [H * 3/2, W] in OpenCV's I420
        layout, for the encoder. Made at the small size and upscaled per plane where `planar` allows
        (the picture lies on whole chroma samples and is enlarged at least twice, so the half-size
        chroma keeps every colour the small image has); otherwise from the RGB frame."""
        h, w = small.shape[:2]
        if not self.planar(h, w):
            return cv2.cvtColor(self(small, frame_index), cv2.COLOR_RGB2YUV_I420)
        return self.i420_from_planes(cv2.split(rgb_to_yuv(self._vignetted(small))), frame_index)

    def planar(self, h: int, w: int) -> bool:
        """Whether an I420 frame of a small picture of this size is made from its own Y, U and V planes:
        a fit with even bars and picture, enlarged at least twice."""
        W, H = self.spec.width, self.spec.height
        sw, sh, x0, y0 = self.placement(h, w)
        return not (W % 2 or H % 2 or self.spec.scale != "fit" or any(v % 2 for v in (sw, sh, x0, y0))
                    or sw < 2 * w or sh < 2 * h)

    def shade(self, h: int, w: int) -> np.ndarray | None:
        """The vignette as a float32 [h, w] mask at another size (it is smooth: the same at any size), or
        None without one: for a picture made already shaded (DetailStage.planar_frames)."""
        return None if self.spec.vignette <= 0 else self._vignette_mask(h, w, 1)[..., 0]

    def _vignette_mask(self, h: int, w: int, channels: int) -> np.ndarray:
        mask = self._vignette.get((h, w, channels))
        if mask is None:
            mask = self._vignette[(h, w, channels)] = vignette_mask(h, w, self.spec.vignette, channels)
        return mask

    def i420_from_planes(self, planes, frame_index: int = 0) -> np.ndarray:
        """The small picture's Y, U and V planes (uint8 [h, w] each, BT.601 limited range, vignetted
        already; `planar(h, w)` holds) -> the I420 frame: each plane upscaled into place, bars black,
        grain on the luma."""
        W, H = self.spec.width, self.spec.height
        h, w = planes[0].shape[:2]
        sw, sh, x0, y0 = self.placement(h, w)
        buf = np.empty((H * 3 // 2, W), np.uint8)
        Y, U, V = i420_planes(buf, W, H)
        for plane, src, (black, scale) in zip((Y, U, V), planes, ((16, 1), (128, 2), (128, 2))):
            px0, px1 = x0 // scale, (x0 + sw) // scale
            _place(plane, src, y0 // scale, (y0 + sh) // scale, px0, px1, black, self._interpolation(px1 - px0, w))
        if self.grain_halves is not None:
            self._add_grain(Y[y0:y0 + sh, x0:x0 + sw], frame_index, y0, x0, self._luma_grain)
        return buf

    @classmethod
    def grain_window(cls, frame_index: int, y0: int, x0: int) -> tuple[int, int]:
        """Where in the grain field the window of the picture beginning at (y0, x0) lies for this frame:
        a pseudo-random walk, so no two neighbouring frames share their grain."""
        m = cls.GRAIN_MARGIN
        return (frame_index * 37) % m + y0, (frame_index * 23 + frame_index // m * 11) % m + x0

    def _add_grain(self, picture: np.ndarray, frame_index: int, y0: int, x0: int, grain=None) -> None:
        """Grain added in place to the picture's part of the frame, which begins at (y0, x0)
        (`grain`: the luma field, for a Y plane)."""
        h, w = picture.shape[:2]
        dy, dx = self.grain_window(frame_index, y0, x0)
        bright, dark = grain or self.grain_halves
        cv2.add(picture, bright[dy:dy + h, dx:dx + w], dst=picture)
        cv2.subtract(picture, dark[dy:dy + h, dx:dx + w], dst=picture)
