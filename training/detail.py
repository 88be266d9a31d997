"""Making a generator's detail stage (models/detail.py) from its data's full-resolution images.

The photographs are cropped exactly as training cropped them (data.load_folder at the detail size:
short side scaled, centre crop), so each one lies over its memory's picture pixel for pixel. The
detail size is what the data holds: the largest short side among its images, at most
MAX_FACTOR times the generator's size (512 px for the 128-pixel memories, 233 for the brain's
233-pixel slices). Smaller images are enlarged to it, with no detail they do not have.
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from models import DetailPack, DetailStage
from models.detail import DEFAULT_QUALITY, MAX_SIZE, upscale

from .data import IMAGE_SUFFIXES, NIFTI_SUFFIXES, DataError, framing_of, load_folder
from .evaluate import gauss_filter, generate, ssim_pairs

MAX_FACTOR = 4


def native_size(folder: Path) -> int:
    """The largest short side among the folder's images (read from their headers) and NIfTI slices."""
    import imageio.v3 as iio
    best = 0
    for p in sorted(Path(folder).rglob("*")):
        if not p.is_file() or p.name.startswith("."):
            continue
        try:
            if p.suffix.lower() in IMAGE_SUFFIXES:
                shape = iio.improps(p).shape
                best = max(best, min(shape[0], shape[1]))
            elif p.name.lower().endswith(NIFTI_SUFFIXES):
                import nibabel as nib
                dims = sorted(nib.load(str(p)).shape[:3])
                best = max(best, dims[1])    # an axial slice's short side is at least the middle dimension
        except Exception:                    # unreadable: load_folder names it
            continue
    return best


def detail_size(folder: Path, image_size: int) -> int:
    """What the data holds, between the generator's size and MAX_FACTOR times it."""
    return int(min(MAX_SIZE, max(image_size, min(MAX_FACTOR * image_size, native_size(folder)))))


def build_detail(meta, folder: Path, size: int | None = None, quality: int = DEFAULT_QUALITY) -> tuple[DetailPack, list[str]]:
    """The detail pack of a generator with anchors, from the data folder it was trained on.
    Returns (pack, files the folder could not read)."""
    if not meta.anchors:
        raise DataError("this generator has no anchors: they are found at the end of a run, so make the detail "
                        "stage of the run's generator.safetensors (or a bundle), not a checkpoint from during "
                        "training")
    size = detail_size(folder, meta.image_size) if size is None else int(size)
    if not meta.image_size <= size <= MAX_SIZE:
        raise DataError(f"--size {size}: the detail stage is between the generator's size ({meta.image_size}) "
                        f"and {MAX_SIZE} pixels")
    data = load_folder(folder, size, meta.channels, framing=framing_of(meta))
    index = {n: k for k, n in enumerate(data.names)}
    names = [a.name for a in meta.anchors if a.name in index]
    missing = [a.name for a in meta.anchors if a.name not in index]
    if missing:
        raise DataError(f"{folder}: has no image for {len(missing)} of the model's {len(meta.anchors)} memories "
                        f"({', '.join(missing[:4])}{' …' if len(missing) > 4 else ''}); give the data folder it "
                        f"was trained on")
    photos = data.images[[index[n] for n in names]]
    return DetailPack.encode(photos, names, quality), data.skipped


def luma(x: torch.Tensor) -> torch.Tensor:
    """[N, C, H, W] -> [N, 1, H, W] (Rec. 601; a grey image is its own luma)."""
    if x.shape[1] == 1:
        return x
    return (x * torch.tensor([0.299, 0.587, 0.114], dtype=x.dtype).view(1, 3, 1, 1)).sum(1, keepdim=True)


def fine_detail(x01: torch.Tensor) -> torch.Tensor:
    """Mean |luma - Gaussian blur (sigma 1.5) of luma| per image of [N, C, H, W] in [0, 1] -> [N]."""
    y = luma(x01.float())
    return (y - gauss_filter(F.pad(y, (5, 5, 5, 5), mode="reflect"), sigma=1.5, size=11)).abs().mean(dim=(1, 2, 3))


def _quantised01(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] -> [0, 1] on the 8-bit levels the screen shows."""
    return ((x.float().clamp(-1, 1) + 1) * 127.5).round() / 255.0


@torch.no_grad()
def display_figures(generator: torch.nn.Module, meta, folder: Path) -> dict[str, dict[str, float]]:
    """For each memory, at display size (the detail stage's, or 4x the generator's without one): the
    SSIM of its healthy picture (through the detail stage, when there is one) against its photograph,
    and its fine detail as a share of the photograph's (1 = as sharp; below, softer; above, oversharpened),
    with the photograph's own fine detail in 8-bit levels (`photo_detail_levels`: below evaluate.FLAT_LEVELS the
    share is a ratio of next to nothing — a colour wheel's 0.15 levels read "1.85" — and
    evaluate's summary names it apart)."""
    size = meta.detail.size if meta.detail is not None else min(MAX_SIZE, MAX_FACTOR * meta.image_size)
    data = load_folder(folder, size, meta.channels, framing=framing_of(meta))
    index = {n: k for k, n in enumerate(data.names)}
    anchors = [a for a in meta.anchors if a.name in index]
    if not anchors:
        return {}
    space = getattr(generator, "latent_space", "z")
    healthy = generate(generator, torch.tensor([a.z for a in anchors]), space=space).cpu()
    if meta.detail is not None:
        stage = DetailStage(meta.detail, [a.name for a in anchors], healthy)
        shown = stage(healthy)
    else:
        shown = upscale(healthy, size).clamp(-1, 1)
    photos = (data.images[[index[a.name] for a in anchors]] + 1) / 2
    shown01 = _quantised01(shown)
    ssim = ssim_pairs(shown01, photos)
    photo_detail = fine_detail(photos)
    share = fine_detail(shown01) / photo_detail.clamp_min(1e-6)
    return {a.name: {"display_ssim": float(s), "detail_share": float(d), "display_size": size,
                     "photo_detail_levels": float(p) * 255.0}
            for a, s, d, p in zip(anchors, ssim.tolist(), share.tolist(), photo_detail.tolist())}
