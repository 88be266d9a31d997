"""The detail stage (models/detail.py): the memories' verbatim detail, where the picture agrees with
them, in checkpoints, the engine, the film, the symptom detail_loss, `still` and `training detail`."""
import json
import shutil
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import torch
from conftest import make_tiny_checkpoint

from installation.cli import main as installation_main
from installation.course import Course
from installation.engine import Engine, load_model
from installation.settings import settings_from_dict
from installation.sheet import sheet_latents, ssim
from installation.state import FrameState
from installation.symptoms import SYMPTOMS
from models import CheckpointError, DetailPack, DetailStage, load_generator, read_header, save_generator
from models.detail import upscale
from training.cli import main as training_main

ROOT = Path(__file__).resolve().parent.parent
DETAIL = 64          # the tiny models' detail size: twice their 32 pixels


def _photos(n: int, size: int = DETAIL, seed: int = 0) -> torch.Tensor:
    """n photographs with fine detail a 32-pixel generator cannot draw: [n, 3, size, size] in [-1, 1]."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, 3, 4, 4, generator=g) * 2 - 1
    fine = (torch.rand(n, 1, size, size, generator=g) * 0.6 - 0.3).expand(-1, 3, -1, -1)   # detail in the luma
    return (torch.nn.functional.interpolate(coarse, size=size, mode="bilinear", align_corners=False) + fine).clamp(-1, 1)


def detailed_checkpoint(path: Path, anchors: int = 4) -> Path:
    make_tiny_checkpoint(path, anchors=anchors)
    g, meta, snaps = load_generator(path, with_snapshots=True)
    meta.detail = DetailPack.encode(_photos(anchors), [a.name for a in meta.anchors], quality=95)
    save_generator(path, g, meta, snaps)
    return path


@pytest.fixture
def detailed(tmp_path):
    return detailed_checkpoint(tmp_path / "detailed.safetensors")


def _engine(path, *overrides, w=96, h=64):
    return Engine.from_settings(settings_from_dict({}, [f"model.path={path}", "model.device=cpu", *overrides]), w, h)


# ------------------------------------------------------------------ checkpoints

def test_a_detail_stage_is_saved_checked_and_loaded_with_its_generator(detailed, tiny_checkpoint):
    g, meta = load_generator(detailed)
    assert read_header(detailed)["format_version"] == "3"
    assert meta.detail.size == DETAIL and meta.detail.names == [a.name for a in meta.anchors]
    photo = meta.detail.decode(1)
    assert photo.shape == (3, DETAIL, DETAIL) and (photo - _photos(4)[1]).abs().mean() < 0.05   # JPEG, q95
    assert load_generator(tiny_checkpoint)[1].detail is None               # older files: no stage, as before
    assert read_header(tiny_checkpoint)["format_version"] == "2"


def test_a_damaged_detail_stage_is_refused_by_name(detailed, tmp_path):
    from safetensors.torch import load_file, save_file
    from models.checkpoint import header_digest
    header = read_header(detailed)
    tensors = load_file(str(detailed))
    del tensors["detail.3"]                                  # a photograph gone, the digests redone
    from models.checkpoint import digest
    header["sha256"] = digest(tensors)
    header["sha256_header"] = header_digest(header)
    bad = tmp_path / "bad.safetensors"
    save_file(tensors, str(bad), metadata=header)
    with pytest.raises(CheckpointError, match="lacks memory 3's photograph.*training detail"):
        load_generator(bad)


# ------------------------------------------------------------------ the stage itself

def test_at_an_anchor_the_picture_is_its_photograph_and_elsewhere_the_gist_alone(detailed):
    meta = load_generator(detailed)[1]
    # healthy pictures as a trained model draws them: each memory's photograph, softly, at 32 px
    # (a random tiny generator draws four near-identical pictures, which agree with every memory)
    healthy = torch.nn.functional.avg_pool2d(_photos(4), 2)
    stage = DetailStage(meta.detail, [a.name for a in meta.anchors], healthy)
    shown = stage(healthy[2:3])
    assert shown.shape == (1, 3, DETAIL, DETAIL)
    assert (shown[0] - meta.detail.decode(2)).abs().max() < 1e-4       # the photograph itself
    assert stage.agreement(healthy[2:3])[0][0, 0] == 2                  # its own memory nearest
    # a picture that agrees with no memory: the gist upscaled, no ghost of any photograph
    other = torch.zeros(1, 3, 32, 32)
    assert torch.allclose(stage(other), upscale(other, DETAIL).clamp(-1, 1), atol=1e-5)
    # half-way in picture space: less of the photograph than at the anchor, more than nothing
    near, share = stage.agreement(0.9 * healthy[2:3] + 0.1 * healthy[0:1])
    assert 0.0 < float(share.sum(dim=1).mean()) < 1.0
    # all of it lost: the gist alone
    assert torch.allclose(stage(healthy[2:3], keep=torch.zeros(1, 1, DETAIL, DETAIL)),
                          upscale(healthy[2:3], DETAIL).clamp(-1, 1), atol=1e-5)


def _colour_and_grey_stages(detailed):
    """(grey, stage, healthy pictures [4, C, 32, 32]): the detailed checkpoint's stage over pictures
    like its photographs, in colour, then the same in grey."""
    meta = load_generator(detailed)[1]
    healthy = torch.nn.functional.avg_pool2d(_photos(4), 2)
    for grey in (False, True):
        pack = meta.detail if not grey else DetailPack.encode(_photos(4).mean(1, keepdim=True), meta.detail.names)
        h = healthy if not grey else healthy.mean(1, keepdim=True)
        yield grey, DetailStage(pack, [a.name for a in meta.anchors], h), h


def test_the_screens_8_bit_pictures_are_the_stages_own_pictures_quantised(detailed):
    """uint8_frames (what the screen and the film show, made frame by frame) gives exactly the float
    stage's pictures turned into 8-bit levels: colour and grey, with and without detail_loss's keep,
    anchors, pictures between them and broken (NaN, inf) ones."""
    from installation.output import img_to_uint8
    g = torch.Generator().manual_seed(3)
    for _, stage, h in _colour_and_grey_stages(detailed):
        img = torch.cat([h, 0.5 * h[:1] + 0.5 * h[1:2], torch.rand(2, *h.shape[1:], generator=g) * 2.4 - 1.2])
        img[-1, 0, 3, 5], img[-1, 0, 7, 1], img[-1, -1, 0, 0] = float("nan"), float("inf"), -float("inf")
        keep = torch.rand(len(img), 1, DETAIL, DETAIL, generator=g)
        for k in (None, keep):
            frame = stage.uint8_frames(img, k)
            made = np.stack([frame(i) for i in range(len(img))])
            assert made.shape == (len(img), DETAIL, DETAIL, 3) and made.dtype == np.uint8
            assert np.array_equal(made, img_to_uint8(stage(img, k)))


def test_the_films_planes_composed_in_yuv_are_the_8_bit_pictures_i420(detailed):
    """planar_frames (the film on a CPU): each picture composed straight into vignetted Y, U and V
    planes gives the frame Output.i420 makes of the 8-bit picture: grey to within a level (after the
    same rounding, legal range and clipping), colour decoded within a level but for a few pixels
    beyond what RGB holds; with and without detail_loss's keep, anchors, blends and broken pictures."""
    import cv2

    from installation.output import RGB_TO_YUV, YUV_LIMITS, YUV_OFFSET, Output, OutputSpec
    g = torch.Generator().manual_seed(4)
    for grey, stage, h in _colour_and_grey_stages(detailed):
        img = torch.cat([h, 0.5 * h[:1] + 0.5 * h[1:2], torch.rand(2, *h.shape[1:], generator=g) * 2 - 1])
        for spec in (OutputSpec(1280, 720, vignette=0.4, grain=0.2), OutputSpec(640, 360)):
            out = Output(spec)
            assert out.planar(DETAIL, DETAIL) and (out.shade(32, 32) is None) == (spec.vignette == 0)
            for keep in (None, torch.rand(len(img), 1, DETAIL, DETAIL, generator=g)):
                planes = stage.planar_frames(img, keep, RGB_TO_YUV, YUV_OFFSET, out.shade(32, 32), YUV_LIMITS)
                pictures = stage.uint8_frames(img, keep)
                for i in range(len(img)):
                    made, ref = out.i420_from_planes(planes(i), i), out.i420(pictures(i), i)
                    assert made.shape == ref.shape == (spec.height * 3 // 2, spec.width)
                    raw = np.abs(made.astype(int) - ref)
                    seen = np.abs(cv2.cvtColor(made, cv2.COLOR_YUV2RGB_I420).astype(int)
                                  - cv2.cvtColor(ref, cv2.COLOR_YUV2RGB_I420))
                    case = (grey, spec.vignette, keep is None, i, raw.mean(), seen.mean(), np.percentile(seen, 99.9))
                    if i < 5:           # pictures as a generator draws them: the anchors and a blend
                        assert raw.mean() < 0.2 and seen.mean() < 0.35 and case[-1] <= (3 if grey else 4), case
                        assert not grey or raw.max() <= 3, (case, raw.max())
                    else:               # white noise past what RGB holds, under a vignette folded in at 32 px
                        assert seen.mean() < 0.6 and case[-1] <= 16, case
                        assert not grey or spec.vignette or raw.max() <= 3, (case, raw.max())   # clamped as RGB
    broken = img.clone()
    broken[0, 0, 3, 5] = float("nan")
    y, u, v = stage.planar_frames(broken, None, RGB_TO_YUV, YUV_OFFSET, None, YUV_LIMITS)(0)
    assert y.dtype == np.uint8 and 16 <= y.min() and y.max() <= 235      # a NaN makes no garbage, nor raises


def test_detail_loss_is_the_identity_at_0_monotone_and_restorable():
    symptom = SYMPTOMS["detail_loss"]
    assert symptom.level == "detail" and symptom.keep(64, 0.0, 1) is None
    masks = [symptom.keep(64, s, 1) for s in (0.05, 0.25, 0.5, 0.75, 1.0)]
    assert all(bool((b <= a).all()) for a, b in zip(masks, masks[1:]))      # only ever takes more
    assert float(masks[-1].max()) == 0.0 and float(masks[0].mean()) > 0.95     # gone at 1, barely begun at 0.05
    assert 0.35 < float(masks[2].mean()) < 0.65                              # the share lost follows the fader
    again = symptom.keep(64, 0.25, 1)
    assert torch.equal(again, masks[1])                                      # lowering it restores exactly
    assert not torch.equal(symptom.keep(64, 0.5, 2), masks[2])               # another life loses other patches


# ------------------------------------------------------------------ in the engine and the film

def test_the_engine_shows_the_detail_and_the_film_equals_the_live_piece(detailed):
    engine = _engine(detailed)
    assert engine.detail is not None and engine.picture_size == DETAIL
    z = engine.anchors[:1]
    with_detail = engine.pictures(z, FrameState(seed=1))[0]
    assert with_detail.shape == (DETAIL, DETAIL, 3)
    plain = _engine(detailed, "display.detail=false")
    gist = plain.pictures(z, FrameState(seed=1))[0]
    assert gist.shape == (32, 32, 3) and plain.detail is None
    states = [FrameState(t=i / 30, walk_phase=0.5 * i, seed=1, intensities={"detail_loss": 0.1 * i, "static": 0.1})
              for i in range(4)]
    live = [engine.render(s) for s in states]
    film = engine.render_batch(states)
    assert all(np.array_equal(a, b) for a, b in zip(live, film))
    i420 = engine.render_batch(states, form="i420")
    assert all(np.array_equal(a, engine.render(s, form="i420")) for a, s in zip(i420, states))
    engine.close()
    plain.close()


def test_detail_loss_takes_only_the_detail(detailed):
    engine = _engine(detailed)
    z = engine.anchors[:2]
    healthy = engine.pictures(z, FrameState(seed=1))
    lost = engine.pictures(z, FrameState(seed=1, intensities={"detail_loss": 1.0}))
    gist = [np.asarray(x) for x in engine.small_frames(z, FrameState(seed=1))]
    assert all(not np.array_equal(h, l) for h, l in zip(healthy, lost))
    # with all of it gone, what is left is the gist upscaled: the small pictures untouched
    after = engine.small_frames(z, FrameState(seed=1, intensities={"detail_loss": 1.0}))
    assert all(np.array_equal(a, b) for a, b in zip(gist, after))
    up = upscale(torch.from_numpy(np.stack(gist)).permute(0, 3, 1, 2).float() / 127.5 - 1, DETAIL)
    up = ((up.clamp(-1, 1) + 1) * 127.5).round().permute(0, 2, 3, 1).numpy()
    assert np.abs(np.stack(lost).astype(float) - up).max() <= 2
    engine.close()


# ------------------------------------------------------------------ commands

def test_still_writes_one_png_per_memory_named_after_it_and_never_overwrites(detailed, tmp_path, capsys):
    out = tmp_path / "stills"
    assert installation_main(["still", "--out", str(out), "--size", "80", "--model", str(detailed)]) == 0
    files = sorted(p.name for p in out.iterdir())
    assert files == [f"mem{i}.png" for i in range(4)]
    assert iio.imread(out / "mem0.png").shape == (80, 80, 3)
    assert installation_main(["still", "--out", str(out), "--model", str(detailed)]) == 2
    assert "exist already" in capsys.readouterr().err
    assert installation_main(["still", "--out", str(out), "--size", "9", "--model", str(detailed)]) == 2
    assert installation_main(["still", "--out", str(detailed), "--model", str(detailed)]) == 2
    assert installation_main(["still", "--out", str(out), "--overwrite", "--progress", "0.5",
                              "--model", str(detailed)]) == 0


def test_training_detail_makes_a_stage_from_the_data_and_evaluate_measures_it(tmp_path, image_folder, capsys):
    # anchors named after the folder's images, as a run's are
    ckpt = make_tiny_checkpoint(tmp_path / "g.safetensors", anchors=6)
    g, meta, snaps = load_generator(ckpt, with_snapshots=True)
    for a, name in zip(meta.anchors, sorted(p.name for p in image_folder.glob("*.png"))):
        a.name = name
    save_generator(ckpt, g, meta, snaps)
    assert training_main(["detail", str(ckpt), "--data", str(image_folder)]) == 0
    said = capsys.readouterr().out
    assert "detail stage of 6 memories at 40 px" in said          # the images' short side, up to 4x
    assert load_generator(ckpt)[1].detail.size == 40
    assert training_main(["evaluate", str(ckpt), "--data", str(image_folder), "--samples", "8", "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)["display"]
    assert set(figures) == {f"img{i}.png" for i in range(6)}
    # (a random tiny generator's pictures are near-identical, so they share the photographs: the quality
    # itself is measured on the bundled model below)
    assert all(-1.0 <= f["display_ssim"] <= 1.0 and f["detail_share"] > 0 and f["display_size"] == 40
               and f["photo_detail_levels"] > 0 for f in figures.values())
    # mistakes: another data set, a bad size
    other = tmp_path / "other"
    shutil.copytree(image_folder, other)
    (other / "img0.png").unlink()
    assert training_main(["detail", str(ckpt), "--data", str(other)]) == 2
    assert "no image for 1 of the model's 6 memories" in capsys.readouterr().err
    assert training_main(["detail", str(ckpt), "--data", str(image_folder), "--size", "8"]) == 2


def test_a_nearly_flat_photograph_is_named_apart_from_the_detail_range():
    """A colour wheel has ~0.2 levels of fine detail: its share (JPEG's and 8-bit rounding's next to
    nothing over it) is no sign of oversharpening, so evaluate's line keeps it out of the range and
    names it, with its levels; a figure from before the levels were kept counts as detailed."""
    from training.evaluate import display_summary
    figures = {"horse.png": {"display_ssim": 0.99, "detail_share": 1.01, "display_size": 512, "photo_detail_levels": 2.3},
               "brick.png": {"display_ssim": 0.98, "detail_share": 0.97, "display_size": 512, "photo_detail_levels": 4.5},
               "wheel.png": {"display_ssim": 0.986, "detail_share": 1.85, "display_size": 512, "photo_detail_levels": 0.18}}
    line = display_summary(figures)
    assert "fine detail 0.97..1.01 of the photographs'" in line
    assert "nearly flat: wheel.png 1.85 (its photograph 0.18 levels of fine detail)" in line
    assert "SSIM min 0.980 (brick.png)" in line
    old = {"horse.png": {"display_ssim": 0.99, "detail_share": 1.4, "display_size": 512}}
    assert "fine detail 1.40..1.40" in display_summary(old) and "flat" not in display_summary(old)
    assert "of the photographs'" not in display_summary({"wheel.png": figures["wheel.png"]})


# ------------------------------------------------------------------ the bundled memories (issue 25's bar)

@pytest.fixture(scope="module")
def memories_data(tmp_path_factory):
    from training.prepare import prepare_memories
    folder = tmp_path_factory.mktemp("data") / "memories"
    prepare_memories(folder)
    return folder


def test_the_bundled_memories_are_as_sharp_as_their_photographs(memories_data, tmp_path):
    """At 512 px and progress 0, against each photograph (cropped as training crops it): SSIM >= 0.85
    and >= what the photograph itself shrunk to 128 and upscaled reaches; fine detail 0.7-1.3 of the
    photograph's. Without the stage: SSIM 0.63-0.98, detail 0.12-0.41."""
    from training.data import load_folder
    from training.detail import fine_detail
    out = tmp_path / "stills"
    assert installation_main(["still", "--out", str(out), "--size", "512"]) == 0
    photos = load_folder(memories_data, 512, 3)
    photo01 = (photos.images + 1) / 2
    shown = torch.stack([torch.from_numpy(iio.imread(out / n)).permute(2, 0, 1).float() / 255 for n in photos.names])
    small = torch.nn.functional.interpolate(photos.images, size=128, mode="area")
    shrunk = ((upscale(small, 512).clamp(-1, 1) + 1) * 127.5).round() / 255
    from training.evaluate import ssim_pairs
    ssim_shown, ssim_shrunk = ssim_pairs(shown, photo01), ssim_pairs(shrunk, photo01)
    share = fine_detail(shown) / fine_detail(photo01)
    print("SSIM", ssim_shown.tolist(), "shrunk", ssim_shrunk.tolist(), "share", share.tolist())
    assert bool((ssim_shown >= 0.85).all()) and bool((ssim_shown >= ssim_shrunk).all())
    assert bool(((share > 0.7) & (share < 1.3)).all())


def test_on_the_contact_sheet_the_detail_goes_first_and_alone():
    """The sheet's second row (progress 1/7 of 8 stages): the verbatim detail visibly going, the
    generator's own picture not yet touched by anything."""
    s = settings_from_dict({}, ["model.device=cpu"])
    engine, course = Engine.from_settings(s, 64, 64), Course(s.course)
    z = sheet_latents(engine, 6, 1, spread=True)
    p = 1 / 7
    state = FrameState(progress=p, intensities=course.curve_intensities(p), seed=1)
    # nothing else that changes a picture yet (hesitation, the walk's stutter, has begun)
    assert [n for n, v in state.intensities.items() if v > 0 and SYMPTOMS[n].level != "walk"] == ["detail_loss"]
    healthy, early = engine.pictures(z, FrameState(seed=1)), engine.pictures(z, state)
    scores = [ssim(a, b) for a, b in zip(early, healthy)]
    assert np.mean(scores) < 0.95, scores
    assert all(np.array_equal(a, b) for a, b in zip(engine.small_frames(z, state), engine.small_frames(z, FrameState(seed=1))))
    engine.close()


@pytest.mark.gpu
def test_the_detail_stage_on_cuda_draws_what_the_cpu_draws(detailed):
    cpu = _engine(detailed)
    cuda = _engine(detailed, "model.device=cuda")
    state = FrameState(seed=1, intensities={"detail_loss": 0.3})
    z = cpu.anchors[:2].cpu()
    for a, b in zip(cpu.pictures(z, state), cuda.pictures(z, state)):
        assert np.abs(a.astype(int) - b.astype(int)).max() <= 3      # torch's filters against OpenCV's, in float
    assert cuda.render(state).shape == cpu.render(state).shape
    cpu.close()
    cuda.close()
