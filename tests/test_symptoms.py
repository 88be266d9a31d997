"""Symptoms behave as a visitor and a technician would expect: nothing at 0, more damage as the
intensity rises, the same damage for the same seed, and turning it down restores the picture."""
import math

import pytest
import torch

from installation.damage import Damage
from installation import levels
from installation.hooks import ActivationHooks
from installation.symptoms import SYMPTOM_NAMES, SYMPTOMS, at_level, get
from installation.symptoms import bit_rot, confusion, forgetting, hesitation, lapses, perseveration, plaques, tangles
from installation.symptoms.base import FIELDS, FieldCache
from installation.symptoms.layers import layer_of, matches
from installation.weights import WeightDamage
from models.dcgan import DCGANConfig, Generator

TABLE = ["synapse_loss", "neuron_death", "weight_noise", "precision_loss", "bit_rot", "regression",
         "misidentification", "noise_swell",
         "feature_dropout", "plaques", "tangles", "static", "forgetting", "confusion",
         "perseveration", "hesitation", "lapses", "fading", "detail_loss"]
STYLE_ONLY = ("misidentification", "noise_swell")   # a DCGAN has nothing they damage: tests/test_stylegan.py
WEIGHTS = [s.name for s in at_level("weights") if s.name not in STYLE_ONLY]
ACTIVATIONS = [s.name for s in at_level("activations")]
LATENT = [s.name for s in at_level("latent")]
OUTPUT = [s.name for s in at_level("output")]


def tiny_generator(upsample: str = "transposed", g_norm: str = "batch", seed: int = 0) -> Generator:
    torch.manual_seed(seed)
    g = Generator(DCGANConfig(image_size=32, latent_size=16, width=4, upsample=upsample, g_norm=g_norm))
    with torch.no_grad():                          # non-trivial norm parameters and statistics
        for name, value in g.state_dict().items():
            if value.is_floating_point() and ".norm." in name:
                value.add_(0.1 * torch.rand_like(value))
    return g.eval()


def fake_snapshots(g: Generator, count: int = 3) -> list[dict]:
    """Older snapshots lie further from the finished weights, as in training."""
    gen = torch.Generator().manual_seed(1)
    return [{n: (v + 0.2 * (count - k) * torch.randn(v.shape, generator=gen)).abs() if "running_var" in n
             else v + 0.2 * (count - k) * torch.randn(v.shape, generator=gen)
             for n, v in g.state_dict().items() if v.is_floating_point()} for k in range(count)]


class Closing:
    """`with Closing(Damage(...)) as d:` — the worker thread goes away afterwards."""

    def __init__(self, damage):
        self.damage = damage

    def __enter__(self):
        return self.damage

    def __exit__(self, *exc):
        self.damage.close()


@pytest.fixture(scope="module")
def generator():
    return tiny_generator()


@pytest.fixture(scope="module")
def weight_damage(generator):
    return WeightDamage(generator, snapshots=fake_snapshots(generator))


@pytest.fixture(scope="module")
def damage(generator, weight_damage):
    d = Damage(generator, weight_damage)
    yield d
    d.close()


@pytest.fixture(scope="module")
def hooks(generator):
    h = ActivationHooks(generator)
    yield h
    h.close()


def changed(weights: dict, pristine: dict) -> dict:
    return {n: weights[n] != pristine[n] for n in pristine if pristine[n].is_floating_point()}


def total_change(weights: dict, pristine: dict) -> float:
    return sum(float((weights[n] - pristine[n]).abs().sum()) for n in pristine if pristine[n].is_floating_point())


# ------------------------------------------------------------------ the table

def test_every_symptom_of_the_table_in_order():
    assert list(SYMPTOMS) == TABLE
    for name, symptom in SYMPTOMS.items():
        assert symptom.name == name and symptom.description and isinstance(symptom.default_target, str)
    assert [s.level for s in SYMPTOMS.values()] == ["weights"] * 8 + ["activations"] * 4 + ["latent"] * 2 \
        + ["walk"] * 2 + ["output"] * 2 + ["detail"]


def test_the_settings_order_keeps_every_symptom_and_its_midi_number():
    # the order numbers the MIDI controls (settings' table): a symptom added later goes last
    assert SYMPTOM_NAMES == ("synapse_loss", "neuron_death", "weight_noise", "precision_loss", "bit_rot", "regression",
                             "feature_dropout", "plaques", "tangles", "static", "forgetting", "confusion",
                             "perseveration", "hesitation", "lapses", "fading",
                             "misidentification", "noise_swell", "detail_loss")
    assert sorted(SYMPTOM_NAMES) == sorted(SYMPTOMS)


def test_unknown_symptom_names_itself_and_the_known_ones():
    with pytest.raises(KeyError, match="amnesia.*synapse_loss"):
        get("amnesia")


def test_targets_match_layer_names_module_paths_and_parameter_names():
    assert layer_of("blocks.up16.conv.weight") == "up16" and layer_of("stem.fc.weight") == "stem"
    assert layer_of("to_rgb.1.bias") == "to_rgb"
    assert matches("up16", "blocks.up16.conv.weight") and matches("blocks.up16", "blocks.up16.conv.1.weight")
    assert matches("up*", "blocks.up8.norm.bias") and not matches("up*", "stem.fc.weight")
    assert matches("stem,to_rgb", "to_rgb.weight") and matches("*.bias", "to_rgb.bias")
    assert not matches("up1", "blocks.up16.conv.weight") and not matches("", "stem.fc.weight")
    assert matches("*", "stem.act")


# ------------------------------------------------------------------ weights

@pytest.mark.parametrize("name", WEIGHTS)
def test_weight_symptom_is_identity_at_zero(weight_damage, name):
    weights = weight_damage.weights_for({name: 0.0})
    assert all(torch.equal(weights[n], weight_damage.pristine[n]) for n in weight_damage.pristine)
    for param in weight_damage.targeted_params(name):
        out = get(name).damage(param, weight_damage.pristine[param], 0.0, 5, weight_damage.infos[param])
        assert torch.equal(out, weight_damage.pristine[param]) and out is not weight_damage.pristine[param]


@pytest.mark.parametrize("name", WEIGHTS)
def test_weight_damage_is_monotone(weight_damage, name):
    low, high = (changed(weight_damage.weights_for({name: i}), weight_damage.pristine) for i in (0.4, 0.5))
    assert any(m.any() for m in low.values())
    for param in low:
        assert not (low[param] & ~high[param]).any(), f"{name}: {param} damaged at 0.4 but not at 0.5"


@pytest.mark.parametrize("name", WEIGHTS)
def test_weight_damage_grows_with_intensity(weight_damage, name):
    amounts = [total_change(weight_damage.weights_for({name: i}), weight_damage.pristine) for i in (0.0, 0.5, 1.0)]
    assert amounts[0] == 0.0 < amounts[1] < amounts[2]


@pytest.mark.parametrize("name", WEIGHTS)
def test_weight_damage_is_seeded(weight_damage, name):
    a, b = weight_damage.weights_for({name: 0.55}, seed=1), weight_damage.weights_for({name: 0.55}, seed=1)
    assert all(torch.equal(a[n], b[n]) for n in a)
    if name != "regression" or not weight_damage.snapshots:   # snapshots, not chance, decide regression
        c = weight_damage.weights_for({name: 0.55}, seed=2)
        assert any(not torch.equal(a[n], c[n]) for n in a)


@pytest.mark.parametrize("name", WEIGHTS)
def test_cached_fields_damage_exactly_as_freshly_drawn_ones(weight_damage, name):
    """The seeded-field cache only saves time: a weight_damage computed from an empty cache and one
    computed from cached fields are bit-identical, and the cache holds what was drawn."""
    FIELDS.clear()
    fresh = weight_damage.weights_for({name: 0.6}, seed=3)
    drawn = FIELDS.nbytes
    cached = weight_damage.weights_for({name: 0.6}, seed=3)
    assert all(torch.equal(fresh[n], cached[n]) for n in fresh)
    assert drawn == FIELDS.nbytes           # nothing drawn again
    if name != "regression":                # with snapshots, regression draws nothing
        assert drawn > 0


def test_field_cache_is_bounded_and_evicts_the_oldest():
    cache = FieldCache(max_bytes=3 * 400)
    draws = []

    def draw(i):
        def f():
            draws.append(i)
            return torch.full((100,), float(i))      # 400 bytes
        return f
    for i in range(5):
        assert torch.equal(cache.get(("k", i), draw(i)), torch.full((100,), float(i)))
    assert cache.nbytes <= 3 * 400
    cache.get(("k", 4), draw(4))                     # newest: still there
    cache.get(("k", 0), draw(0))                     # oldest: evicted, drawn again
    assert draws == [0, 1, 2, 3, 4, 0]
    assert cache.get(("big",), lambda: torch.zeros(1000)).numel() == 1000   # larger than the cache: not kept
    assert cache.nbytes <= 3 * 400


@pytest.mark.parametrize("name", WEIGHTS)
def test_weight_damage_restores_when_turned_down(damage, name):
    damage.load({name: 0.8})
    damage.load({name: 0.3})
    live = damage.generator.state_dict()
    direct = damage.weights.weights_for({name: 0.3})
    assert all(torch.equal(live[n], direct[n]) for n in live)
    damage.load({})
    assert all(torch.equal(live[n], damage.weights.pristine[n]) for n in live)


def test_regression_without_snapshots_slides_toward_an_unlearned_network():
    d = WeightDamage(tiny_generator())
    weights = d.weights_for({"regression": 1.0})
    assert all(torch.equal(weights[n], d.pristine[n]) for n in d.pristine if "running" in n)
    moved = [n for n in d.targeted_params("regression") if not torch.equal(weights[n], d.pristine[n])]
    assert "stem.fc.weight" in moved and all(torch.isfinite(weights[n]).all() for n in moved)


def test_regression_at_full_intensity_is_the_oldest_snapshot(weight_damage):
    weights = weight_damage.weights_for({"regression": 1.0})
    oldest = weight_damage.snapshots[0]
    assert all(torch.allclose(weights[n], oldest[n]) for n in oldest)


@pytest.mark.parametrize("upsample", ["transposed", "nearest"])
@pytest.mark.parametrize("g_norm", ["batch", "pixel"])
def test_neuron_death_kills_whole_channels_of_the_right_dimension(upsample, g_norm):
    """Dead filters must give exactly zero feature maps — ConvTranspose2d keeps output channels
    on dim 1, Conv2d on dim 0, and BatchNorm would otherwise revive them through its shift."""
    g = tiny_generator(upsample, g_norm)
    seen = {}
    g.blocks.up8.register_forward_hook(lambda m, i, o: seen.__setitem__("up8", o.clone()))
    g.stem.act.register_forward_hook(lambda m, i, o: seen.__setitem__("stem", o.clone()))
    z = torch.randn(3, 16, generator=torch.Generator().manual_seed(0))
    with Closing(Damage(g, WeightDamage(g))) as d:
        d.load({"neuron_death": 0.5})
        with torch.no_grad():
            g(z)
        for layer in ("stem", "up8"):
            energy = seen[layer].abs().sum(dim=(0, 2, 3))         # per channel
            dead = int(torch.isclose(energy, torch.zeros(())).sum())
            assert 0 < dead < energy.numel(), f"{layer}: {dead} of {energy.numel()} channels dead at 0.5"
        d.load({"neuron_death": 1.0})
        with torch.no_grad():
            g(z)
        assert seen["up8"].abs().max() == 0 and seen["stem"].abs().max() == 0


def test_precision_loss_at_full_intensity_leaves_three_levels(weight_damage):
    weights = weight_damage.weights_for({"precision_loss": 1.0})
    assert len(torch.unique(weights["blocks.up8.conv.weight"])) <= 3


def test_bit_rot_stays_finite_and_bounded(weight_damage):
    for seed in range(4):
        weights = weight_damage.weights_for({"bit_rot": 1.0}, seed=seed)
        for n in weight_damage.targeted_params("bit_rot"):
            assert torch.isfinite(weights[n]).all()
            assert weights[n].abs().max() <= bit_rot.CLAMP_X * weight_damage.pristine[n].abs().max() + 1e-6


# ------------------------------------------------------------------ activations

ACT = torch.randn(2, 8, 8, 8, generator=torch.Generator().manual_seed(3)).relu()


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activation_symptom_is_identity_at_zero(name):
    assert torch.equal(get(name).effect(ACT, 0.0, seed=1, t=2.0), ACT)


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activation_damage_is_monotone_grows_and_is_seeded(name):
    s = get(name)
    out = {i: s.effect(ACT, i, seed=1, t=2.0) for i in (0.4, 0.5, 1.0)}
    low, high = out[0.4] != ACT, out[0.5] != ACT
    assert low.any() and not (low & ~high).any()
    dist = {i: float((o - ACT).abs().mean()) for i, o in out.items()}
    assert 0 < dist[0.4] <= dist[0.5] < dist[1.0]
    assert torch.equal(out[0.5], s.effect(ACT, 0.5, seed=1, t=2.0))
    assert not torch.equal(out[0.5], s.effect(ACT, 0.5, seed=2, t=2.0))
    # restorable: the effect is a function of the intensity, not of the past
    s.effect(ACT, 0.9, seed=1, t=2.0)
    assert torch.equal(s.effect(ACT, 0.3, seed=1, t=2.0), s.effect(ACT.clone(), 0.3, seed=1, t=2.0))


def test_static_changes_every_frame_but_not_within_one():
    s = get("static")
    frame = s.effect(ACT, 0.5, seed=1, t=1.0)
    assert torch.equal(frame, s.effect(ACT, 0.5, seed=1, t=1.0 + 0.2 / 60))
    assert not torch.equal(frame, s.effect(ACT, 0.5, seed=1, t=1.0 + 1 / 60))


def test_feature_dropout_and_tangles_work_on_whole_channels():
    dropped = get("feature_dropout").effect(ACT, 0.5, seed=4)
    scale = dropped.sum(dim=(0, 2, 3)) / ACT.sum(dim=(0, 2, 3))
    assert torch.allclose(dropped, ACT * scale.view(1, -1, 1, 1), atol=1e-6)    # each channel scaled as a whole
    assert ((scale < 1 - 1e-6).sum() > 0) and (scale > 1 - 1e-6).sum() > 0
    assert (get("feature_dropout").effect(ACT, 1.0, seed=4) == 0).all()          # at full intensity every one dark
    from installation.symptoms.base import kept_share
    onset = torch.tensor([0.5])                     # a channel dims over DIM_SPAN of the travel, not at once
    assert kept_share(0.5 / 1.1, onset) == 1.0 and kept_share((0.5 + 0.1) / 1.1, onset) == 0.0
    assert 0.4 < float(kept_share((0.5 + 0.05) / 1.1, onset)) < 0.6
    assert kept_share(0.0, torch.tensor([0.0])) == 1.0 and kept_share(1.0, torch.tensor([0.9999])) == 0.0
    order = tangles.channel_order(8, 0.7, seed=4)
    assert sorted(order.tolist()) == list(range(8)) and torch.equal(order[order], torch.arange(8))


def test_plaques_cover_the_intensity_share_and_grow_outward():
    onset = plaques.pixel_onsets(16, 16, seed=2)
    for intensity in (0.2, 0.5, 0.8):
        area = float((onset < intensity).float().mean())
        assert abs(area - intensity) < 0.01
    # a smooth field: neighbouring pixels fall into holes at nearby intensities
    assert float((onset[:, 1:] - onset[:, :-1]).abs().mean()) < 0.15           # noise would give ~0.33


def test_plaque_holes_hold_what_the_map_carries_most_of():
    """A hole takes each channel's median over the map (the picture's background), not zero: the
    black around a brain slice stays black where it is eaten, instead of lighting up grey."""
    act = torch.full((2, 3, 16, 16), 2.0)
    act[:, :, 4:9, 4:9] = 5.0                                      # a small bright "slice" on a background of 2
    act[1] *= -1.0                                                  # another picture, its own median
    effect = get("plaques").effect
    gone = effect(act, 1.0, seed=2)
    assert torch.allclose(gone[0], torch.full_like(gone[0], 2.0)) and torch.allclose(gone[1], torch.full_like(gone[1], -2.0))
    half = effect(act, 0.5, seed=2)
    onset, reach = plaques.pixel_onsets(16, 16, seed=2), 0.5 * (1 + plaques.EDGE)
    holes, whole = onset < reach - plaques.EDGE, onset >= reach     # fully eaten; untouched (between: the edge)
    assert holes.any() and whole.any()
    assert torch.equal(half[:, :, holes], torch.where(act[:, :, holes] > 0, 2.0, -2.0))
    assert torch.equal(half[:, :, whole], act[:, :, whole])
    odd = act * 0.7391                                              # values that do not round exactly
    assert torch.equal(effect(odd, 0.5, seed=2)[:, :, whole], odd[:, :, whole])   # untouched: exactly


# ------------------------------------------------------------------ latent

Z = torch.randn(3, 16, generator=torch.Generator().manual_seed(5))
Z = Z / Z.norm(dim=1, keepdim=True) * 4.0                     # on the shell sqrt(16)
ANCHORS = torch.randn(4, 16, generator=torch.Generator().manual_seed(6))


@pytest.mark.parametrize("name", LATENT)
def test_latent_symptom_identity_shell_determinism_and_growth(name):
    s = get(name)
    assert torch.equal(s.effect(Z, 0.0, ANCHORS, seed=1, t=3.0), Z)
    outs = {i: s.effect(Z, i, ANCHORS, seed=1, t=3.0) for i in (0.3, 0.6, 1.0)}
    for out in outs.values():
        assert torch.allclose(out.norm(dim=1), torch.full((3,), 4.0), atol=1e-4)
    dist = [float((outs[i] - Z).norm(dim=1).mean()) for i in (0.3, 0.6, 1.0)]
    assert 0 < dist[0] < dist[1] < dist[2]
    assert torch.equal(outs[0.6], s.effect(Z, 0.6, ANCHORS, seed=1, t=3.0))


def test_forgetting_ends_in_one_generic_image():
    out = forgetting.SYMPTOM.effect(Z, 1.0, ANCHORS, seed=1)
    assert torch.allclose(out, out[:1].expand_as(out), atol=1e-5)
    no_anchor = forgetting.SYMPTOM.effect(Z, 1.0, torch.zeros(0, 16), seed=1)
    assert not torch.allclose(no_anchor, forgetting.SYMPTOM.effect(Z, 1.0, torch.zeros(0, 16), seed=2))


def test_confusion_drifts_slowly_and_needs_memories():
    assert torch.equal(confusion.SYMPTOM.effect(Z, 1.0, torch.zeros(0, 16), seed=1, t=3.0), Z)
    frames = [confusion.SYMPTOM.effect(Z, 0.8, ANCHORS, seed=1, t=k / 30) for k in range(0, 30 * 60, 7)]
    steps = [float((b - a).norm(dim=1).max()) for a, b in zip(frames, frames[1:])]
    assert max(steps) < 0.2 and float((frames[-1] - frames[0]).norm()) > 0.5


# ------------------------------------------------------------------ walk

PHASES = [k * hesitation.SEGMENT_S / 100 for k in range(0, 16 * 100)]     # 16 segments


def test_hesitation_identity_endpoints_and_continuity():
    assert all(hesitation.warp(p, 0.0, seed=1) == p for p in PHASES)
    assert hesitation.SYMPTOM.warp(0.3, 0.7, seed=1) == hesitation.warp(0.3, 0.7, seed=1)
    for intensity in (0.4, 1.0):
        warped = [hesitation.warp(p, intensity, seed=1) for p in PHASES]
        assert max(abs(b - a) for a, b in zip(warped, warped[1:])) < 0.1 * hesitation.SEGMENT_S
        for k in range(16):
            assert hesitation.warp(k * hesitation.SEGMENT_S, intensity, seed=1) == pytest.approx(k * hesitation.SEGMENT_S)


def test_hesitation_stalls_grow_and_stutter_only_when_severe():
    def stalled(intensity):
        warped = [hesitation.warp(p, intensity, seed=1) for p in PHASES]
        return warped, {int(p / hesitation.SEGMENT_S) for p, w in zip(PHASES, warped) if w != p}
    mild, mild_segments = stalled(0.4)
    _, more_segments = stalled(0.5)
    severe, _ = stalled(1.0)
    assert mild_segments and mild_segments <= more_segments
    assert all(b >= a for a, b in zip(mild, mild[1:]))                  # never steps back when mild
    assert any(b < a for a, b in zip(severe, severe[1:]))               # stutters when severe
    assert [hesitation.warp(p, 0.5, seed=2) for p in PHASES] != stalled(0.5)[0]


def test_perseveration_loops_shrink_and_memories_return():
    base = lambda k: k % 7                                              # the walk's own order
    assert [perseveration.visit(k, base, 7, 0.0, seed=1) for k in range(50)] == [k % 7 for k in range(50)]
    assert [perseveration.visit(k, k % 7, 7, 0.0, seed=1) for k in range(50)] == [k % 7 for k in range(50)]
    low = {k for k in range(200) if perseveration.repeats(k, 0.4, seed=1)}
    high = {k for k in range(200) if perseveration.repeats(k, 0.5, seed=1)}
    assert low and low <= high
    loop = perseveration.loop_length(1.0)
    visits = [perseveration.visit(k, base, 7, 1.0, seed=1) for k in range(100, 200)]
    returns = sum(a == b for a, b in zip(visits, visits[loop:])) / (len(visits) - loop)
    assert returns > 0.8                                                # the same few memories
    assert perseveration.loop_length(1.0) < perseveration.loop_length(0.2)
    assert [perseveration.visit(k, base, 7, 0.7, seed=1) for k in range(60)] != \
           [perseveration.visit(k, base, 7, 0.7, seed=2) for k in range(60)]


def test_perseveration_loops_form_even_when_the_walk_passes_only_this_visits_anchor():
    """The walk may pass the plain anchor of visit k (no sequence): repeats still loop."""
    assert perseveration.SYMPTOM.visit(5, 3, 7, 0.0, seed=1) == 3
    loop = perseveration.loop_length(1.0)
    visits = [perseveration.SYMPTOM.visit(k, (k * 3) % 7, 7, 1.0, seed=1) for k in range(100, 200)]
    returns = sum(a == b for a, b in zip(visits, visits[loop:])) / (len(visits) - loop)
    assert returns > 0.8 and all(0 <= v < 7 for v in visits)


# ------------------------------------------------------------------ output

IMG = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(7)) * 2 - 1
TIMES = [k / 30 for k in range(0, 30 * 90)]                             # 90 s at 30 fps


@pytest.mark.parametrize("name", OUTPUT)
def test_output_symptom_is_identity_at_zero_and_seeded(name):
    s = get(name)
    assert all(torch.equal(s.effect(IMG, 0.0, seed=1, t=t), IMG) for t in TIMES[::97])
    assert torch.equal(s.effect(IMG, 0.7, seed=1, t=5.0), s.effect(IMG, 0.7, seed=1, t=5.0))


def test_lapses_grow_more_frequent_and_longer_and_fade():
    dark = {i: [lapses.darkness(t, i, seed=1) for t in TIMES] for i in (0.3, 0.4, 0.5, 1.0)}
    assert all(b >= a for a, b in zip(dark[0.4], dark[0.5]))            # monotone at every moment
    share = {i: sum(d > 0 for d in v) / len(TIMES) for i, v in dark.items()}
    assert 0 < share[0.3] < share[0.5] < share[1.0]
    assert max(abs(b - a) for a, b in zip(dark[1.0], dark[1.0][1:])) < 0.2   # a fade, not a cut
    assert max(dark[1.0]) == 1.0
    out = lapses.SYMPTOM.effect(IMG, 1.0, seed=1, t=TIMES[dark[1.0].index(1.0)])
    assert torch.equal(out, torch.full_like(IMG, -1.0))
    assert dark[0.5] != [lapses.darkness(t, 0.5, seed=2) for t in TIMES]


def test_fading_drains_colour_then_contrast():
    fading = get("fading")
    grey = fading.effect(IMG, 0.6, seed=0)
    assert torch.allclose(grey[:, 0], grey[:, 1], atol=1e-6) and grey.std() > 0.1
    gone = fading.effect(IMG, 1.0, seed=0)
    assert torch.allclose(gone, torch.full_like(IMG, gone.flatten()[0].item())) and gone.max() < -0.5
    spread = [float(fading.effect(IMG, i, seed=0).std()) for i in (0.0, 0.5, 1.0)]
    assert spread[0] > spread[1] > spread[2]


# ------------------------------------------------------------------ through the whole generator

@pytest.mark.parametrize("name", WEIGHTS + ACTIVATIONS + LATENT + OUTPUT)
def test_full_generator_output_is_finite_at_full_intensity(damage, hooks, name):
    intensities = {name: 1.0}
    z = levels.latent(Z, intensities, ANCHORS, t=4.0, seed=3)
    damage.load(intensities, seed=3)
    hooks.set_activation(intensities, t=4.0, seed=3)
    try:
        with torch.no_grad():
            img = levels.output(damage.generator(z), intensities, t=4.0, seed=3)
    finally:
        hooks.set_activation({}, t=0.0)
        damage.load({})
    assert torch.isfinite(img).all() and img.shape == (3, 3, 32, 32)


def test_latent_and_output_chains_are_identity_when_healthy_and_finite_when_not(generator):
    assert torch.equal(levels.latent(Z, {}, ANCHORS, t=2.0, seed=7), Z)
    with torch.no_grad():
        img = generator(Z)
    assert torch.equal(levels.output(img, {}, t=2.0, seed=7), img)
    sick = {"forgetting": 0.5, "confusion": 0.5, "fading": 0.7, "lapses": 1.0}
    z = levels.latent(Z, sick, ANCHORS, t=2.0, seed=7)
    assert torch.allclose(z.norm(dim=1), Z.norm(dim=1), atol=1e-4)
    assert torch.isfinite(levels.output(img, sick, t=2.0, seed=7)).all()
