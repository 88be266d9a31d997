"""A person's photographs to a piece: framing where the subject is (training/framing.py) and the one
command `python -m training memories` (training/memories.py), its time budget, its continuation and
the mistakes a person will make."""
import shutil

import imageio.v3 as iio
import numpy as np
import pytest
from conftest import OWN_MEMORIES, run_benchmark

from models import load_generator
from models.faces import FaceDetector
from training.cli import main as training_main
from training.data import DataError, load_folder
from training.framing import crop_box, subject_centre
from training.memories import MAX_PHOTOS


def _astronaut_portrait() -> np.ndarray:
    """The astronaut's photograph made a tall portrait: her face near the top, grey below."""
    from skimage import data
    img = data.astronaut()[:, 96:416]                                # 512 x 320
    return np.concatenate([img, np.full((400, 320, 3), 128, np.uint8)])   # 912 x 320


def test_a_portrait_is_framed_on_its_face_not_cut_at_the_neck():
    img = _astronaut_portrait()
    faces = FaceDetector().faces(img)
    assert faces, "the detector finds the astronaut's face"
    scale = max(img.shape[:2]) / FaceDetector().side
    top_of_face = min(f["r"] for f in faces) * scale
    bottom_of_face = max(f["r"] + f["height"] for f in faces) * scale
    h, w = img.shape[:2]
    centred = crop_box(h, w, (0.5, 0.5))
    framed = crop_box(h, w, subject_centre(img.astype(np.float32) / 255.0))
    assert not centred[0] <= top_of_face                                  # the middle square misses the head
    assert framed[0] <= top_of_face and bottom_of_face <= framed[0] + framed[2]   # the framed one holds it


def test_without_a_face_what_stands_out_is_framed_and_a_square_is_itself():
    img = np.full((100, 300, 3), 0.4, np.float32)
    img[40:60, 250:280] = (1.0, 0.9, 0.2)                                # something bright, far right
    across, _ = subject_centre(img)
    top, left, side = crop_box(100, 300, (across, 0.5))
    assert across > 0.7 and left <= 250 and 280 <= left + side
    assert subject_centre(np.random.default_rng(0).random((64, 64, 3)).astype(np.float32)) == (0.5, 0.5)


def test_framing_yaml_moves_one_photo_and_a_bad_line_is_named(tmp_path):
    rng = np.random.default_rng(1)
    for name in ("tall.png", "wide.png"):
        iio.imwrite(tmp_path / name, rng.integers(0, 255, (120, 40, 3) if name == "tall.png" else (40, 120, 3),
                                                  dtype=np.uint8))
    tall = iio.imread(tmp_path / "tall.png").astype(np.float32) / 255.0
    (tmp_path / "framing.yaml").write_text("tall.png: bottom\n")
    data = load_folder(tmp_path, 16, 3, framing="subject")
    bottom = load_folder(tmp_path, 16, 3).images   # centre crops, for comparison
    expected = (np.asarray(tall[80:120]) * 2 - 1)
    got = data.images[data.names.index("tall.png")].permute(1, 2, 0).numpy()
    import cv2
    assert np.abs(got - cv2.resize(expected, (16, 16), interpolation=cv2.INTER_AREA)).mean() < 0.08
    assert not np.allclose(got, bottom[data.names.index("tall.png")].permute(1, 2, 0).numpy())
    (tmp_path / "framing.yaml").write_text("tall.png: upstairs\n")
    with pytest.raises(DataError, match="tall.png: 'upstairs'.*top, bottom"):
        load_folder(tmp_path, 16, 3, framing="subject")


def _photos(folder, n, size=(40, 56)):
    folder.mkdir(exist_ok=True)
    rng = np.random.default_rng(n)
    for i in range(n):
        iio.imwrite(folder / f"p{i:04d}.png", rng.integers(0, 255, (*size, 3), dtype=np.uint8))
    return folder


@pytest.mark.parametrize("case, why", [
    ("empty", "no photographs in it"), ("one", "one photograph.*at least 2"),
    ("many", f"{MAX_PHOTOS + 1} photographs.*keeps up to {MAX_PHOTOS}.*hours.*nothing was trained"),
    ("missing", "no such folder"), ("minutes", "--minutes 1: give at least 2"), ("out", "exists")])
def test_the_mistakes_a_person_makes_are_named_and_nothing_is_written(tmp_path, capsys, case, why):
    photos = tmp_path / "photos"
    out = tmp_path / "mine.safetensors"
    args = ["memories", str(photos), "--out", str(out)]
    if case == "empty":
        photos.mkdir()
        (photos / "notes.txt").write_text("not a photo")
    elif case == "one":
        _photos(photos, 1)
    elif case == "many":
        _photos(photos, MAX_PHOTOS + 1, size=(8, 8))
    elif case == "minutes":
        _photos(photos, 3)
        args += ["--minutes", "1"]
    elif case == "out":
        _photos(photos, 3)
        out.write_bytes(b"someone's model")
    assert training_main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err
    import re
    assert re.search(why, err), err
    assert not (tmp_path / "mine.run").exists()
    assert out.read_bytes() == b"someone's model" if case == "out" else not out.exists()


@pytest.mark.slow
def test_photographs_to_a_model_with_its_detail_and_the_same_command_continues(own_memories, tmp_path, capsys):
    """From a folder of photographs of any shape (and an unreadable file) to a model with anchors for
    each, framed where its subject is and with its detail stage; run again after the model is gone
    (an interrupted run), the same command continues the run and writes it again."""
    photos = _photos(tmp_path / "photos", 3, size=(48, 80))
    iio.imwrite(photos / "portrait.png", _astronaut_portrait()[::8, ::8])
    (photos / "broken.jpg").write_bytes(b"\xff\xd8 not really")
    out = tmp_path / "mine.safetensors"
    args = ["memories", str(photos), "--out", str(out), "--init", str(own_memories), "--steps", "3", "--quiet",
            *[a for s in OWN_MEMORIES for a in ("--set", s)],
            "--set", "d_warmup=1", "--set", "anchor_steps=10", "--set", "anchor_tune_steps=5", "--set", "eval_samples=8"]
    assert training_main(args) == 0
    printed = capsys.readouterr()
    assert "broken.jpg" in printed.out + printed.err and f"run it: ./lapses run --model {out}" in printed.out
    g, meta = load_generator(out)
    assert sorted(a.name for a in meta.anchors) == ["p0000.png", "p0001.png", "p0002.png", "portrait.png"]
    assert meta.extra["framing"] == "subject" and meta.detail is not None
    assert meta.step == load_generator(own_memories)[1].step + 3
    # the detail benchmark crops the photographs as training cropped them (the portrait on its face):
    # its SSIM at the detail size is evaluate's, not that of the middle square
    from training.detail import display_figures
    figures = display_figures(g, meta, photos)
    r = run_benchmark("detail_quality", "--model", out, "--data", photos, "--size", meta.detail.size, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    row = next(line for line in r.stdout.splitlines() if line.startswith("portrait.png"))
    assert abs(float(row.split()[-2]) - figures["portrait.png"]["display_ssim"]) < 0.02, (row, figures)
    out.unlink()
    assert training_main(args) == 0
    assert "continuing" in capsys.readouterr().out and out.exists()
    shutil.rmtree(tmp_path / "mine.run")


def test_a_short_run_warms_d_up_for_a_fifth_of_its_steps_at_most(tiny_checkpoint, tmp_path, monkeypatch):
    """A few minutes on a slow machine are fewer steps than D's usual 100-step warm-up, which would
    then cover the whole run (refused: G would never move): the warm-up takes a fifth of a short
    run, all 100 steps of a long one, and a --set d_warmup wins over both."""
    import training.run
    from training import memories
    seen = []

    def train(cfg, *args, **kwargs):
        seen.append(cfg.d_warmup)
        raise KeyboardInterrupt          # the config is all this test wants
    monkeypatch.setattr(training.run, "train", train)
    photos = _photos(tmp_path / "photos", 3)
    for steps, sets in ((94, []), (1000, []), (94, ["d_warmup=3"])):
        with pytest.raises(KeyboardInterrupt):
            memories.make(photos, tmp_path / "mine.safetensors", 20, tiny_checkpoint, "cpu", steps=steps,
                          quiet=True, log=lambda *a: None, overrides=sets)
    assert seen == [18, memories.D_WARMUP, 3]
