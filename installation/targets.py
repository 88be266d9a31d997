"""Where each symptom is aimed: target patterns over a generator's layers and parameters.

Why it exists: settings.yaml aims a weight symptom at state-dict entries and an activation
symptom at hooked layers with the same patterns (symptoms/layers.py's `matches`). The weight
damage (weights.py) and the activation hooks (hooks.py) each keep a symptom -> pattern table;
this module builds those tables and says, without copying a weight or hooking a layer, what a
pattern selects and which patterns select nothing.
"""
from __future__ import annotations

from typing import Mapping

from torch import nn

from .symptoms import SYMPTOMS, get
from .symptoms.base import ParamInfo
from .symptoms.layers import layer_modules, layer_of, matches, param_infos


def default_targets() -> dict[str, str]:
    """Symptom name -> its own default pattern, for every symptom."""
    return {name: s.default_target for name, s in SYMPTOMS.items()}


def retarget(current: Mapping[str, str], targets: Mapping[str, str]) -> dict[str, str]:
    """`current` with these patterns set (symptom name -> pattern, see symptoms.layers.matches).
    An empty pattern or None means the symptom's own default, as in settings.yaml; an unknown
    name is a KeyError that names it."""
    out = dict(current)
    for name, pattern in targets.items():
        symptom = get(name)
        out[name] = str(pattern) if pattern else symptom.default_target
    return out


def hooked_layers(generator: nn.Module) -> dict[str, tuple[nn.Module, str]]:
    """Meaningful layer name -> (the module activation symptoms hook, its module path)."""
    paths = {id(m): path for path, m in generator.named_modules()}
    return {layer: (module, paths[id(module)]) for layer, module in layer_modules(generator).items()}


def selects(layers: Mapping[str, tuple[nn.Module, str]], pattern: str, layer: str) -> bool:
    """Whether a target pattern selects a hooked layer (by its meaningful name or module path)."""
    return matches(pattern, layer) or matches(pattern, layers[layer][1])


def params_selected(infos: Mapping[str, ParamInfo], name: str, pattern: str) -> list[str]:
    """State-dict entries weight symptom `name` would touch under `pattern`."""
    symptom = get(name)
    return [p for p, info in infos.items() if symptom.applies_to(info) and matches(pattern, p)]


def target_problems(generator: nn.Module, targets: Mapping[str, str], infos: Mapping[str, ParamInfo] | None = None,
                    layers: Mapping[str, tuple[nn.Module, str]] | None = None, snapshots=()) -> list[str]:
    """What is wrong with these target patterns on this generator, worded for settings.yaml:
    a pattern (or one of its comma-separated alternatives) that selects nothing the symptom
    can act on would leave the symptom silently doing nothing. Needs no weights copied and no
    hooks: `infos` and `layers` are worked out when not given."""
    infos = param_infos(generator, snapshots) if infos is None else infos
    layers = hooked_layers(generator) if layers is None else layers
    names = list(getattr(generator, "layer_names", None) or sorted({layer_of(p) for p in infos}))
    problems = []
    for name, pattern in targets.items():
        symptom = get(name)
        if not pattern:
            continue
        if symptom.level not in ("weights", "activations"):
            problems.append(f"symptoms.{name}.target: {pattern!r}: {name} acts on the {symptom.level}, not "
                            f"on layers; allowed: '' (no target)")
            continue
        if not any(a.strip() for a in str(pattern).split(",")):
            problems.append(f"symptoms.{name}.target: {pattern!r} names no layer; allowed: patterns over "
                            f"its layers {', '.join(names)} (e.g. 'up*'), or '' for the symptom's own")
            continue
        for alt in (a.strip() for a in str(pattern).split(",")):
            hit = (params_selected(infos, name, alt) if symptom.level == "weights"
                   else any(selects(layers, alt, layer) for layer in layers))
            if alt and not hit:
                which = f"{pattern!r}" if alt == pattern.strip() else f"{pattern!r}: {alt!r}"
                problems.append(f"symptoms.{name}.target: {which} selects nothing {name} acts on "
                                f"in this model; allowed: patterns over its layers {', '.join(names)} "
                                f"(e.g. 'up*')")
    return problems
