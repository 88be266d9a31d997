"""Weight damage: pristine weights + weight-symptom intensities -> damaged weights, purely.

Why it exists: the weight symptoms are pure functions of the pristine weights, so one object
keeps those (a CPU copy, never touched), the training snapshots regression walks back through
and where each symptom is aimed, and computes a damaged set for any intensities and seed. It
touches no live model and starts no thread: damage.py schedules the computations and loads
their results into the generator.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Optional, Sequence

import torch
from torch import nn

from .symptoms import SYMPTOMS
from .symptoms.base import clean_intensity
from .symptoms.layers import matches, param_infos
from .targets import default_targets, params_selected, retarget

# Weight symptoms run in this order on each tensor: go back in time first (regression), then
# disturb the values (noise, precision, bits), and kill last, so dead synapses stay exactly dead.
WEIGHT_ORDER = ("regression", "misidentification", "noise_swell", "weight_noise", "precision_loss", "bit_rot",
                "synapse_loss", "neuron_death")
INTENSITY_RESOLUTION = 1000   # weight intensities are rounded to 1/1000: finer is invisible and
                              # would keep the worker recomputing as a course creeps forward

Weights = dict[str, torch.Tensor]


def weight_levels(intensities: Mapping[str, float]) -> tuple[tuple[str, float], ...]:
    """The non-zero weight-symptom intensities, rounded, in WEIGHT_ORDER: the cache key's core."""
    levels = []
    for name in WEIGHT_ORDER:
        level = round(clean_intensity(intensities.get(name, 0.0)) * INTENSITY_RESOLUTION) / INTENSITY_RESOLUTION
        if level > 0.0:
            levels.append((name, level))
    return tuple(levels)


@dataclass(frozen=True)
class Recipe:
    """What one set of damaged weights is made of: levels, seed and the targets of the moment
    (a copy, so retargeting while it is computed cannot mix two)."""
    levels: tuple
    seed: int
    targets: Mapping[str, str]
    targets_version: int

    @property
    def key(self) -> tuple:
        """Equal keys, equal weights: () is pristine, whatever the seed or targets."""
        return (self.levels, self.seed, self.targets_version) if self.levels else ()


class WeightDamage:
    """Pristine weights + intensities + seed -> damaged weights (CPU tensors)."""

    def __init__(self, generator: nn.Module, snapshots: Optional[Sequence[Mapping[str, torch.Tensor]]] = None,
                 targets: Optional[Mapping[str, str]] = None, seed: int = 0):
        self.seed = int(seed)
        # a CPU copy, so recomputing never competes with rendering for the GPU
        self.pristine: Weights = {n: v.detach().to("cpu", copy=True) for n, v in generator.state_dict().items()}
        self.snapshots = [{n: v.detach().to("cpu", torch.float32) for n, v in s.items()} for s in snapshots or []]
        self.infos = param_infos(generator, self.snapshots)
        self.targets = default_targets()
        self._targets_version = 0
        self.set_targets(targets or {})

    def set_targets(self, targets: Mapping[str, str]) -> None:
        """Override target patterns (targets.retarget); later recipes use them."""
        self.targets = retarget(self.targets, targets)
        self._targets_version += 1

    def targeted_params(self, name: str) -> list[str]:
        """State-dict entries a weight symptom touches under the current targets."""
        return params_selected(self.infos, name, self.targets[name])

    def recipe(self, intensities: Mapping[str, float], seed: Optional[int] = None) -> Recipe:
        """The recipe of these intensities' damaged weights (seed None: this damage's own)."""
        return Recipe(weight_levels(intensities), self.seed if seed is None else int(seed), dict(self.targets),
                      self._targets_version)

    def key(self, intensities: Mapping[str, float], seed: Optional[int] = None) -> tuple:
        """A cache key: two intensities (and seeds) with the same key give the same weights."""
        return self.recipe(intensities, seed).key

    def same_weights(self, a: Mapping[str, float], b: Mapping[str, float], seed_a=None, seed_b=None) -> bool:
        """Whether two frames' intensities (and seeds) give the same damaged weights."""
        return self.key(a, seed_a) == self.key(b, seed_b)

    def weights_for(self, intensities: Mapping[str, float], seed: Optional[int] = None) -> Weights:
        """Damaged weights for these intensities, computed from pristine. Untouched entries are
        the pristine tensors themselves: do not modify the result."""
        return self.compute(self.recipe(intensities, seed))

    def compute(self, recipe: Recipe) -> Weights:
        """The damaged weights of a recipe (weights_for, for a recipe taken earlier)."""
        weights = dict(self.pristine)
        for name, level in recipe.levels:
            symptom = SYMPTOMS[name]
            for param, info in self.infos.items():
                if symptom.applies_to(info) and matches(recipe.targets[name], param):
                    weights[param] = symptom.damage(param, weights[param], level, recipe.seed, info)
        return weights
