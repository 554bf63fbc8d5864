"""Cost against accuracy: one labelled point per assimilation method.

::

    from pyro_videossm.plots.cost_accuracy import plot_cost_accuracy
    fig = plot_cost_accuracy(
        {"ETKF N=10": {"seconds_per_cycle": 2e-3, "rmse": 0.57},
         "hybrid DMM": {"seconds_per_cycle": 1e-3, "rmse": 0.30}},
        training_seconds={"hybrid DMM": 12.0}, amortise_cycles=1000)

x: seconds per 1000 cycles (log scale), y: RMSE. A method in ``training_seconds`` gets a
second, hollow marker at its cost with the training amortised over ``amortise_cycles``
cycles (``seconds_per_cycle + training_seconds / amortise_cycles``), joined to its
inference-only point by an arrow.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import matplotlib.pyplot as plt

from pyro_videossm.errors import InputError


def _positive(value, what: str) -> float:
    """``value`` as a float, or a one-line InputError unless finite and > 0."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{what} must be a number, got {value!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise InputError(f"{what} must be finite and > 0, got {value}")
    return value


def amortised_seconds_per_cycle(seconds_per_cycle: float, training_seconds: float,
                                cycles: int) -> float:
    """Seconds per cycle with the training spread over ``cycles`` assimilated cycles."""
    if int(cycles) < 1:
        raise InputError(f"amortise_cycles must be >= 1, got {cycles}")
    return float(seconds_per_cycle) + float(training_seconds) / int(cycles)


def plot_cost_accuracy(points: Mapping[str, Mapping[str, float]], *,
                       training_seconds: Mapping[str, float] | None = None,
                       amortise_cycles: int | None = None, title: str | None = None,
                       figsize: tuple[float, float] = (7.5, 4.8)):
    """Scatter of RMSE against seconds per 1000 cycles; returns the figure.

    Args:
        points: method label -> a row with ``seconds_per_cycle`` (> 0) and ``rmse`` (e.g.
            :func:`~pyro_videossm.metrics.posterior.score_posterior` plus the posterior's
            ``seconds_per_cycle`` attribute).
        training_seconds: method label -> training wall seconds, for learned methods.
        amortise_cycles: cycles over which the training is amortised (required with
            ``training_seconds``).
        title: axes title (default: a description of the axes).
    """
    if not points:
        raise InputError("plot_cost_accuracy needs at least one method")
    training_seconds = dict(training_seconds or {})
    unknown = sorted(set(training_seconds) - set(points))
    if unknown:
        raise InputError(f"training_seconds names methods without a point: {unknown}")
    if training_seconds and amortise_cycles is None:
        raise InputError("training_seconds needs amortise_cycles")
    rows = {}
    for label, row in points.items():
        if "seconds_per_cycle" not in row or "rmse" not in row:
            raise InputError(f"{label!r}: a point needs 'seconds_per_cycle' and 'rmse'")
        rows[label] = (_positive(row["seconds_per_cycle"], f"{label!r} seconds_per_cycle"),
                       _positive(row["rmse"], f"{label!r} rmse"))

    fig, ax = plt.subplots(figsize=figsize)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (label, (seconds, rmse)) in enumerate(rows.items()):
        colour = colours[i % len(colours)]
        x = 1e3 * seconds
        ax.scatter([x], [rmse], s=60, color=colour, zorder=3, label=label)
        ax.annotate(label, (x, rmse), xytext=(6, 6), textcoords="offset points", fontsize=9,
                    color=colour)
        if label in training_seconds:
            train = _positive(training_seconds[label], f"{label!r} training_seconds")
            x_train = 1e3 * amortised_seconds_per_cycle(seconds, train, amortise_cycles)
            ax.scatter([x_train], [rmse], s=60, facecolors="none", edgecolors=colour,
                       linewidths=1.5, zorder=3)
            ax.annotate("", xy=(x_train, rmse), xytext=(x, rmse),
                        arrowprops={"arrowstyle": "->", "color": colour, "lw": 1.2})
            ax.annotate(f"+ training ({train:.0f} s)\nover {int(amortise_cycles)} cycles",
                        (x_train, rmse), xytext=(6, -22), textcoords="offset points",
                        fontsize=8, color=colour)
    ax.set_xscale("log")
    ax.set_xlabel("seconds per 1000 cycles (log scale)")
    ax.set_ylabel("RMSE (lower is better)")
    ax.set_ylim(bottom=0, top=1.15 * max(r for _, r in rows.values()))
    xs = [1e3 * s for s, _ in rows.values()]
    if training_seconds:
        xs += [1e3 * amortised_seconds_per_cycle(rows[k][0], v, amortise_cycles)
               for k, v in training_seconds.items()]
    ax.set_xlim(min(xs) / 2, max(xs) * 4)   # room for the labels on the right
    ax.grid(True, which="both", alpha=0.3)
    ax.set_title(title or "cost against accuracy (down and left is better)")
    fig.tight_layout()
    return fig
