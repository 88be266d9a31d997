"""Damage keeps the pristine network safe, loads exactly what the symptoms compute, and the
background path ends where the synchronous one does; the activation hooks follow their targets."""
import copy
import time

import pytest
import torch

from installation.damage import Damage
from installation.hooks import ActivationHooks
from installation.targets import target_problems
from installation.weights import WeightDamage
from models.dcgan import DCGANConfig, Generator

WEIGHT_MIX = {"synapse_loss": 0.3, "weight_noise": 0.2, "precision_loss": 0.5, "bit_rot": 0.1,
              "regression": 0.4, "neuron_death": 0.3}
Z = torch.randn(2, 16, generator=torch.Generator().manual_seed(0))


@pytest.fixture
def generator():
    torch.manual_seed(0)
    return Generator(DCGANConfig(image_size=32, latent_size=16, width=4)).eval()


@pytest.fixture
def damage(generator):
    snapshots = [{n: v + 0.3 * torch.randn_like(v) if "running_var" not in n else v.clone()
                  for n, v in generator.state_dict().items() if v.is_floating_point()} for _ in range(2)]
    d = Damage(generator, WeightDamage(generator, snapshots=snapshots, seed=7))
    yield d
    d.close()


@pytest.fixture
def hooks(generator):
    h = ActivationHooks(generator, seed=7)
    yield h
    h.close()


def live_equals(d: Damage, weights: dict) -> bool:
    live = d.generator.state_dict()
    return all(torch.equal(live[n], weights[n].to(live[n].device)) for n in weights)


def render(g: torch.nn.Module) -> torch.Tensor:
    with torch.no_grad():
        return g(Z)


def wait_and_swap(d: Damage, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    swapped = False
    while time.monotonic() < deadline:
        swapped |= d.swap_if_ready()
        if not d.busy():
            return swapped
        time.sleep(0.002)
    raise AssertionError("the damage worker did not finish in time")


def test_all_zero_intensities_are_the_pristine_weights_bit_for_bit(damage):
    weights = damage.weights.weights_for({name: 0.0 for name in WEIGHT_MIX})
    assert weights.keys() == damage.weights.pristine.keys()
    assert all(torch.equal(weights[n], damage.weights.pristine[n]) for n in weights)
    assert live_equals(damage, damage.weights.pristine)


def test_load_loads_the_computed_weights_and_revives_exactly(damage):
    before = render(damage.generator)
    assert damage.load(WEIGHT_MIX)
    assert live_equals(damage, damage.weights.weights_for(WEIGHT_MIX))
    assert not torch.equal(render(damage.generator), before)
    assert damage.load({})
    assert live_equals(damage, damage.weights.pristine) and torch.equal(render(damage.generator), before)


def test_unchanged_weight_intensities_are_not_recomputed(damage):
    assert damage.load(WEIGHT_MIX)
    assert not damage.load({**WEIGHT_MIX, "plaques": 0.8, "lapses": 1.0})   # other levels: no work
    assert not damage.load({**WEIGHT_MIX, "bit_rot": 0.1 + 1e-5})            # below the resolution
    assert damage.load(WEIGHT_MIX, seed=8)                                  # a new seed is new damage


def test_pristine_is_never_modified(damage):
    kept = copy.deepcopy(damage.weights.pristine)
    damage.load(WEIGHT_MIX)
    damage.request({"bit_rot": 1.0, "neuron_death": 1.0})
    wait_and_swap(damage)
    damage.weights.weights_for({"regression": 1.0, "weight_noise": 1.0})
    assert all(torch.equal(kept[n], damage.weights.pristine[n]) for n in kept)


def test_background_request_and_swap_match_load(generator, damage):
    expected = damage.weights.weights_for(WEIGHT_MIX)
    damage.compute_s = 10.0                                                  # recomputes go to the worker
    damage.request(WEIGHT_MIX)
    assert wait_and_swap(damage)
    assert live_equals(damage, expected)
    assert not damage.swap_if_ready()                                        # nothing left to swap


def test_newer_request_supersedes_older_ones(damage):
    for step in range(5):
        damage.request({"synapse_loss": 0.1 * step, "weight_noise": 0.05 * step})
    wait_and_swap(damage)
    assert live_equals(damage, damage.weights.weights_for({"synapse_loss": 0.4, "weight_noise": 0.2}))


def test_going_back_to_what_is_live_drops_the_results_in_flight(damage):
    damage.load(WEIGHT_MIX)
    damage.request({"bit_rot": 1.0})
    damage.request(WEIGHT_MIX)                                               # changed my mind
    wait_and_swap(damage)
    assert live_equals(damage, damage.weights.weights_for(WEIGHT_MIX))


def test_the_first_damage_is_live_at_once_and_measures_a_warm_recompute(damage):
    damage.request(WEIGHT_MIX)                       # e.g. a kiosk resuming late in the course
    assert live_equals(damage, damage.weights.weights_for(WEIGHT_MIX))               # not pristine for a few frames
    assert damage.compute_s is not None and not damage.busy()


def test_warmed_the_first_touch_draws_nothing_and_is_still_live_at_once(damage):
    """The app warms the damage before its first frame: a performer's first knob on a healthy
    piece then draws no fields on the render thread, and still shows on the very next frame."""
    from installation.symptoms.base import FIELDS
    damage.warm()
    draws = FIELDS.draws
    damage.request(WEIGHT_MIX, urgent=True)
    assert FIELDS.draws == draws and live_equals(damage, damage.weights.weights_for(WEIGHT_MIX)) and not damage.busy()
    assert damage.compute_s is not None                  # and that one recompute was timed


def test_a_revive_reaches_the_live_weights_at_once_and_outlives_stale_results(damage):
    damage.request(WEIGHT_MIX)                                               # the first: at once
    assert live_equals(damage, damage.weights.weights_for(WEIGHT_MIX))
    damage.request({"bit_rot": 1.0})                                         # on its way...
    damage.request({})                                                       # ...then revive
    assert live_equals(damage, damage.weights.pristine)                              # no worker, no swap needed
    wait_and_swap(damage)
    assert live_equals(damage, damage.weights.pristine)                              # the stale result is dropped


def test_an_urgent_change_is_live_at_once_when_a_recompute_is_cheap(damage):
    damage.load(WEIGHT_MIX)                                                 # measures a recompute
    assert damage.compute_s is not None
    damage.compute_s = 0.001                                                 # lately cheap
    damage.request({"bit_rot": 0.9}, urgent=True)                            # a performer's knob
    assert live_equals(damage, damage.weights.weights_for({"bit_rot": 0.9}))         # no worker, no swap
    assert not damage.busy()
    damage.request({"bit_rot": 0.8}, urgent=True)                            # still turning: the worker
    assert live_equals(damage, damage.weights.weights_for({"bit_rot": 0.9}))
    assert wait_and_swap(damage)
    assert live_equals(damage, damage.weights.weights_for({"bit_rot": 0.8}))


def test_keys_tapped_one_after_another_each_answer_at_once(damage, monkeypatch):
    """A second tap soon after the first (the worker idle) is computed at once too; a change while
    the worker is still busy with a turning knob waits for it, so frames do not all grow longer."""
    import installation.damage as damage_module
    clock = {"now": 100.0}
    monkeypatch.setattr(damage_module.time, "monotonic", lambda: clock["now"])
    damage.load(WEIGHT_MIX)
    damage.compute_s = 0.001
    damage.request({"bit_rot": 0.9}, urgent=True)
    clock["now"] += damage_module.URGENT_AGAIN_S + 0.01                     # the next tap
    damage.request({"bit_rot": 0.8}, urgent=True)
    assert live_equals(damage, damage.weights.weights_for({"bit_rot": 0.8})) and not damage.busy()
    clock["now"] += 0.01
    damage.request({"bit_rot": 0.7}, urgent=True)                            # a knob: to the worker
    assert live_equals(damage, damage.weights.weights_for({"bit_rot": 0.8}))
    clock["now"] += damage_module.URGENT_AGAIN_S + 0.01
    busy = damage.busy()                                                     # 0.7 waits to be swapped in
    damage.request({"bit_rot": 0.6}, urgent=True)                            # still turning: the worker
    assert busy and not live_equals(damage, damage.weights.weights_for({"bit_rot": 0.6}))
    assert wait_and_swap(damage)
    assert live_equals(damage, damage.weights.weights_for({"bit_rot": 0.6}))


def test_an_urgent_change_goes_through_the_worker_when_a_recompute_is_slow(damage):
    damage.load(WEIGHT_MIX)
    damage.compute_s = 10.0                                                  # a big model: would stall
    damage.request({"bit_rot": 0.9}, urgent=True)
    damage.compute_s = 10.0                                                  # (the worker measures too)
    assert live_equals(damage, damage.weights.weights_for(WEIGHT_MIX))               # the picture did not wait
    assert wait_and_swap(damage)
    assert live_equals(damage, damage.weights.weights_for({"bit_rot": 0.9}))


def test_load_supersedes_a_background_request(damage):
    damage.request({"bit_rot": 1.0})
    damage.load({"synapse_loss": 0.5})
    wait_and_swap(damage)
    assert live_equals(damage, damage.weights.weights_for({"synapse_loss": 0.5}))


def test_activation_symptoms_follow_set_activation_and_targets(generator, hooks):
    clean = render(generator)
    hooks.set_activation({"plaques": 0.6}, t=1.0)
    holed = render(generator)
    assert not torch.equal(holed, clean)
    hooks.set_activation({"plaques": 0.6}, t=1.0)
    assert torch.equal(render(generator), holed)                             # same state, same frame
    hooks.set_activation({}, t=1.0)
    assert torch.equal(render(generator), clean)
    assert hooks.targeted_layers("plaques") == ["up16"]
    hooks.set_targets({"plaques": "stem,blocks.up8"})
    assert hooks.targeted_layers("plaques") == ["stem", "up8"]
    hooks.set_targets({"plaques": ""})                                       # "" = its own default
    assert hooks.targeted_layers("plaques") == ["up16"]
    with pytest.raises(KeyError, match="amnesia"):
        hooks.set_targets({"amnesia": "*"})


def test_weight_targets_limit_where_damage_falls(damage):
    damage.weights.set_targets({"synapse_loss": "to_rgb"})
    weights = damage.weights.weights_for({"synapse_loss": 1.0})
    assert torch.equal(weights["to_rgb.weight"], torch.zeros_like(weights["to_rgb.weight"]))
    assert all(weights[n] is damage.weights.pristine[n] for n in weights if not n.startswith("to_rgb"))
    with pytest.raises(KeyError, match="amnesia"):
        damage.weights.set_targets({"amnesia": "*"})


def test_targets_that_select_nothing_are_named(generator):
    def problems(targets):
        return target_problems(generator, targets)
    assert problems({"synapse_loss": "to_rgb", "plaques": "up*,stem", "static": ""}) == []
    (typo,) = problems({"static": "up99"})
    assert typo.startswith("symptoms.static.target: 'up99' selects nothing") and "stem, up8" in typo
    (one,) = problems({"plaques": "up8, nolayer"})
    assert "'nolayer' selects nothing plaques acts on" in one
    (walk,) = problems({"hesitation": "up8"})
    assert "hesitation acts on the walk, not on layers" in walk
    (commas,) = problems({"plaques": " , "})                                # would silently turn it off
    assert "' , ' names no layer" in commas and "'' for the symptom's own" in commas


def test_a_bad_target_stops_the_live_piece_before_its_window_opens(tiny_checkpoint, monkeypatch, capsys):
    from installation import app
    from installation.cli import main
    opened = []
    monkeypatch.setattr(app, "open_screen", lambda *a, **k: opened.append(a) or pytest.fail("a window opened"))
    assert main(["--model", str(tiny_checkpoint), "--seconds", "1", "--windowed",
                 "--set", "symptoms.plaques.target=up99"]) == 2
    assert "symptoms.plaques.target: 'up99'" in capsys.readouterr().err and not opened


def test_a_target_that_selects_nothing_stops_the_piece_before_it_starts(tiny_checkpoint, tmp_path):
    from conftest import run_main
    r = run_main("installation", "render", "--model", tiny_checkpoint, "--frames", tmp_path / "f", "--seconds", "0.1",
                 "--size", "32x32", "--set", "symptoms.static.target=up99")
    assert r.returncode == 2 and "symptoms.static.target: 'up99'" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "f").exists()


def test_a_dead_gpu_in_the_worker_is_raised_on_the_render_thread(damage, monkeypatch):
    damage.compute_s = 10.0                         # recomputes go to the worker

    def dead(*a, **k):
        raise RuntimeError("CUDA error: an illegal memory access was encountered")
    monkeypatch.setattr(damage, "_compute", dead)
    damage.request(WEIGHT_MIX)
    deadline = time.time() + 10
    with pytest.raises(RuntimeError, match="CUDA"):
        while time.time() < deadline:          # the kiosk exits non-zero on it and is restarted
            damage.swap_if_ready()
            time.sleep(0.01)


def test_an_ordinary_worker_failure_keeps_the_weights_and_is_logged_once(damage, monkeypatch, caplog):
    damage.compute_s = 10.0                         # recomputes go to the worker

    def broken(*a, **k):
        raise ValueError("a symptom failed")
    monkeypatch.setattr(damage, "_compute", broken)
    for level in (0.2, 0.3):
        damage.request({"bit_rot": level})
        deadline = time.time() + 10
        while damage.busy() and time.time() < deadline:
            damage.swap_if_ready()
            time.sleep(0.01)
    assert live_equals(damage, damage.weights.pristine)
    assert sum("computing damaged weights failed" in r.message for r in caplog.records) == 1


def test_close_removes_the_hooks(generator, hooks):
    clean = render(generator)
    hooks.close()
    hooks.set_activation({"feature_dropout": 1.0, "static": 1.0}, t=0.0)
    assert torch.equal(render(generator), clean)


def test_a_worker_left_running_is_stopped_at_exit(damage):
    """A script that never closes its engine: the exit hook stops the worker before the interpreter
    freezes daemon threads (one frozen inside torch aborts the process)."""
    from installation import damage as damage_module
    damage.compute_s = 10.0
    damage.request(WEIGHT_MIX)
    assert damage._worker.is_alive() and damage in damage_module._RUNNING
    damage_module._close_at_exit()
    assert not damage._worker.is_alive() and damage not in damage_module._RUNNING


def test_a_tap_answers_at_once_even_while_the_worker_follows_a_glide(damage, monkeypatch):
    """A key pressed while the glide of the gesture before it keeps the worker busy (and its last
    urgent change was just now): the tap's first change that needs new weights is computed at once.
    A knob's events, one every frame, stay rate-limited as before."""
    import installation.damage as damage_module
    clock = {"now": 100.0}
    monkeypatch.setattr(damage_module.time, "monotonic", lambda: clock["now"])
    damage.load(WEIGHT_MIX)
    damage.compute_s = 0.001
    damage.request({"bit_rot": 0.9}, urgent=True, event=True)               # a gesture begins: at once
    assert live_equals(damage, damage.weights.weights_for({"bit_rot": 0.9}))
    clock["now"] += 0.01
    damage.request({"bit_rot": 0.85}, urgent=True)                          # its glide: to the worker
    assert damage.busy() and live_equals(damage, damage.weights.weights_for({"bit_rot": 0.9}))
    clock["now"] += damage_module.TAP_QUIET_S + 0.01                     # a tap, the glide's result unswapped
    damage.request({"bit_rot": 0.9}, urgent=True, event=True)               # its first frame asks for what is live
    clock["now"] += 0.01
    damage.request({"bit_rot": 0.5}, urgent=True)                           # the tap's first change
    assert live_equals(damage, damage.weights.weights_for({"bit_rot": 0.5}))
    clock["now"] += 0.01
    damage.request({"bit_rot": 0.45}, urgent=True, event=True)              # a knob: events every frame
    assert not live_equals(damage, damage.weights.weights_for({"bit_rot": 0.45}))
    assert wait_and_swap(damage)
    assert live_equals(damage, damage.weights.weights_for({"bit_rot": 0.45}))
