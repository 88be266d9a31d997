"""Generator speed, side by side: milliseconds per 128x128 image and the frame rate it allows.

    .venv/bin/python benchmarks/generator_speed.py [--threads 2] [--repeats 30]

Compares the bundled models with plain DCGAN-128 generators of several widths, all in one run on
the same machine, interleaved so that background load hits every row alike. Prints a table of
medians and the ratio to the bundled memories model.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from models import DCGANConfig, Generator, load_generator  # noqa: E402


def candidates() -> dict[str, torch.nn.Module]:
    out = {}
    for name in ("memories", "brain"):
        path = ROOT / "assets" / f"{name}.safetensors"
        if path.exists():
            out[f"bundled {name}"] = load_generator(path, device="cpu")[0]
    for width, upsample, norm in ((64, "transposed", "batch"), (32, "transposed", "batch"),
                                  (24, "nearest", "pixel"), (16, "nearest", "pixel")):
        cfg = DCGANConfig(image_size=128, channels=3, latent_size=128, width=width, upsample=upsample, g_norm=norm)
        out[f"dcgan-128 width {width} {upsample}"] = Generator(cfg)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=30)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    models = {k: m.eval() for k, m in candidates().items()}
    times: dict[str, list[float]] = {k: [] for k in models}
    with torch.inference_mode():
        for m in models.values():          # warm-up
            for _ in range(3):
                m(torch.randn(1, m.latent_size))
        for _ in range(args.repeats):      # interleaved: each round times every model once
            for k, m in models.items():
                zz = torch.randn(1, m.latent_size)
                t0 = time.perf_counter()
                m(zz)
                times[k].append(time.perf_counter() - t0)
    ref = statistics.median(times.get("bundled memories", next(iter(times.values()))))
    print(f"generator forward pass, batch 1, {args.threads} CPU thread(s), median of {args.repeats}")
    print(f"{'generator':<34} {'params':>8} {'ms/img':>8} {'fps':>7} {'vs bundled':>10}")
    for k, m in models.items():
        med = statistics.median(times[k])
        params = sum(p.numel() for p in m.parameters())
        print(f"{k:<34} {params / 1e6:7.2f}M {med * 1000:8.1f} {1 / med:7.1f} {med / ref:9.2f}x")


if __name__ == "__main__":
    from common import run_main
    raise SystemExit(run_main(main))
