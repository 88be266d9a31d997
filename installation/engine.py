"""The engine: one pure function from a `FrameState` to a frame.

Everything that decides a picture — the walk, the symptoms, the output scaling — is reached
from here, and nothing here reads the wall clock or draws unseeded random numbers, so the live
app and the offline renderer show the same frame for the same state. Devices, windows and
threads stay at the edges (app.py, the damage worker).
"""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from models import CheckpointError, DetailError, DetailStage, load_generator
from . import levels
from .damage import Damage
from .device_output import DeviceOutput
from .hooks import ActivationHooks
from .output import RGB_TO_YUV, YUV_LIMITS, YUV_OFFSET, Output, OutputSpec, img_to_uint8
from .settings import SettingsError
from .state import FrameState
from .style import POOL, StyleLatents
from .symptoms import SYMPTOMS
from .targets import target_problems
from .walk import Walk
from .weights import WeightDamage

BUNDLED_MODEL = Path(__file__).resolve().parent.parent / "assets" / "memories.safetensors"


def pick_device(name: str) -> torch.device:
    """auto | cpu | cuda -> a torch device; asking for CUDA without one is a ValueError."""
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("model.device: cuda was asked for but no CUDA GPU is available; use auto or cpu")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _targets(settings) -> dict[str, str]:
    return {name: s.target for name, s in settings.symptoms.items() if s.target}


@dataclass
class Model:
    generator: torch.nn.Module
    meta: object
    snapshots: list
    path: Path


def load_model(path: str | Path, device: torch.device | str = "cpu") -> Model:
    """A generator checkpoint with its anchors and snapshots (models.CheckpointError if unusable)."""
    g, meta, snaps = load_generator(Path(path), device=device, with_snapshots=True)
    return Model(g, meta, snaps, Path(path))


class Engine:
    """FrameState -> frame (uint8 [H, W, 3])."""

    WALKS_KEPT = 4

    def __init__(self, model: Model, walk_settings, output: OutputSpec, targets: dict[str, str] | None = None,
                 device: torch.device | str = "cpu", detail: bool = True):
        self.model = model
        self.device = torch.device(device)
        self.generator = model.generator.to(self.device).eval()
        self.anchors = model.meta.anchor_tensor().to(self.device)   # in the walk's space: w for a style model
        self.walk_settings = walk_settings
        self.space = getattr(self.generator, "latent_space", "z")
        # a style model walks in w and draws with synthesis alone (installation/style.py); made
        # before the damage and the hooks, which change the live generator
        self.style = StyleLatents(self.generator, self.anchors) if self.space == "w" else None
        self._walks: OrderedDict[int, Walk] = OrderedDict()
        self.weights = WeightDamage(self.generator, snapshots=model.snapshots, targets=targets or {})
        self.damage = Damage(self.generator, self.weights)     # when the damaged weights go live
        self.hooks = ActivationHooks(self.generator, targets=targets or {})
        # on a GPU the output chain runs there too and a frame comes to the host once (device_output.py)
        self._use_output(output, on_device=self.device.type == "cuda")
        self.frames_rendered = 0
        self.guard = None      # the kiosk's FrameGuard (kiosk/faults.py): steps back from broken frames
        # the memories' verbatim detail (models/detail.py), between the generator and the output chain
        self.detail = self._detail_stage() if detail and model.meta.detail is not None else None

    @classmethod
    def from_settings(cls, settings, width: int, height: int, model: Model | None = None) -> "Engine":
        device = pick_device(settings.model.device)
        model = model or load_model(settings.model_path, device)
        d = settings.display
        spec = OutputSpec(width=width, height=height, scale=d.scale, upscale=d.upscale,
                          vignette=d.vignette, grain=d.grain)
        targets = _targets(settings)
        engine = cls(model, settings.walk, spec, targets, device, detail=d.detail)
        problems = target_problems(engine.generator, targets, engine.weights.infos, engine.hooks.layers)
        if problems:                     # a target that selects nothing: the symptom would never show
            engine.close()
            raise SettingsError(problems[0])
        return engine

    @staticmethod
    def check_targets(settings, model: Model) -> None:
        """The symptom targets' check of from_settings, before a window opens (SettingsError)."""
        problems = target_problems(model.generator, _targets(settings), snapshots=model.snapshots)
        if problems:
            raise SettingsError(problems[0])

    @property
    def latent_size(self) -> int:
        return self.model.meta.latent_size

    @property
    def device_name(self) -> str:
        if self.device.type == "cuda":
            return f"cuda ({torch.cuda.get_device_name(self.device)})"
        return f"cpu ({torch.get_num_threads()} threads)"

    def walk(self, seed: int) -> Walk:
        """The walk of the life with this seed (a rebirth walks another way)."""
        w = self._walks.get(seed)
        if w is None:
            points = self.anchors.cpu()
            if self.style is not None and (len(points) == 0 or self.walk_settings.mode == "random"):
                points = self.style.points(POOL, seed).cpu()       # w has no shell of random points
            w = Walk.from_settings(self.walk_settings, points, self.latent_size, seed, space=self.space)
            self._walks[seed] = w
            while len(self._walks) > self.WALKS_KEPT:
                self._walks.popitem(last=False)
        return w

    def latent(self, state: FrameState) -> torch.Tensor:
        """The walk's latent for this state, after the latent symptoms: [1, L]."""
        z = self.walk(state.seed).z_at(state.walk_phase, perseveration=state.intensity("perseveration"),
                                       hesitation=state.intensity("hesitation"))
        return self.damaged_latents(z[None], state)

    def damaged_latents(self, z: torch.Tensor, state: FrameState) -> torch.Tensor:
        """Any latents [N, L] after the latent symptoms (forgetting, confusion) of this state."""
        z = z.to(self.device, torch.float32)
        if self.style is not None:
            return self.style.latent(z, state.intensities, state.t, state.seed)
        return levels.latent(z, state.intensities, self.anchors, state.t, state.seed)

    def random_latents(self, count: int, seed: int) -> torch.Tensor:
        """`count` seeded latents of the walk's space: points on the shell in z, mapped ones in w."""
        if self.style is not None:
            return self.style.points(count, seed).cpu()
        return torch.randn(count, self.latent_size, generator=torch.Generator().manual_seed(seed))

    @torch.inference_mode()
    def generate(self, z: torch.Tensor, state: FrameState, sync: bool = True, urgent: bool = False,
                 event: bool = False) -> torch.Tensor:
        """Damaged generator output for latents z [N, L]: img [N, C, S, S] in [-1, 1], finite.
        `urgent` (live, a performer's change) and `event` (made by an input event this frame, not a
        glide): see Damage.request."""
        if self.guard is not None:
            state = self.guard.adjust(state)
        if sync:
            self.damage.load(state.intensities, seed=state.seed)
        else:
            self.damage.request(state.intensities, seed=state.seed, urgent=urgent, event=event)
            self.damage.swap_if_ready()
        self.hooks.set_activation(state.intensities, state.t, seed=state.seed)
        draw = self.generator
        if self.style is not None:   # after the weights are loaded: the mapping's damage reads them
            def draw(w: torch.Tensor) -> torch.Tensor:
                return self.generator.synthesize(self.style.styles(w, state.intensities, state.t, state.seed))
        img = draw(z)
        if self.guard is not None:   # before the output symptoms: an intended blackout is not a fault
            img = self.guard.check(draw, z, img, state)
        return self._finished(img, state)

    def _finished(self, img: torch.Tensor, state: FrameState) -> torch.Tensor:
        """Generator output after this state's output symptoms, finite and in [-1, 1]."""
        img = levels.output(img, state.intensities, state.t, state.seed)
        return torch.nan_to_num(img, nan=0.0, posinf=1.0, neginf=-1.0).clamp(-1, 1)

    @torch.inference_mode()
    def _detail_stage(self) -> DetailStage:
        """The detail stage over the healthy piece's picture at each anchor (drawn here, before any damage)."""
        healthy = FrameState()
        pictures = [self.generate(self.damaged_latents(self.anchors[i:i + 32], healthy), healthy, sync=True)
                    for i in range(0, len(self.anchors), 32)]
        try:
            return DetailStage(self.model.meta.detail, [a.name for a in self.model.meta.anchors], torch.cat(pictures))
        except DetailError as e:
            self.close()
            raise CheckpointError(f"{self.model.path}: {e}; make its detail stage anew with "
                                  "`python -m training detail`") from None

    def _with_detail(self, img: torch.Tensor, states: list[FrameState]) -> torch.Tensor:
        """Finished pictures [N, C, S, S] -> at the detail stage's size, with what detail_loss leaves of
        the memories' own detail (unchanged without a detail stage)."""
        if self.detail is None:
            return img
        return self.detail(img, self._detail_kept(img, states))

    def _uint8_pictures(self, img: torch.Tensor, states: list[FrameState]):
        """Finished pictures [N, C, S, S] -> picture(i): 8-bit picture i [D, D, 3] as _with_detail gives
        it (the detail stage makes each when asked, so it is still in cache for the output chain)."""
        if self.detail is None:
            small = img_to_uint8(img)
            return lambda i: small[i]
        return self.detail.uint8_frames(img, self._detail_kept(img, states))

    def _detail_kept(self, img: torch.Tensor, states: list[FrameState]) -> torch.Tensor | None:
        """How much of the verbatim detail detail_loss leaves, [N, 1, D, D] (None: all of it)."""
        symptom = SYMPTOMS["detail_loss"]
        keeps = [symptom.keep(self.detail.size, s.intensity("detail_loss"), s.seed, img.device) for s in states]
        if all(k is None for k in keeps):
            return None
        ones = torch.ones(1, 1, self.detail.size, self.detail.size, device=img.device)
        return torch.cat([ones if k is None else k for k in keeps])

    def _screens(self, img: torch.Tensor, states: list[FrameState], form: str = "rgb",
                 lazy: bool = False) -> list[np.ndarray] | Iterator[np.ndarray]:
        """Finished generator images [N, C, S, S], one per state -> the screen's frames (grain changes 24
        times a second, from t alone): RGB [H, W, 3], or for an encoder ("i420") YUV 4:2:0 [H * 3/2, W]
        (Output.i420). On a GPU the whole chain runs there and the frames come to the host at once.
        `lazy`: on a CPU each frame is made as it is taken (an iterator), so an encoder gets the first
        while the rest are still to make."""
        if form not in ("rgb", "i420"):
            raise ValueError(f"frame form {form!r}: rgb or i420")
        self.frames_rendered += len(states)
        grain_at = [int(s.t * 24) for s in states]
        if self.device_output is not None:
            return self.device_output(self._with_detail(img, states), grain_at, form)
        if form == "i420" and self.detail is not None and self.detail.device.type == "cpu" \
                and self.output.planar(self.detail.size, self.detail.size):
            # composed straight into shaded YUV planes (DetailStage.planar_frames): the film's frame
            # as Output.i420 makes it of the 8-bit picture, within a level, for a third of the traffic
            planes = self.detail.planar_frames(img, self._detail_kept(img, states), RGB_TO_YUV, YUV_OFFSET,
                                               self.output.shade(img.shape[-2], img.shape[-1]), YUV_LIMITS)
            frames = (self.output.i420_from_planes(planes(k), i) for k, i in enumerate(grain_at))
        else:
            picture = self._uint8_pictures(img, states)
            chain = self.output.i420 if form == "i420" else self.output
            frames = (chain(picture(k), i) for k, i in enumerate(grain_at))
        return frames if lazy else list(frames)

    def small_frames(self, z: torch.Tensor, state: FrameState) -> list[np.ndarray]:
        """Frames for given latents [N, L] under this state's damage, at the generator's size."""
        img = self.generate(self.damaged_latents(z, state), state, sync=True)
        return [img_to_uint8(x) for x in img]

    def pictures(self, z: torch.Tensor, state: FrameState) -> list[np.ndarray]:
        """The pictures the piece shows for given latents [N, L] under this state's damage, before the
        screen's scaling, vignette and grain: at the detail stage's size, or the generator's without one."""
        with torch.inference_mode():
            img = self.generate(self.damaged_latents(z, state), state, sync=True)
            picture = self._uint8_pictures(img, [state] * len(img))
            return [picture(k) for k in range(len(img))]

    @property
    def picture_size(self) -> int:
        """The side of `pictures`: the detail stage's, or the generator's."""
        return self.detail.size if self.detail is not None else self.model.meta.image_size

    def render(self, state: FrameState, sync: bool = True, urgent: bool = False, form: str = "rgb",
               event: bool = False) -> np.ndarray:
        """The frame the screen shows for this state. `sync=False` (live) lets weight damage be
        recomputed in the background and swapped in between frames instead of waiting for it;
        `urgent` asks for a performer's change to be shown on this very frame when that is cheap, and
        `event` says an input event made it this frame (not a glide; see Damage.request);
        `form` "i420" gives the same frame as YUV 4:2:0 for an encoder (see _screens)."""
        return self._screens(self.generate(self.latent(state), state, sync=sync, urgent=urgent, event=event),
                             [state], form)[0]

    def render_batch(self, states: list[FrameState], form: str = "rgb",
                     lazy: bool = False) -> list[np.ndarray] | Iterator[np.ndarray]:
        """Frames for several states that share their weight damage (offline rendering): one
        generator call for all of them, far cheaper per image than one call each. Every other
        step is taken per frame, as `render(state)` would, so each frame is that state's alone.
        `form`: "rgb" (the screen's frames) or "i420" (the same frames as YUV 4:2:0, for an encoder);
        `lazy`: the frames as an iterator, each made as it is taken (see _screens)."""
        if len(states) == 1 or self.style is not None or self.guard is not None:
            return [self.render(s, sync=True, form=form) for s in states]
        first = states[0]
        assert all(self.weights.same_weights(first.intensities, s.intensities, first.seed, s.seed) for s in states), \
            "render_batch: the states' weight damage differs"
        with torch.inference_mode():
            self.damage.load(first.intensities, seed=first.seed)
            z = torch.cat([self.latent(s) for s in states])
            self.hooks.set_activation_batch([(s.intensities, s.t, s.seed) for s in states])
            try:
                img = self.generator(z)
            finally:
                self.hooks.set_activation(first.intensities, first.t, seed=first.seed)
            return self._screens(torch.cat([self._finished(img[k:k + 1], s) for k, s in enumerate(states)]),
                                 states, form, lazy)

    def resize(self, width: int, height: int) -> None:
        """Frames of another size from now on (the display changed under the live app)."""
        if (width, height) != (self.output.spec.width, self.output.spec.height):
            self._use_output(replace(self.output.spec, width=width, height=height),
                             on_device=self.device_output is not None)

    def _use_output(self, spec: OutputSpec, on_device: bool) -> None:
        self.output = Output(spec)
        self.device_output = DeviceOutput(self.output, self.device) if on_device else None

    def close(self) -> None:
        self.damage.close()
        self.hooks.close()
