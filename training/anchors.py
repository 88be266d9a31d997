"""Finding the anchors: for each training image, the latent that best recalls it.

The installation's walk visits these latents, so each memory can be shown faithfully before
the illness takes it. Optimisation over z (on the generator's training shell), started from
the best of many random latents — or from the run's learned recall codes — with an L1 +
low-pass loss that favours the whole composition over fine texture.

Then, optionally, pivotal tuning (Roich et al. 2021, "Pivotal Tuning for Latent-based Editing
of Real Images"): the generator itself is fine-tuned a little so that each anchor redraws its
memory faithfully (L1 + low-pass + SSIM), while random latents are held to the images they drew
before (the locality term), so the walk between memories and the blends are kept.
"""
from __future__ import annotations

import copy
import math
from contextlib import contextmanager

import torch
import torch.nn.functional as F

from models.progress import progress_bar
from .evaluate import ssim_pairs


def to_shell(z: torch.Tensor) -> torch.Tensor:
    return z * (math.sqrt(z.shape[1]) / z.norm(dim=1, keepdim=True).clamp_min(1e-8))


def recall_loss(img: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-image L1 at full and quarter resolution: [N]."""
    full = (img - target).abs().mean(dim=(1, 2, 3))
    low = (F.avg_pool2d(img, 4) - F.avg_pool2d(target, 4)).abs().mean(dim=(1, 2, 3))
    return full + low


@contextmanager
def _frozen(generator: torch.nn.Module):
    """The generator in eval mode with no parameter needing gradients; both as they were after."""
    was_training = generator.training
    params = list(generator.parameters())
    flags = [p.requires_grad for p in params]
    generator.eval().requires_grad_(False)
    try:
        yield
    finally:
        for p, f in zip(params, flags):
            p.requires_grad_(f)
        generator.train(was_training)


def find_anchors(generator: torch.nn.Module, images: torch.Tensor, steps: int = 300,
                 init: torch.Tensor | None = None, candidates: int = 256, seed: int = 0,
                 chunk: int = 16) -> torch.Tensor:
    """images [N, C, S, S] in [-1, 1] -> anchors [N, latent] on the shell."""
    device = next(generator.parameters()).device
    latent = generator.latent_size
    gen = torch.Generator().manual_seed(seed)
    out = []
    with _frozen(generator):
        for start in range(0, images.shape[0], chunk):
            target = images[start:start + chunk].to(device)
            n = target.shape[0]
            if init is not None:
                z0 = init[start:start + n].to(device).clone()
            else:  # best of `candidates` random latents per image
                pool = torch.randn(candidates, latent, generator=gen).to(device)
                with torch.no_grad():
                    samples = torch.cat([generator(pool[i:i + 64]) for i in range(0, candidates, 64)])
                    dist = torch.cdist(F.avg_pool2d(target, 4).flatten(1), F.avg_pool2d(samples, 4).flatten(1))
                z0 = pool[dist.argmin(dim=1)]
            z = to_shell(z0).requires_grad_(True)
            opt = torch.optim.Adam([z], lr=0.05)
            sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(1, steps))
            for _ in range(steps):
                loss = recall_loss(generator(to_shell(z)), target).sum()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
            out.append(to_shell(z.detach()).cpu())
    return torch.cat(out)


def find_w_anchors(generator: torch.nn.Module, images: torch.Tensor, steps: int = 300,
                   init: torch.Tensor | None = None, candidates: int = 256, seed: int = 0,
                   chunk: int = 16) -> torch.Tensor:
    """A style generator's anchors, in w: images [N, C, S, S] in [-1, 1] -> w [N, L].

    One w for every layer (not w+), so the installation's walk can travel between anchors in
    w and style mixing can swap layers between them. Starts from the best of `candidates`
    mapped random latents (or from the mapped recall codes `init`, z [N, L]), then optimises w
    with the same recall loss as the z search; the step size follows the spread of w."""
    device = next(generator.parameters()).device
    gen = torch.Generator().manual_seed(seed)
    out = []
    with _frozen(generator):
        with torch.no_grad():
            pool = torch.cat([generator.mapping(torch.randn(min(64, candidates - i), generator.latent_size,
                                                            generator=gen).to(device))
                              for i in range(0, candidates, 64)])                     # [candidates, L]
            spread = float((pool - pool.mean(0)).pow(2).sum(1).mean().sqrt()) / math.sqrt(pool.shape[1])
        for start in range(0, images.shape[0], chunk):
            target = images[start:start + chunk].to(device)
            n = target.shape[0]
            with torch.no_grad():
                if init is not None:
                    w0 = generator.mapping(init[start:start + n].to(device))
                else:
                    samples = torch.cat([generator.synthesize(pool[i:i + 64]) for i in range(0, len(pool), 64)])
                    dist = torch.cdist(F.avg_pool2d(target, 4).flatten(1), F.avg_pool2d(samples, 4).flatten(1))
                    w0 = pool[dist.argmin(dim=1)]
            w = w0.clone().requires_grad_(True)
            opt = torch.optim.Adam([w], lr=0.05 * max(spread, 1e-3))
            sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(1, steps))
            for _ in range(steps):
                loss = recall_loss(generator.synthesize(w), target).sum()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
            out.append(w.detach().cpu())
    return torch.cat(out)


def tune_to_anchors(generator: torch.nn.Module, images: torch.Tensor, anchors: torch.Tensor, steps: int = 300,
                    lr: float = 2e-4, locality: float = 1.0, batch: int = 16, seed: int = 0,
                    progress: bool = False) -> dict[str, float]:
    """Pivotal tuning, in place: images [N, C, S, S] in [-1, 1], anchors [N, latent] (z, or w for a
    style generator) stay fixed; the generator's weights move (a style generator's synthesis
    only: its mapping, and so the w its walk and symptoms draw from, stays as it was). Each image's
    loss is weighted by how unlike its image its anchor still is (1 - SSIM, over the others'). Returns the
    loss at the start and end; raises ValueError, leaving the weights as they were, if the tuning
    diverged (a loss or weight not finite)."""
    if not (math.isfinite(lr) and lr > 0 and math.isfinite(locality) and locality >= 0):
        raise ValueError(f"pivotal tuning: lr ({lr}) must be a number above 0 and locality ({locality}) 0 or more")
    device = next(generator.parameters()).device
    style = getattr(generator, "latent_space", "z") == "w"
    draw = generator.synthesize if style else generator
    reference = copy.deepcopy(generator).eval().requires_grad_(False)
    draw_before = reference.synthesize if style else reference
    gen = torch.Generator().manual_seed(seed)
    tuned = [p for n, p in generator.named_parameters() if not (style and n.startswith("mapping."))]
    images, anchors = images.to(device), anchors.to(device)
    first = last = float("nan")
    with _frozen(generator):
        for p in tuned:
            p.requires_grad_(True)
        opt = torch.optim.Adam(tuned, lr=lr)
        bar = progress_bar(steps, disable=not progress, unit="step", desc="pivotal tuning")
        for step in range(steps):
            idx = torch.randperm(len(images), generator=gen)[:batch].to(device)
            target = images[idx]
            out = draw(anchors[idx]).float()
            dissimilar = 1 - ssim_pairs((out + 1) / 2, (target + 1) / 2)                          # [batch]
            # the anchors least like their images (by SSIM) are tuned the most (weights mean 1): an even
            # mean polishes the easy memories and leaves a fine texture below the rest
            focus = dissimilar.detach() / dissimilar.detach().mean().clamp_min(1e-8)
            loss = (focus * (recall_loss(out, target) + dissimilar)).mean()
            if locality > 0:
                z = torch.randn(batch, generator.latent_size, generator=gen).to(device)
                with torch.no_grad():
                    code = reference.mapping(z) if style else z
                    before = draw_before(code).float()
                loss = loss + locality * (draw(code).float() - before).pow(2).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            last = loss.item()
            first = last if step == 0 else first
            bar.update(1)
        bar.close()
        if not math.isfinite(last) or not all(bool(torch.isfinite(p).all()) for p in tuned):
            generator.load_state_dict(reference.state_dict())
            raise ValueError(f"pivotal tuning diverged (loss {last}); nothing was changed: try a smaller lr than {lr:g}")
    return {"loss_start": first, "loss_end": last}
