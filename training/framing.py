"""Where to crop a photograph to the square a generator learns: where its subject is.

People's photographs are mostly portrait or landscape, and a blind centre crop cuts off the heads
of a portrait. `subject_centre` finds what the square should be centred on, from the photograph at
full resolution, so the same crop comes out at every size (the training's and the detail stage's):

1. faces (models/faces.py, the piece's own detector): the faces' box, held a little above the
   square's middle, where a portrait's eyes are;
2. else what stands out: the spectral-residual saliency (Hou & Zhang, CVPR 2007) of a small grey
   copy, its brightest part weighted;
3. else (a flat picture) the centre.

A person can override it for one photo in `framing.yaml` beside the photographs:

    grandmother.jpg: top          # top, bottom, left, right or centre
    beach-1974.png: [0.3, 0.6]    # the subject's centre: across, down, fractions of the photo

A square photograph is the square itself, whatever is asked.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

OVERRIDES_FILE = "framing.yaml"
PLACES = {"centre": (0.5, 0.5), "center": (0.5, 0.5), "top": (0.5, 0.0), "bottom": (0.5, 1.0),
          "left": (0.0, 0.5), "right": (1.0, 0.5)}
FACE_HEADROOM = 0.1         # faces sit this share of the square above its middle
SALIENCY_SIDE = 64


class FramingError(ValueError):
    """A framing.yaml that cannot be followed; the message names the line."""


def read_overrides(folder: Path) -> dict[str, tuple[float, float]]:
    """framing.yaml beside the photographs: file name -> the subject's centre (across, down)."""
    import yaml
    path = Path(folder) / OVERRIDES_FILE
    if not path.is_file():
        return {}
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise FramingError(f"{path}: not YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(doc, dict):
        raise FramingError(f"{path}: write one line per photo, `name.jpg: top` (or bottom, left, right, centre, "
                           f"or [across, down] fractions)")
    out = {}
    for name, where in doc.items():
        if isinstance(where, str) and where.strip().lower() in PLACES:
            out[str(name)] = PLACES[where.strip().lower()]
        elif (isinstance(where, list) and len(where) == 2 and all(isinstance(v, (int, float)) and not
              isinstance(v, bool) and 0.0 <= v <= 1.0 for v in where)):
            out[str(name)] = (float(where[0]), float(where[1]))
        else:
            raise FramingError(f"{path}: {name}: {where!r}; give top, bottom, left, right, centre, or "
                               f"[across, down] as two fractions from 0 to 1")
    return out


def _saliency(grey: np.ndarray) -> np.ndarray:
    """Spectral-residual saliency of a small grey image (float, any range) -> [h, w], >= 0."""
    import cv2
    f = np.fft.fft2(grey)
    log_amp = np.log(np.abs(f) + 1e-8)
    residual = log_amp - cv2.blur(log_amp.astype(np.float32), (3, 3))
    sal = np.abs(np.fft.ifft2(np.exp(residual + 1j * np.angle(f)))) ** 2
    return cv2.GaussianBlur(sal.astype(np.float32), (0, 0), 2.5)


def subject_centre(img: np.ndarray, detector=None) -> tuple[float, float]:
    """img HWC float in [0, 1] -> where its subject is: (across, down), fractions of the photo."""
    import cv2
    h, w = img.shape[:2]
    if h == w:
        return 0.5, 0.5
    grey = (img[..., :3].mean(axis=2) if img.shape[2] >= 3 else img[..., 0]) if img.ndim == 3 else img
    u8 = np.ascontiguousarray((np.clip(grey, 0, 1) * 255).astype(np.uint8))
    if detector is None:
        from models.faces import FaceDetector
        detector = FaceDetector()
    faces = detector.faces(u8)
    if faces:
        scale = max(h, w) / detector.side           # the detector's copy -> the photo
        r0 = min(f["r"] for f in faces) * scale
        r1 = max(f["r"] + f["height"] for f in faces) * scale
        c0 = min(f["c"] for f in faces) * scale
        c1 = max(f["c"] + f["width"] for f in faces) * scale
        side = min(h, w)
        return (c0 + c1) / 2 / w, ((r0 + r1) / 2 + FACE_HEADROOM * side) / h
    s = SALIENCY_SIDE / max(h, w)
    small = cv2.resize(u8, (max(4, round(w * s)), max(4, round(h * s))), interpolation=cv2.INTER_AREA)
    sal = _saliency(small.astype(np.float32) / 255.0)
    sal = np.where(sal >= np.quantile(sal, 0.8), sal, 0.0)
    total = float(sal.sum())
    if not np.isfinite(total) or total <= 0:
        return 0.5, 0.5
    ys, xs = np.mgrid[0:sal.shape[0], 0:sal.shape[1]]
    return (float((sal * (xs + 0.5)).sum() / total / sal.shape[1]),
            float((sal * (ys + 0.5)).sum() / total / sal.shape[0]))


def crop_box(h: int, w: int, centre: tuple[float, float]) -> tuple[int, int, int]:
    """(top, left, side) of the largest square in an h x w photo, as near `centre` as it fits."""
    side = min(h, w)
    cx, cy = centre
    top = int(round(min(max(cy * h - side / 2, 0), h - side)))
    left = int(round(min(max(cx * w - side / 2, 0), w - side)))
    return top, left, side
