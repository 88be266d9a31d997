"""`python -m training memories PHOTOS --out MINE.safetensors`: a person's photographs to a piece.

Any folder of photographs (mixed sizes, portrait or landscape, colour or grey, a few unreadable
files): no preparation. Each is framed where its subject is (training/framing.py; framing.yaml
beside them overrides one), the bundled memories model is the starting point (it already draws
photographs; only what is new must be learnt), the preset is lapses-memory, and the number of steps
is what fits the time given (`--minutes`, measured on this machine before the run begins). The run
lives in a folder beside OUT (MINE.run/): Ctrl-C stops at the end of a step with a checkpoint, and
the same command again continues it exactly. At the end OUT is written (the generator with its
anchors, pivotal tuning, detail stage and evaluation) and the line that runs it is printed;
`./lapses train PHOTOS` also calibrates the course to it (python -m installation calibrate).
"""
from __future__ import annotations

import json
import math
import shutil
import time
from pathlib import Path

import torch

from models import load_generator, read_header, save_generator
from .data import IMAGE_SUFFIXES, DataError, load_folder
from .presets import build_config

MIN_PHOTOS = 2              # the walk goes from memory to memory
MAX_PHOTOS = 64             # more than a walk can show, and than a small generator keeps well
AFTER_LOOP_S = {"cpu": 240.0, "cuda": 30.0}   # anchors, pivotal tuning, detail stage, evaluation: at least
AFTER_LOOP_STEPS = 100      # ... and as long as this many training steps take here (~10 min on a loaded 2-core CPU)
PROBE_STEPS = 4
BUNDLE_SNAPSHOTS = 3
D_WARMUP = 100              # steps in which a warm start's fresh D catches up alone (a fifth of a shorter run)


class MemoriesError(ValueError):
    """A person's mistake: the message says what is wrong and what to do."""


def photo_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise MemoriesError(f"{folder}: no such folder; give the folder your photographs are in")
    return sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")
                  and p.suffix.lower() in IMAGE_SUFFIXES)


def check_folder(folder: Path) -> list[Path]:
    files = photo_files(folder)
    if not files:
        raise MemoriesError(f"{folder}: no photographs in it (png, jpg, tif, bmp); put the photographs "
                            f"of the memories there")
    if len(files) < MIN_PHOTOS:
        raise MemoriesError(f"{folder}: one photograph ({files[0].name}); the piece walks from memory to memory, "
                            f"so give it at least {MIN_PHOTOS} (eight or so look best)")
    if len(files) > MAX_PHOTOS:
        hours = len(files) * 2.5 / 60
        raise MemoriesError(f"{folder}: {len(files)} photographs. The piece walks a handful of memories: a model of "
                            f"this size keeps up to {MAX_PHOTOS} well, and learning all {len(files)} would take "
                            f"roughly {hours:.0f} hours on a 2-core machine (about 2.5 minutes a photograph) and "
                            f"still show each one seldom. Put the {MAX_PHOTOS} or fewer that matter most in a "
                            f"folder of their own and give that one; nothing was trained")
    return files


def check_disk(out: Path, init: Path) -> None:
    """Room for the run's checkpoints (~4 generator-with-discriminator files) and OUT."""
    need = 6 * init.stat().st_size
    free = shutil.disk_usage(out.parent).free
    if free < need:
        raise MemoriesError(f"{out.parent}: {free / 1e6:.0f} MB free, and the run needs about {need / 1e6:.0f} MB "
                            f"for its checkpoints and the model; free some space (or give --out on another disk)")


def run_folder(out: Path) -> Path:
    return out.with_name(out.stem + ".run")


def seconds_per_step(cfg, data, run_dir: Path, device, init: Path) -> float:
    """Time a few steps of this run on this machine, in a throwaway folder (the warm-up of D excluded)."""
    import dataclasses
    import tempfile
    from .loop import Trainer
    with tempfile.TemporaryDirectory(dir=run_dir.parent) as tmp:
        probe_cfg = dataclasses.replace(cfg, d_warmup=0)
        trainer = Trainer(probe_cfg, data, Path(tmp), device, log=lambda *a, **k: None)
        trainer.warm_start(init)
        trainer.train_step()                   # the first step pays for allocation and caches
        t0 = time.perf_counter()
        for _ in range(PROBE_STEPS):
            trainer.train_step()
        return (time.perf_counter() - t0) / PROBE_STEPS


def make(folder: Path, out: Path, minutes: float, init: Path, device_name: str = "auto", steps: int | None = None,
         quiet: bool = False, log=print, overrides: list[str] = ()) -> Path:
    """Train (or continue training) the memories in `folder` into `out`; returns `out`."""
    from .run import pick_device, train
    began = time.perf_counter()
    if out.suffix != ".safetensors":
        raise MemoriesError(f"--out {out}: a model is a .safetensors file; give a name ending in .safetensors")
    if not out.parent.is_dir():
        raise MemoriesError(f"--out {out}: folder {out.parent} does not exist")
    if not (math.isfinite(minutes) and minutes >= 2):
        raise MemoriesError(f"--minutes {minutes:g}: give at least 2 (20 or more on a CPU looks best)")
    run_dir = run_folder(out)
    resume = (run_dir / "checkpoints").is_dir() and any((run_dir / "checkpoints").glob("*.resume.pt"))
    if out.exists() and not resume:
        raise MemoriesError(f"--out {out} exists; choose another name (or remove it to train it again)")
    files = check_folder(folder)
    check_disk(out, init)
    device = pick_device(device_name)
    base = [f"d_warmup={D_WARMUP}", "checkpoint_every=100", "sample_every=100", "recall_share=2", "recall_balance=true"]
    mine = list(overrides)                 # the user's --set: after what is chosen here, so they win
    overrides = [*base, *mine]
    model = build_config("lapses-memory", overrides).model_config()
    data = load_folder(folder, model.image_size, model.channels, framing="subject")
    if data.skipped:
        log(f"note: {len(data.skipped)} file(s) could not be read and are left out: {', '.join(data.skipped[:5])}")
    if len(data) < MIN_PHOTOS:
        raise MemoriesError(f"{folder}: only {len(data)} of its {len(files)} photographs could be read; give at "
                            f"least {MIN_PHOTOS}")
    start = int(read_header(init).get("step", 0))
    after_s = AFTER_LOOP_S.get(device.type, 60.0)
    timed = steps is None                     # --steps: exactly those, however long they take
    if resume:
        saved = json.loads((run_dir / "config.json").read_text())
        total = saved["steps"]
        warm = [f"d_warmup={int(saved.get('d_warmup', D_WARMUP))}"]      # as the run began
        cfg = build_config("lapses-memory", [*base, *warm, *mine], steps=total)
        log(f"continuing {run_dir} from its last checkpoint, for {minutes:g} minutes more (at most to step {total})")
    else:
        if steps is None:                 # what fits the time, measured here (so the bar's ETA is right); the
                                          # deadline ends it where the machine is slower
            per_step = seconds_per_step(build_config("lapses-memory", overrides, steps=start + 1), data, run_dir,
                                        device, init)
            after_s = max(after_s, AFTER_LOOP_STEPS * per_step)     # the end's work slows down alike
            steps = max(50, int((began + minutes * 60 - after_s - time.perf_counter()) / per_step))
            log(f"{len(data)} photographs; {per_step:.2f} s a step here: about {steps} steps in {minutes:g} "
                f"minutes, from {init.name}")
        # D's warm-up a fifth of a short run at most: a few minutes on a slow machine still move G
        warm = [f"d_warmup={min(D_WARMUP, steps // 5)}"]
        cfg = build_config("lapses-memory", [*base, *warm, *mine], steps=start + steps)
    deadline = began + minutes * 60 - after_s if timed else None
    final = train(cfg, data, run_dir, device.type if device.index is None else str(device), resume=resume,
                  quiet=quiet, log=log, init=None if resume else init, data_folder=folder, deadline=deadline)
    g, meta, snaps = load_generator(final, device="cpu", with_snapshots=True)
    keep = sorted({round(i * (len(snaps) - 1) / max(1, BUNDLE_SNAPSHOTS - 1)) for i in range(BUNDLE_SNAPSHOTS)}) \
        if snaps else []
    meta.snapshot_steps = [meta.snapshot_steps[i] for i in keep]
    save_generator(out, g, meta, [snaps[i] for i in keep])
    evaluation = json.loads((run_dir / "evaluation.json").read_text())
    log(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB); the run, its samples and figures are in {run_dir}")
    worst = min(evaluation["anchor_ssim"], key=evaluation["anchor_ssim"].get)
    log(f"each memory as its anchor draws it: SSIM min {evaluation['anchor_ssim'][worst]:.3f} ({worst}); least "
        f"recalled by random samples: {min(evaluation['recall'].values()):.1%}")
    return out


def default_minutes() -> float:
    return 5.0 if torch.cuda.is_available() else 20.0
