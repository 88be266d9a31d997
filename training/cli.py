"""`python -m training prepare|train|memories|evaluate|bundle|tune|detail` — user mistakes exit 2 with a message, never a traceback."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


class UsageError(Exception):
    pass


def _parser() -> argparse.ArgumentParser:
    from .presets import PRESETS
    p = argparse.ArgumentParser(prog="python -m training", description="Train and evaluate Lapses generators.")
    sub = p.add_subparsers(dest="command", required=True)
    pr = sub.add_parser("prepare", help="write a default data set (no network)")
    pr.add_argument("dataset", choices=["memories", "brain"])
    pr.add_argument("out", type=Path)
    pr.add_argument("--overwrite", action="store_true", help="write into a non-empty folder")
    tr = sub.add_parser("train", help="train a generator")
    tr.add_argument("--preset", required=True, choices=sorted(PRESETS))
    tr.add_argument("--data", required=True, type=Path, help="folder of images and/or NIfTI volumes")
    tr.add_argument("--out", required=True, type=Path, help="run folder (samples, losses, checkpoints)")
    tr.add_argument("--steps", type=int, help="steps in all (overrides the preset); with --init or --resume, "
                                              "counted from the run's beginning")
    tr.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    tr.add_argument("--resume", action="store_true", help="continue the run in --out exactly where it stopped")
    tr.add_argument("--init", type=Path, metavar="CKPT",
                    help="start from a trained generator (e.g. a bundled model) instead of from noise; "
                         "--steps is the total, the checkpoint's steps included")
    tr.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a preset value, e.g. --set batch_size=16 --set model.width=32")
    tr.add_argument("--seed", type=int)
    tr.add_argument("--dry-run", action="store_true", help="2 steps at a batch of 2, tiny evaluation: check that everything runs")
    tr.add_argument("--quiet", action="store_true")
    me = sub.add_parser("memories", help="a folder of a person's photographs -> a model of them, ready to run "
                                         "(framed, trained from the bundled model for the time given, tuned, "
                                         "with its detail stage); the same command again continues it")
    me.add_argument("photos", type=Path, help="the folder of photographs (any sizes and shapes; framing.yaml "
                                              "beside them moves one photo's crop: training/framing.py)")
    me.add_argument("--out", required=True, type=Path, help="the model to write (.safetensors); its run folder "
                                                            "is beside it (NAME.run/)")
    me.add_argument("--minutes", type=float, help="the time to train for, here (default 20 on a CPU, 5 with a "
                                                  "GPU; more is better)")
    me.add_argument("--steps", type=int, help="train this many steps instead of what fits --minutes")
    me.add_argument("--init", type=Path, help="the model to start from (default: the bundled memories)")
    me.add_argument("--device", default="auto")
    me.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="change a value of the lapses-memory preset it trains with (as train's --set)")
    me.add_argument("--quiet", action="store_true")
    bu = sub.add_parser("bundle", help="copy a trained generator into assets/ with its data licence, within a size limit")
    bu.add_argument("checkpoint", type=Path, help="a run's generator.safetensors")
    bu.add_argument("out", type=Path, help="e.g. assets/memories.safetensors")
    bu.add_argument("--data", required=True, type=Path, help="the training data folder (its LICENCE.txt is copied)")
    bu.add_argument("--snapshots", type=int, default=3, help="training snapshots to keep, spread evenly (default 3)")
    bu.add_argument("--max-mb", type=float, default=20.0, help="refuse a bundle larger than this (default 20 MB)")
    bu.add_argument("--overwrite", action="store_true", help="replace an existing bundle")
    tu = sub.add_parser("tune", help="pivotal tuning: fine-tune a trained generator so each anchor redraws its image")
    tu.add_argument("checkpoint", type=Path, help="a generator with anchors (a run's generator.safetensors or a bundle)")
    tu.add_argument("out", type=Path, help="where to write the tuned generator (.safetensors)")
    tu.add_argument("--data", required=True, type=Path, help="the training data folder its anchors were found on")
    tu.add_argument("--steps", type=int, default=300, help="tuning steps (default 300)")
    tu.add_argument("--lr", type=float, default=2e-4, help="Adam learning rate (default 2e-4)")
    tu.add_argument("--locality", type=float, default=1.0,
                    help="weight on keeping random latents' images as they were (default 1)")
    tu.add_argument("--device", default="auto")
    tu.add_argument("--overwrite", action="store_true", help="replace an existing OUT (may be the checkpoint itself)")
    de = sub.add_parser("detail", help="make a generator's detail stage: its memories' photographs at the size "
                                       "the data holds, shown where the picture agrees with them")
    de.add_argument("checkpoint", type=Path, help="a generator with anchors (a run's generator.safetensors or a bundle)")
    de.add_argument("--data", required=True, type=Path, help="the training data folder its anchors were found on")
    de.add_argument("--size", type=int, help="the detail stage's side in pixels (default: what the data holds, "
                                             "up to 4x the generator's)")
    de.add_argument("--quality", type=int, default=92, help="JPEG quality of the stored photographs, 50..100 (default 92)")
    de.add_argument("--out", type=Path, help="write the generator with its detail stage here (default: in place)")
    de.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    ev = sub.add_parser("evaluate", help="SSIM of samples against their nearest training image")
    ev.add_argument("checkpoint", type=Path)
    ev.add_argument("--data", required=True, type=Path)
    ev.add_argument("--samples", type=int, default=1000)
    ev.add_argument("--seed", type=int, default=1234)
    ev.add_argument("--sheet", type=Path, help="write a PNG of samples beside their nearest images")
    ev.add_argument("--overwrite", action="store_true", help="replace an existing --sheet")
    ev.add_argument("--json", action="store_true", help="print one JSON object")
    ev.add_argument("--device", default="auto")
    return p


def _loaded(folder, size: int, channels: int, framing: str = "centre"):
    """The data folder's images, saying which files were left out (a damaged file, say)."""
    from .data import load_folder
    data = load_folder(folder, size, channels, framing=framing)
    if data.skipped:
        print(f"note: {len(data.skipped)} file(s) in {folder} could not be read and are left out: "
              f"{', '.join(data.skipped[:5])}{' …' if len(data.skipped) > 5 else ''}", file=sys.stderr)
    return data


def _prepare(args) -> int:
    from .prepare import prepare_brain, prepare_memories
    written = (prepare_memories if args.dataset == "memories" else prepare_brain)(args.out, args.overwrite)
    print(f"wrote {len(written)} images and LICENCE.txt to {args.out}")
    return 0


def _train(args) -> int:
    import dataclasses
    from .presets import build_config
    from .run import speaks, train
    overrides = list(args.set)
    if args.out.exists() and not args.out.is_dir():
        raise UsageError(f"--out {args.out}: is a file; give a folder for the run (a new one, or one to --resume)")
    if args.dry_run:
        if args.steps is not None:
            raise UsageError("--dry-run trains 2 steps; leave out --steps (or drop --dry-run)")
        start = 0
        if args.init is not None:       # two steps on from where the checkpoint stands
            from models import read_header
            start = int(read_header(args.init).get("step", 0))
        # the preset's networks, at a batch of 2: a 256-pixel StyleGAN's batch of 32 needs ~24 GB on a CPU
        overrides += [f"steps={start + 2}", "sample_every=1", "eval_samples=8", "anchor_steps=2", "d_warmup=0",
                      "batch_size=2"]
    cfg = build_config(args.preset, overrides, steps=args.steps if not args.dry_run else None, seed=args.seed)
    if args.dry_run:
        cfg = dataclasses.replace(cfg, anchor_tune_steps=min(2, cfg.anchor_tune_steps))
    model = cfg.model_config()
    data = _loaded(args.data, model.image_size, model.channels)
    if speaks():                                # under torchrun, once
        world = int(os.environ.get("WORLD_SIZE", "1"))
        print(f"{cfg.preset}: {len(data)} images from {args.data} ({data.name}), {cfg.steps} steps, "
              f"batch {cfg.batch_size}" + (f" on each of {world} processes" if world > 1 else ""))
    try:
        train(cfg, data, args.out, args.device, resume=args.resume, quiet=args.quiet, init=args.init,
              data_folder=args.data)
    except KeyboardInterrupt:
        return 130
    return 0


def _memories(args) -> int:
    from .memories import default_minutes, make, run_folder
    root = Path(__file__).resolve().parent.parent
    init = args.init or root / "assets" / "memories.safetensors"
    if not init.is_file():
        raise UsageError(f"--init {init}: no such model; give a trained generator (.safetensors)")
    if args.steps is not None and args.steps < 1:
        raise UsageError(f"--steps {args.steps}: must be at least 1")
    try:
        out = make(args.photos, args.out, args.minutes or default_minutes(), init, args.device, args.steps,
                   quiet=args.quiet, overrides=args.set)
    except KeyboardInterrupt:
        print(f"interrupted: the same command again continues from the last checkpoint in {run_folder(args.out)}",
              file=sys.stderr)
        return 130
    print(f"run it: ./lapses run --model {out}   (./lapses train calibrates the course to it first; "
          f"alone: python -m installation calibrate --model {out})")
    return 0


def _bundle(args) -> int:
    import shutil
    from models import load_generator, save_generator
    out, licence = args.out, args.data / "LICENCE.txt"
    licence_out = out.with_suffix(".LICENCE.txt")
    if out.suffix != ".safetensors":
        raise UsageError(f"{out}: a bundle is a .safetensors file; give a name ending in .safetensors")
    if not licence.is_file():
        raise UsageError(f"{licence} not found: a bundled model must carry its data's licence "
                         f"(python -m training prepare writes one)")
    if (out.exists() or licence_out.exists()) and not args.overwrite:
        raise UsageError(f"{out} exists; add --overwrite to replace it")
    if args.snapshots < 0:
        raise UsageError(f"--snapshots {args.snapshots}: must be 0 or more")
    g, meta, snaps = load_generator(args.checkpoint, device="cpu", with_snapshots=True)
    from .data import dataset_name
    given = dataset_name(args.data)
    if meta.dataset and given != meta.dataset:
        raise UsageError(f"{args.checkpoint} was trained on {meta.dataset!r} but {args.data} holds "
                         f"{given!r}: the bundle would carry another data set's licence; "
                         f"give the data folder it was trained on")
    n = min(args.snapshots, len(snaps))
    weights_mb = sum(v.numel() * v.element_size() for v in g.state_dict().values()) / 1e6
    weights_mb += (meta.detail.nbytes / 1e6) if meta.detail is not None else 0.0     # the photographs ride along
    snapshot_mb = sum(v.numel() * 2 for v in g.state_dict().values()) / 1e6      # kept as fp16
    if weights_mb + n * snapshot_mb > args.max_mb:
        fits = max(0, int((args.max_mb - weights_mb) // snapshot_mb)) if snapshot_mb else 0
        raise UsageError(f"the bundle would be {weights_mb + n * snapshot_mb:.1f} MB, over --max-mb "
                         f"{args.max_mb:g} ({weights_mb:.1f} MB of weights, {snapshot_mb:.1f} MB per snapshot): "
                         + (f"keep --snapshots {fits} or fewer, or " if weights_mb <= args.max_mb else "")
                         + "raise --max-mb (a narrower model is smaller and faster too)")
    keep = sorted({round(i * (len(snaps) - 1) / max(1, n - 1)) for i in range(n)}) if n else []
    meta.snapshot_steps = [meta.snapshot_steps[i] for i in keep]
    save_generator(out, g, meta, [snaps[i] for i in keep])
    shutil.copyfile(licence, licence_out)
    size = out.stat().st_size
    print(f"wrote {out} ({size / 1e6:.1f} MB, snapshots from steps {meta.snapshot_steps}) and {licence_out}")
    return 0


def _tune(args) -> int:
    import math
    import os
    from models import load_generator, save_generator
    from .anchors import tune_to_anchors
    from .data import framing_of
    from .evaluate import evaluate, load_anchor_order
    from .run import pick_device, tuning_note
    if args.out.suffix != ".safetensors":
        raise UsageError(f"{args.out}: a generator is a .safetensors file; give a name ending in .safetensors")
    if args.out.exists() and not args.overwrite:
        raise UsageError(f"{args.out} exists; add --overwrite to replace it")
    if args.out.is_dir():
        raise UsageError(f"{args.out} is a folder; give the path of a .safetensors file")
    folder = args.out.parent
    if not folder.is_dir() or not os.access(folder, os.W_OK):
        raise UsageError(f"{folder}: not a writable folder; create it or choose another OUT")
    if args.steps < 1 or not (math.isfinite(args.lr) and args.lr > 0) or not (math.isfinite(args.locality)
                                                                              and args.locality >= 0):
        raise UsageError("--steps must be at least 1, --lr a number above 0, --locality a number, 0 or more")
    g, meta, snaps = load_generator(args.checkpoint, device=pick_device(args.device), with_snapshots=True)
    data = _loaded(args.data, meta.image_size, meta.channels, framing_of(meta))
    anchors = load_anchor_order(meta, data.names)
    if anchors is None and not meta.anchors:
        raise UsageError(f"{args.checkpoint} has no anchors: they are found at the end of a run, so tune the "
                         f"run's generator.safetensors (or a bundle), not a checkpoint from during training")
    if anchors is None:
        raise UsageError(f"{args.checkpoint} has no anchor for every image in {args.data} (it has "
                         f"{len(meta.anchors)}); give the data folder it was trained on")
    before = evaluate(g, data.images, data.names, samples=256, anchors=anchors)
    losses = tune_to_anchors(g, data.images, anchors, steps=args.steps, lr=args.lr, locality=args.locality,
                             progress=True)
    after = evaluate(g, data.images, data.names, samples=256, anchors=anchors)
    note = tuning_note(args.steps, args.lr, args.locality, losses)
    earlier = meta.extra.get("anchor_tuning")       # tuned before: the record keeps both
    meta.extra["anchor_tuning"] = f"{earlier}; then {note}" if earlier else note
    save_generator(args.out, g.cpu(), meta, snaps)
    for label, r in (("before", before), ("after", after)):
        worst = min(r.anchor_ssim, key=r.anchor_ssim.get)
        print(f"{label}: anchor SSIM min {r.anchor_ssim[worst]:.3f} ({worst}), median best-SSIM of 256 samples "
              f"{r.ssim_median:.3f}, least recalled {min(r.recall.values()):.1%}")
    print(f"wrote {args.out} ({meta.extra['anchor_tuning']})")
    return 0


def _detail(args) -> int:
    from models import load_generator, save_generator
    from models.checkpoint import out_problem
    from .detail import build_detail, display_figures
    from .evaluate import display_summary
    out = args.out or args.checkpoint
    problem = out_problem(out, args.out is not None, args.overwrite)
    if problem:
        raise UsageError(problem)
    if not 50 <= args.quality <= 100:
        raise UsageError(f"--quality {args.quality}: a JPEG quality from 50 to 100")
    g, meta, snaps = load_generator(args.checkpoint, device="cpu", with_snapshots=True)
    had = meta.detail
    meta.detail, skipped = build_detail(meta, args.data, size=args.size, quality=args.quality)
    if skipped:
        print(f"note: {len(skipped)} file(s) in {args.data} could not be read and are left out: "
              f"{', '.join(skipped[:5])}", file=sys.stderr)
    save_generator(out, g, meta, snaps)
    replaced = f" (replacing one of {had.size} px)" if had is not None else ""
    print(f"wrote {out}: detail stage of {len(meta.detail.names)} memories at {meta.detail.size} px, "
          f"{meta.detail.nbytes / 1e6:.2f} MB{replaced}")
    print(display_summary(display_figures(g, meta, args.data)))
    return 0


def _evaluate(args) -> int:
    import torch
    from models import load_generator
    from .data import framing_of
    from .evaluate import evaluate, load_anchor_order
    from .run import pick_device
    if args.samples < 1:
        raise UsageError(f"--samples {args.samples}: must be at least 1")
    if args.sheet is not None:
        if args.sheet.suffix.lower() != ".png":
            raise UsageError(f"--sheet {args.sheet}: the sheet is a PNG; give a name ending in .png")
        if args.sheet.exists() and not args.overwrite:
            raise UsageError(f"--sheet {args.sheet} exists; choose another name or add --overwrite to replace it")
        if not args.sheet.parent.is_dir():
            raise UsageError(f"--sheet {args.sheet}: folder {args.sheet.parent} does not exist")
    g, meta = load_generator(args.checkpoint, device=pick_device(args.device))
    data = _loaded(args.data, meta.image_size, meta.channels, framing_of(meta))
    if meta.dataset and data.name != meta.dataset:  # allowed (on purpose, say), but never by accident
        print(f"note: {args.checkpoint} was trained on {meta.dataset!r}, and {args.data} holds {data.name!r}: "
              f"the figures measure it against images it did not learn", file=sys.stderr)
    anchors = load_anchor_order(meta, data.names)
    from .detail import display_figures
    with torch.no_grad():          # not set_grad_enabled(False): called in-process, that outlived the command
        result = evaluate(g, data.images, data.names, samples=args.samples, anchors=anchors, seed=args.seed,
                          sheet=args.sheet)
        result.display = display_figures(g, meta, args.data)
    print(result.to_json() if args.json else result.summary())
    return 0


def main(argv: list[str] | None = None) -> int:
    from models import CheckpointError
    from .data import DataError
    from .framing import FramingError
    from .memories import MemoriesError
    from .presets import ConfigError
    from .prepare import PrepareError
    args = _parser().parse_args(argv)
    try:
        return {"prepare": _prepare, "train": _train, "memories": _memories, "evaluate": _evaluate, "bundle": _bundle,
                "tune": _tune, "detail": _detail}[args.command](args)
    except OSError as e:
        import errno
        from .run import speaks
        if speaks():
            if e.errno == errno.ENOSPC:
                print(f"error: the disk is full ({e.filename or 'writing a checkpoint'}): free some space, then run "
                      f"the same command again (a run continues from its last checkpoint)", file=sys.stderr)
            else:
                print(f"error: {e}", file=sys.stderr)
        return 2
    except (UsageError, CheckpointError, DataError, ConfigError, PrepareError, FramingError, MemoriesError,
            FileExistsError, FileNotFoundError, ValueError) as e:
        from .run import speaks
        if speaks():                            # under torchrun every process meets it: one says so
            print(f"error: {e}", file=sys.stderr)
        return 2
