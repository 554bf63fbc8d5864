"""Learning curves of benchmark runs: validation loss per epoch, one panel per model.

::

    from pyro_videossm.plots.learning_curves import plot_learning_curves
    plot_learning_curves(rows, ["lstm", "convlstm"], "curves.png")

``rows``: one dict per (model, seed) run with ``model``, ``seed``, ``valid_history`` (the
validation loss per epoch) and, with early stopping, ``best_epoch`` (1-based; marked by a dot).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def plot_learning_curves(rows: Sequence[Mapping[str, Any]], models: Sequence[str],
                         path: str, *, log: bool = True) -> None:
    """Validation loss per epoch of every trained (model, seed) row, one panel per model of
    ``models`` that has one (log scale unless ``log=False``; a dot marks the best epoch),
    written atomically to ``path`` (PNG). Nothing is written when no row has a history."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from pyro_videossm.atomic import atomic_path

    trained = [m for m in models if any(r["model"] == m and r.get("valid_history")
                                        for r in rows)]
    if not trained:
        return
    fig, axes = plt.subplots(1, len(trained), figsize=(3.2 * len(trained), 2.8),
                             squeeze=False)
    for ax, m in zip(axes[0], trained):
        for r in sorted((r for r in rows if r["model"] == m), key=lambda r: r["seed"]):
            h = r["valid_history"]
            line, = ax.plot(range(1, len(h) + 1), h, label=f"seed {r['seed']}")
            if r.get("best_epoch"):
                ax.plot(r["best_epoch"], h[r["best_epoch"] - 1], "o", color=line.get_color())
        ax.set_title(m + (" (pinball)" if m.endswith("-q") else " (MSE)"), fontsize=9)
        ax.set_xlabel("epoch")
        if log:
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("validation loss")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=90, format="png")
    plt.close(fig)


__all__ = ["plot_learning_curves"]
