"""Pictures of video models: swap grids and clips generated from the priors.

A swap grid (:func:`plot_swap_grid`) shows, for static sources ``a_1..a_R`` and dynamic sources
``b_1..b_C``, the clip decoded from the static latent of ``a_r`` and the dynamic latents of
``b_c`` in row ``r``, column ``c``: **rows keep the character, columns keep the motion**. Each
cell is a strip of the clip's frames; the first row shows the motion sources and the first
column the character sources (real clips, framed in grey).
"""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import Tensor

from pyro_videossm.errors import InputError
from pyro_videossm.models.video.dsvae import DisentangledSequentialVAE, as_float_frames, swap
from pyro_videossm.plots.figure import save_figure


def clip_strip(clip: Tensor | np.ndarray, frames: int | None = None, gap: int = 1,
               stride: int = 1) -> np.ndarray:
    """One clip ``(T, C, H, W)`` as an image ``(H, T' (W + gap) - gap, 3)`` (grey -> RGB),
    showing frames ``0, stride, 2 stride, ...`` (at most ``frames`` of them)."""
    c = np.asarray(as_float_frames(torch.as_tensor(clip)).detach().cpu())
    if c.ndim != 4:
        raise InputError(f"a clip must be (T, C, H, W), got {c.shape}")
    if stride < 1:
        raise InputError(f"stride must be >= 1, got {stride}")
    c = c[::stride]
    if frames is not None:
        c = c[:frames]
    T, C, H, W = c.shape
    if C == 1:
        c = np.repeat(c, 3, axis=1)
    elif C != 3:
        raise InputError(f"clips need 1 or 3 channels to be drawn, got {C}")
    out = np.ones((H, T * (W + gap) - gap, 3), np.float32)
    for t in range(T):
        out[:, t * (W + gap): t * (W + gap) + W] = c[t].transpose(1, 2, 0)
    return np.clip(out, 0, 1)


def _grid_image(cells: list[list[np.ndarray | None]], gap: int = 4,
                frame_first: bool = True) -> np.ndarray:
    """Place equally sized images in a grid with white gaps; None leaves a cell empty; the
    first row and column are framed in grey when ``frame_first``."""
    ref = next(c for row in cells for c in row if c is not None)
    h, w = ref.shape[:2]
    R, C = len(cells), len(cells[0])
    img = np.ones((R * (h + gap) + gap, C * (w + gap) + gap, 3), np.float32)
    for r, row in enumerate(cells):
        for c, cell in enumerate(row):
            y0, x0 = gap + r * (h + gap), gap + c * (w + gap)
            if frame_first and (r == 0 or c == 0) and cell is not None:
                img[y0 - 2:y0 + h + 2, x0 - 2:x0 + w + 2] = 0.6
            if cell is not None:
                img[y0:y0 + h, x0:x0 + w] = cell
    return img


def swap_grid_image(model: DisentangledSequentialVAE, static_from: Tensor,
                    dynamics_from: Tensor, frames: int | None = None,
                    stride: int = 1) -> np.ndarray:
    """The swap grid as an RGB array (see the module docstring); each cell shows frames
    ``0, stride, ...`` (at most ``frames``)."""
    grid = swap(model, static_from, dynamics_from, pairwise=True).cpu()  # (R, C, T, ...)
    R, C = grid.shape[:2]

    def strip(clip):
        return clip_strip(clip, frames, stride=stride)

    cells: list[list[np.ndarray | None]] = [[None] + [strip(dynamics_from[c])
                                                      for c in range(C)]]
    for r in range(R):
        cells.append([strip(static_from[r])] + [strip(grid[r, c]) for c in range(C)])
    return _grid_image(cells)


def plot_swap_grid(model: DisentangledSequentialVAE, static_from: Tensor, dynamics_from: Tensor,
                   *, frames: int | None = None, stride: int = 1, title: str | None = None,
                   scale: float = 1.0):
    """Figure of :func:`swap_grid_image`: rows keep the character of ``static_from[r]``,
    columns the motion of ``dynamics_from[c]``; the first row/column are the real sources."""
    img = swap_grid_image(model, static_from, dynamics_from, frames, stride)
    dpi = 100
    fig = plt.figure(figsize=(scale * img.shape[1] / dpi * 2, scale * img.shape[0] / dpi * 2 + 0.4),
                     dpi=dpi)
    ax = fig.add_axes((0, 0, 1, 1 - 0.4 / (fig.get_figheight())))
    ax.imshow(img, interpolation="nearest")
    ax.set_axis_off()
    fig.suptitle(title or "swap: rows keep the character (first column), columns keep the "
                 "motion (first row)", fontsize=9)
    return fig


def plot_generated(model: DisentangledSequentialVAE, n: int = 8, num_steps: int = 8, *,
                   seed: int = 0, title: str | None = None):
    """Figure of ``n`` clips generated from the priors (one strip per row)."""
    torch.manual_seed(seed)
    clips = model.generate(n, num_steps).cpu()
    img = _grid_image([[clip_strip(c)] for c in clips], frame_first=False)
    dpi = 100
    fig = plt.figure(figsize=(img.shape[1] / dpi * 2, img.shape[0] / dpi * 2 + 0.4), dpi=dpi)
    ax = fig.add_axes((0, 0, 1, 1 - 0.4 / fig.get_figheight()))
    ax.imshow(img, interpolation="nearest")
    ax.set_axis_off()
    fig.suptitle(title or "clips generated from the priors", fontsize=9)
    return fig


def save_swap_grid(model: DisentangledSequentialVAE, static_from: Tensor, dynamics_from: Tensor,
                   path: str | os.PathLike, **kwargs) -> Path:
    """Write :func:`plot_swap_grid` as a PNG (atomically)."""
    return save_figure(plot_swap_grid(model, static_from, dynamics_from, **kwargs), path)
