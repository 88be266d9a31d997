"""Damage: when the live generator's damaged weights are computed, and how they get there.

Why it exists: the engine has one live network that must keep rendering while it is damaged.
The weights themselves are a pure function of pristine weights, intensities and seed
(weights.py); Damage decides when to compute them — synchronously for offline rendering and
tests, on the render thread for a performer's change when that is cheap, or on a single
background worker for the live show — and copies a finished set into the live model between
frames, so a change of intensity never stalls the picture and the render thread never sees
half-written weights. (Activation symptoms: hooks.py; latent and output symptoms: levels.py.)

Threads: call everything from the render thread (as the engine does); the worker thread is
Damage's own and only ever computes from pristine, never touches the live model.
"""
from __future__ import annotations

import atexit
import logging
import threading
import time
import weakref
from collections import deque
from typing import Mapping, Optional

import torch
from torch import nn

from .symptoms import at_level
from .symptoms.base import FIELDS
from .weights import Recipe, WeightDamage, Weights

_RUNNING: "weakref.WeakSet[Damage]" = weakref.WeakSet()     # with a worker started, not yet closed


@atexit.register
def _close_at_exit() -> None:
    """A script that ends without Engine.close() would leave the worker inside torch as the
    interpreter freezes its daemon threads, which aborts the process (rc 134, "terminate called
    without an active exception"): stop every worker first."""
    for damage in list(_RUNNING):
        damage.close()


URGENT_BUDGET_S = 0.045       # a performer's change is computed on the render thread, for the very
                              # next frame, when a recompute has lately cost no more than this (the
                              # bundled model: ~35 ms on 2 CPU cores, one longer frame, under 100 ms)...
TAP_QUIET_S = 0.25            # ...when it is a tap's: the first change that needs new weights within
                              # this long of an input event after none for this long (a key, a knob's
                              # first touch), even while the worker follows the glide of the gesture
                              # before it. A knob still turning and a glide follow through the worker,
                              # so frames do not grow longer while it turns;
URGENT_AGAIN_S = 0.1          # with the worker idle (keys tapped one after another), at most this often

log = logging.getLogger("lapses.damage")


_DEVICE_WORDS = ("CUDA error", "CUDA out of memory", "CUBLAS_STATUS", "CUDNN_STATUS", "cuDNN error",
                 "device-side assert", "CUDA driver", "no CUDA-capable device")


def is_device_fatal(exc: BaseException) -> bool:
    """Whether an exception means the GPU (or its driver) is gone: only a new process can recover."""
    candidates = (getattr(torch.cuda, "OutOfMemoryError", None), getattr(torch, "AcceleratorError", None))
    fatal_types = tuple(t for t in candidates if isinstance(t, type))
    if fatal_types and isinstance(exc, fatal_types):
        return True
    return isinstance(exc, RuntimeError) and any(word in str(exc) for word in _DEVICE_WORDS)


class Damage:
    """WeightDamage's results, computed when they are wanted and loaded into the live generator."""

    def __init__(self, generator: nn.Module, weights: WeightDamage):
        self.generator = generator
        self.weights = weights
        self._loaded: Weights = dict(weights.pristine)    # what the live model holds, tensor by tensor
        self._loaded_key = weights.key({})
        # background worker: one pending request at most; generations order results
        self._cv = threading.Condition()
        self._generation = 0
        self._loaded_generation = 0
        self._pending: Optional[tuple] = None             # (generation, recipe)
        self._in_flight: Optional[tuple] = None           # (generation, key)
        self._ready: Optional[tuple] = None               # (generation, key, weights)
        self._worker: Optional[threading.Thread] = None
        self._closed = False
        # how long the latest recomputes took, on the render thread and on the worker
        self._compute_times = {"render": deque(maxlen=8), "worker": deque(maxlen=8)}
        self._urgent_at = -float("inf")                   # when an urgent change was last computed here
        self._event_at = -float("inf")                    # when an input event last asked (Damage.request)
        self._tap_until = -float("inf")                   # a tap's first change is computed at once until then
        self._fatal: Optional[BaseException] = None       # a dead GPU, seen by the worker
        self._failed_once = False

    def _compute(self, recipe: Recipe, where: str = "render") -> Weights:
        start, draws = time.perf_counter(), FIELDS.draws
        weights = self.weights.compute(recipe)
        if recipe.levels and FIELDS.draws == draws:     # a recompute that drew its fields is no measure
            self._compute_times[where].append(time.perf_counter() - start)
        return weights

    @property
    def compute_s(self) -> Optional[float]:
        """What a recompute costs the render thread: the quickest of its latest few, or, before
        it has done one, of the worker's (which are slowed by the frames rendering beside it)."""
        times = self._compute_times["render"] or self._compute_times["worker"]
        return min(times) if times else None

    @compute_s.setter
    def compute_s(self, seconds: float) -> None:       # tests: pretend a cost
        for times in self._compute_times.values():
            times.clear()
        self._compute_times["render"].append(float(seconds))

    def load(self, intensities: Mapping[str, float], seed: Optional[int] = None) -> bool:
        """Compute and load damaged weights now (offline rendering, tests). Supersedes any
        background request. Returns whether the live weights changed."""
        recipe = self.weights.recipe(intensities, seed)
        key = recipe.key
        with self._cv:
            self._generation += 1
            generation = self._generation
            self._pending = None
            if key == self._loaded_key:
                self._loaded_generation = generation    # whatever the worker still delivers is stale
                return False
        self._put_live(self._compute(recipe), key, generation)
        return True

    def warm(self, seed: Optional[int] = None) -> None:
        """Before the first frame: draw this seed's damage fields, so that the first damage (a
        performer's first touch on a healthy piece, loaded at once by `request`) costs the render
        thread one recompute, not the fields too (~90 ms on two CPU cores for the bundled models)."""
        self._compute(self.weights.recipe({s.name: 0.5 for s in at_level("weights")}, seed))

    def request(self, intensities: Mapping[str, float], seed: Optional[int] = None, urgent: bool = False,
                event: bool = False) -> None:
        """Ask the background worker for these intensities; returns at once. A newer request
        replaces an older one still waiting; a finished result is kept only if it is newer than
        what is live (and than any result already waiting), and asking again for what is live
        drops whatever is still on its way.

        `urgent` (a performer just moved something; `event`: by an input event this frame, not a
        glide): computed now instead, so the very next frame shows it, when a recompute has lately
        been cheap (URGENT_BUDGET_S) and it is a tap's first change (TAP_QUIET_S), or the worker is
        idle and the last urgent one was not just now (URGENT_AGAIN_S: keys tapped one after
        another). A large model whose recompute would stall the picture, a knob still turning and
        a glide go through the worker, so a turning knob's frames do not grow longer."""
        recipe = self.weights.recipe(intensities, seed)
        key = recipe.key
        if (key == () and self._loaded_key != ()) or (key != () and self.compute_s is None):
            # back to pristine (a revive) is a copy, not a computation: do it now, so the very
            # next frame shows it instead of waiting a frame or two for the worker. And the very
            # first damage is computed here too: a course resumed late must not open on pristine
            # memories for a few frames, and it measures what a recompute costs this thread
            self.load(intensities, seed)
            if key != () and self.compute_s is None:      # it drew the fields: time a warm one
                self._compute(recipe)
            return
        now = time.monotonic()
        if urgent and event:
            if now - self._event_at >= TAP_QUIET_S:         # a tap, not a knob turning on
                self._tap_until = now + TAP_QUIET_S
            self._event_at = now
        if (urgent and key != self._loaded_key and self.compute_s is not None
                and self.compute_s <= URGENT_BUDGET_S
                and (now < self._tap_until or (not self.busy() and now - self._urgent_at >= URGENT_AGAIN_S))):
            self._urgent_at, self._tap_until = now, -float("inf")
            self.load(intensities, seed)
            return
        with self._cv:
            if self._pending is not None and key == self._pending[1].key:
                return                                  # already waiting
            self._generation += 1
            generation = self._generation
            if key == self._loaded_key:                 # back to what is live: all else is stale
                self._pending = None
                self._loaded_generation = generation
            elif self._ready is not None and key == self._ready[1]:
                self._pending = None                    # finished already: it is the newest wish
                self._ready = (generation, key, self._ready[2])
            elif self._in_flight is not None and key == self._in_flight[1]:
                self._pending = None                    # being computed: it is the newest wish
                self._in_flight = (generation, key)
            else:
                self._pending = (generation, recipe)
                self._start_worker()
                self._cv.notify()

    def swap_if_ready(self) -> bool:
        """Between frames: copy a finished result into the live model. Returns whether it did.
        A fatal device error the worker met is raised here, on the render thread."""
        with self._cv:
            if self._fatal is not None:
                raise self._fatal
            ready, self._ready = self._ready, None
            if ready is None or ready[0] <= self._loaded_generation:
                return False
        generation, key, weights = ready
        self._put_live(weights, key, generation)
        return True

    def busy(self) -> bool:
        """Whether a request is waiting, being computed, or finished but not swapped in."""
        with self._cv:
            return self._pending is not None or self._in_flight is not None or self._ready is not None

    def live(self) -> tuple[tuple, Weights]:
        """The key and weights the live model holds now (the kiosk's frame guard remembers good ones)."""
        with self._cv:
            return self._loaded_key, self._loaded

    def restore(self, key: tuple, weights: Weights) -> None:
        """Load again a set that live() returned before (a step back from a set that fails);
        whatever is still waiting or on its way is dropped as stale."""
        with self._cv:
            self._generation += 1
            generation = self._generation
            self._pending = None
        self._put_live(weights, key, generation)

    def _put_live(self, weights: Weights, key: tuple, generation: int) -> None:
        live = self.generator.state_dict()
        with torch.no_grad():
            for name, value in weights.items():
                if value is not self._loaded[name]:     # only tensors that differ from what is live
                    live[name].copy_(value)
        with self._cv:
            self._loaded, self._loaded_key, self._loaded_generation = weights, key, generation

    def _accept(self, generation: int) -> bool:
        # newer than what is live and than what is waiting to be swapped in: under a course that
        # changes every frame, every finished result is an improvement, so none is starved
        return generation > self._loaded_generation and (self._ready is None or generation > self._ready[0])

    def _start_worker(self) -> None:
        if self._worker is None or not self._worker.is_alive():
            self._worker = threading.Thread(target=self._work, name="lapses-damage", daemon=True)
            _RUNNING.add(self)
            self._worker.start()

    def _work(self) -> None:
        while True:
            with self._cv:
                while self._pending is None and not self._closed:
                    self._cv.wait()
                if self._closed:
                    return
                generation, recipe = self._pending
                key = recipe.key
                self._pending, self._in_flight = None, (generation, key)
            try:
                with torch.no_grad():
                    weights = self._compute(recipe, where="worker")
            except Exception as e:
                if is_device_fatal(e):           # the render thread raises it: exit, be restarted
                    with self._cv:
                        self._fatal, self._in_flight = e, None
                    return
                if not self._failed_once:               # a gallery keeps showing the last good weights
                    log.exception("damage worker: computing damaged weights failed; keeping the current ones")
                self._failed_once, weights = True, None
            with self._cv:
                generation = self._in_flight[0]         # a repeated request may have renewed it
                self._in_flight = None
                if weights is not None and self._accept(generation):
                    self._ready = (generation, key, weights)

    # ------------------------------------------------------------ teardown

    def close(self) -> None:
        """Stop the worker; the live model keeps its current weights."""
        with self._cv:
            self._closed = True
            self._cv.notify_all()
        _RUNNING.discard(self)
        if self._worker is not None:
            self._worker.join(timeout=5.0)
