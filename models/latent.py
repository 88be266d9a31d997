"""Latent geometry shared by every architecture: the shell a standard-normal z lives on, and the
walk's path between two latents (great circle in z, straight in a style generator's w).
"""
from __future__ import annotations

import math

import numpy as np


def shell_radius(latent_size: int) -> float:
    """Norm of a typical standard-normal z: the shell the generator was trained on."""
    return math.sqrt(latent_size)


def slerp(p: np.ndarray, q: np.ndarray, f: float) -> np.ndarray:
    """Great-circle interpolation between two vectors of equal norm (the walk's path in z)."""
    pn, qn = np.linalg.norm(p), np.linalg.norm(q)
    cos = float(np.clip(np.dot(p, q) / max(pn * qn, 1e-12), -1.0, 1.0))
    theta = math.acos(cos)
    if theta < 1e-6:
        return p + f * (q - p)
    sin = math.sin(theta)
    return (math.sin((1.0 - f) * theta) / sin) * p + (math.sin(f * theta) / sin) * q


def to_shell(z: np.ndarray) -> np.ndarray:
    """Each row of z [..., L] scaled onto the shell (norm sqrt(L)), where the walk keeps its memories."""
    norms = np.maximum(np.linalg.norm(z, axis=-1, keepdims=True), 1e-12)
    return z * (shell_radius(z.shape[-1]) / norms)


def walk_between(p: np.ndarray, q: np.ndarray, f: float, space: str = "z") -> np.ndarray:
    """The point a fraction f of the way from p to q as the walk moves: along the great circle in z
    (latents stay on the shell), straight in a style generator's w (as StyleGAN interpolates)."""
    return slerp(p, q, f) if space == "z" else p + f * (q - p)
