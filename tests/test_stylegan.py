"""Style-based generators: the model, both presets' training on tiny configs, exact resume, the
checkpoint, progressive growing's sheets, and the installation on a style model with the
symptoms only it has. Tiny widths, 16 px, CPU: seconds."""
import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

from installation.course import Course
from installation.damage import Damage
from installation.engine import Engine
from installation.settings import settings_from_dict
from installation.sheet import decay_rows
from installation.state import FrameState
from installation.symptoms import SYMPTOMS, style_mixing
from installation.walk import Walk
from installation.weights import WeightDamage
from models import Anchor, CheckpointError, GeneratorMeta, load_generator, registry, save_generator
from models.stylegan import StyleGANConfig, StyleGenerator
from training.data import load_folder
from training.presets import ConfigError, build_config
from training.run import train
from training.style import growth_stage

TINY = dict(image_size=16, channels=1, latent_size=16, mapping_layers=2, width=4, d_width=4, max_channels=8)
TINY_SET = [f"model.{k}={v}" for k, v in TINY.items()] + [
    "batch_size=4", "recall_batch=3", "sample_every=2", "checkpoint_every=3", "eval_samples=8",
    "anchor_steps=2", "snapshots=2"]
STYLE_ONLY = ["misidentification", "noise_swell"]


def tiny_style(seed: int = 0, **kw) -> StyleGenerator:
    torch.manual_seed(seed)
    g = StyleGenerator(StyleGANConfig(**{**TINY, **kw}))
    with torch.no_grad():   # a "trained" look: non-zero noise strengths and an average w
        for name, value in g.state_dict().items():
            if name.endswith("noise_strength"):
                value.copy_(0.1 * torch.randn_like(value))
        g.mapping.w_avg.copy_(g.mapping(torch.randn(64, TINY["latent_size"])).mean(0))
    return g.eval()


def save_tiny_style(path, seed: int = 0, anchors: int = 4):
    g = tiny_style(seed)
    with torch.no_grad():
        ws = g.mapping(torch.randn(anchors, TINY["latent_size"], generator=torch.Generator().manual_seed(seed)))
    snaps = [{k: v + 0.05 * (2 - i) * torch.randn_like(v) if v.is_floating_point() else v
              for k, v in g.state_dict().items()} for i in range(2)]
    meta = GeneratorMeta("stylegan", g.cfg, step=10, dataset="test", dataset_licence="CC0",
                         anchors=[Anchor(f"mem{i}", w.tolist()) for i, w in enumerate(ws)], snapshot_steps=[3, 6])
    save_generator(path, g, meta, snaps)
    return path


# ------------------------------------------------------------------ the model

@pytest.mark.parametrize("style", ["modulated", "adain"])
def test_shapes_layer_names_and_growth(style):
    g = tiny_style(style=style)
    d = registry.build_discriminator("stylegan", g.cfg)
    assert g.layer_names == ["mapping", "stem", "to_rgb4", "up8", "to_rgb8", "up16", "to_rgb16"]
    z = torch.randn(3, 16)
    assert g(z).shape == (3, 1, 16, 16) and d(g(z)).shape == (3,)
    for res in (4, 8, 16):
        img = g.synthesize(g.mapping(z), res=res, alpha=0.5)          # progressive growing, mid-fade
        assert img.shape == (3, 1, res, res) and torch.isfinite(d(img, alpha=0.5)).all()
    # fade-in: at alpha 0 the newest level adds nothing to the upsampled level below
    w = g.mapping(z)
    low = torch.nn.functional.interpolate(g.synthesize(w, res=8), scale_factor=2, mode="bilinear",
                                          align_corners=False)
    assert torch.allclose(g.synthesize(w, res=16, alpha=0.0), low, atol=1e-6)
    assert torch.equal(g(z), g(z))                                    # eval: fixed noise, same frame
    with pytest.raises(AssertionError, match="ws must be"):
        g.synthesize(torch.randn(1, 3, 16))
    with pytest.raises(ValueError, match="style="):
        StyleGANConfig(style="wavelet")


def test_truncation_pulls_toward_the_average_w():
    g = tiny_style()
    w = g.mapping(torch.randn(2, 16))
    assert torch.equal(g.truncate(w, 1.0), w)
    assert torch.allclose(g.truncate(w, 0.0), g.mapping.w_avg.expand_as(w))


def test_checkpoint_round_trips_and_loads_strictly(tmp_path):
    path = save_tiny_style(tmp_path / "s.safetensors")
    g, meta, snaps = load_generator(path, with_snapshots=True)
    assert isinstance(g, StyleGenerator) and meta.config == StyleGANConfig(**TINY) and len(snaps) == 2
    assert meta.anchor_tensor().shape == (4, 16)
    z = torch.randn(2, 16)
    assert torch.equal(g(z), tiny_style()(z))
    # a state dict that does not fit its claimed config is refused, not half-loaded
    from safetensors.torch import load_file, save_file
    from safetensors import safe_open
    with safe_open(str(path), framework="pt") as f:
        header = f.metadata()
    tensors = load_file(path)
    del tensors["blocks.up16.conv1.noise_strength"]
    save_file(tensors, tmp_path / "bad.safetensors", metadata=header)
    with pytest.raises(CheckpointError):
        load_generator(tmp_path / "bad.safetensors")


# ------------------------------------------------------------------ training

def _run(tmp_path, folder, preset, name, steps, extra=(), resume=False):
    cfg = build_config(preset, TINY_SET + list(extra) + [f"steps={steps}"])
    data = load_folder(folder, 16, 1)
    return train(cfg, data, tmp_path / name, "cpu", resume=resume, quiet=True, log=lambda *_: None)


def test_presets_follow_the_seeds():
    sg = build_config("oasis-stylegan")
    assert sg.architecture == "stylegan" and (sg.beta1, sg.beta2, sg.flip, sg.batch_size) == (0.5, 0.999, True, 32)
    assert {k: sg.model[k] for k in ("image_size", "channels", "latent_size", "max_channels", "kernel_size")} == \
        dict(image_size=256, channels=1, latent_size=512, max_channels=512, kernel_size=3)
    pg = build_config("oasis-progan")
    assert (pg.model["image_size"], pg.grow_from, pg.model["upsample"], pg.model["style"]) == (64, 4, "bilinear", "adain")
    assert pg.steps == 5 * pg.grow_steps                           # 4, 8, 16, 32, 64
    for bad, word in [("grow_from=6", "grow_from"), ("style_mixing=2", "style_mixing")]:
        with pytest.raises(ConfigError, match=word):
            build_config("oasis-progan", [bad])
    with pytest.raises(ConfigError, match="style-based"):
        build_config("oasis-dcgan", ["style_mixing=0.5"])


def test_growth_schedule_fades_each_new_resolution_in():
    cfg = build_config("oasis-progan", ["grow_steps=10"])
    assert growth_stage(0, cfg, 64) == (4, 1.0) and growth_stage(9, cfg, 64) == (4, 1.0)
    assert growth_stage(10, cfg, 64) == (8, 0.0) and growth_stage(12, cfg, 64) == (8, 0.4)
    assert growth_stage(16, cfg, 64) == (8, 1.0) and growth_stage(49, cfg, 64)[0] == 64
    assert growth_stage(500, cfg, 64) == (64, 1.0)


def test_stylegan_preset_trains_with_every_artefact(tmp_path, image_folder):
    final = _run(tmp_path, image_folder, "oasis-stylegan", "sg", 4)
    run = final.parent
    for name in ("losses.csv", "losses.png", "progress.mp4", "evaluation.json", "nearest.png", "config.json"):
        assert (run / name).is_file(), name
    g, meta = load_generator(final)
    assert isinstance(g, StyleGenerator) and len(meta.anchors) == 6 and meta.step == 4
    # anchors live in w: synthesis alone redraws them
    assert torch.isfinite(g.synthesize(meta.anchor_tensor())).all()


def test_progressive_growing_writes_a_sheet_and_loss_plot_per_resolution(tmp_path, image_folder):
    final = _run(tmp_path, image_folder, "oasis-progan", "pg", 30, ["grow_steps=10", "sample_every=5"])
    stages = final.parent / "stages"
    for res in (4, 8, 16):
        assert (stages / f"res{res:04d}_samples.png").is_file(), res
        assert (stages / f"res{res:04d}_losses.png").is_file(), res
    import imageio.v3 as iio
    frames = [iio.imread(p) for p in sorted((final.parent / "samples").glob("*.png"))]
    assert len({f.shape for f in frames}) == 1                     # one size for the progress film


@pytest.mark.parametrize("preset, extra", [("oasis-stylegan", []), ("oasis-progan", ["grow_steps=2"])])
def test_resume_continues_exactly(tmp_path, image_folder, preset, extra):
    straight = _run(tmp_path, image_folder, preset, "a", 6, extra)
    _run(tmp_path, image_folder, preset, "b", 3, extra)
    resumed = _run(tmp_path, image_folder, preset, "b", 6, extra, resume=True)
    from safetensors.torch import load_file
    a, b = load_file(straight), load_file(resumed)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


# ------------------------------------------------------------------ installation

def _engine(path, *overrides):
    s = settings_from_dict({}, [f"model.path={path}", "model.device=cpu", *overrides])
    return Engine.from_settings(s, 48, 32), Course(s.course)


def test_engine_walks_in_w_and_is_pure(tmp_path):
    path = save_tiny_style(tmp_path / "s.safetensors")
    a, course = _engine(path)
    b, _ = _engine(path)
    assert a.space == "w"
    state = FrameState(t=3.7, progress=0.8, intensities=course.curve_intensities(0.8), walk_phase=21.3, seed=5)
    assert np.array_equal(a.render(state), b.render(state))       # same state, same frame
    # at a memory the healthy walk shows its anchor exactly, in w (no shell, no truncation)
    walk = a.walk(1)
    k = walk.where(0.0).to_anchor if walk.where(0.0).fraction >= 0.5 else walk.where(0.0).from_anchor
    w = walk.z_at(0.0)
    assert torch.allclose(w, a.anchors[k], atol=0.05 * float(a.anchors[k].norm()))
    # healthy, the style path adds nothing: the mapping's error is exactly 0, no forgetting, no mixing
    from installation.output import img_to_uint8
    g, _ = load_generator(path)
    with torch.no_grad():
        direct = img_to_uint8(g.synthesize(a.anchors[:1]).clamp(-1, 1)[0])
    assert np.array_equal(a.small_frames(a.anchors[:1], FrameState(t=5.0, seed=1))[0], direct)
    for mode in ("random", "loop"):
        e, _ = _engine(path, f"walk.mode={mode}")
        assert e.render(FrameState(walk_phase=7.0)).shape == (32, 48, 3)
        e.close()
    a.close(), b.close()


def test_damage_is_visible_and_grows_with_progress_on_a_style_model(tmp_path):
    engine, course = _engine(save_tiny_style(tmp_path / "s.safetensors"), "course.lucid.enabled=false")
    progresses = np.linspace(0.0, 1.0, 8)
    scores = np.array([r.ssim for r in decay_rows(engine, course, progresses, columns=4, seed=1)])
    assert scores[0] == pytest.approx(1.0) and scores[-1] < 0.5
    assert spearmanr(progresses, scores).statistic <= -0.8, scores
    engine.close()


# (detail_loss acts on a detail stage, which these tiny models lack: tests/test_detail.py)
@pytest.mark.parametrize("name", [n for n in SYMPTOMS if n not in ("perseveration", "hesitation", "detail_loss")])
def test_every_symptom_reaches_the_style_model(tmp_path, name):
    engine, _ = _engine(save_tiny_style(tmp_path / "s.safetensors"))
    w = engine.anchors[:2]
    healthy = engine.small_frames(w, FrameState(t=4.0, seed=3))
    sick = engine.small_frames(w, FrameState(t=4.0, seed=3, intensities={name: 1.0}))
    assert any(not np.array_equal(h, s) for h, s in zip(healthy, sick)), name
    if name in ("misidentification", "noise_swell"):
        assert engine.weights.targeted_params(name)
    engine.close()


# ------------------------------------------------------------------ the symptoms only a style model has

@pytest.fixture(scope="module")
def style_damage():
    g = tiny_style()
    d = Damage(g, WeightDamage(g))
    yield d
    d.close()


@pytest.mark.parametrize("name", STYLE_ONLY)
def test_style_symptoms_identity_monotone_seeded_restorable(style_damage, name):
    d = style_damage
    weights = d.weights
    targeted = weights.targeted_params(name)
    assert targeted and all(name != "misidentification" or p.startswith("mapping.") for p in targeted)
    assert all(torch.equal(v, weights.pristine[k]) for k, v in weights.weights_for({name: 0.0}).items())
    low, high, full = (weights.weights_for({name: i}) for i in (0.4, 0.5, 1.0))
    lo_mask = {p: low[p] != weights.pristine[p] for p in targeted}
    assert any(m.any() for m in lo_mask.values())
    assert all(not (lo_mask[p] & ~(high[p] != weights.pristine[p])).any() for p in targeted)
    change = [sum(float((w[p] - weights.pristine[p]).abs().sum()) for p in targeted) for w in (low, high, full)]
    assert 0 < change[0] <= change[1] < change[2]
    untouched = set(weights.pristine) - set(targeted)
    assert all(torch.equal(full[p], weights.pristine[p]) for p in untouched)
    assert all(torch.equal(high[p], weights.weights_for({name: 0.5})[p]) for p in targeted)       # deterministic
    assert any(not torch.equal(high[p], weights.weights_for({name: 0.5}, seed=9)[p]) for p in targeted)
    d.load({name: 0.9})
    d.load({name: 0.4})
    live = d.generator.state_dict()
    assert all(torch.equal(live[p], low[p]) for p in targeted)
    d.load({})
    assert all(torch.equal(live[p], weights.pristine[p]) for p in weights.pristine)


def test_style_symptoms_are_inert_on_a_dcgan(tiny_checkpoint):
    g, _ = load_generator(tiny_checkpoint)
    weights = WeightDamage(g)
    for name in STYLE_ONLY:
        assert weights.targeted_params(name) == []
        assert all(torch.equal(v, weights.pristine[k]) for k, v in weights.weights_for({name: 1.0}).items())


def test_noise_swell_thickens_the_grain_but_not_the_shapes(style_damage):
    d, z = style_damage, torch.randn(2, 16, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        healthy = d.generator(z)
        d.load({"noise_swell": 1.0})
        swollen = d.generator(z)
        d.load({})
    assert (swollen - healthy).abs().mean() > 0.05
    assert torch.equal(d.generator(z), healthy)


def test_style_mixing_confusion_hands_layers_to_another_memory():
    anchors = torch.randn(5, 16, generator=torch.Generator().manual_seed(2))
    ws = torch.randn(1, 1, 16, generator=torch.Generator().manual_seed(3)).expand(1, 6, 16).clone()   # not a memory
    assert style_mixing.mix(ws, 0.0, anchors, seed=1, t=3.0) is ws
    out = {i: style_mixing.mix(ws, i, anchors, seed=1, t=3.0) for i in (0.3, 0.6, 1.0)}
    moved = {i: (o - ws).abs().sum(2)[0] > 0 for i, o in out.items()}                   # [num_ws] layers mixed
    assert not (moved[0.3] & ~moved[0.6]).any() and moved[1.0].all()
    blends = [style_mixing.layer_blend(6, i, seed=1) for i in (0.2, 0.4, 0.6, 0.8, 1.0)]
    assert all((a <= b).all() for a, b in zip(blends, blends[1:]))
    assert torch.equal(out[0.6], style_mixing.mix(ws, 0.6, anchors, seed=1, t=3.0))           # deterministic
    style_mixing.mix(ws, 0.9, anchors, seed=1, t=3.0)                                           # restorable:
    assert torch.equal(style_mixing.mix(ws.clone(), 0.3, anchors, seed=1, t=3.0), out[0.3])     # no memory of 0.9
    assert not torch.equal(out[0.6], style_mixing.mix(ws, 0.6, anchors, seed=2, t=3.0))
    assert torch.equal(style_mixing.mix(ws, 0.5, anchors[:0], seed=1, t=3.0), ws)           # nothing to confuse with
    # slow drift: the intruder moves continuously in t
    a, b = (style_mixing.intruder_w(anchors, 1, t) for t in (10.0, 10.05))
    assert (a - b).norm() < 0.05 * a.norm()


def test_walk_in_w_keeps_anchors_and_moves_straight():
    anchors = torch.randn(3, 8, generator=torch.Generator().manual_seed(0)) * 3 + 1
    walk = Walk(anchors, 8, seed=0, wander=0.0, dwell_s=2.0, seconds_per_memory=10.0, space="w")
    at = walk.z_at(0.0)
    assert any(torch.allclose(at, a.float(), atol=1e-5) for a in anchors)         # not pushed onto a shell
    mid = walk.where(5.0)
    p, q = anchors[mid.from_anchor], anchors[mid.to_anchor]
    assert torch.allclose(walk.z_at(5.0), torch.lerp(p, q, mid.fraction).float(), atol=1e-5)
    with pytest.raises(ValueError, match="needs points"):
        Walk(None, 8, space="w")


def test_pivotal_tuning_of_a_style_generator_moves_synthesis_and_keeps_its_mapping():
    """Anchors in w; the mapping (and w_avg, which forgetting and the walk draw on) stays."""
    from training.anchors import tune_to_anchors
    g = tiny_style(3)
    before = {k: v.clone() for k, v in g.state_dict().items()}
    g.mapping.requires_grad_(False)                   # mixed flags, as they were, come back
    flags = [p.requires_grad for p in g.parameters()]
    images = torch.rand(3, TINY["channels"], TINY["image_size"], TINY["image_size"]) * 2 - 1
    w = g.mapping(torch.randn(3, TINY["latent_size"])).detach()
    with torch.no_grad():
        start = (g.synthesize(w) - images).abs().mean()
    tune_to_anchors(g, images, w, steps=15, lr=2e-3, locality=1.0, batch=3)
    after = g.state_dict()
    assert all(torch.equal(after[k], before[k]) for k in before if k.startswith("mapping."))
    assert any(not torch.equal(after[k], before[k]) for k in before if not k.startswith("mapping."))
    with torch.no_grad():
        assert (g.synthesize(w) - images).abs().mean() < start
    assert not g.training and [p.requires_grad for p in g.parameters()] == flags
