"""Log-amplitude spectrograms side by side (true against generated), one panel per row."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from pyro_videossm.errors import InputError
from pyro_videossm.plots.figure import save_figure


def plot_spectrograms(rows: dict[str, np.ndarray], path: str | os.PathLike, *,
                      frames_per_second: float = 100.0, max_hz: float = 8000.0,
                      events: np.ndarray | None = None, title: str | None = None,
                      dpi: int = 72) -> Path:
    """Write a PNG: each entry of ``rows`` (name -> log-amplitude spectrogram ``(K, F)``, bins
    ``0 .. max_hz``) is one panel, time in seconds across, frequency up, one shared colour
    scale; ``events`` (seconds) are drawn as dashed lines on every panel; ``dpi`` keeps the
    file small (noise compresses badly)."""
    if not rows:
        raise InputError("nothing to draw")
    vmax = max(float(np.nanmax(s)) for s in rows.values())
    vmin = vmax - 10.0
    fig, axes = plt.subplots(len(rows), 1, squeeze=False, sharex=True,
                             figsize=(7.0, 1.5 * len(rows) + 0.6))
    for ax, (name, spec) in zip(axes[:, 0], rows.items()):
        spec = np.asarray(spec)
        seconds = spec.shape[0] / frames_per_second
        image = ax.imshow(spec.T, origin="lower", aspect="auto", cmap="magma", vmin=vmin,
                          vmax=vmax, extent=(0, seconds, 0, max_hz / 1000.0))
        for e in ([] if events is None else np.asarray(events)[np.isfinite(events)]):
            ax.axvline(e, color="cyan", lw=0.6, ls="--")
        ax.set_ylabel(f"{name}\nkHz", fontsize=8)
    axes[-1, 0].set_xlabel("time (s)")
    fig.colorbar(image, ax=axes[:, 0].tolist(), label="log amplitude", shrink=0.8)
    if title:
        fig.suptitle(title, fontsize=9)
    return save_figure(fig, path, dpi=dpi)
