"""Turning a folder of images or NIfTI volumes into a small in-memory training set.

The data sets this project trains on are tiny (8 photographs, ~140 brain slices), so they are
decoded once, resized and centre-cropped to the model's size, and kept as one float tensor in
[-1, 1]. The "memory" mode repeats the handful of images so every batch is full.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"}
NIFTI_SUFFIXES = (".nii", ".nii.gz")


class DataError(Exception):
    """A data folder that cannot be trained on; the message says what to do."""


@dataclass
class ImageSet:
    images: torch.Tensor        # [N, C, S, S] float32 in [-1, 1]
    names: list[str]            # one per image (file name, or volume:slice)
    name: str                   # the data set's name (from its folder or DATASET.txt)
    licence: str                # from LICENCE.txt / LICENSE.txt beside the data, else "unknown"
    skipped: list[str] = field(default_factory=list)   # files that could not be read, "name (why)"
    framing: str = "centre"     # how each was cropped to the square (load_folder)

    def __len__(self) -> int:
        return self.images.shape[0]


def _resize_crop(img: np.ndarray, size: int) -> np.ndarray:
    """HWC float in [0,1] -> size x size: scale the short side to `size`, centre-crop the long one."""
    t = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None].float()
    h, w = t.shape[-2:]
    scale = size / min(h, w)
    nh, nw = max(size, round(h * scale)), max(size, round(w * scale))
    t = F.interpolate(t, size=(nh, nw), mode="bilinear", antialias=True, align_corners=False)
    top, left = (nh - size) // 2, (nw - size) // 2
    return t[0, :, top:top + size, left:left + size].clamp(0, 1).permute(1, 2, 0).numpy()


def _to_channels(img: np.ndarray, channels: int) -> np.ndarray:
    if img.ndim not in (2, 3):          # a stack of pages or frames is no one image
        raise ValueError(f"{img.ndim} dimensions {img.shape}, not one picture")
    if 0 in img.shape[:2]:              # a damaged TIFF whose width reads 0
        raise ValueError(f"{img.shape[1]} x {img.shape[0]} pixels")
    if img.ndim == 2:
        img = img[..., None]
    if img.shape[2] in (2, 4):          # drop alpha (grey + alpha, RGBA)
        img = img[..., :-1]
    if img.shape[2] not in (1, 3):
        raise ValueError(f"{img.shape[2]} colour channels")
    if channels == 1 and img.shape[2] == 3:
        img = (img * np.array([0.299, 0.587, 0.114], dtype=np.float32)).sum(axis=2, keepdims=True)
    elif channels == 3 and img.shape[2] == 1:
        img = np.repeat(img, 3, axis=2)
    return img


def _read_image(path: Path) -> np.ndarray:
    import imageio.v3 as iio
    img = iio.imread(path)
    if img.dtype == np.uint8:
        return img.astype(np.float32) / 255.0
    if img.dtype == np.uint16:
        return img.astype(np.float32) / 65535.0
    if img.dtype == bool:
        return img.astype(np.float32)
    img = img.astype(np.float64)        # float32 would overflow between -3e38 and 3e38
    if not np.isfinite(img).all():      # a float TIFF's NaN ("no data") or Inf: it would train on NaN
        raise ValueError("NaN or infinite pixels")
    lo, hi = float(img.min()), float(img.max())
    return ((img - lo) / (hi - lo) if hi > lo else np.zeros_like(img)).astype(np.float32)


def nifti_slices(path: Path, axis: int = 2, min_fill: float = 0.05) -> list[tuple[str, np.ndarray]]:
    """Slices of a volume along `axis`, intensity-normalised to [0,1], skipping (nearly) empty ones:
    a slice is kept when more than `min_fill` of its pixels are above 5% of the volume's maximum."""
    import nibabel as nib
    vol = np.asarray(nib.load(str(path)).get_fdata(), dtype=np.float32)
    if vol.ndim == 4:
        vol = vol[..., 0]
    if vol.ndim != 3:
        raise DataError(f"{path}: expected a 3-D volume, got shape {vol.shape}")
    hi = float(np.percentile(vol, 99.9)) or 1.0
    vol = np.clip(vol / hi, 0, 1)
    out = []
    for k in range(vol.shape[axis]):
        sl = np.take(vol, k, axis=axis)
        if (sl > 0.05).mean() <= min_fill:
            continue
        out.append((f"{path.name}:{k:03d}", np.rot90(sl).copy()))  # radiological view: anterior up
    return out


def _licence(folder: Path) -> str:
    for name in ("LICENCE.txt", "LICENSE.txt", "LICENCE", "LICENSE"):
        p = folder / name
        if p.is_file():
            lines = p.read_text(encoding="utf-8", errors="replace").strip().splitlines()
            return lines[0][:200] if lines else "unknown"       # an empty licence file says nothing
    return "unknown"


def _frame_crop(img: np.ndarray, size: int, centre: tuple[float, float]) -> np.ndarray:
    """HWC float in [0,1] -> size x size: the largest square about `centre` (framing.crop_box), resized."""
    from .framing import crop_box
    top, left, side = crop_box(img.shape[0], img.shape[1], centre)
    return _resize_crop(img[top:top + side, left:left + side], size)


FRAMINGS = ("centre", "subject")


def framing_of(meta) -> str:
    """How a checkpoint's memories were cropped from its photographs (extra.framing; older: centre)."""
    return meta.extra.get("framing", "centre") if meta is not None else "centre"


def load_folder(folder: str | Path, size: int, channels: int, nifti_axis: int = 2, framing: str = "centre") -> ImageSet:
    """Every image (png/jpg/tif, recursive) and NIfTI volume (as slices) under `folder`, cropped to
    the square: `framing` "centre" (the middle), or "subject" (where each photo's subject is, or where
    framing.yaml says: training/framing.py)."""
    if framing not in FRAMINGS:
        raise DataError(f"framing {framing!r}: one of {', '.join(FRAMINGS)}")
    folder = Path(folder)
    if folder.is_file():
        raise DataError(f"{folder}: is a file; give the folder of training images (or NIfTI volumes) it lies in.")
    if not folder.is_dir():
        raise DataError(f"{folder}: no such data folder. Prepare one with `python -m training prepare memories DIR`.")
    files = sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))
    images, names, bad = [], [], []
    overrides, detector = {}, None
    if framing == "subject":
        from models.faces import FaceDetector
        from .framing import FramingError, read_overrides
        try:
            overrides = read_overrides(folder)
        except FramingError as e:
            raise DataError(str(e)) from None
        detector = FaceDetector()
    for p in files:
        lower = p.name.lower()
        try:
            if p.suffix.lower() in IMAGE_SUFFIXES:
                items = [(str(p.relative_to(folder)), _read_image(p))]
            elif lower.endswith(NIFTI_SUFFIXES):
                items = nifti_slices(p, axis=nifti_axis)
            else:
                continue
            items = [(name, _to_channels(img.astype(np.float32), channels)) for name, img in items]
        except DataError:
            raise
        except Exception as e:  # a damaged file: name it, go on with the rest
            bad.append(f"{p.name} ({type(e).__name__}{': ' + str(e) if isinstance(e, ValueError) else ''})")
            continue
        for name, img in items:
            if detector is not None and not lower.endswith(NIFTI_SUFFIXES):
                from .framing import subject_centre
                centre = overrides.get(name, overrides.get(p.name))
                images.append(_frame_crop(img, size, centre or subject_centre(img, detector)))
            else:
                images.append(_resize_crop(img, size))
            names.append(name)
    if not images:
        hint = f" ({len(bad)} unreadable: {', '.join(bad[:5])})" if bad else ""
        raise DataError(f"{folder}: no readable images (png, jpg, tif) or NIfTI volumes (.nii, .nii.gz) "
                        f"found{hint}. Put the training images in this folder.")
    arr = np.stack(images).transpose(0, 3, 1, 2)  # [N, C, S, S]
    tensor = torch.from_numpy(arr).float() * 2 - 1
    return ImageSet(tensor, names, dataset_name(folder), _licence(folder), bad, framing)


def dataset_name(folder: Path) -> str:
    """The data set's name: DATASET.txt's first line (prepare writes one), else the folder's name."""
    name_file = Path(folder) / "DATASET.txt"
    lines = name_file.read_text(encoding="utf-8", errors="replace").strip().splitlines() if name_file.is_file() else []
    return lines[0] if lines else Path(folder).name


class Batches:
    """Endless seeded batches from a small in-memory set. In memory mode every image appears
    equally often (each epoch is a shuffled repeat of the whole set, as many as fill a batch)."""

    def __init__(self, images: torch.Tensor, batch_size: int, generator: torch.Generator):
        self.images = images
        self.batch_size = batch_size
        self.generator = generator
        self._order = torch.empty(0, dtype=torch.long)

    def next(self) -> torch.Tensor:
        while self._order.numel() < self.batch_size:
            self._order = torch.cat([self._order, torch.randperm(len(self.images), generator=self.generator)])
        idx, self._order = self._order[:self.batch_size], self._order[self.batch_size:]
        return self.images[idx]

    def state(self) -> dict:
        return {"order": self._order.clone()}

    def load_state(self, state: dict) -> None:
        self._order = state["order"].clone()
