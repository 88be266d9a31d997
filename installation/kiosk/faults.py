"""Faults a gallery must survive: broken frames, broken model files, a broken GPU.

Why it exists: the piece damages its own network on purpose, and some damage breaks it in ways
the artist did not mean — flipped exponent bits give NaN/Inf, dead layers give one flat colour.
On a wall that reads as a crash, not as forgetting. The frame guard looks at the generator's own
output — *before* the output symptoms, so an intended `lapses` blackout or `fading` to grey is
never mistaken for a fault — and, when a frame is broken, steps back for that frame to the last
damage level that gave a good one (then to the pristine network), and remembers the level that
failed so the following frames stay at the good one instead of flickering between the two.
Damage is monotone, so any level at or above a failed one (symptom by symptom, same seed) is
presumed to fail too; when the course eases (a lucid interval, a rebirth) it is tried again.

Also here: which exceptions mean the GPU is gone (exit non-zero and let systemd restart the
process, rather than limp on), and falling back to the bundled model when the configured one is
missing or corrupt.
"""
from __future__ import annotations

import dataclasses
import logging
import math
import time
from typing import Callable, Mapping

import torch

from ..weights import INTENSITY_RESOLUTION
from ..state import FrameState
from ..symptoms import SYMPTOMS

log = logging.getLogger("lapses.kiosk")

# symptoms inside the generator: the ones whose damage can break its output
GUARDED = tuple(s.name for s in SYMPTOMS.values() if s.level in ("weights", "activations"))
WEIGHT_LEVEL = frozenset(s.name for s in SYMPTOMS.values() if s.level == "weights")

FLAT_STD = 1e-3        # spatial std (in [-1, 1] units) below which a channel is one colour: ~0.1 of an 8-bit level
BLACK_MEAN = -0.97     # mean below which a frame is black (all channels under ~4 of 255) ...
BLACK_STD = 0.02       # ... when it is also this still
CEILINGS_KEPT = 32     # failed levels remembered per seed
LOG_EVERY_S = 60.0


def frame_fault(img: torch.Tensor) -> str | None:
    """What is wrong with generator output img [N, C, H, W] (None: nothing): NaN/Inf, flat or black."""
    x = img.detach().float()
    finite = torch.isfinite(x).all()
    x = torch.nan_to_num(x)
    std = x.std(dim=(2, 3)).amax(dim=1)                  # [N]: the liveliest channel of each image
    mean = x.mean(dim=(1, 2, 3))
    flat = (std < FLAT_STD).any()
    black = ((mean < BLACK_MEAN) & (std < BLACK_STD)).any()
    finite, flat, black = torch.stack([finite, flat, black]).tolist()    # one sync with the device
    if not finite:
        return "NaN/Inf"
    if flat:
        return "flat"
    if black:
        return "black"
    return None


def _dominates(want: Mapping[str, float], ceiling: Mapping[str, float]) -> bool:
    return all(want.get(name, 0.0) >= level for name, level in ceiling.items())


class FrameGuard:
    """Between the generator and the screen: a broken frame is re-rendered with a good damage level."""

    def __init__(self, damage, hooks):
        self.damage, self.hooks = damage, hooks          # the live weights, the activation symptoms
        self.faults = 0                                   # frames that needed a step back
        self._good: tuple | None = None                   # (seed, weight key, weights, activation levels)
        self._ceilings: dict[int, list[dict[str, float]]] = {}
        self._logged_at = -math.inf
        self._unlogged = 0

    @staticmethod
    def levels(intensities: Mapping[str, float], names=GUARDED) -> dict[str, float]:
        """Non-zero intensities of these symptoms, rounded as weights.py rounds weight levels."""
        out = {}
        for name in names:
            value = round(min(1.0, max(0.0, float(intensities.get(name, 0.0)))) * INTENSITY_RESOLUTION)
            if value > 0:
                out[name] = value / INTENSITY_RESOLUTION
        return out

    def _good_levels(self, seed: int) -> dict[str, float]:
        if self._good is None or self._good[0] != seed:
            return {}                                     # pristine: good for every seed
        _, key, _, acts = self._good
        return {**dict(key[0] if key else ()), **acts}

    def adjust(self, state: FrameState) -> FrameState:
        """Before rendering: a state at or past a level that failed takes the last good level instead."""
        ceilings = self._ceilings.get(state.seed)
        if not ceilings:
            return state
        want = self.levels(state.intensities)
        if not any(_dominates(want, c) for c in ceilings):
            return state
        kept = {name: v for name, v in state.intensities.items() if name not in GUARDED}
        return state.with_(intensities={**kept, **self._good_levels(state.seed)})

    def check(self, generator: Callable, z: torch.Tensor, img: torch.Tensor, state: FrameState) -> torch.Tensor:
        """After the generator: img as it is if sound, else the same latents re-rendered one step back."""
        fault = frame_fault(img)
        key, weights = self.damage.live()
        acts = self.levels(state.intensities, [n for n in GUARDED if n not in WEIGHT_LEVEL])
        if fault is None:
            self._good = (key[1] if key else state.seed, key, weights, acts)
            return img
        self.faults += 1
        seed = key[1] if key else state.seed
        failed = {**dict(key[0] if key else ()), **acts}
        self._remember(seed, failed)
        tries = []
        if self._good is not None and self._good[0] == state.seed and (self._good[1], self._good[3]) != (key, acts):
            tries.append(("the last good damage level", self._good[1], self._good[2], self._good[3]))
        tries.append(("the pristine network", (), self.damage.weights.pristine, {}))
        for what, good_key, good_weights, good_acts in tries:
            self.damage.restore(good_key, good_weights)
            self.hooks.set_activation(good_acts, state.t, seed=state.seed)
            img = generator(z)
            if frame_fault(img) is None:
                break
        self._log(fault, failed, what)
        return img

    def _remember(self, seed: int, failed: dict[str, float]) -> None:
        if not failed:        # the pristine network itself: there is nothing to step back from
            return
        ceilings = [c for c in self._ceilings.get(seed, []) if not _dominates(c, failed)]  # drop the redundant
        if not any(_dominates(failed, c) for c in ceilings):
            ceilings.append(failed)
        self._ceilings[seed] = ceilings[-CEILINGS_KEPT:]

    def _log(self, fault: str, failed: Mapping[str, float], what: str) -> None:
        now = time.monotonic()
        self._unlogged += 1
        if now - self._logged_at < LOG_EVERY_S:
            return
        levels = ", ".join(f"{k} {v:.3f}" for k, v in sorted(failed.items())) or "no damage"
        log.warning("frame guard: a %s frame from the damaged network (%s); showed %s instead (%d such frames "
                    "since the last line, %d in all)", fault, levels, what, self._unlogged, self.faults)
        self._logged_at, self._unlogged = now, 0


# ---------------------------------------------------------------------------------------------

def load_model_or_bundled(settings, load: Callable, errors: tuple[type[BaseException], ...]):
    """`load(settings)`; if the configured model is missing or corrupt, the bundled one, with a log line."""
    from .. import engine
    try:
        return load(settings)
    except errors as e:
        bundled = engine.BUNDLED_MODEL
        if settings.model_path.resolve() == bundled.resolve():
            raise
        log.error("the model %s cannot be used (%s); falling back to the bundled model %s", settings.model_path,
                  e, bundled)
        model = dataclasses.replace(settings.model, path=str(bundled))
        return load(dataclasses.replace(settings, model=model))
