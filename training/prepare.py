"""Writing the default data sets from what installed packages carry (no network).

*memories*: public-domain / CC0 photographs bundled with scikit-image.
*brain*: axial slices of the MNI ICBM152 2009 T1 template that nilearn carries.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

# name -> (skimage.data function, licence as its docstring states it)
MEMORIES = {
    "astronaut": ("astronaut", "public domain (NASA; skimage.data.astronaut)"),
    "chelsea": ("chelsea", "CC0, Stefan van der Walt (skimage.data.chelsea)"),
    "coffee": ("coffee", "CC0, Rachel Michetti (skimage.data.coffee)"),
    "rocket": ("rocket", "public domain (SpaceX; skimage.data.rocket)"),
    "hubble": ("hubble_deep_field", "public domain (NASA; skimage.data.hubble_deep_field)"),
    "camera": ("camera", "CC0, Lav Varshney (skimage.data.camera)"),
    "clock": ("clock", "public domain, Stefan van der Walt (skimage.data.clock)"),
    "coins": ("coins", "no known copyright restrictions (Greek coins, Pompeii; skimage.data.coins)"),
}

BRAIN_NOTICE = """Derived from the MNI ICBM152 2009 nonlinear symmetric T1 template (version 09a),
as distributed with nilearn (mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz).

Copyright (C) 1993-2009 Louis Collins, McConnell Brain Imaging Centre, Montreal Neurological
Institute, McGill University. Permission to use, copy, modify, and distribute this software and
its documentation for any purpose and without fee is hereby granted, provided that the above
copyright notice appear in all copies. The authors and McGill University make no
representations about the suitability of this software for any purpose. It is provided "as is"
without express or implied warranty. The authors are not responsible for any data loss,
equipment damage, property loss, or injury to subjects or patients resulting from the use or
misuse of this software package.

Reference: Fonov et al., NeuroImage 54(1), 2011; Fonov et al., NeuroImage 47, S102, 2009.
"""


class PrepareError(Exception):
    pass


def _check_target(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise PrepareError(f"{out}: exists and is not a folder; choose another path.")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise PrepareError(f"{out}: folder is not empty; choose an empty folder or pass --overwrite.")
    out.mkdir(parents=True, exist_ok=True)


def prepare_memories(out: str | Path, overwrite: bool = False) -> list[Path]:
    import imageio.v3 as iio
    import skimage.data
    out = Path(out)
    _check_target(out, overwrite)
    written, lines = [], []
    for name, (func, licence) in MEMORIES.items():
        img = getattr(skimage.data, func)()
        if img.ndim == 2:
            img = np.stack([img] * 3, axis=-1)
        path = out / f"{name}.png"
        iio.imwrite(path, img[..., :3].astype(np.uint8))
        written.append(path)
        lines.append(f"{path.name}: {licence}")
    (out / "DATASET.txt").write_text("memories\n")
    (out / "LICENCE.txt").write_text("Public domain / CC0 photographs from scikit-image's data module.\n\n"
                                     + "\n".join(lines) + "\n")
    return written


def prepare_brain(out: str | Path, overwrite: bool = False, axis: int = 2) -> list[Path]:
    import imageio.v3 as iio
    from nilearn import datasets
    from .data import nifti_slices
    out = Path(out)
    _check_target(out, overwrite)
    written = []
    for name, sl in nifti_slices(Path(datasets.MNI152_FILE_PATH), axis=axis):
        side = max(sl.shape)  # pad to a square so that training's centre crop never cuts the skull
        top, left = (side - sl.shape[0]) // 2, (side - sl.shape[1]) // 2
        sl = np.pad(sl, ((top, side - sl.shape[0] - top), (left, side - sl.shape[1] - left)))
        path = out / f"mni152_axial_{name.split(':')[1]}.png"
        iio.imwrite(path, (np.clip(sl, 0, 1) * 255).round().astype(np.uint8))
        written.append(path)
    (out / "DATASET.txt").write_text("brain (MNI ICBM152 2009 axial slices)\n")
    (out / "LICENCE.txt").write_text("MNI ICBM152 2009 template, copyright McGill University (see below)\n\n"
                                     + BRAIN_NOTICE)
    return written
