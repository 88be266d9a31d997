"""Training images/s: our DCGAN loop beside a plain fp32 loop, same architecture and batch, one run.

    .venv/bin/python benchmarks/train_speed.py [--preset lapses-variety] [--steps 30] [--device auto]

"plain" is the pytorch/examples DCGAN pattern: fp32, contiguous tensors, update D then update G,
no EMA. "ours" is training/loop.py's Trainer for the preset (bf16 autocast and channels-last on
CUDA, EMA of G, the preset's DiffAugment and recall loss when it has them). Both train the same
generator and discriminator architecture on the same random images at the same batch size;
rounds alternate so background load hits both alike. The target (>= 1.5x) is for a GPU; on a
CPU autocast is off and the two should be about equal.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import common  # noqa: F401  (puts the project on sys.path)
import torch
import torch.nn.functional as F

from common import Figure, machine, print_figures, run_main
from models import registry
from training.data import ImageSet
from training.loop import Trainer
from training.presets import build_config
from training.run import pick_device


class PlainLoop:
    """pytorch/examples/dcgan, in fp32: BCE, Adam, one D step and one G step."""

    def __init__(self, cfg, images: torch.Tensor, device: torch.device):
        mc = cfg.model_config()
        self.G = registry.build_generator(cfg.architecture, mc).to(device)
        self.D = registry.build_discriminator(cfg.architecture, mc).to(device)
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=cfg.lr_g, betas=(cfg.beta1, cfg.beta2))
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=cfg.lr_d, betas=(cfg.beta1, cfg.beta2))
        self.images, self.batch, self.device, self.latent = images.to(device), cfg.batch_size, device, mc.latent_size

    def train_step(self) -> None:
        idx = torch.randint(len(self.images), (self.batch,), device=self.device)
        real = self.images[idx]
        z = torch.randn(self.batch, self.latent, device=self.device)
        fake = self.G(z)
        # (1) update D
        d_real, d_fake = self.D(real), self.D(fake.detach())
        d_loss = (F.binary_cross_entropy_with_logits(d_real, torch.ones_like(d_real))
                  + F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake)))
        self.opt_d.zero_grad()
        d_loss.backward()
        self.opt_d.step()
        # (2) update G
        out = self.D(fake)
        g_loss = F.binary_cross_entropy_with_logits(out, torch.ones_like(out))
        self.opt_g.zero_grad()
        g_loss.backward()
        self.opt_g.step()


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(preset: str = "lapses-variety", steps: int = 30, device_name: str = "auto") -> list[Figure]:
    device = pick_device(device_name)
    cfg = build_config(preset)
    mc = cfg.model_config()
    gen = torch.Generator().manual_seed(0)
    images = torch.rand(64, mc.channels, mc.image_size, mc.image_size, generator=gen) * 2 - 1
    data = ImageSet(images, [f"img{i}" for i in range(len(images))], "random", "none")
    with tempfile.TemporaryDirectory() as tmp:
        loops = {"plain fp32": PlainLoop(cfg, images, device),
                 "ours": Trainer(cfg, data, Path(tmp), device, log=lambda *a: None)}
        for loop in loops.values():          # warm-up (cuDNN autotuning, allocator)
            for _ in range(3):
                loop.train_step()
        times = {k: [] for k in loops}
        rounds = max(1, steps // 5)
        for _ in range(rounds):
            for k, loop in loops.items():
                _sync(device)
                t0 = time.perf_counter()
                for _ in range(5):
                    loop.train_step()
                _sync(device)
                times[k].append((time.perf_counter() - t0) / 5)
    rate = {k: cfg.batch_size / statistics.median(v) for k, v in times.items()}
    ratio = rate["ours"] / rate["plain fp32"]
    where = f"{device.type}" + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else "")
    return [Figure(f"training {preset}, plain fp32 loop, {where}", f"{rate['plain fp32']:.1f} images/s", "", None),
            Figure(f"training {preset}, ours, {where}", f"{rate['ours']:.1f} images/s", "", None),
            Figure("training: ours / plain", f"{ratio:.2f}x", ">= 1.5x on a GPU",
                   ratio >= 1.5 if device.type == "cuda" else None)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="lapses-variety")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()
    print_figures(f"training speed on {machine()}", measure(args.preset, args.steps, args.device))


if __name__ == "__main__":
    raise SystemExit(run_main(main))
