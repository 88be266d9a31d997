"""Data loading, tiny training runs, exact resume, evaluation and the CLI's error paths."""
import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from training.data import DataError, load_folder
from training.presets import ConfigError, build_config
from training.run import train

from conftest import run_main

TINY_SET = ["model.image_size=32", "model.width=4", "model.d_width=4", "model.latent_size=16",
            "batch_size=4", "recall_batch=3", "sample_every=2", "checkpoint_every=3", "eval_samples=16",
            "anchor_steps=3", "anchor_tune_steps=3", "snapshots=2"]


def test_folder_loading_resizes_crops_and_converts(image_folder, tmp_path):
    (image_folder / "sub").mkdir()
    import imageio.v3 as iio
    iio.imwrite(image_folder / "sub" / "gray.png", np.full((30, 30), 90, np.uint8))
    (image_folder / "notes.txt").write_text("ignored")
    rgb = load_folder(image_folder, 32, 3)
    assert rgb.images.shape == (7, 3, 32, 32) and rgb.licence == "CC0 test images"
    assert rgb.images.min() >= -1 and rgb.images.max() <= 1
    gray = load_folder(image_folder, 16, 1)
    assert gray.images.shape == (7, 1, 16, 16)
    assert "sub/gray.png" in gray.names
    iio.imwrite(image_folder / "sub" / "grey_alpha.png", np.full((20, 20, 2), 200, np.uint8))   # LA
    (image_folder / "sub" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    mixed = load_folder(image_folder, 16, 3)
    assert mixed.images.shape == (8, 3, 16, 16) and "sub/grey_alpha.png" in mixed.names
    assert [s.split(" ")[0] for s in mixed.skipped] == ["broken.png"]


def test_nifti_volumes_become_slices_without_empty_ones(tmp_path):
    import nibabel as nib
    vol = np.zeros((20, 20, 10), np.float32)
    vol[5:15, 5:15, 2:8] = 100.0
    folder = tmp_path / "nii"
    folder.mkdir()
    nib.save(nib.Nifti1Image(vol, np.eye(4)), str(folder / "v.nii.gz"))
    data = load_folder(folder, 32, 1)
    assert len(data) == 6


def test_empty_or_missing_folders_are_clear_errors(tmp_path):
    with pytest.raises(DataError, match="no such data folder"):
        load_folder(tmp_path / "missing", 32, 3)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match="no readable images.*broken.png"):
        load_folder(tmp_path / "empty", 32, 3)


def test_presets_reproduce_seed_settings_and_refuse_bad_overrides():
    tf = build_config("oasis-dcgan-tf")
    assert (tf.model["image_size"], tf.model["channels"], tf.model["kernel_size"], tf.batch_size) == (256, 1, 3, 16)
    oasis = build_config("oasis-dcgan")
    assert (oasis.lr_g, oasis.lr_d, oasis.loss) == (2e-4, 2e-5, "bce")
    assert build_config("lapses-memory", ["model.width=8"]).model["width"] == 8
    assert build_config("lapses-memory", ["lr_g=1e-3"]).lr_g == 1e-3      # YAML 1.1 reads 1e-3 as a string
    assert build_config("oasis-dcgan", ["diffaugment="]).diffaugment == ""   # an empty text setting: off
    for bad, word in [("bogus=1", "unknown training setting"), ("model.bogus=1", "unknown model setting"),
                      ("steps=ten", "integer"), ("model.image_size=48", "image_size"), ("loss=l2", "loss"),
                      ("anchor_tune_lr=.nan", "expected a number"), ("lr_g=fast", "expected a number"),
                      ("diffaugment=3", "expected a string"), ("snapshots=-1", "snapshots=-1: must be 0 .. 16"),
                      ("snapshots=100", "must be 0 .. 16")]:
        with pytest.raises(ConfigError, match=word):
            build_config("lapses-memory", [bad])


def _tiny_run(tmp_path, image_folder, name, steps, resume=False, extra=()):
    cfg = build_config("lapses-memory", TINY_SET + [f"steps={steps}", *extra])
    data = load_folder(image_folder, 32, 3)
    return train(cfg, data, tmp_path / name, "cpu", resume=resume, quiet=True, log=lambda *_: None)


def test_tiny_training_run_leaves_every_artefact(tmp_path, image_folder):
    final = _tiny_run(tmp_path, image_folder, "run", 4)
    run = final.parent
    for name in ("losses.csv", "losses.png", "progress.mp4", "evaluation.json", "nearest.png", "config.json"):
        assert (run / name).is_file(), name
    assert len(list((run / "samples").glob("*.png"))) >= 2
    from models import load_generator
    g, meta, snaps = load_generator(final, with_snapshots=True)
    assert len(meta.anchors) == 6 and meta.step == 4 and len(snaps) == 2
    assert meta.extra["anchor_tuning"].startswith("3 steps")      # TINY_SET's pivotal tuning ran
    ev = json.loads((run / "evaluation.json").read_text())
    assert set(ev["recall"]) == set(meta_a.name for meta_a in meta.anchors)


@pytest.mark.parametrize("mode", ["nearest", "codes"])
def test_resume_continues_exactly(tmp_path, image_folder, mode, monkeypatch):
    extra = [f"recall_mode={mode}"]
    import training.loop
    written = []
    save = training.loop.save_resume
    monkeypatch.setattr(training.loop, "save_resume", lambda path, state: written.append(path.name) or save(path, state))
    straight = _tiny_run(tmp_path, image_folder, "a", 6, extra=extra)
    # the last step falls on checkpoint_every=3: its checkpoint is written once, not again at the end
    assert written == ["step_0000003.resume.pt", "step_0000006.resume.pt"]
    _tiny_run(tmp_path, image_folder, "b", 3, extra=extra)
    resumed = _tiny_run(tmp_path, image_folder, "b", 6, resume=True, extra=extra)
    from safetensors.torch import load_file
    a, b = load_file(straight), load_file(resumed)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_ctrl_c_in_the_middle_of_a_step_then_resume_is_exact(tmp_path, image_folder, monkeypatch):
    """The run stops at the end of the step a Ctrl-C came in: its checkpoint is of a whole step, so
    --resume continues as if never stopped (one process; torchrun agrees the same way)."""
    import os
    import signal
    import training.loop
    straight = _tiny_run(tmp_path, image_folder, "a", 6)
    disc, calls = training.loop.Trainer._disc, []

    def interrupting(self, x):
        calls.append(self.step)
        if calls.count(2) == 3 and calls[-1] == 2:          # the third step, past D's forward passes
            os.kill(os.getpid(), signal.SIGINT)
        return disc(self, x)
    monkeypatch.setattr(training.loop.Trainer, "_disc", interrupting)
    with pytest.raises(KeyboardInterrupt):
        _tiny_run(tmp_path, image_folder, "b", 6)
    monkeypatch.setattr(training.loop.Trainer, "_disc", disc)
    assert sorted(p.name for p in (tmp_path / "b" / "checkpoints").glob("*.resume.pt"))[-1] == "step_0000003.resume.pt"
    resumed = _tiny_run(tmp_path, image_folder, "b", 6, resume=True)
    from safetensors.torch import load_file
    a, b = load_file(straight), load_file(resumed)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_nearest_recall_pulls_the_random_sample_closest_to_each_memory(tmp_path, image_folder):
    """IMLE recall: the latent trained to redraw a memory is the pool's latent whose sample is nearest."""
    from training.loop import Trainer
    cfg = build_config("lapses-memory", TINY_SET + ["recall_pool=12"])
    trainer = Trainer(cfg, load_folder(image_folder, 32, 3), tmp_path / "run", torch.device("cpu"))
    torch.manual_seed(5)
    pool = torch.randn(12, 16)
    with torch.no_grad():
        samples = trainer.G(pool)
    targets = samples[[7, 3, 7]] + 0.01 * torch.randn(3, *samples.shape[1:])
    torch.manual_seed(5)                      # the same fresh pool inside
    latents, images = trainer._nearest_latents(targets, torch.tensor([0, 1, 0]))
    assert torch.equal(latents, pool[[7, 3, 7]]) and torch.equal(images, targets)
    with pytest.raises(ConfigError, match="recall_mode"):
        build_config("lapses-memory", ["recall_mode=random"])


def test_shared_recall_gives_each_memory_its_own_latents(tmp_path, image_folder):
    """recall_share=2: each memory takes its two nearest latents in turns, none shared, so a memory
    crowded out by another (both nearest the same sample) still gets latents of its own."""
    from training.loop import Trainer
    cfg = build_config("lapses-memory", TINY_SET + ["recall_pool=12", "recall_share=2"])
    trainer = Trainer(cfg, load_folder(image_folder, 32, 3), tmp_path / "run", torch.device("cpu"))
    torch.manual_seed(5)
    pool = torch.randn(12, 16)
    with torch.no_grad():
        samples = trainer.G(pool)
    targets = samples[[7, 3, 7]] + 0.01 * torch.randn(3, *samples.shape[1:])
    torch.manual_seed(5)
    latents, images = trainer._nearest_latents(targets, torch.tensor([0, 1, 0]))
    rows = [int(torch.cdist(pool, z[None]).argmin()) for z in latents]
    assert len(latents) == 6 and len(set(rows)) == 6           # six latents, none pulled onto two memories
    assert rows[0] == 7 and rows[1] == 3                       # the first turn: each its nearest, if still free
    assert rows[2] != 7                                        # the third memory lost 7 to the first: its next
    assert torch.equal(images, targets[[0, 1, 2, 0, 1, 2]])
    with pytest.raises(ConfigError, match="recall_pool"):
        build_config("lapses-memory", ["recall_share=9", "recall_batch=8", "recall_pool=64"])


def test_balanced_recall_gives_a_memory_no_sample_resembles_more_pulls_by_ssim(tmp_path, image_folder):
    """recall_balance: a memory few of the pools' samples resemble most (by SSIM, as evaluate counts
    recall) takes up to 2k more latents, those most like it by SSIM; one at its fair share takes none
    more; the running shares carry over a resume."""
    from training.evaluate import ssim_matrix
    from training.loop import Trainer
    cfg = build_config("lapses-memory", TINY_SET + ["recall_pool=24", "recall_share=2", "recall_balance=true"])
    trainer = Trainer(cfg, load_folder(image_folder, 32, 3), tmp_path / "run", torch.device("cpu"))
    n = len(trainer.images)
    before = torch.zeros(n)
    before[[0, 2]] = 0.5                 # memories 0 and 2 hold the pools; memory 1: no sample has landed nearest it
    trainer.recall_shares = before.clone()
    torch.manual_seed(5)
    pool = torch.randn(24, 16)
    with torch.no_grad():
        samples = trainer.G(pool)
    def grey(x):
        return (x.mean(dim=1, keepdim=True) + 1) / 2
    expected_shares = torch.bincount(ssim_matrix(grey(samples), grey(trainer.images)).argmax(1),
                                     minlength=n).float() / 24
    idx = torch.tensor([0, 1, 2])
    targets = trainer.images[idx]
    torch.manual_seed(5)
    latents, images = trainer._nearest_latents(targets, idx)
    rows = [int(torch.cdist(pool, z[None]).argmin()) for z in latents]
    assert len(set(rows)) == len(rows)                       # none pulled onto two memories
    shares = 0.1 * expected_shares + 0.9 * before
    assert torch.allclose(trainer.recall_shares, shares)     # the running share moved toward this pool's
    more = {i: int(round(4 * max(0.0, 1 - float(shares[i]) * n))) for i in range(3)}
    assert more[0] == more[2] == 0 and more[1] > 0 and len(rows) == 6 + more[1]
    counts = [sum(1 for img in images if torch.equal(img, targets[i])) for i in range(3)]
    assert counts == [2 + more[i] for i in range(3)]
    # memory 1's extra latents are those of the untaken samples most like it by SSIM
    sim = ssim_matrix(grey(samples), grey(trainer.images[1:2]))[:, 0]
    extra_rows = [r for r, img in zip(rows[6:], images[6:]) if torch.equal(img, targets[1])]
    untaken = [j for j in range(24) if j not in rows[:6]]
    assert set(extra_rows) <= set(untaken)
    assert sorted(extra_rows) == sorted(sorted(untaken, key=lambda j: -float(sim[j]))[:more[1]])
    assert torch.equal(trainer._streams()["recall_shares"], trainer.recall_shares)
    with pytest.raises(ConfigError, match="up to 3 x recall_share"):
        build_config("lapses-memory", ["recall_share=3", "recall_batch=8", "recall_pool=64", "recall_balance=true"])
    with pytest.raises(ConfigError, match="up to 3 x recall_share=1"):    # one latent each, and up to 2 more
        build_config("lapses-memory", ["recall_mode=nearest", "recall_share=1", "recall_batch=32", "recall_pool=64",
                                       "recall_balance=true"])


def _cli(*args):
    return run_main("training", *args)


def test_cli_prepare_train_evaluate(tmp_path, image_folder):
    out = tmp_path / "mem"
    r = _cli("prepare", "memories", out)
    assert r.returncode == 0, r.stderr
    assert len(list(out.glob("*.png"))) == 8 and "CC0" in (out / "LICENCE.txt").read_text()
    r = _cli("prepare", "memories", out)
    assert r.returncode == 2 and "not empty" in r.stderr
    run = tmp_path / "run"
    r = _cli("train", "--preset", "lapses-memory", "--data", image_folder, "--out", run, "--steps", 2, "--quiet",
             *sum([["--set", s] for s in TINY_SET], []))
    assert r.returncode == 0, r.stderr
    r = _cli("evaluate", run / "generator.safetensors", "--data", image_folder, "--samples", 20, "--json")
    assert r.returncode == 0, r.stderr
    ev = json.loads(r.stdout)
    for key in ("ssim_max", "ssim_median", "ssim_p10", "ssim_p1", "ssim_min", "recall", "anchor_ssim",
                "detail_ratio_median", "checkerboard_ratio_p90", "walk_ssim_p10", "walk_ssim_min", "walk_worst"):
        assert key in ev
    assert -1 <= ev["walk_ssim_min"] <= ev["walk_ssim_p10"] <= 1 and "of the way from" in ev["walk_worst"]
    assert -1 <= ev["ssim_min"] <= ev["ssim_p1"] <= ev["ssim_p10"] <= ev["ssim_median"] <= ev["ssim_max"] <= 1
    assert len(ev["anchor_ssim"]) == 6 and abs(sum(ev["recall"].values()) - 1) < 1e-6
    sheet = tmp_path / "sheet.png"
    sheet.write_bytes(b"precious")
    r = _cli("evaluate", run / "generator.safetensors", "--data", image_folder, "--samples", 4, "--sheet", sheet)
    assert r.returncode == 2 and "--overwrite" in r.stderr and sheet.read_bytes() == b"precious"
    r = _cli("evaluate", run / "generator.safetensors", "--data", image_folder, "--samples", 4, "--sheet", sheet,
             "--overwrite")
    assert r.returncode == 0 and sheet.read_bytes().startswith(b"\x89PNG")
    assert "was trained on" not in r.stderr
    r = _cli("evaluate", run / "generator.safetensors", "--data", out, "--samples", 4)     # the memories: not its data
    assert r.returncode == 0 and f"holds 'memories'" in r.stderr and "did not learn" in r.stderr
    (image_folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)   # a damaged file: named
    r = _cli("evaluate", run / "generator.safetensors", "--data", image_folder, "--samples", 4)
    assert r.returncode == 0 and "1 file(s) in" in r.stderr and "left out: broken.png" in r.stderr
    r = _cli("evaluate", run / "generator.safetensors", "--data", image_folder, "--sheet", tmp_path / "no" / "s.png")
    assert r.returncode == 2 and "does not exist" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("args,word", [
    (["train", "--preset", "lapses-memory", "--data", "/nonexistent", "--out", "x"], "no such data folder"),
    (["train", "--preset", "lapses-memory", "--data", ".", "--out", "x", "--set", "nope=1"], "unknown training"),
    (["evaluate", "/nonexistent.safetensors", "--data", "."], "no such checkpoint"),
    (["evaluate", ".", "--data", "."], "is a folder; give the .safetensors file"),
    (["train", "--preset", "lapses-memory", "--data", "README.md", "--out", "x"], "is a file; give the folder"),
    (["train", "--preset", "lapses-memory", "--data", ".", "--out", "README.md"], "give a folder for the run"),
])
def test_cli_user_mistakes_exit_2_without_traceback(args, word):
    r = _cli(*args)
    assert r.returncode == 2
    assert word in r.stderr and "Traceback" not in r.stderr


def test_python_m_training_exits_2_on_a_mistake_in_a_real_process():
    """The process boundary the tests above skip: `python -m training` hands main's 2 to the shell."""
    r = subprocess.run([sys.executable, "-m", "training", "evaluate", "/nonexistent.safetensors", "--data", "."],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "no such checkpoint" in r.stderr and "Traceback" not in r.stderr


def test_train_will_not_write_into_a_folder_that_is_not_a_run(tmp_path, image_folder):
    full = tmp_path / "photos"
    full.mkdir()
    (full / "keep.txt").write_text("precious")
    r = _cli("train", "--preset", "lapses-memory", "--data", image_folder, "--out", full, "--steps", 2, "--quiet",
             *sum([["--set", s] for s in TINY_SET], []))
    assert r.returncode == 2 and "not a run; give a new or empty" in r.stderr and "Traceback" not in r.stderr
    assert [p.name for p in full.iterdir()] == ["keep.txt"]
    _tiny_run(tmp_path, image_folder, "run", 2)
    with pytest.raises(FileExistsError, match="already holds a run; pass --resume"):
        _tiny_run(tmp_path, image_folder, "run", 4)


def test_ssim_matches_scikit_image():
    from training.evaluate import ssim_reference_check
    assert ssim_reference_check() < 1e-4


def test_texture_ratios_flag_checkerboard_and_blur_but_not_the_data(image_folder):
    """A generator that redraws the training images scores 1 on both texture figures; one that adds
    a faint 2x2 checkerboard is flagged far above 1; a blurring one falls below 1 in fine detail."""
    from training.evaluate import evaluate
    images = load_folder(image_folder, 32, 3)

    class Redraw(torch.nn.Module):
        latent_size = 4

        def __init__(self, change):
            super().__init__()
            self.change, self.anchor = change, torch.nn.Parameter(torch.zeros(1))

        def forward(self, z):
            picks = images.images[(z[:, 0].abs() * 1000).long() % len(images)].float()
            return self.change(picks).clamp(-1, 1)

    checker = torch.tensor([[1.0, -1.0], [-1.0, 1.0]]).repeat(16, 16) * 0.05
    blur = torch.nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    same, checked, blurred = (evaluate(Redraw(f), images.images, images.names, samples=24)
                              for f in (lambda x: x, lambda x: x + checker, blur))
    assert abs(same.detail_ratio_median - 1) < 1e-4 and abs(same.checkerboard_ratio_p90 - 1) < 1e-4
    assert same.ssim_median > 0.999
    assert checked.checkerboard_ratio_p90 > 2 and checked.detail_ratio_median > 1.2
    assert blurred.detail_ratio_median < 0.8 and "checkerboard p90" in blurred.summary()


def test_walk_paths_lie_between_two_different_memories_as_the_walk_draws_them():
    from training.evaluate import WALK_FRACTIONS, walk_paths
    anchors = torch.randn(5, 16, generator=torch.Generator().manual_seed(3)) * 3
    points, pairs = walk_paths(anchors, "z", seed=1)
    assert len(pairs) == 5 and all(i != j for i, j in pairs) and points.shape == (15, 16)
    assert torch.allclose(points.norm(dim=1), torch.full((15,), 4.0))  # on the shell, sqrt(16)
    points_w, pairs_w = walk_paths(anchors, "w", seed=1)
    i, j = pairs_w[2]
    assert pairs_w == pairs and WALK_FRACTIONS[1] == 0.5
    assert torch.allclose(points_w[2 * 3 + 1], (anchors[i] + anchors[j]) / 2, atol=1e-5)
    many, pairs_many = walk_paths(torch.randn(300, 16), "z", seed=1, journeys=20)
    assert len(pairs_many) == 20 == len({i for i, _ in pairs_many}) and many.shape == (60, 16)


@pytest.mark.slow
def test_prepare_brain_writes_mni_slices_with_notice(tmp_path):
    r = _cli("prepare", "brain", tmp_path / "brain")
    assert r.returncode == 0, r.stderr
    assert len(list((tmp_path / "brain").glob("*.png"))) > 100
    assert "McGill" in (tmp_path / "brain" / "LICENCE.txt").read_text()


def test_bundle_keeps_evenly_spread_snapshots_and_the_licence(tmp_path, image_folder):
    from conftest import make_tiny_checkpoint
    from models import load_generator
    src = make_tiny_checkpoint(tmp_path / "run.safetensors", snapshots=4)
    out = tmp_path / "assets" / "m.safetensors"
    out.parent.mkdir()
    r = _cli("bundle", src, out, "--data", image_folder, "--snapshots", "3")     # not its data set: its licence
    assert r.returncode == 2 and "trained on 'test'" in r.stderr and not out.exists()
    (image_folder / "DATASET.txt").write_text("test\n")
    r = _cli("bundle", src, out, "--data", image_folder, "--snapshots", "3", "--max-mb", "0.05")
    assert r.returncode == 2 and "over --max-mb 0.05" in r.stderr and "--snapshots" in r.stderr and not out.exists()
    r = _cli("bundle", src, out, "--data", image_folder, "--snapshots", "3")
    assert r.returncode == 0, r.stderr
    g, meta, snaps = load_generator(out, with_snapshots=True)
    assert meta.snapshot_steps == [25, 75, 100] and len(snaps) == 3
    assert out.with_suffix(".LICENCE.txt").read_text() == "CC0 test images\n"
    before = out.read_bytes()
    r = _cli("bundle", src, out, "--data", image_folder)
    assert r.returncode == 2 and "--overwrite" in r.stderr and out.read_bytes() == before
    r = _cli("bundle", src, tmp_path / "x.safetensors", "--data", tmp_path)
    assert r.returncode == 2 and "LICENCE.txt" in r.stderr


def test_pivotal_tuning_redraws_the_anchors_and_keeps_random_latents(tmp_path, image_folder):
    """tune_to_anchors: the anchors' images move toward their memories; the locality term holds
    what random latents draw; the anchors themselves are not changed."""
    from models import load_generator
    from training.anchors import tune_to_anchors
    from training.evaluate import load_anchor_order, ssim_pairs
    final = _tiny_run(tmp_path, image_folder, "run", 4, extra=["anchor_tune_steps=0"])
    data = load_folder(image_folder, 32, 3)
    z = torch.randn(32, 16, generator=torch.Generator().manual_seed(9))
    drift, recall = {}, {}
    for locality in (0.0, 10.0):
        g, meta = load_generator(final)
        anchors = load_anchor_order(meta, data.names)
        kept = anchors.clone()
        with torch.no_grad():
            before, random_before = g(anchors), g(z)
        losses = tune_to_anchors(g, data.images, anchors, steps=40, lr=2e-3, locality=locality)
        assert torch.equal(anchors, kept) and not g.training
        assert all(not p.requires_grad for p in g.parameters())
        with torch.no_grad():
            after, random_after = g(anchors), g(z)
        assert losses["loss_end"] < losses["loss_start"]
        recall[locality] = (ssim_pairs((before + 1) / 2, (data.images + 1) / 2).mean(),
                            ssim_pairs((after + 1) / 2, (data.images + 1) / 2).mean())
        drift[locality] = float((random_after - random_before).abs().mean())
    assert recall[0.0][1] > recall[0.0][0] + 0.05 and recall[10.0][1] > recall[10.0][0]
    assert drift[10.0] < 0.5 * drift[0.0]


def test_cli_tune_writes_a_new_checkpoint_and_refuses_mistakes(tmp_path, image_folder):
    from models import load_generator
    final = _tiny_run(tmp_path, image_folder, "run", 4, extra=["anchor_tune_steps=0"])
    out = tmp_path / "tuned.safetensors"
    r = _cli("tune", final, out, "--data", image_folder, "--steps", 20, "--device", "cpu")
    assert r.returncode == 0, r.stderr
    assert "before: anchor SSIM" in r.stdout and "after: anchor SSIM" in r.stdout
    g0, meta0, snaps0 = load_generator(final, with_snapshots=True)
    g1, meta1, snaps1 = load_generator(out, with_snapshots=True)
    assert meta1.anchors == meta0.anchors and meta1.step == meta0.step and len(snaps1) == len(snaps0)
    assert meta1.extra["anchor_tuning"].startswith("20 steps") and "anchor_tuning" not in meta0.extra
    assert any(not torch.equal(a, b) for a, b in zip(g0.state_dict().values(), g1.state_dict().values()))
    before = out.read_bytes()
    for args, word in [([final, out, "--data", image_folder], "--overwrite"),
                       ([final, tmp_path / "x.safetensors", "--data", tmp_path], "no anchor for every image"),
                       ([final, tmp_path / "x.pt", "--data", image_folder], ".safetensors"),
                       ([final, tmp_path / "x.safetensors", "--data", image_folder, "--steps", 0], "--steps")]:
        r = _cli("tune", *args)
        assert r.returncode == 2 and word in r.stderr and "Traceback" not in r.stderr, (args, r.stderr)
    assert out.read_bytes() == before and not (tmp_path / "x.safetensors").exists()
    import dataclasses
    from models import save_generator
    bare = tmp_path / "mid-run.safetensors"                  # as a checkpoint from during training: no anchors
    save_generator(bare, g0, dataclasses.replace(meta0, anchors=[]), snaps0)
    r = _cli("tune", bare, tmp_path / "x.safetensors", "--data", image_folder)
    assert r.returncode == 2 and "has no anchors: they are found at the end of a run" in r.stderr
    for args, word in [([final, tmp_path / "x.safetensors", "--data", image_folder, "--lr", "nan"], "--lr"),
                       ([final, tmp_path / "x.safetensors", "--data", image_folder, "--device", "gpu0"], "not a device"),
                       ([final, tmp_path / "no" / "x.safetensors", "--data", image_folder], "writable folder")]:
        r = _cli("tune", *args)
        assert r.returncode == 2 and word in r.stderr and "Traceback" not in r.stderr, (args, r.stderr)
    # in place, as the README does it: the file is replaced whole, and a second tuning is recorded beside the first
    r = _cli("tune", out, out, "--data", image_folder, "--steps", 5, "--device", "cpu", "--overwrite")
    assert r.returncode == 0, r.stderr
    g2, meta2 = load_generator(out)
    assert meta2.extra["anchor_tuning"].startswith("20 steps") and "; then 5 steps" in meta2.extra["anchor_tuning"]
    assert meta2.anchors == meta0.anchors


def test_resume_may_change_what_happens_after_the_steps(tmp_path, image_folder):
    """Anchor search and tuning settings act after the last step: a resumed run may change them
    (a run from before tuning existed, or one finished with another tuning), not the training."""
    _tiny_run(tmp_path, image_folder, "run", 3)
    final = _tiny_run(tmp_path, image_folder, "run", 4, resume=True, extra=["anchor_tune_steps=0", "anchor_steps=2"])
    from models import load_generator
    assert "anchor_tuning" not in load_generator(final)[1].extra
    with pytest.raises(ValueError, match="recall_weight"):
        _tiny_run(tmp_path, image_folder, "run", 5, resume=True, extra=["recall_weight=1.0"])
    config = (tmp_path / "run" / "config.json").read_text()
    with pytest.raises(ValueError, match="already at step 4"):    # --steps is the total, not how many more
        _tiny_run(tmp_path, image_folder, "run", 3, resume=True)
    assert (tmp_path / "run" / "config.json").read_text() == config


def test_warm_start_continues_a_trained_generator_with_a_fresh_d(tmp_path, image_folder):
    """--init: G and its EMA begin as the given generator, the step count and snapshots carry on,
    its anchors seed the recall codes, and during d_warmup only D moves."""
    from models import load_generator
    from training.loop import Trainer
    first = _tiny_run(tmp_path, image_folder, "a", 4, extra=["recall_mode=codes"])
    g0, meta0, snaps0 = load_generator(first, with_snapshots=True)
    cfg = build_config("lapses-memory", TINY_SET + ["steps=8", "d_warmup=2", "recall_mode=codes"])
    trainer = Trainer(cfg, load_folder(image_folder, 32, 3), tmp_path / "b", torch.device("cpu"))
    d0 = {k: v.clone() for k, v in trainer.D.state_dict().items()}
    trainer.warm_start(first)
    assert trainer.step == 4 and sorted(trainer.snapshots) == meta0.snapshot_steps
    for k, v in g0.state_dict().items():
        assert torch.equal(trainer.G.state_dict()[k], v) and torch.equal(trainer.G_ema.state_dict()[k], v), k
    names = trainer.data.names
    for a in meta0.anchors:
        assert torch.allclose(trainer.codes[names.index(a.name)], torch.tensor(a.z))
    for _ in range(2):                                    # the warm-up: D learns, G holds still
        stats = trainer.train_step()
        assert stats["g_loss"] == 0.0
    assert all(torch.equal(trainer.G.state_dict()[k], v) for k, v in g0.state_dict().items())
    assert any(not torch.equal(trainer.D.state_dict()[k], v) for k, v in d0.items())
    trainer.train_step()
    assert any(not torch.equal(trainer.G.state_dict()[k], v) for k, v in g0.state_dict().items())

    final = train(build_config("lapses-memory", TINY_SET + ["steps=7", "recall_mode=codes"]),
                  load_folder(image_folder, 32, 3), tmp_path / "c", "cpu", quiet=True, log=lambda *_: None, init=first)
    g1, meta1, snaps1 = load_generator(final, with_snapshots=True)
    assert meta1.step == 7 and meta1.snapshot_steps == meta0.snapshot_steps and len(snaps1) == len(snaps0)
    assert meta1.extra["init_from"] == f"generator.safetensors at step 4 ({meta0.dataset})"


def test_warm_start_refuses_what_cannot_continue(tmp_path, image_folder):
    first = _tiny_run(tmp_path, image_folder, "a", 3)
    data = load_folder(image_folder, 32, 3)
    quiet = dict(quiet=True, log=lambda *_: None)
    with pytest.raises(ValueError, match="width 4 \\(preset 8\\)"):
        train(build_config("lapses-memory", TINY_SET + ["steps=5", "model.width=8"]), data, tmp_path / "b", "cpu",
              init=first, **quiet)
    with pytest.raises(ValueError, match="already at step 3; .*--steps 1003"):
        train(build_config("lapses-memory", TINY_SET + ["steps=3"]), data, tmp_path / "c", "cpu", init=first, **quiet)
    r = _cli("train", "--preset", "lapses-memory", "--data", image_folder, "--out", tmp_path / "a", "--resume",
             "--init", first, *sum([["--set", s] for s in TINY_SET], []))
    assert r.returncode == 2 and "give one of them" in r.stderr and "Traceback" not in r.stderr
    r = _cli("train", "--preset", "lapses-memory", "--data", image_folder, "--out", tmp_path / "d",
             "--init", tmp_path / "missing.safetensors", *sum([["--set", s] for s in TINY_SET], []))
    assert r.returncode == 2 and "missing.safetensors" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "b" / "checkpoints").exists() and not (tmp_path / "d").exists()


def test_a_warm_started_run_resumes_exactly_and_may_change_d(tmp_path, image_folder):
    """A warm start with D-only settings of its own (D starts fresh), a warm-up, and an
    interruption: resumed, it ends bit for bit where the uninterrupted run does."""
    first = _tiny_run(tmp_path, image_folder, "a", 3)
    data = load_folder(image_folder, 32, 3)
    quiet = dict(quiet=True, log=lambda *_: None)
    extra = ["d_warmup=2", "model.d_width=8"]
    straight = train(build_config("lapses-memory", TINY_SET + ["steps=9", *extra]), data, tmp_path / "b", "cpu",
                     init=first, **quiet)
    train(build_config("lapses-memory", TINY_SET + ["steps=6", *extra]), data, tmp_path / "c", "cpu",
          init=first, **quiet)
    resumed = train(build_config("lapses-memory", TINY_SET + ["steps=9", *extra]), data, tmp_path / "c", "cpu",
                    resume=True, **quiet)
    from safetensors.torch import load_file
    a, b = load_file(straight), load_file(resumed)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    from models import load_generator
    assert load_generator(resumed)[1].extra["init_from"].startswith("generator.safetensors at step 3")


def test_a_warm_start_without_snapshots_takes_its_own_and_dry_runs(tmp_path, image_folder):
    from models import load_generator
    first = _tiny_run(tmp_path, image_folder, "a", 3)
    bare = tmp_path / "bare.safetensors"
    (image_folder / "LICENCE.txt").write_text("test images")
    r = _cli("bundle", first, bare, "--data", image_folder, "--snapshots", 0)
    assert r.returncode == 0, r.stderr
    final = train(build_config("lapses-memory", TINY_SET + ["steps=13", "snapshots=2"]), load_folder(image_folder, 32, 3),
                  tmp_path / "b", "cpu", init=bare, quiet=True, log=lambda *_: None)
    steps = load_generator(final)[1].snapshot_steps
    assert len(steps) == 2 and all(3 < s <= 13 for s in steps)
    r = _cli("train", "--preset", "lapses-memory", "--data", image_folder, "--out", tmp_path / "dry", "--dry-run",
             "--init", first, "--quiet", *sum([["--set", s] for s in TINY_SET], []))
    assert r.returncode == 0, r.stderr
    assert load_generator(tmp_path / "dry" / "generator.safetensors")[1].step == 5


def _ddp_worker(rank, world, port, folder, run_dir, phase, out):
    """One rank of a two-process CPU run (gloo), as torchrun starts it: `phase` "straight" trains 3
    steps, checkpoints, then 2 more; "resumed" resumes that checkpoint and trains the 2 again."""
    import os
    import torch.distributed as dist
    from training.data import load_folder
    from training.loop import Trainer
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        cfg = build_config("lapses-memory", TINY_SET + ["steps=5", "recall_mode=codes"])
        trainer = Trainer(cfg, load_folder(folder, 32, 3), run_dir, torch.device("cpu"), rank=rank, world=world)
        seen = []
        draw = trainer.batches.next
        trainer.batches.next = lambda: seen.append(draw()) or seen[-1]
        if phase == "straight":
            for _ in range(3):
                trainer.train_step()
            trainer.save_checkpoint()
            seen.clear()
        else:
            assert trainer.resume()
        for _ in range(2):
            trainer.train_step()
        torch.save({"G": trainer.G.state_dict(), "codes": trainer.codes.detach(), "batches": seen},
                   f"{out}.rank{rank}.pt")
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_distributed_ranks_stay_in_step_and_resume_exactly(tmp_path, image_folder):
    """DistributedDataParallel on the CPU (gloo), two ranks: the same weights and recall codes on
    each, different images drawn on each, and a resumed run continues each rank exactly."""
    import socket
    import torch.multiprocessing as mp
    run_dir = tmp_path / "run"
    for phase in ("straight", "resumed"):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        mp.spawn(_ddp_worker, args=(2, port, image_folder, run_dir, phase, tmp_path / phase), nprocs=2)
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == [
        "step_0000003.rank1.pt", "step_0000003.resume.pt", "step_0000003.safetensors"]
    got = {(phase, r): torch.load(tmp_path / f"{phase}.rank{r}.pt") for phase in ("straight", "resumed") for r in (0, 1)}
    a0, a1 = got["straight", 0], got["straight", 1]
    for k in a0["G"]:
        assert torch.equal(a0["G"][k], a1["G"][k]), k
    assert torch.equal(a0["codes"], a1["codes"])
    assert not all(torch.equal(x, y) for x, y in zip(a0["batches"], a1["batches"]))
    for r in (0, 1):
        a, b = got["straight", r], got["resumed", r]
        assert all(torch.equal(x, y) for x, y in zip(a["batches"], b["batches"])) and len(a["batches"]) == 2
        for k in a["G"]:
            assert torch.equal(a["G"][k], b["G"][k]), (r, k)


@pytest.mark.slow
def test_torchrun_trains_with_the_same_command(tmp_path, image_folder):
    """`torchrun --nproc_per_node 2 -m training train …` (here on the CPU) trains, speaks once,
    and leaves one generator."""
    run = tmp_path / "run"
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                        "-m", "training", "train", "--preset", "lapses-memory", "--data", str(image_folder), "--out", str(run),
                        "--steps", "4", "--quiet", "--device", "cpu", *sum([["--set", s] for s in TINY_SET], [])],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("images from") == 1 and "on each of 2 processes" in r.stdout
    assert r.stdout.count("generator:") == 1 and (run / "generator.safetensors").is_file()
    assert (run / "checkpoints" / "step_0000004.rank1.pt").is_file()


@pytest.mark.slow
def test_ctrl_c_under_torchrun_stops_every_rank_at_one_step(tmp_path, image_folder):
    """Ctrl-C reaches the processes at different points of a step: they agree on one step to stop
    after, each saves (the main rank's checkpoint, every other rank's random streams, of that same
    step), and the run resumes from there."""
    import signal
    import time
    run = tmp_path / "run"
    base = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "training",
            "train", "--preset", "lapses-memory", "--data", str(image_folder), "--out", str(run), "--quiet",
            "--device", "cpu", *sum([["--set", s] for s in TINY_SET + ["checkpoint_every=100000"]], [])]
    proc = subprocess.Popen(base + ["--steps", "100000"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (run / "losses.csv").is_file() or len((run / "losses.csv").read_text().splitlines()) < 3:
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert "checkpoint saved; continue with --resume" in out, (out, err)
    saved = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert len(saved) == 3, saved
    step = int(saved[0].split(".")[0][5:])
    assert saved == [f"step_{step:07d}.rank1.pt", f"step_{step:07d}.resume.pt", f"step_{step:07d}.safetensors"]
    r = subprocess.run(base + ["--steps", str(step + 2), "--resume"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and f"resumed at step {step}" in r.stdout, r.stderr


def test_training_progress_into_a_log_is_whole_lines_not_redraws(tmp_path, image_folder, capsys):
    """stderr not a terminal (a unit, a CI log, `> file`): a line now and then with the bar's figures,
    never tqdm's carriage-return redraws."""
    cfg = build_config("lapses-memory", TINY_SET + ["steps=12"])
    train(cfg, load_folder(image_folder, 32, 3), tmp_path / "run", "cpu", quiet=False, log=lambda *_: None)
    err = capsys.readouterr().err
    assert "\r" not in err
    lines = err.splitlines()
    assert any(line.startswith("100% 12/12 [") and "step/s" in line for line in lines), err
    assert any(line.startswith("pivotal tuning: 100% 3/3") for line in lines), err
    assert len([line for line in lines if "12 [" in line]) <= 3          # the start, the end: not every step


def test_the_ema_half_life_is_at_most_a_tenth_of_the_runs_own_steps(tmp_path, image_folder):
    """ema_rampup: early in a run (a warm start's too, counted from its own start) the EMA follows G
    closely; later it is ema_beta; 0 turns the ramp off."""
    from training.loop import Trainer
    cfg = build_config("lapses-memory", TINY_SET)
    trainer = Trainer(cfg, load_folder(image_folder, 32, 3), tmp_path / "run", torch.device("cpu"))
    trainer.start_step, trainer.step = 6000, 6600                 # 600 steps of a warm-started run
    assert trainer.ema_beta() == pytest.approx(0.5 ** (1 / 60))   # half-life 60 steps, not 0.998's 346
    trainer.start_step, trainer.step = 0, 30_000
    assert trainer.ema_beta() == cfg.ema_beta
    trainer.step = 0
    assert trainer.ema_beta() == 0.0
    off = Trainer(build_config("lapses-memory", TINY_SET + ["ema_rampup=0"]), load_folder(image_folder, 32, 3),
                  tmp_path / "run2", torch.device("cpu"))
    off.start_step, off.step = 6000, 6600
    assert off.ema_beta() == cfg.ema_beta
    with pytest.raises(ConfigError, match="ema_rampup"):
        build_config("lapses-memory", ["ema_rampup=2"])
