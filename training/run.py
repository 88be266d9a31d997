"""A whole training run: the step loop with its progress bar, artefacts and checkpoints, then
anchors and evaluation. Shared by the CLI and the tests."""
from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import torch

from models import Anchor, save_generator
from models.progress import progress_bar
from . import artifacts
from .anchors import find_anchors, find_w_anchors, tune_to_anchors
from .data import ImageSet
from .detail import build_detail, display_figures
from .evaluate import evaluate
from .loop import Trainer
from .presets import TrainConfig
from .style import StyleTrainer


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"--device {name}: no CUDA GPU is available here; use --device cpu or auto")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"--device {name}: not a device; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ValueError(f"--device {name}: this machine has {torch.cuda.device_count()} CUDA GPU(s), "
                         f"numbered from 0")
    return device


def tuning_note(steps: int, lr: float, locality: float, losses: dict[str, float]) -> str:
    """What a checkpoint records of its pivotal tuning (metadata extra.anchor_tuning)."""
    return (f"{steps} steps, lr {lr:g}, locality {locality:g}, "
            f"loss {losses['loss_start']:.4f} -> {losses['loss_end']:.4f}")


class _AgreedStop:
    """A Ctrl-C (SIGINT, or SIGTERM) is only noted, and the run stops at the end of the step it came
    in, so the checkpoint is of a whole step and --resume continues exactly (a KeyboardInterrupt
    raised mid-step saved D and the random streams a step ahead of G). Under torchrun it reaches each
    process at another point of its step, perhaps inside a collective, so at the end of every step
    they agree: all stop after the step in which any was asked to, and every rank's checkpoint is of
    that same step. Alone, a second Ctrl-C stops at once (a checkpoint, but not an exact one)."""

    def __init__(self, world: int, device: torch.device):
        self.world, self.asked = world, False
        self.flag = torch.zeros(1, device=device)
        self.before = {}
        if threading.current_thread() is threading.main_thread():   # signals reach the main thread only
            for sig in (signal.SIGINT, signal.SIGTERM):
                self.before[sig] = signal.signal(sig, self._note)

    def _note(self, *_) -> None:
        if self.asked and self.world == 1:
            raise KeyboardInterrupt
        self.asked = True

    def agreed(self) -> bool:
        if self.world == 1:
            return self.asked
        import torch.distributed as dist
        self.flag.fill_(float(self.asked))
        dist.all_reduce(self.flag, op=dist.ReduceOp.MAX)
        return bool(self.flag.item())

    def restore(self) -> None:
        for sig, handler in self.before.items():
            signal.signal(sig, handler)


def _distributed() -> tuple[int, int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0"))


def speaks() -> bool:
    """Whether this process speaks for the run: always alone, rank 0 under torchrun."""
    return _distributed()[0] == 0


def train(cfg: TrainConfig, data: ImageSet, run_dir: Path, device_name: str = "auto", resume: bool = False,
          quiet: bool = False, log=print, init: Path | None = None, data_folder: Path | None = None,
          deadline: float | None = None) -> Path:
    """Train, and return the path of the final generator (run_dir/generator.safetensors).
    `deadline` (a time.perf_counter() value): the step loop ends there, before cfg.steps, and the
    run goes on to its anchors as at the end (a time budget: training/memories.py).
    `init`: a trained generator to start from (a warm start, see Trainer.warm_start).
    `data_folder`: where `data` came from; the final generator gets its detail stage from it
    (training/detail.py)."""
    if init is not None and resume:
        raise ValueError("--init starts a new run from a trained generator and --resume continues a run; "
                         "give one of them")
    run_dir = Path(run_dir)
    if not resume and run_dir.is_dir() and any(run_dir.iterdir()):   # before the ranks meet: before any writes
        if (run_dir / "checkpoints").is_dir() and any((run_dir / "checkpoints").iterdir()):
            raise FileExistsError(f"{run_dir}: already holds a run; pass --resume to continue it or choose a new "
                                  f"--out")
        raise FileExistsError(f"{run_dir}: a folder with other things in it, not a run; give a new or empty "
                              f"folder for --out (samples, checkpoints and losses would land among them)")
    rank, world, local = _distributed()
    if rank:                            # under torchrun one rank speaks for the run
        log = lambda *args, **kwargs: None  # noqa: E731
    device = pick_device(device_name)
    if world > 1:
        import torch.distributed as dist
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            device = torch.device("cuda", local)
            torch.cuda.set_device(device)
        dist.init_process_group(backend)
    run_dir = Path(run_dir)
    trainer_cls = StyleTrainer if cfg.architecture == "stylegan" else Trainer
    trainer = trainer_cls(cfg, data, run_dir, device, rank=rank, world=world, log=log)
    if resume:
        if not trainer.resume():
            raise FileNotFoundError(f"{run_dir}: no checkpoint to resume from (checkpoints/step_*.resume.pt); "
                                    "start without --resume")
        if cfg.steps < trainer.step:    # before anything is written: --steps is the run's total
            raise ValueError(f"--steps {cfg.steps}: the run in {run_dir} is already at step {trainer.step}; "
                             f"--steps is the total, so give {trainer.step} (to finish it) or more")
        log(f"resumed at step {trainer.step}")
    elif init is not None:
        trainer.warm_start(Path(init))
        log(f"starting from {trainer.init_from}" + ("" if cfg.d_warmup else
            "; the discriminator starts fresh: --set d_warmup=300 lets it catch up before the generator moves"))
    main = trainer.is_main
    if main:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.json").write_text(trainer.state()["config"])
    losses = artifacts.LossLog(run_dir / "losses.csv", resume_step=trainer.step if resume else None) if main else None
    bar = progress_bar(cfg.steps, initial=trainer.step, disable=quiet or not main, unit="step")
    interrupted = False
    t0, imgs = time.perf_counter(), 0
    stop = _AgreedStop(world, device)
    try:
        while trainer.step < cfg.steps and not interrupted:
            stats = trainer.train_step()
            interrupted = stop.agreed()
            imgs += cfg.batch_size * world
            if not main:
                if trainer.step % cfg.checkpoint_every == 0:
                    trainer.save_checkpoint()       # this rank's random streams beside the main rank's checkpoint
                continue
            if trainer.step % 10 == 0 or trainer.step == cfg.steps:
                rate = imgs / max(1e-9, time.perf_counter() - t0)
                losses.append({"step": trainer.step, **{k: f"{v:.5f}" for k, v in stats.items()},
                               "images_per_s": f"{rate:.1f}"})
                bar.set_postfix(d=f"{stats['d_loss']:.3f}", g=f"{stats['g_loss']:.3f}",
                                rec=f"{stats['recall_loss']:.3f}", img_s=f"{rate:.0f}")
            bar.update(1)
            if trainer.step % cfg.sample_every == 0 or trainer.step == 1:
                trainer.save_samples()
            if trainer.step % cfg.checkpoint_every == 0:
                trainer.save_checkpoint()
            trainer.after_step()
            if deadline is not None and time.perf_counter() >= deadline and trainer.step < cfg.steps:
                log(f"the time given is up at step {trainer.step}")
                break
    except KeyboardInterrupt:
        interrupted = True
    finally:
        bar.close()
        stop.restore()
    final = run_dir / "generator.safetensors"
    trainer.save_checkpoint()       # first: under torchrun the processes have ~30 s before they are killed
    if not main:
        if interrupted:
            raise KeyboardInterrupt
        return final
    trainer.save_samples()
    trainer.after_step(final=True)
    artifacts.plot_losses(run_dir / "losses.csv", run_dir / "losses.png")
    artifacts.progress_film(sorted(trainer.sample_dir.glob("step_*.png")), run_dir / "progress.mp4")
    if interrupted:
        log(f"interrupted at step {trainer.step}: checkpoint saved; continue with --resume")
        raise KeyboardInterrupt
    log("finding anchors (the latent that recalls each training image)…")
    codes = trainer.codes.detach() if cfg.recall_weight > 0 and cfg.recall_mode == "codes" else None
    if getattr(trainer.G_ema, "latent_space", "z") == "w":   # a style model walks, so recalls, in w
        z = find_w_anchors(trainer.G_ema, data.images, steps=cfg.anchor_steps, init=codes, seed=cfg.seed)
    else:
        z = find_anchors(trainer.G_ema, data.images, steps=cfg.anchor_steps, init=codes, seed=cfg.seed)
    meta = trainer.meta([Anchor(n, zz.tolist()) for n, zz in zip(data.names, z)])
    if data.framing != "centre":        # so that the detail stage and evaluate crop the photographs alike
        meta.extra["framing"] = data.framing
    if cfg.anchor_tune_steps:
        log(f"pivotal tuning: {cfg.anchor_tune_steps} steps, so that each anchor redraws its image…")
        tuned = tune_to_anchors(trainer.G_ema, data.images, z, steps=cfg.anchor_tune_steps, lr=cfg.anchor_tune_lr,
                                locality=cfg.anchor_tune_locality, seed=cfg.seed,
                                progress=not quiet)
        meta.extra["anchor_tuning"] = tuning_note(cfg.anchor_tune_steps, cfg.anchor_tune_lr,
                                                  cfg.anchor_tune_locality, tuned)
    if data_folder is not None:
        log("making the detail stage (each memory's photograph, at the size the data holds)…")
        meta.detail, _ = build_detail(meta, Path(data_folder))
    save_generator(final, trainer.G_ema, meta,
                   [trainer.snapshots[k] for k in sorted(trainer.snapshots)])
    result = evaluate(trainer.G_ema, data.images, data.names, samples=cfg.eval_samples, anchors=z,
                      sheet=run_dir / "nearest.png")
    if data_folder is not None:
        result.display = display_figures(trainer.G_ema, meta, Path(data_folder))
    (run_dir / "evaluation.json").write_text(result.to_json())
    log(result.summary())
    log(f"generator: {final}")
    return final
