"""Evaluation per seed 001's method: how close do samples come to the memories?

For every generated sample, the SSIM to its nearest training image (its best match); the
share of samples that land nearest to each training image (is any memory never recalled?);
how faithfully each anchor redraws its own image; and, as the installation walks from anchor to
anchor, the best-SSIM of the pictures a quarter, half and three quarters of the way between them
(the blends a visitor sees between memories).

Two texture figures check by number what the eye looks for (blotches, speckle, the checkerboard
of transposed convolutions): each sample's fine detail and its 2x2 checkerboard component, as a
ratio to those of its nearest training image. 1 means the data's own texture; well above 1 is
noise the data does not have (speckle, checkerboard); below 1, smoother than the data.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from models import to_shell, walk_between

_C1, _C2 = 0.01 ** 2, 0.03 ** 2  # SSIM constants for a data range of 1


def gauss_filter(x: torch.Tensor, sigma: float = 1.5, size: int = 11) -> torch.Tensor:
    """Separable Gaussian blur (valid region) of [N, C, H, W], the window of Wang et al. 2004."""
    coords = torch.arange(size, dtype=x.dtype, device=x.device) - size // 2
    g = torch.exp(-(coords ** 2) / (2 * sigma ** 2))
    g = (g / g.sum())
    c = x.shape[1]
    x = F.conv2d(x, g.view(1, 1, 1, size).expand(c, 1, 1, size), groups=c)
    return F.conv2d(x, g.view(1, 1, size, 1).expand(c, 1, size, 1), groups=c)


def _stats(x: torch.Tensor):
    mu = gauss_filter(x)
    var = gauss_filter(x * x) - mu * mu
    return mu, var


def ssim_matrix(a: torch.Tensor, b: torch.Tensor, chunk: int = 32) -> torch.Tensor:
    """Mean SSIM of every pair: a [N, C, H, W], b [M, C, H, W] in [0, 1] -> [N, M].
    Gaussian window 11 / sigma 1.5 (as TF's tf.image.ssim, which seed 001 used)."""
    a, b = a.float(), b.float()
    mu_b, var_b = _stats(b)
    out = torch.empty(a.shape[0], b.shape[0])
    for i in range(0, a.shape[0], chunk):
        x = a[i:i + chunk]
        mu_a, var_a = _stats(x)
        for j in range(b.shape[0]):
            y = b[j:j + 1]
            cov = gauss_filter(x * y) - mu_a * mu_b[j:j + 1]
            num = (2 * mu_a * mu_b[j:j + 1] + _C1) * (2 * cov + _C2)
            den = (mu_a ** 2 + mu_b[j:j + 1] ** 2 + _C1) * (var_a + var_b[j:j + 1] + _C2)
            out[i:i + chunk, j] = (num / den).mean(dim=(1, 2, 3)).cpu()
    return out


def ssim_pairs(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """SSIM of matching pairs a[i], b[i] in [0, 1] -> [N]."""
    mu_a, var_a = _stats(a.float())
    mu_b, var_b = _stats(b.float())
    cov = gauss_filter(a.float() * b.float()) - mu_a * mu_b
    s = ((2 * mu_a * mu_b + _C1) * (2 * cov + _C2)) / ((mu_a ** 2 + mu_b ** 2 + _C1) * (var_a + var_b + _C2))
    return s.mean(dim=(1, 2, 3))


def detail_energy(x: torch.Tensor) -> torch.Tensor:
    """Mean |x - blur(x)| (Gaussian sigma 1, reflected borders) of each image in [N, C, H, W] -> [N]:
    the energy of fine detail, edges and noise alike."""
    blurred = gauss_filter(F.pad(x.float(), (3, 3, 3, 3), mode="reflect"), sigma=1.0, size=7)
    return (x.float() - blurred).abs().mean(dim=(1, 2, 3))


def checker_energy(x: torch.Tensor) -> torch.Tensor:
    """Mean |response| of each image in [N, C, H, W] to the 2x2 checkerboard [[1, -1], [-1, 1]] / 4,
    the highest spatial frequency, where transposed convolutions leave their pattern -> [N]."""
    c = x.shape[1]
    k = torch.tensor([[1.0, -1.0], [-1.0, 1.0]], device=x.device).div(4).view(1, 1, 2, 2).expand(c, 1, 2, 2)
    return F.conv2d(x.float(), k, groups=c).abs().mean(dim=(1, 2, 3))


FLAT_LEVELS = 1.0       # a photograph with less fine detail than this (mean, 8-bit levels) is nearly flat


def display_summary(figures: dict[str, dict[str, float]]) -> str:
    """One line of detail.display_figures' figures (Evaluation.display): SSIM and fine detail at display size."""
    if not figures:
        return ""
    ssim = np.array([f["display_ssim"] for f in figures.values()])
    worst = min(figures, key=lambda n: figures[n]["display_ssim"])
    size = next(iter(figures.values()))["display_size"]
    line = (f"at display size ({size} px) against the photographs: SSIM min {ssim.min():.3f} ({worst}) median "
            f"{np.median(ssim):.3f}")
    # a nearly flat photograph's share is a ratio of next to nothing: named apart, with its levels
    flat = {n for n, f in figures.items() if f.get("photo_detail_levels", FLAT_LEVELS) < FLAT_LEVELS}
    share = np.array([f["detail_share"] for n, f in figures.items() if n not in flat])
    if len(share):
        line += f"; fine detail {share.min():.2f}..{share.max():.2f} of the photographs'"
    if flat:
        line += "; nearly flat: " + ", ".join(
            f"{n} {figures[n]['detail_share']:.2f} (its photograph {figures[n]['photo_detail_levels']:.2f} levels "
            f"of fine detail)" for n in sorted(flat))
    return line


@dataclass
class Evaluation:
    samples: int
    ssim_max: float
    ssim_median: float
    ssim_p10: float
    ssim_p1: float              # the tail: one sample in a hundred scores below it
    ssim_min: float
    recall: dict[str, float]
    detail_ratio_median: float
    checkerboard_ratio_p90: float
    anchor_ssim: dict[str, float] = field(default_factory=dict)
    walk_ssim_p10: float | None = None
    walk_ssim_min: float | None = None
    walk_worst: str = ""
    display: dict[str, dict[str, float]] = field(default_factory=dict)   # per memory, at display size (detail.py)

    def to_json(self) -> str:
        return json.dumps(self.__dict__, indent=2, sort_keys=True)

    def summary(self) -> str:
        lines = [f"samples: {self.samples}",
                 f"best-SSIM to nearest training image: max {self.ssim_max:.3f}  median {self.ssim_median:.3f}  "
                 f"p10 {self.ssim_p10:.3f}  p1 {self.ssim_p1:.3f}  min {self.ssim_min:.3f}",
                 f"least-recalled image: {min(self.recall.values()):.1%} of samples "
                 f"({min(self.recall, key=self.recall.get)})",
                 f"texture against the nearest image (1 = the data's own): fine detail median "
                 f"{self.detail_ratio_median:.2f}, checkerboard p90 {self.checkerboard_ratio_p90:.2f}"]
        if self.anchor_ssim:
            worst = min(self.anchor_ssim, key=self.anchor_ssim.get)
            lines.append(f"anchor SSIM: min {self.anchor_ssim[worst]:.3f} ({worst})  "
                         f"median {float(np.median(list(self.anchor_ssim.values()))):.3f}")
        if self.walk_ssim_p10 is not None:
            lines.append(f"between memories (1/4, 1/2, 3/4 of the walk from each anchor to another): best-SSIM "
                         f"p10 {self.walk_ssim_p10:.3f}  min {self.walk_ssim_min:.3f} ({self.walk_worst})")
        if self.display:
            lines.append(display_summary(self.display))
        return "\n".join(lines)


@torch.no_grad()
def generate(generator: torch.nn.Module, z: torch.Tensor, batch: int = 64, space: str = "z") -> torch.Tensor:
    """Images of latents in z, or in w (a style generator's anchors: synthesis only)."""
    device = next(generator.parameters()).device
    draw = generator.synthesize if space == "w" else generator
    return torch.cat([draw(z[i:i + batch].to(device)).float().cpu() for i in range(0, z.shape[0], batch)])


@torch.no_grad()
def evaluate(generator: torch.nn.Module, images: torch.Tensor, names: list[str], samples: int = 1000,
             anchors: torch.Tensor | None = None, seed: int = 1234, sheet: Path | None = None) -> Evaluation:
    """images [M, C, S, S] in [-1, 1]; anchors [M, latent] in the same order, or None."""
    generator.eval()
    z = torch.randn(samples, generator.latent_size, generator=torch.Generator().manual_seed(seed))
    fake01 = (generate(generator, z) + 1) / 2
    real01 = (images.float() + 1) / 2
    sim = ssim_matrix(fake01, real01)                       # [samples, M]
    best, nearest = sim.max(dim=1)
    counts = torch.bincount(nearest, minlength=len(names)).float() / samples
    detail = detail_energy(fake01) / detail_energy(real01).clamp_min(1e-6)[nearest]
    checker = checker_energy(fake01) / checker_energy(real01).clamp_min(1e-6)[nearest]
    result = Evaluation(
        samples=samples, ssim_max=float(best.max()), ssim_median=float(best.median()),
        ssim_p10=float(torch.quantile(best, 0.10)), ssim_p1=float(torch.quantile(best, 0.01)),
        ssim_min=float(best.min()),
        recall={n: float(c) for n, c in zip(names, counts)},
        detail_ratio_median=float(detail.median()), checkerboard_ratio_p90=float(torch.quantile(checker, 0.9)))
    if anchors is not None and anchors.shape[0] == len(names):
        space = getattr(generator, "latent_space", "z")
        recon01 = (generate(generator, anchors, space=space) + 1) / 2
        result.anchor_ssim = {n: float(s) for n, s in zip(names, ssim_pairs(recon01, real01))}
        if len(names) > 1:
            _walk_figures(result, generator, space, anchors, real01, names, seed)
    if sheet is not None:
        _side_by_side(fake01, real01, nearest, best, sheet)
    return result


WALK_FRACTIONS = (0.25, 0.5, 0.75)


def walk_paths(anchors: torch.Tensor, space: str, seed: int,
               journeys: int = 256) -> tuple[torch.Tensor, list[tuple[int, int]]]:
    """Latents on the walk from each anchor to a seeded other one, at WALK_FRACTIONS of the way, as
    installation/walk.py draws them: on the shell along the great circle in z, straight in w.
    A large data set walks from a seeded `journeys` of its anchors (the cost grows with their square)."""
    n = anchors.shape[0]
    rng = torch.Generator().manual_seed(seed)
    others = torch.randint(1, n, (n,), generator=rng)
    starts = range(n) if n <= journeys else sorted(torch.randperm(n, generator=rng)[:journeys].tolist())
    pairs = [(i, (i + int(others[i])) % n) for i in starts]
    a = anchors.double().numpy()
    if space == "z":
        a = to_shell(a)
    points = [walk_between(a[i], a[j], f, space) for i, j in pairs for f in WALK_FRACTIONS]
    return torch.tensor(np.stack(points), dtype=torch.float32), pairs


def _walk_figures(result: Evaluation, generator: torch.nn.Module, space: str, anchors: torch.Tensor,
                  real01: torch.Tensor, names: list[str], seed: int) -> None:
    points, pairs = walk_paths(anchors, space, seed)
    best = ssim_matrix((generate(generator, points, space=space) + 1) / 2, real01).max(dim=1).values
    worst = int(best.argmin())
    i, j = pairs[worst // len(WALK_FRACTIONS)]
    result.walk_ssim_p10, result.walk_ssim_min = float(torch.quantile(best, 0.10)), float(best.min())
    result.walk_worst = f"{WALK_FRACTIONS[worst % len(WALK_FRACTIONS)]:g} of the way from {names[i]} to {names[j]}"


def _side_by_side(fake01: torch.Tensor, real01: torch.Tensor, nearest: torch.Tensor, best: torch.Tensor,
                  out: Path, pairs: int = 16) -> None:
    """Sample | its nearest training image, for a spread of best-SSIM values (best to worst)."""
    from .artifacts import grid, save_png, to_uint8
    order = torch.argsort(best, descending=True)
    pick = order[torch.linspace(0, len(order) - 1, min(pairs, len(order))).long()]
    tiles = []
    for i in pick:
        tiles += [fake01[i], real01[nearest[i]]]
    frames = to_uint8(torch.stack(tiles) * 2 - 1)
    save_png(out, grid(frames, cols=8))


def load_anchor_order(meta, names: list[str]) -> torch.Tensor | None:
    """The checkpoint's anchors in the order of `names`, when it has one for each."""
    by_name = {a.name: a.z for a in meta.anchors}
    if not names or any(n not in by_name for n in names):
        return None
    return torch.tensor([by_name[n] for n in names], dtype=torch.float32)


def ssim_reference_check() -> float:
    """Largest difference between our SSIM and scikit-image's (Gaussian weights) on random pairs."""
    from skimage.metrics import structural_similarity
    g = torch.Generator().manual_seed(0)
    a = torch.rand(3, 1, 64, 64, generator=g)
    b = (a + 0.2 * torch.randn(3, 1, 64, 64, generator=g)).clamp(0, 1)
    ours = ssim_pairs(a, b)
    ref = [structural_similarity(a[i, 0].numpy(), b[i, 0].numpy(), data_range=1.0, gaussian_weights=True,
                                 sigma=1.5, use_sample_covariance=False) for i in range(3)]
    return float(max(abs(o - r) for o, r in zip(ours.tolist(), ref)))


