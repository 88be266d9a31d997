"""regression: the weights slide back through their training snapshots, newest learning first.

Ribot's law: in dementia, recent memories go before old ones. The checkpoint keeps snapshots
of the generator from across training (oldest first); intensity walks backwards through them,
piecewise linearly, so intensity 0 is the finished network, 1/K the last snapshot, and 1 the
oldest one (early training: blurred, generic shapes). Running statistics travel back with the
weights, so the normalisation matches the network it normalises.

With no snapshots (a model trained elsewhere) the weights slide instead towards a seeded
"never learned" version of themselves: noise with each tensor's own mean and spread. It loses
all structure at the same rate, but not in the order the network learned it.
"""
from __future__ import annotations

import torch

from .base import ParamInfo, WeightSymptom, normal


def _through_history(pristine: torch.Tensor, history: tuple, intensity: float) -> torch.Tensor:
    stops = [pristine.float(), *(h.to(pristine.device) for h in reversed(history))]  # newest first
    position = intensity * (len(stops) - 1)
    k = min(int(position), len(stops) - 2)
    w = position - k
    return torch.lerp(stops[k], stops[k + 1], w).to(pristine.dtype)


def _unlearned(name: str, pristine: torch.Tensor, seed: int) -> torch.Tensor:
    noise = normal(pristine.shape, seed, "regression", name, device=pristine.device)
    spread = pristine.float().std(correction=0) if pristine.numel() > 1 else torch.zeros(())
    return (pristine.float().mean() + spread * noise).to(pristine.dtype)


def _damage(name: str, pristine: torch.Tensor, intensity: float, seed: int, ctx: ParamInfo | None) -> torch.Tensor:
    history = ctx.snapshots if ctx is not None else ()
    if history:
        return _through_history(pristine, history, intensity)
    if ctx is not None and ctx.role == "buffer":
        return pristine.clone()            # statistics without a history stay as they are
    return torch.lerp(pristine, _unlearned(name, pristine, seed), intensity)


SYMPTOM = WeightSymptom(
    name="regression", level="weights", default_target="*",
    description="weights slide back through training snapshots: newest learning goes first (Ribot's law)",
    fn=_damage,
    roles=frozenset({"weight", "bias", "norm", "param", "buffer"}),
)
