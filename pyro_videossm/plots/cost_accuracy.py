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
from matplotlib.transforms import Bbox

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


#: label offsets (points) tried in turn: the first that overlaps no marker, arrow or earlier
#: label and stays inside the axes is kept (else the first)
LABEL_OFFSETS = ((7, 5, "left", "bottom"), (7, -5, "left", "top"), (-7, 5, "right", "bottom"),
                 (-7, -5, "right", "top"), (0, 9, "center", "bottom"), (0, -9, "center", "top"),
                 (7, 16, "left", "bottom"), (7, -16, "left", "top"),
                 (-7, 16, "right", "bottom"), (-7, -16, "right", "top"))


def _place_labels(fig, ax, labels) -> None:
    """Annotate each ``(text, x, y, colour, fontsize)`` next to its point, avoiding overlaps
    (greedy, in order) where the canvas can measure text."""
    renderer = fig.canvas.get_renderer() if hasattr(fig.canvas, "get_renderer") else None
    fig.tight_layout()
    taken = []
    if renderer is not None:
        fig.canvas.draw()
        radius = 6 * fig.dpi / 72   # a marker of s=60 is about 8 points across
        taken = [Bbox.from_bounds(px - radius, py - radius, 2 * radius, 2 * radius)
                 for px, py in ax.transData.transform([(x, y) for _, x, y, _, _ in labels])]
        taken += [t.arrow_patch.get_window_extent(renderer) for t in ax.texts
                  if getattr(t, "arrow_patch", None) is not None]
        inside = ax.get_window_extent(renderer)
    for text, x, y, colour, size in labels:
        chosen = None
        for dx, dy, ha, va in LABEL_OFFSETS:
            note = ax.annotate(text, (x, y), xytext=(dx, dy), textcoords="offset points",
                               ha=ha, va=va, fontsize=size, color=colour)
            if renderer is None:
                chosen = note
                break
            box = note.get_window_extent(renderer).padded(1)
            fits = (box.x0 >= inside.x0 and box.x1 <= inside.x1 and box.y0 >= inside.y0
                    and box.y1 <= inside.y1)
            if fits and not any(box.overlaps(other) for other in taken):
                chosen = note
                taken.append(box)
                break
            note.remove()
        if chosen is None:   # nowhere free: the first place
            dx, dy, ha, va = LABEL_OFFSETS[0]
            ax.annotate(text, (x, y), xytext=(dx, dy), textcoords="offset points", ha=ha,
                        va=va, fontsize=size, color=colour)


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
    labels = []   # (text, x, y, colour, fontsize) placed once the axes limits are known
    xs = []
    for i, (label, (seconds, rmse)) in enumerate(rows.items()):
        colour = colours[i % len(colours)]
        x = 1e3 * seconds
        xs.append(x)
        ax.scatter([x], [rmse], s=60, color=colour, zorder=3)
        labels.append((label, x, rmse, colour, 9))
        if label in training_seconds:
            train = _positive(training_seconds[label], f"{label!r} training_seconds")
            x_train = 1e3 * amortised_seconds_per_cycle(seconds, train, amortise_cycles)
            xs.append(x_train)
            ax.scatter([x_train], [rmse], s=60, facecolors="none", edgecolors=colour,
                       linewidths=1.5, zorder=3)
            ax.annotate("", xy=(x_train, rmse), xytext=(x, rmse),
                        arrowprops={"arrowstyle": "->", "color": colour, "lw": 1.2})
            labels.append((f"{label} + training\n({train:.0f} s over {int(amortise_cycles)} "
                           "cycles)", x_train, rmse, colour, 8))
    ax.set_xscale("log")
    ax.set_xlabel("seconds per 1000 cycles (log scale)")
    ax.set_ylabel("RMSE (lower is better)")
    ax.set_ylim(bottom=0, top=1.15 * max(r for _, r in rows.values()))
    ax.set_xlim(min(xs) / 2, max(xs) * 4)   # room for the labels on the right
    ax.grid(True, which="both", alpha=0.3)
    ax.set_title(title or "cost against accuracy (down and left is better)")
    _place_labels(fig, ax, labels)
    return fig
