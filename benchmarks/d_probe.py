"""Can a fresh discriminator tell a trained generator's samples from its data? Side by side, one run.

    .venv/bin/python benchmarks/d_probe.py [--model assets/brain.safetensors] [--data data/brain] [--steps 150]

A diagnostic for tiny data sets, not a speed figure. The generator is frozen; for each variant a
fresh D of the model's architecture trains alone for --steps steps (batch 32, the training loop's
BCE D loss, Adam betas 0.5/0.999), as in a warm start's `d_warmup`, and the table gives D's mean
verdict on real and generated images over its last 20 steps. A D left at 0.50 / 0.50 gives G no signal:
the adversarial half of training is then idle and only the recall loss shapes G. Each variant
sees the same images and latents (one seed), so the rows differ only by the setting named.
"""
from __future__ import annotations

import argparse
import time
from dataclasses import replace

import common  # noqa: F401  (puts the project on sys.path)
import torch

from common import machine, run_main
from models import CheckpointError, load_generator
from models.dcgan import Discriminator
from training.augment import diff_augment, parse_policy
from training.data import framing_of, load_folder
from training.loop import d_loss_fn

# (label, D normalisation, DiffAugment policy, D learning rate)
VARIANTS = [
    ("batch norm, translation", "batch", "translation", 2e-4),
    ("spectral norm, translation", "spectral", "translation", 2e-4),
    ("no norm, translation", "none", "translation", 2e-4),
    ("batch norm, no augmentation", "batch", "", 2e-4),
    ("batch norm, no augmentation, lr 2e-5", "batch", "", 2e-5),
]


def probe(G, images: torch.Tensor, norm: str, policy: str, lr: float, steps: int, batch: int = 32) -> tuple[float, float]:
    torch.manual_seed(0)
    D = Discriminator(replace(G.cfg, d_norm=norm))
    opt = torch.optim.Adam(D.parameters(), lr=lr, betas=(0.5, 0.999))
    names = parse_policy(policy)
    seen = []
    for _ in range(steps):
        real = images[torch.randint(len(images), (batch,))]
        with torch.no_grad():
            fake = G(torch.randn(batch, G.latent_size))
        d_real, d_fake = D(diff_augment(real, names)), D(diff_augment(fake, names))
        loss = d_loss_fn("bce", d_real, d_fake)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        seen.append((torch.sigmoid(d_real).mean().item(), torch.sigmoid(d_fake).mean().item()))
    last = seen[-20:]
    return sum(r for r, _ in last) / len(last), sum(f for _, f in last) / len(last)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="assets/brain.safetensors")
    ap.add_argument("--data", default="data/brain", help="the model's training images (python -m training prepare brain data/brain)")
    ap.add_argument("--steps", type=int, default=150)
    args = ap.parse_args()
    G, meta = load_generator(args.model, device="cpu")       # a bad model or folder: run_main says so, exit 2
    if meta.architecture != "dcgan":
        raise CheckpointError(f"{args.model}: a {meta.architecture} generator; this probe builds DCGAN discriminators")
    images = load_folder(args.data, G.cfg.image_size, G.cfg.channels, framing=framing_of(meta)).images   # as trained
    G.eval()
    print(f"{machine()}; {args.model} (step {meta.step}) against {len(images)} images of {args.data}; "
          f"{args.steps} D steps per row, G frozen, D width {G.cfg.d_width}")
    print(f"{'discriminator':<40}{'D(real)':>9}{'D(fake)':>9}{'gap':>7}{'s':>6}")
    for label, norm, policy, lr in VARIANTS:
        t = time.perf_counter()
        real, fake = probe(G, images, norm, policy, lr, args.steps)
        print(f"{label:<40}{real:9.3f}{fake:9.3f}{real - fake:7.3f}{time.perf_counter() - t:6.0f}", flush=True)


if __name__ == "__main__":
    raise SystemExit(run_main(main))
