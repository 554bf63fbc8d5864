"""Unsharp masking of frames: the texture-restoring step of the flow animator.

Interpolation smooths a warped frame, so its power spectrum falls below the source's at high
wavenumbers. The classic remedy is an unsharp mask,

    sharpened = x + amount · (x - G_sigma * x)

with ``G_sigma`` a Gaussian blur (separable, truncated at ``4 sigma``, the edge value repeated
beyond the border: ``scipy.ndimage.gaussian_filter(x, sigma, mode="nearest")``, tested
equal). ``amount = 0`` is the identity; the flow animator chooses ``amount`` on its
validation clips (:mod:`pyro_videossm.experiments.animation_sharpening`).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from pyro_videossm.errors import InputError

#: Gaussian truncation, in standard deviations (scipy's default).
TRUNCATE = 4.0


def gaussian_kernel(sigma: float, like: Tensor) -> Tensor:
    """Normalised 1-D Gaussian ``(2r + 1,)``, ``r = round(4 sigma)`` (scipy's radius)."""
    if not sigma > 0:
        raise InputError(f"blur sigma must be > 0, got {sigma}")
    radius = int(TRUNCATE * float(sigma) + 0.5)
    t = torch.arange(-radius, radius + 1, dtype=like.dtype, device=like.device)
    g = torch.exp(-0.5 * (t / float(sigma)) ** 2)
    return g / g.sum()


def gaussian_blur(frames: Tensor, sigma: float) -> Tensor:
    """Blur frames ``(..., H, W)`` with a Gaussian of ``sigma`` pixels (edge value repeated
    beyond the border); same shape."""
    if frames.dim() < 2:
        raise InputError(f"frames must be (..., H, W), got {tuple(frames.shape)}")
    g = gaussian_kernel(sigma, frames)
    r = (g.numel() - 1) // 2
    h, w = frames.shape[-2:]
    x = frames.reshape(-1, 1, h, w)
    x = F.conv2d(F.pad(x, (r, r, 0, 0), mode="replicate"), g.view(1, 1, 1, -1))
    x = F.conv2d(F.pad(x, (0, 0, r, r), mode="replicate"), g.view(1, 1, -1, 1))
    return x.reshape(frames.shape)


def unsharp_mask(frames: Tensor, amount: float, sigma: float) -> Tensor:
    """``frames + amount · (frames - gaussian_blur(frames, sigma))`` for frames ``(..., H, W)``
    (not clipped); ``amount = 0`` returns ``frames``."""
    if not (math.isfinite(amount) and amount >= 0):
        raise InputError(f"sharpening amount must be a finite number >= 0, got {amount}")
    if amount == 0:
        return frames
    return frames + amount * (frames - gaussian_blur(frames, sigma))
