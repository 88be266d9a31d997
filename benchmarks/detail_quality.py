"""The detail stage against the photographs, side by side with the piece without it, in one run.

    .venv/bin/python benchmarks/detail_quality.py [--model FILE] [--data DIR] [--size 512] [--png FILE]

For each memory at progress 0, as `python -m installation still --size N` shows it: SSIM against
its photograph (cropped as training crops it, at N px) and its fine detail as a share of the
photograph's (mean |luma - Gaussian blur sigma 1.5|; 1 = as sharp, below = softer, above =
oversharpened), for three pictures: the piece without its detail stage (the generator's picture
upscaled), the photograph itself shrunk to the generator's size and upscaled (the best any picture
of that size can do), and the piece with its detail stage. Then, half-way between memories (the
walk's great circle, 1/2 of the way from each memory to a seeded other one), the checkerboard
energy against the nearest photograph's, p90 (evaluate's checkerboard_ratio_p90), with and
without the stage. --png writes before | after | photograph for three memories.
"""
from __future__ import annotations

import argparse
import statistics

from common import BUNDLED, ROOT, headless, machine, run_main

headless()

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from installation.calibration import course_for  # noqa: E402
from installation.engine import Engine  # noqa: E402
from installation.settings import load_settings  # noqa: E402
from installation.sheet import stills  # noqa: E402
from installation.state import FrameState  # noqa: E402
from models.detail import upscale  # noqa: E402
from training.data import framing_of, load_folder  # noqa: E402
from training.detail import fine_detail  # noqa: E402
from training.evaluate import checker_energy, ssim_matrix, ssim_pairs, walk_paths  # noqa: E402


def _t01(frames) -> torch.Tensor:
    return torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).float() / 255.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=str(BUNDLED))
    ap.add_argument("--data", default=str(ROOT / "data" / "memories"),
                    help="the model's training images (python -m training prepare memories data/memories)")
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--png", help="write before | after | photograph of three memories here")
    args = ap.parse_args()
    torch.set_grad_enabled(False)
    engines = {}
    for detail in (False, True):
        s = load_settings(overrides=[f"model.path={args.model}", "model.device=cpu", f"display.detail={detail}"])
        engine = Engine.from_settings(s, 64, 64)
        engines[detail] = (engine, course_for(s, engine.model.meta), s.course.seed)
    engine = engines[True][0]
    if engine.detail is None:
        raise SystemExit(f"{args.model} has no detail stage: make one with python -m training detail")
    meta = engine.model.meta
    names = [a.name for a in meta.anchors]
    photos = load_folder(args.data, args.size, meta.channels, framing=framing_of(meta))    # cropped as training cropped them
    order = [photos.names.index(n) for n in names]
    photo01 = ((photos.images[order] + 1) / 2).expand(-1, 3, -1, -1)
    shown = {d: _t01([p for _, p in stills(e, c, 0.0, args.size, seed)]) for d, (e, c, seed) in engines.items()}
    small = torch.nn.functional.interpolate(photos.images[order], size=meta.image_size, mode="area")
    shrunk01 = ((upscale(small, args.size).clamp(-1, 1) + 1) * 127.5).round().expand(-1, 3, -1, -1) / 255.0
    rows = {"without detail stage": shown[False], "photograph at generator size": shrunk01,
            "with detail stage": shown[True]}
    figures = {label: (ssim_pairs(x, photo01), fine_detail(x) / fine_detail(photo01)) for label, x in rows.items()}
    print(f"detail stage on {args.model} ({engine.detail.size} px, {len(names)} memories), "
          f"shown at {args.size} px, progress 0 — {machine()}")
    print(f"{'memory':<26}" + "".join(f"{label[:28]:>30}" for label in rows))
    print(f"{'':<26}" + "".join(f"{'SSIM   detail share':>30}" for _ in rows))
    for i, name in enumerate(names):
        print(f"{name[:25]:<26}" + "".join(f"{float(s[i]):>21.3f}{float(d[i]):>9.2f}" for s, d in figures.values()))
    print(f"{'median':<26}" + "".join(f"{statistics.median(s.tolist()):>21.3f}{statistics.median(d.tolist()):>9.2f}"
                                       for s, d in figures.values()))
    print(f"{'min / max':<26}" + "".join(f"{float(s.min()):>21.3f}{float(d.min()):>5.2f}-{float(d.max()):.2f}"
                                          for s, d in figures.values()))
    # half-way between memories
    points, _ = walk_paths(engine.anchors.cpu(), engine.space, seed=1)
    half = points[1::3]                               # WALK_FRACTIONS (0.25, 0.5, 0.75): the middle ones
    print("\nhalf-way between memories (" + f"{len(half)} journeys): checkerboard against the nearest photograph, p90")
    for detail, (e, _, seed) in engines.items():
        frames = _t01(e.pictures(half, FrameState(seed=seed)))
        frames = torch.nn.functional.interpolate(frames, size=args.size, mode="bicubic", align_corners=False)
        nearest = ssim_matrix(frames, photo01).argmax(dim=1)
        energy, theirs = checker_energy(frames), checker_energy(photo01)[nearest]
        ratio = energy / theirs.clamp_min(1e-6)
        # in 8-bit levels too: against a nearly flat photograph (a colour wheel's 0.04 levels) the ratio
        # is large for a checkerboard no one can see
        print(f"  {'with' if detail else 'without'} detail stage: {float(torch.quantile(ratio, 0.9)):.2f} "
              f"(its energy p90 {float(torch.quantile(energy, 0.9)) * 255:.3f} levels; the nearest photographs' "
              f"median {float(theirs.median()) * 255:.3f})")
    if args.png:
        pick = np.linspace(0, len(names) - 1, 3).round().astype(int)
        tiles = [np.concatenate([(x[i].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
                                 for x in (shown[False], shown[True], photo01)], axis=1) for i in pick]
        cv2.imwrite(args.png, cv2.cvtColor(np.concatenate(tiles, axis=0), cv2.COLOR_RGB2BGR))
        print(f"wrote {args.png}: without the detail stage | with it | the photograph")
    for e, _, _ in engines.values():
        e.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(run_main(main))
