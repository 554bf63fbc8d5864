"""Saving figures: PNG written atomically, the figure closed.

The library never chooses a matplotlib backend (that would break inline figures in
Jupyter); the command line picks ``Agg`` before it draws.
"""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib.pyplot as plt

from pyro_videossm.atomic import atomic_path


def save_figure(fig, path: str | os.PathLike, dpi: int = 120) -> Path:
    """Save ``fig`` as PNG atomically (temporary file, then rename) and close it."""
    path = Path(path)
    try:
        with atomic_path(path, suffix=".png") as tmp:
            fig.savefig(tmp, dpi=dpi, bbox_inches="tight")
    finally:
        plt.close(fig)
    return path
