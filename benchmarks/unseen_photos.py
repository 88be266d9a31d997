"""Eight photographs the project does not bundle, from scikit-image's data, into a folder: the
test of `python -m training memories` on someone else's memories (docs/training.md).

    .venv/bin/python benchmarks/unseen_photos.py /tmp/unseen
    .venv/bin/python -m training memories /tmp/unseen --out unseen.safetensors --minutes 20
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import skimage.data as data
from skimage import img_as_ubyte
from skimage.io import imsave

PHOTOS = {"moon": data.moon, "motorcycle": lambda: data.stereo_motorcycle()[0],
          "immunohistochemistry": data.immunohistochemistry, "colorwheel": data.colorwheel,
          "phantom": data.shepp_logan_phantom, "horse": data.horse, "page": data.page, "brick": data.brick}


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    for name, load in PHOTOS.items():
        img = load()
        img = img if img.dtype == np.uint8 else img_as_ubyte(img)
        imsave(out / f"{name}.png", img[..., :3] if img.ndim == 3 else img, check_contrast=False)
    print(f"wrote {len(PHOTOS)} photographs to {out}")
    return 0


if __name__ == "__main__":
    from common import run_main
    raise SystemExit(run_main(main))
