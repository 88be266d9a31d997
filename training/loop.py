"""The GAN training loop: one step is "update D" then "update G", as in pytorch/examples.

Around it: an EMA of G (what gets saved and sampled), DiffAugment for tiny data sets, an
optional recall loss (a latent must redraw each training image — a learned one per image, or
the nearest of a pool of random ones — so no memory is dropped by mode collapse), a fixed
noise batch so sample grids stay comparable, atomic checkpoints with exact resume, fp16 snapshots of G for the `regression` symptom, and at the
end the anchors and an evaluation. Ctrl-C saves and exits cleanly.
"""
from __future__ import annotations

import copy
import json
import os
import time
from dataclasses import asdict
from pathlib import Path

import torch
import torch.nn.functional as F

from models import Anchor, GeneratorMeta, load_generator, load_resume, registry, save_generator, save_resume
from . import artifacts
from .anchors import find_anchors, recall_loss, to_shell
from .augment import diff_augment, parse_policy, random_flip
from .data import Batches, ImageSet
from .evaluate import ssim_matrix
from .presets import TrainConfig


def _grey(x: torch.Tensor) -> torch.Tensor:
    """Pictures [N, C, S, S] in [-1, 1] -> their grey in [0, 1], at most 128 px a side."""
    x = (x.float().mean(dim=1, keepdim=True) + 1) / 2
    return F.adaptive_avg_pool2d(x, 128) if x.shape[-1] > 128 else x


# model settings that shape only D: a warm start (fresh D) may change them
D_ONLY = ("d_width", "d_norm", "d_dropout", "d_depth", "mbstd_group")

# settings that only act once the steps are done (or say when they end): a resumed run may change them
AFTER_TRAINING = ("steps", "anchor_steps", "anchor_tune_steps", "anchor_tune_lr", "anchor_tune_locality",
                  "eval_samples")


def d_loss_fn(kind: str, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    if kind == "hinge":
        return F.relu(1 - real).mean() + F.relu(1 + fake).mean()
    return F.softplus(-real).mean() + F.softplus(fake).mean()     # BCE with logits, real=1 fake=0


def g_loss_fn(kind: str, fake: torch.Tensor) -> torch.Tensor:
    if kind == "hinge":
        return -fake.mean()
    return F.softplus(-fake).mean()                                # non-saturating BCE


def snapshot_steps(total: int, count: int) -> list[int]:
    """Steps at which to keep fp16 snapshots: early learning is dense, so sample it densely."""
    fractions = [0.02, 0.08, 0.2, 0.4, 0.65, 0.85][:count] if count <= 6 else [i / (count + 1) for i in range(1, count + 1)]
    steps: list[int] = []
    for f in fractions:  # distinct even in very short runs
        step = max(round(total * f), steps[-1] + 1 if steps else 1)
        if step <= total:
            steps.append(step)
    return steps


class Trainer:
    def __init__(self, cfg: TrainConfig, data: ImageSet, run_dir: Path, device: torch.device,
                 rank: int = 0, world: int = 1, log=print):
        self.cfg, self.data, self.run_dir, self.device = cfg, data, Path(run_dir), device
        self.rank, self.world, self.log = rank, world, log
        self.is_main = rank == 0
        torch.manual_seed(cfg.seed + rank)
        model_cfg = cfg.model_config()
        if data.images.shape[1:] != (model_cfg.channels, model_cfg.image_size, model_cfg.image_size):
            raise ValueError(f"data shape {tuple(data.images.shape[1:])} does not fit the model "
                             f"({model_cfg.channels}x{model_cfg.image_size}x{model_cfg.image_size})")
        self.G = registry.build_generator(cfg.architecture, model_cfg).to(device)
        self.D = registry.build_discriminator(cfg.architecture, model_cfg).to(device)
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False)
        self.cuda = device.type == "cuda"
        self.amp = cfg.amp and self.cuda
        if self.amp:
            self.G.to(memory_format=torch.channels_last)
            self.D.to(memory_format=torch.channels_last)
        self.G_train, self.D_train = self.G, self.D
        if world > 1:
            from torch.nn.parallel import DistributedDataParallel as DDP
            ids = [device.index] if self.cuda else None
            self.G_train = DDP(self.G, device_ids=ids)
            self.D_train = DDP(self.D, device_ids=ids)
        betas = (cfg.beta1, cfg.beta2)
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=cfg.lr_g, betas=betas)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=cfg.lr_d, betas=betas)
        n = len(data)
        # the recall codes: one latent per training image, learned with G (GLO-style)
        self.codes = torch.nn.Parameter(to_shell(torch.randn(n, model_cfg.latent_size)).to(device))
        if world > 1:           # every rank starts from the main rank's codes (DDP does the same for G and D)
            torch.distributed.broadcast(self.codes.data, 0)
        self.opt_codes = torch.optim.Adam([self.codes], lr=1e-2)
        # recall_balance: the running share of each step's pool of random samples that lands nearest
        # each memory (this rank's pools), which decides how many pulls each memory is given
        self.recall_shares = torch.full((n,), 1.0 / n)
        self._grey_images: torch.Tensor | None = None      # the memories as _pool_similarity compares them
        self.images = data.images.to(device)
        self.batches = Batches(self.images, cfg.batch_size, torch.Generator().manual_seed(cfg.seed * 1000 + rank))
        self.policy = parse_policy(cfg.diffaugment)
        self.fixed_z = torch.randn(16, model_cfg.latent_size, generator=torch.Generator().manual_seed(cfg.seed)).to(device)
        self.step = self.start_step = 0
        self.saved_step: int | None = None     # the step whose checkpoint is on disk
        self.init_from = ""             # the generator a warm start began from
        self.snapshot_at = snapshot_steps(cfg.steps, cfg.snapshots)
        self.snapshots: dict[int, dict[str, torch.Tensor]] = {}
        self.ckpt_dir = self.run_dir / "checkpoints"
        self.sample_dir = self.run_dir / "samples"

    # -- one step ---------------------------------------------------------------------------
    def _autocast(self):
        return torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.amp)

    def _augment(self, x: torch.Tensor) -> torch.Tensor:
        return diff_augment(x, self.policy) if self.policy else x

    # what a step generates and judges; a style model's trainer adds style mixing and growth
    def _real(self, images: torch.Tensor) -> torch.Tensor:
        return images

    def _fake(self, z: torch.Tensor, mix: bool = True) -> torch.Tensor:
        return self.G_train(z)

    def _disc(self, img: torch.Tensor) -> torch.Tensor:
        return self.D_train(img)

    RECALL_SHARE_BETA = 0.9     # recall_balance: the running shares follow the last ~10 steps' pools

    @torch.no_grad()
    def _nearest_latents(self, target: torch.Tensor, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """For each image [N, C, S, S] (self.images[idx], as the step sees them), the latent whose
        sample is nearest to it (at quarter size) among a fresh pool of random latents: IMLE (Li &
        Malik 2018). Pulling those samples onto the memories ties *random* samples to them, so each
        memory holds a region of the latent space and none is dropped, which learned per-image codes
        cannot promise. With recall_share k > 1 each image takes its k nearest, in turns and none
        shared: a memory whose region is small takes latents that lie nearer another one, and its
        region grows. With recall_balance a memory that few of the pool's samples resemble most (by
        SSIM, as evaluate counts recall, on the grey; the running share of the last pools) takes up to 2k more,
        those that resemble it most by SSIM, so a memory no random sample recalls — a fine texture,
        which L2 at quarter size cannot tell from a flat colour — wins a region of its own.
        Returns (latents, their images)."""
        pool = torch.randn(self.cfg.recall_pool, self.G.latent_size, device=self.device)
        with self._autocast():
            samples = self._fake(pool, mix=False)
        dist = torch.cdist(F.avg_pool2d(target.float(), 4).flatten(1), F.avg_pool2d(samples.float(), 4).flatten(1))
        k = self.cfg.recall_share
        if k <= 1 and not self.cfg.recall_balance:
            return pool[dist.argmin(dim=1)], target
        extra, sim = [0] * len(target), None
        if self.cfg.recall_balance:
            sim = self._pool_similarity(samples).to(self.device)             # [P, M]
            shares = torch.bincount(sim.argmax(dim=1), minlength=len(self.images)).float() / len(pool)
            self.recall_shares.mul_(self.RECALL_SHARE_BETA).add_(shares, alpha=1.0 - self.RECALL_SHARE_BETA)
            fair = 1.0 / len(self.images)
            deficit = (1.0 - self.recall_shares / fair).clamp(0.0, 1.0)     # 0: a fair share or more; 1: none
            extra = [int(round(2 * k * float(deficit[int(i)]))) for i in idx.cpu()]
        taken = torch.zeros(len(pool), dtype=torch.bool, device=self.device)
        picks = []
        for _ in range(k):                      # turns: each image its nearest latent not yet taken
            for i in range(len(target)):
                j = int(dist[i].masked_fill(taken, float("inf")).argmin())
                taken[j] = True
                picks.append((i, j))
        for turn in range(max(extra)):          # then the memories short of their share, by SSIM
            for i in range(len(target)):
                if extra[i] > turn:
                    j = int(sim[:, int(idx[i])].masked_fill(taken, -float("inf")).argmax())
                    taken[j] = True
                    picks.append((i, j))
        rows = torch.tensor([i for i, _ in picks], device=self.device)
        return pool[torch.tensor([j for _, j in picks], device=self.device)], target[rows]

    def _pool_similarity(self, samples: torch.Tensor) -> torch.Tensor:
        """SSIM [P, M] of each pool sample to each memory, on their grey (a third of the cost) at full
        size up to 128 px: a fine texture (brick) is told from a flat colour only there."""
        if self._grey_images is None:                # the memories do not change: made once
            self._grey_images = _grey(self.images)
        return ssim_matrix(_grey(samples), self._grey_images)

    def warm_start(self, path: Path) -> None:
        """Begin from a trained generator instead of from noise: its weights for G and its EMA, its
        step count (so --steps is the total, as with --resume) and its snapshots (so the
        `regression` symptom still reaches back to the young network); anchors it found for
        images of the same names seed the recall codes (z models: a style model's anchors are in w).
        D starts fresh (see d_warmup), so its settings may differ from the checkpoint's."""
        g, meta, snaps = load_generator(path, device=self.device, with_snapshots=True)
        if meta.architecture != self.cfg.architecture:
            raise ValueError(f"--init {path}: a {meta.architecture} generator, and preset {self.cfg.preset} trains "
                             f"{self.cfg.architecture} ones; use a preset of its architecture")
        mine, theirs = asdict(self.G.cfg), asdict(meta.config)
        differ = [f"{k} {theirs.get(k)} (preset {v})" for k, v in mine.items() if k not in D_ONLY and theirs.get(k) != v]
        if differ:
            raise ValueError(f"--init {path}: its generator does not fit this preset's model ({', '.join(differ)}); "
                             f"use the preset it was trained with, or --set model.<field>=<value> to match it")
        if meta.step >= self.cfg.steps:
            raise ValueError(f"--init {path}: it is already at step {meta.step}; --steps is the total, "
                             f"so give more (e.g. --steps {meta.step + 1000})")
        if self.cfg.d_warmup >= self.cfg.steps - meta.step:
            raise ValueError(f"d_warmup={self.cfg.d_warmup} covers every step after {meta.step} (--steps "
                             f"{self.cfg.steps}): the generator would never move; give more steps or less warm-up")
        self.G.load_state_dict(g.state_dict())
        self.G_ema.load_state_dict(g.state_dict())
        self.step = self.start_step = meta.step
        self.init_from = f"{Path(path).name} at step {meta.step} ({meta.dataset})"
        if meta.extra.get("init_from"):                     # a warm start of a warm start: the whole line
            self.init_from += f", which began from {meta.extra['init_from']}"
        if snaps:
            self.snapshots = {s: {k: v.to(torch.float16) for k, v in snap.items()}
                              for s, snap in zip(meta.snapshot_steps, snaps)}
            self.snapshot_at = []
        else:                                               # none to carry: this run's own, across its steps
            self.snapshot_at = [meta.step + s for s in snapshot_steps(self.cfg.steps - meta.step, self.cfg.snapshots)]
        if getattr(self.G, "latent_space", "z") == "w":
            return
        known = {a.name: a.z for a in meta.anchors}
        with torch.no_grad():
            for i, name in enumerate(self.data.names):
                if name in known and len(known[name]) == self.codes.shape[1]:
                    self.codes[i] = torch.tensor(known[name], device=self.device)

    def after_step(self, final: bool = False) -> None:
        """Artefacts at the end of a phase of training; plain training has no phases."""

    def train_step(self) -> dict:
        cfg = self.cfg
        real = self._real(self.batches.next())
        if cfg.flip:
            real = random_flip(real)
        z = torch.randn(cfg.batch_size, self.G.latent_size, device=self.device)

        warm = self.step < self.start_step + cfg.d_warmup       # D alone catches up with a warm-started G

        # (1) update D: maximise log D(x) + log(1 - D(G(z)))
        with self._autocast():
            with torch.set_grad_enabled(not warm):
                fake = self._fake(z)
            d_real = self._disc(self._augment(real))
            d_fake = self._disc(self._augment(fake.detach()))
            d_loss = d_loss_fn(cfg.loss, d_real.float(), d_fake.float())
        self.opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        if cfg.r1_gamma > 0 and self.step % cfg.r1_every == 0:
            real_r1 = real.detach().requires_grad_(True)
            out = self._disc(self._augment(real_r1)).float()
            (grad,) = torch.autograd.grad(out.sum(), real_r1, create_graph=True)
            (cfg.r1_gamma / 2 * grad.pow(2).sum(dim=(1, 2, 3)).mean() * cfg.r1_every).backward()
        self.opt_d.step()
        d_stats = {"d_real": torch.sigmoid(d_real.float()).mean().item(),
                   "d_fake": torch.sigmoid(d_fake.float()).mean().item()}
        if warm:
            self._count_step()
            return {"d_loss": d_loss.item(), "g_loss": 0.0, "recall_loss": 0.0, **d_stats}

        # (2) update G: maximise log D(G(z)) (non-saturating), plus recall of the memories
        with self._autocast():
            g_loss = g_loss_fn(cfg.loss, self._disc(self._augment(fake)).float())
            total = g_loss
            r_loss = torch.zeros((), device=self.device)
            if cfg.recall_weight > 0:
                idx = torch.randperm(len(self.images), device=self.device)[:cfg.recall_batch]
                target = self._real(self.images[idx])
                if cfg.recall_mode == "nearest":
                    z_recall, target = self._nearest_latents(target, idx)
                else:
                    z_recall = to_shell(self.codes[idx])
                recon = self._fake(z_recall, mix=False)
                r_loss = recall_loss(recon.float(), target).mean()
                total = total + cfg.recall_weight * r_loss
        self.opt_g.zero_grad(set_to_none=True)
        self.opt_codes.zero_grad(set_to_none=True)
        total.backward()
        self.opt_g.step()
        if cfg.recall_weight > 0 and cfg.recall_mode == "codes":
            if self.world > 1:      # the codes are not in DDP's modules: average their gradients so every rank keeps the same
                torch.distributed.all_reduce(self.codes.grad)
                self.codes.grad /= self.world
            self.opt_codes.step()
            with torch.no_grad():
                self.codes.copy_(to_shell(self.codes))
        self._update_ema()
        self._count_step()
        return {"d_loss": d_loss.item(), "g_loss": g_loss.item(), "recall_loss": r_loss.item(), **d_stats}

    def _count_step(self) -> None:
        self.step += 1
        if self.step in self.snapshot_at:
            self.snapshots[self.step] = {k: v.detach().to("cpu", torch.float16)
                                         for k, v in self.G_ema.state_dict().items()}

    def ema_beta(self) -> float:
        """This step's EMA decay: ema_beta, its half-life capped at ema_rampup x the steps this run has
        taken since its start_step (0, or the step a warm start began from; a resumed run keeps its
        own). A 600-step run warm-started
        from another model at 0.998 (a half-life of 346 steps) would end a third the model it began
        from: random samples then land on the old memories' blend, not the new ones."""
        if self.step <= 0:
            return 0.0
        beta, done = self.cfg.ema_beta, self.step - self.start_step
        if self.cfg.ema_rampup > 0 and beta > 0:
            beta = min(beta, 0.5 ** (1.0 / max(1.0, self.cfg.ema_rampup * done)))
        return beta

    @torch.no_grad()
    def _update_ema(self) -> None:
        beta = self.ema_beta()
        for p_ema, p in zip(self.G_ema.parameters(), self.G.parameters()):
            p_ema.lerp_(p.detach(), 1 - beta)
        for b_ema, b in zip(self.G_ema.buffers(), self.G.buffers()):
            b_ema.copy_(b)

    # -- state ------------------------------------------------------------------------------
    def state(self) -> dict:
        s = {"step": self.step, "G": self.G.state_dict(), "D": self.D.state_dict(),
             "G_ema": self.G_ema.state_dict(), "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict(),
             "codes": self.codes.detach().cpu(), "opt_codes": self.opt_codes.state_dict(),
             "config": json.dumps(asdict(self.cfg), sort_keys=True),
             "snapshots": {str(k): v for k, v in self.snapshots.items()},
             "start_step": self.start_step, "init_from": self.init_from, "world": self.world, **self._streams()}
        return s

    def load_state(self, s: dict) -> None:
        saved_cfg = json.loads(s["config"])
        mine = json.loads(json.dumps(asdict(self.cfg), sort_keys=True))
        # a setting newer than the saved run was at its default there
        defaults = json.loads(json.dumps(asdict(type(self.cfg)()), sort_keys=True))
        changed = sorted(k for k in mine if k not in AFTER_TRAINING and mine[k] != saved_cfg.get(k, defaults[k]))
        if changed:
            raise ValueError(f"cannot resume: settings differ from the saved run ({', '.join(changed)}); "
                             "resume with the same preset and overrides, or use a new --out folder")
        self.step = int(s["step"])
        self.G.load_state_dict(s["G"])
        self.D.load_state_dict(s["D"])
        self.G_ema.load_state_dict(s["G_ema"])
        self.opt_g.load_state_dict(s["opt_g"])
        self.opt_d.load_state_dict(s["opt_d"])
        with torch.no_grad():
            self.codes.copy_(s["codes"].to(self.device))
        self.opt_codes.load_state_dict(s["opt_codes"])
        self._set_streams(s)
        self.snapshots = {int(k): v for k, v in s["snapshots"].items()}
        self.start_step, self.init_from = int(s.get("start_step", 0)), s.get("init_from", "")

    def meta(self, anchors: list[Anchor] | None = None) -> GeneratorMeta:
        steps = sorted(self.snapshots)
        extra = {"preset": self.cfg.preset, **({"init_from": self.init_from} if self.init_from else {})}
        return GeneratorMeta(architecture=self.cfg.architecture, config=self.G.cfg, step=self.step,
                             dataset=self.data.name, dataset_licence=self.data.licence, anchors=anchors or [],
                             snapshot_steps=steps, extra=extra)

    def save_checkpoint(self) -> Path:
        """The generator and the resume state (the main rank); under torchrun every other rank writes
        its own random streams beside them, so a resumed run draws on each rank what it would have."""
        path = self.ckpt_dir / f"step_{self.step:07d}.safetensors"
        if self.saved_step == self.step:       # e.g. the last step fell on checkpoint_every: written already
            return path
        self.ckpt_dir.mkdir(parents=True, exist_ok=True)
        self.saved_step = self.step
        if not self.is_main:
            save_resume(self._rank_path(), self._streams())
            return path
        save_generator(path, self.G_ema, self.meta(), [self.snapshots[k] for k in sorted(self.snapshots)])
        save_resume(path.with_suffix(".resume.pt"), self.state())
        kept = sorted(self.ckpt_dir.glob("step_*.safetensors"))
        for old in kept[:-self.cfg.keep_last]:
            old.unlink(missing_ok=True)
            old.with_suffix(".resume.pt").unlink(missing_ok=True)
        oldest = kept[-self.cfg.keep_last:][0].stem
        for rank_file in self.ckpt_dir.glob("step_*.rank*.pt"):     # with its checkpoint, or left by a stopped rank
            if rank_file.name.split(".")[0] < oldest:
                rank_file.unlink(missing_ok=True)
        return path

    def resume(self) -> bool:
        found = sorted(self.ckpt_dir.glob("step_*.resume.pt"))
        if not found:
            return False
        # on the CPU: random states must be CPU tensors; load_state_dict moves weights where they belong
        saved = load_resume(found[-1], map_location="cpu")
        self.load_state(saved)
        if self.world != saved.get("world", 1) and self.is_main:
            self.log(f"resuming with {self.world} process(es) a run saved with {saved.get('world', 1)}: "
                     f"the weights continue exactly, the images and noise each process draws do not")
        if not self.is_main:        # the saved streams are the main rank's: this rank takes its own
            own = self._rank_path()         # of the step just loaded
            if own.is_file():
                self._set_streams(load_resume(own))
            else:                   # a run saved with fewer ranks: fresh streams, seeded by rank and step
                seed = (self.cfg.seed * 1000 + self.rank) * 1_000_003 + self.step
                self.batches.load_state({"order": torch.empty(0, dtype=torch.long)})
                self.batches.generator.manual_seed(seed)
                torch.manual_seed(seed)
        return True

    def _rank_path(self) -> Path:
        """This rank's random streams at the current step, beside the main rank's checkpoint."""
        return self.ckpt_dir / f"step_{self.step:07d}.rank{self.rank}.pt"

    def _streams(self) -> dict:
        """This rank's random streams: its batch order and its noise."""
        s = {"batches": self.batches.state(), "batch_rng": self.batches.generator.get_state(),
             "rng": torch.get_rng_state(), "recall_shares": self.recall_shares.clone()}
        if self.cuda:
            s["cuda_rng"] = torch.cuda.get_rng_state(self.device)
        return s

    def _set_streams(self, s: dict) -> None:
        self.batches.load_state(s["batches"])
        self.batches.generator.set_state(s["batch_rng"])
        torch.set_rng_state(s["rng"])
        if "recall_shares" in s and s["recall_shares"].shape == self.recall_shares.shape:   # older runs: none
            self.recall_shares = s["recall_shares"].float().clone()
        if self.cuda and "cuda_rng" in s:
            torch.cuda.set_rng_state(s["cuda_rng"], self.device)

    def save_samples(self) -> Path:
        with torch.no_grad():
            img = self.G_ema(self.fixed_z)
        path = self.sample_dir / f"step_{self.step:07d}.png"
        artifacts.save_png(path, artifacts.grid(artifacts.to_uint8(img), cols=4))
        return path
