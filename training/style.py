"""Training a style-based generator: the same Trainer step (update D, update G, R1, recall, EMA,
snapshots, exact resume), with what StyleGAN adds to it.

* Style mixing: a share of the samples switch to a second latent's w from a random layer on, so
  no layer can rely on its neighbours sharing one style (and the installation can mix memories).
* Progressive growing (ProGAN, seed 004): training starts at `grow_from` pixels and doubles every
  `grow_steps` steps; in the first half of each new resolution its level fades in (alpha 0 -> 1)
  in G's toRGB sum and D's fromRGB, and the real images fade the same way, so D never sees a
  jump. The stage is a pure function of the step, so resume needs no extra state. At the end of
  each resolution a sample sheet and a loss plot of that resolution are written to `stages/`.
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from . import artifacts
from .loop import Trainer
from .presets import TrainConfig

FADE_SHARE = 0.5                # share of a resolution's steps spent fading its level in


def growth_stages(cfg: TrainConfig, image_size: int) -> list[int]:
    """The resolutions trained one after another ([image_size] when not growing)."""
    if not cfg.grow_from:
        return [image_size]
    stages, res = [], cfg.grow_from
    while res <= image_size:
        stages.append(res)
        res *= 2
    return stages


def growth_stage(step: int, cfg: TrainConfig, image_size: int) -> tuple[int, float]:
    """(resolution, fade alpha in [0, 1]) at which the 0-based `step` trains."""
    stages = growth_stages(cfg, image_size)
    i = step // cfg.grow_steps if cfg.grow_from else 0
    if i >= len(stages):
        return image_size, 1.0
    if i == 0:
        return stages[0], 1.0
    into = step - i * cfg.grow_steps
    return stages[i], min(1.0, into / max(1.0, FADE_SHARE * cfg.grow_steps))


class StyleTrainer(Trainer):
    def __init__(self, cfg: TrainConfig, data, run_dir: Path, device: torch.device, rank: int = 0,
                 world: int = 1, log=print):
        if world > 1:
            raise ValueError("style-based generators train on one device for now; run without torchrun")
        super().__init__(cfg, data, run_dir, device, rank=rank, world=world, log=log)
        self.stage_dir = self.run_dir / "stages"
        self.image_size = self.G.cfg.image_size

    def stage_at(self, step: int) -> tuple[int, float]:
        return growth_stage(max(0, step), self.cfg, self.image_size)

    # -- what a step generates and judges ------------------------------------------------------
    def _real(self, images: torch.Tensor) -> torch.Tensor:
        res, alpha = self.stage_at(self.step)
        x = F.avg_pool2d(images, images.shape[-1] // res) if res < images.shape[-1] else images   # [N, C, res, res]
        if alpha < 1.0:     # fade as G does: the level below, upsampled, gives way to this one
            low = F.interpolate(F.avg_pool2d(x, 2), scale_factor=2, mode=self.G.cfg.upsample)
            x = torch.lerp(low, x, alpha)
        return x

    def _fake(self, z: torch.Tensor, mix: bool = True) -> torch.Tensor:
        res, alpha = self.stage_at(self.step)
        G, n = self.G, z.shape[0]
        ws = G.mapping(z)[:, None].expand(-1, G.num_ws, -1)                       # [N, K, L]
        if mix and self.cfg.style_mixing > 0:
            w2 = G.mapping(torch.randn_like(z))                                  # [N, L]
            cut = torch.randint(1, G.num_ws, (n, 1), device=z.device)
            mixed = torch.rand(n, 1, device=z.device) < self.cfg.style_mixing
            later = torch.arange(G.num_ws, device=z.device)[None] >= cut          # [N, K]
            ws = torch.where((later & mixed)[..., None], w2[:, None], ws)
        return G.synthesize(ws, res, alpha)

    def _disc(self, img: torch.Tensor) -> torch.Tensor:
        return self.D(img, alpha=self.stage_at(self.step)[1])

    # -- artefacts ----------------------------------------------------------------------------
    @torch.no_grad()
    def _grid(self) -> torch.Tensor:
        """The fixed latents at the resolution just trained, upscaled to the image size."""
        res, alpha = self.stage_at(self.step - 1)
        img = self.G_ema.synthesize(self.G_ema.mapping(self.fixed_z), res, alpha)
        return F.interpolate(img, size=self.image_size, mode="nearest") if res < self.image_size else img

    def save_samples(self) -> Path:
        path = self.sample_dir / f"step_{self.step:07d}.png"
        artifacts.save_png(path, artifacts.grid(artifacts.to_uint8(self._grid()), cols=4))
        return path

    def after_step(self, final: bool = False) -> None:
        """At the end of each resolution: its sample sheet and its loss plot."""
        if not self.cfg.grow_from or self.step == 0:
            return
        res, _ = self.stage_at(self.step - 1)
        if not final and self.stage_at(self.step)[0] == res:
            return
        stages = growth_stages(self.cfg, self.image_size)
        first = stages.index(res) * self.cfg.grow_steps
        self.stage_dir.mkdir(parents=True, exist_ok=True)
        artifacts.save_png(self.stage_dir / f"res{res:04d}_samples.png",
                           artifacts.grid(artifacts.to_uint8(self._grid()), cols=4))
        losses = self.run_dir / "losses.csv"
        if losses.is_file():
            artifacts.plot_losses(losses, self.stage_dir / f"res{res:04d}_losses.png", steps=(first, self.step),
                                  title=f"{res}x{res}: steps {first + 1}-{self.step}")
