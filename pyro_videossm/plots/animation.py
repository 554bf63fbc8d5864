"""Side-by-side strips of animated stills: one row per method, one column per shown frame."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from pyro_videossm.errors import InputError
from pyro_videossm.plots.figure import save_figure


def plot_animation_strip(rows: dict[str, np.ndarray], path: str | os.PathLike,
                         frames: int = 6, title: str | None = None) -> Path:
    """Write a PNG: each entry of ``rows`` (name -> clip ``(T, H, W)`` in ``[0, 1]``) is a row
    of ``frames`` frames spread evenly over the clip (first and last included)."""
    if not rows:
        raise InputError("nothing to draw")
    t = next(iter(rows.values())).shape[0]
    shown = np.unique(np.linspace(0, t - 1, min(frames, t)).round().astype(int))
    fig, axes = plt.subplots(len(rows), len(shown), squeeze=False,
                             figsize=(1.4 * len(shown) + 1.2, 1.4 * len(rows) + 0.4))
    for r, (name, clip) in enumerate(rows.items()):
        clip = np.asarray(clip)
        if clip.shape[0] != t:
            raise InputError(f"row {name!r} has {clip.shape[0]} frames, the first has {t}")
        for c, k in enumerate(shown):
            ax = axes[r, c]
            ax.imshow(clip[k], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(f"t={k}", fontsize=8)
            if c == 0:
                ax.set_ylabel(name, fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path)
