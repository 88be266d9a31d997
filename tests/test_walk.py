"""The walk: smooth (no jumps at memories or loop seams), on the shell, seeded, never repeating."""
import math
import sys
import types

import numpy as np
import pytest
import torch

from installation.settings import Settings
from installation.walk import Walk, ease_travel

L = 16
R = math.sqrt(L)
DT = 1 / 60


@pytest.fixture
def anchors() -> torch.Tensor:
    z = torch.randn(6, L, generator=torch.Generator().manual_seed(0))
    return z * (R / z.norm(dim=1, keepdim=True))


def _walk(anchors, **kw) -> Walk:
    args = dict(seed=3, seconds_per_memory=6.0, dwell_s=2.0, ease=0.3, wander=0.08, wander_period_s=5.0)
    args.update(kw)
    return Walk(anchors, L, **args)


def _path(walk: Walk, start: float, end: float, **kw) -> torch.Tensor:
    return walk.z_batch(list(np.arange(start, end, DT)), **kw).double()


def _speed_bound(walk: Walk, visits: int) -> float:
    """Fastest the latent may move (units/s): the widest journey at peak eased speed, plus the drift."""
    widest = max(math.acos(np.clip(np.dot(walk._point(k, 0), walk._point(k + 1, 0)) / R ** 2, -1, 1))
                 for k in range(-1, visits + 1))
    travel = widest * R / (1.0 - walk.ease) / (walk.segment_s - walk.dwell_s)
    drift = walk.wander * R * 2 * math.pi * float(walk._wander_freqs.max())
    return travel + drift


@pytest.mark.parametrize("mode", ["anchors", "random", "loop"])
def test_the_path_never_jumps(anchors, mode):
    walk = _walk(anchors, mode=mode)
    z = _path(walk, -1.0, 8 * walk.segment_s)  # crosses several departures and arrivals
    step = (z[1:] - z[:-1]).norm(dim=1)
    assert step.max() <= 1.05 * _speed_bound(walk, 9) * DT
    # velocity has no jumps either (eased departures and arrivals): tiny second differences
    accel = (z[2:] - 2 * z[1:-1] + z[:-2]).norm(dim=1)
    assert accel.max() < 0.1 * step.max()


def test_constant_speed_would_jolt_so_ease_matters(anchors):
    jolting = _walk(anchors, ease=0.0, dwell_s=2.0, wander=0.0)
    z = _path(jolting, 0.0, 12.0)
    step = (z[1:] - z[:-1]).norm(dim=1)
    accel = (z[2:] - 2 * z[1:-1] + z[:-2]).norm(dim=1)
    assert accel.max() > 0.3 * step.max()  # the check above would catch a missing ease


def test_ease_is_continuous_and_monotone():
    s = np.linspace(0, 1, 2001)
    for ease in (0.0, 0.1, 0.3, 0.5):
        f = np.array([ease_travel(x, ease) for x in s])
        assert f[0] == 0.0 and f[-1] == pytest.approx(1.0) and np.all(np.diff(f) >= 0)
        assert ease_travel(0.5, ease) == pytest.approx(0.5)


def test_latents_stay_on_the_shell(anchors):
    for mode in ("anchors", "random", "loop"):
        z = _walk(anchors, mode=mode).z_batch(list(np.linspace(0, 100, 301)))
        assert z.dtype == torch.float32 and z.shape == (301, L)
        assert torch.allclose(z.norm(dim=1), torch.full((301,), R), rtol=1e-5)


def test_arrives_at_each_memory_on_time(anchors):
    still = _walk(anchors, wander=0.0)
    for k in range(12):
        arrival = k * still.segment_s
        memory = anchors[still.visit(k)]
        for phase in (arrival - 0.99, arrival, arrival + 0.99):  # the dwell: resting at the memory
            assert torch.allclose(still.z_at(phase), memory, atol=1e-5)
        assert still.where(arrival).from_anchor == still.visit(k)
    breathing = _walk(anchors)
    for k in range(12):
        gap = (breathing.z_at(k * breathing.segment_s) - anchors[breathing.visit(k)]).norm()
        assert 0 < gap <= breathing.wander * R * 1.01


def test_every_journey_takes_the_same_time(anchors):
    walk = _walk(anchors)
    for k in range(10):
        middle = walk.where((k + 0.5) * walk.segment_s)
        assert middle.fraction == pytest.approx(0.5) and middle.visit == k
        assert (middle.from_anchor, middle.to_anchor) == (walk.visit(k), walk.visit(k + 1))


def test_order_never_repeats_a_memory_twice_in_a_row_and_never_settles_into_a_cycle(anchors):
    walk = _walk(anchors)
    n = len(anchors)
    order = [walk.visit(k) for k in range(60 * n)]
    assert all(a != b for a, b in zip(order, order[1:]))
    blocks = [tuple(order[i:i + n]) for i in range(0, len(order), n)]
    assert all(sorted(b) == list(range(n)) for b in blocks)  # every memory in every round
    assert len(set(blocks)) > 40                             # and the rounds differ


def test_walk_is_deterministic_and_seeded(anchors):
    phases = list(np.linspace(0, 50, 97))
    assert torch.equal(_walk(anchors).z_batch(phases), _walk(anchors).z_batch(phases))
    assert not torch.allclose(_walk(anchors).z_batch(phases), _walk(anchors, seed=4).z_batch(phases))
    walk = _walk(anchors)
    assert torch.equal(walk.z_batch(phases[:3]), torch.stack([walk.z_at(p) for p in phases[:3]]))


def test_loop_seam_is_exact(anchors):
    walk = _walk(anchors, mode="loop", loop_memories=4)
    period = walk.period_s
    assert period == pytest.approx(4 * 6.0)
    for phase in (0.0, 0.25, 3.5, 10.125, period - 0.5):  # exactly representable: bit-identical
        assert torch.equal(walk.z_at(phase + period), walk.z_at(phase))
        assert torch.equal(walk.z_at(phase + 3 * period), walk.z_at(phase))
    for phase in np.random.default_rng(0).uniform(0, period, 20):
        assert torch.allclose(walk.z_at(phase + period), walk.z_at(phase), atol=1e-6)
    assert [walk.visit(k) for k in range(8)] == [walk.visit(k) for k in range(4)] * 2
    across = _path(walk, period - 1.0, period + 1.0)
    assert (across[1:] - across[:-1]).norm(dim=1).max() <= 1.05 * _speed_bound(walk, 5) * DT


def test_loop_period_setting_sets_the_pace(anchors):
    walk = _walk(anchors, mode="loop", loop_period_s=60.0)
    assert walk.period_s == pytest.approx(60.0) and walk.segment_s == pytest.approx(10.0)
    assert walk.dwell_s == pytest.approx(2.0 * 10.0 / 6.0)


def test_random_mode_needs_no_anchors():
    walk = Walk(torch.zeros(0, L), L, mode="anchors", seed=1, seconds_per_memory=5.0, dwell_s=1.0)
    assert walk.mode == "random"
    z = walk.z_batch(list(np.linspace(0, 60, 121)))
    assert torch.isfinite(z).all() and torch.allclose(z.norm(dim=1), torch.full((121,), R), rtol=1e-5)
    assert walk.where(7.0).from_anchor == -1
    assert not torch.allclose(walk.z_at(0.0), walk.z_at(5.0))  # it does go somewhere
    loop = Walk(None, L, mode="loop", seed=1, seconds_per_memory=5.0, dwell_s=1.0)
    assert torch.equal(loop.z_at(1.5), loop.z_at(1.5 + loop.period_s))


def test_from_settings(anchors):
    walk = Walk.from_settings(Settings().walk, anchors, L, seed=5)
    assert walk.segment_s == Settings().walk.seconds_per_memory and walk.mode == "anchors"


def test_perseveration_chooses_the_visits(anchors, monkeypatch):
    calls = []

    def visit(k, base_anchor, n_anchors, intensity, seed):
        calls.append((k, base_anchor, n_anchors, intensity, seed))
        return 2 if intensity > 0.5 else base_anchor(k)

    fake = types.ModuleType("installation.symptoms.perseveration")
    fake.SYMPTOM = types.SimpleNamespace(visit=visit)
    monkeypatch.setitem(sys.modules, "installation.symptoms.perseveration", fake)
    walk = _walk(anchors, wander=0.0)
    assert walk.visit(4, perseveration=0.9) == 2
    k, base, n, intensity, seed = calls[-1]
    assert (k, n, intensity, seed) == (4, 6, 0.9, 3)
    assert [base(j) for j in range(12)] == [walk.visit(j) for j in range(12)]   # the walk's own sequence
    assert torch.allclose(walk.z_at(4 * walk.segment_s, perseveration=0.9), anchors[2], atol=1e-5)
    assert walk.visit(4, perseveration=0.3) == walk.visit(4)


def test_rising_perseveration_never_makes_the_walk_jump(anchors):
    """The course raises perseveration while the walk travels: the path must stay continuous."""
    walk = _walk(anchors, wander=0.0)
    n = 4000
    phases = np.linspace(0.0, 40 * walk.segment_s, n)
    zs = np.stack([walk.z_at(ph, perseveration=i / (n - 1)).numpy() for i, ph in enumerate(phases)])
    steps = np.linalg.norm(np.diff(zs, axis=0), axis=1)
    healthy = np.stack([walk.z_at(ph).numpy() for ph in phases])
    # no step larger than the healthy walk's own largest step allows (plus the slide's share)
    assert steps.max() < 2.5 * np.linalg.norm(np.diff(healthy, axis=0), axis=1).max()
    # and perseveration did change where the walk went
    assert any(walk.visit(k, 0.9) != walk.visit(k) for k in range(40))


def test_hesitation_warps_the_phase_first(anchors, monkeypatch):
    fake = types.ModuleType("installation.symptoms.hesitation")
    fake.SYMPTOM = types.SimpleNamespace(warp=lambda phase, intensity, seed: phase * (1 - intensity))
    monkeypatch.setitem(sys.modules, "installation.symptoms.hesitation", fake)
    walk = _walk(anchors)
    assert torch.equal(walk.z_at(20.0, hesitation=0.5), walk.z_at(10.0))
    assert walk.where(20.0, hesitation=0.5) == walk.where(10.0)


def test_bad_arguments_are_refused(anchors):
    with pytest.raises(ValueError):
        Walk(anchors, L, mode="spiral")
    with pytest.raises(ValueError):
        Walk(anchors, L, seconds_per_memory=2.0, dwell_s=3.0)
    with pytest.raises(ValueError):
        Walk(anchors, L + 1)
