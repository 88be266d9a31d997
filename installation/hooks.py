"""Activation symptoms, in forward hooks on a generator's meaningful layers.

Why it exists: activation symptoms act on the feature maps while the network draws, so they
live in forward hooks rather than in the weights. The hooks read what `set_activation` (or
`set_activation_batch`, one state per sample) last said, so a frame sets them once and then
runs the generator; `close` removes them. Call everything from the render thread.
"""
from __future__ import annotations

from functools import partial
from typing import Mapping, Optional, Sequence

import torch
from torch import nn

from .symptoms import SYMPTOMS, at_level
from .symptoms.base import clean_intensity, stable_seed
from .targets import default_targets, hooked_layers, retarget, selects


class ActivationHooks:
    """Intensities and t per frame -> the activation symptoms' effects inside the generator."""

    def __init__(self, generator: nn.Module, targets: Optional[Mapping[str, str]] = None, seed: int = 0):
        self.seed = int(seed)
        self.layers = hooked_layers(generator)
        self.targets = default_targets()
        self._activation = ({}, 0.0, self.seed)
        self._batch: Optional[list] = None
        self._hooks = [module.register_forward_hook(partial(self._hook, layer))
                       for layer, (module, _) in self.layers.items()]
        self._active_layers: dict[str, tuple[str, ...]] = {}
        self.set_targets(targets or {})

    def set_targets(self, targets: Mapping[str, str]) -> None:
        """Override target patterns (targets.retarget) from the next forward pass on."""
        self.targets = retarget(self.targets, targets)
        self._active_layers = {
            layer: tuple(s.name for s in at_level("activations") if selects(self.layers, self.targets[s.name], layer))
            for layer in self.layers}

    def targeted_layers(self, name: str) -> list[str]:
        """Layers an activation symptom touches under the current targets."""
        return [layer for layer, names in self._active_layers.items() if name in names]

    def _state(self, intensities: Mapping[str, float], t: float, seed: Optional[int]) -> tuple:
        levels = {s.name: clean_intensity(intensities.get(s.name, 0.0)) for s in at_level("activations")}
        return ({n: v for n, v in levels.items() if v > 0.0}, float(t), self.seed if seed is None else int(seed))

    def set_activation(self, intensities: Mapping[str, float], t: float, seed: Optional[int] = None) -> None:
        """What the activation symptoms do in the next forward passes (call once per frame)."""
        self._activation = self._state(intensities, t, seed)
        self._batch = None

    def set_activation_batch(self, frames: Sequence[tuple[Mapping[str, float], float, Optional[int]]]) -> None:
        """Per-sample activation symptoms for the next forward pass of a batch of frames, one
        (intensities, t, seed) per sample: each sample is damaged exactly as it would be alone."""
        self._batch = [self._state(*f) for f in frames]

    def _hook(self, layer: str, module: nn.Module, inputs, act: torch.Tensor):
        batch = self._batch
        if batch is not None and act.ndim == 4 and act.shape[0] == len(batch):
            parts = [self._effects(layer, act[i:i + 1], *batch[i]) for i in range(len(batch))]
            if all(p is None for p in parts):
                return None
            return torch.cat([act[i:i + 1] if p is None else p for i, p in enumerate(parts)])
        return self._effects(layer, act, *self._activation)

    def _effects(self, layer: str, act: torch.Tensor, levels: dict, t: float, seed: int):
        names = [n for n in self._active_layers.get(layer, ()) if n in levels]
        if not names or act.ndim != 4:
            return None                                 # untouched (or not feature maps, e.g. a mapping's w)
        for name in names:
            symptom = SYMPTOMS[name]
            symptom_seed = stable_seed(seed, layer) if symptom.seed_per_layer else seed
            act = symptom.effect(act, levels[name], symptom_seed, t)
        return act

    def close(self) -> None:
        """Remove the hooks: the generator draws without activation symptoms again."""
        for hook in self._hooks:
            hook.remove()
        self._hooks = []
