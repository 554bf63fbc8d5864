"""One figure comparing assimilation methods on the same record (``videossm demo``'s PNG).

::

    from pyro_videossm.plots.comparison import plot_comparison
    fig = plot_comparison({"EnKS N=10": enks, "hybrid DMM": dmm}, obs, burn_in=100,
                          bands=("hybrid DMM", "EnKS N=10"))

Three rows: (1) RMSE over time of every method (running mean over ``smooth`` cycles), (2) a
zoomed window of one component with the posterior of each method in ``bands`` side by side
(truth, observations, posterior mean, central 90 % band; below it the same minus the truth,
where the band's width shows), (3) bars of RMSE, CRPS and the
coverage of the 90 % band after the burn-in, per method. Every legend sits outside the axes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from pyro_videossm.errors import InputError
from pyro_videossm.metrics.posterior import rmse_per_time, score_posterior

#: the scores in the bar row: (key of score_posterior, title, reference line or None)
BAR_SCORES = (("rmse", "RMSE (lower is better)", None),
              ("crps", "CRPS (lower is better)", None),
              ("coverage_90", "coverage of the 90 % band", 0.9))


def _running_mean(values: np.ndarray, width: int) -> np.ndarray:
    """Centred running mean (``width`` cycles, shorter at the ends) of a 1-D array."""
    width = max(1, min(int(width), len(values)))
    kernel = np.ones(width)
    total = np.convolve(values, kernel, mode="same")
    count = np.convolve(np.ones_like(values), kernel, mode="same")
    return total / count


def _band(post: xr.Dataset, level: float) -> tuple[xr.DataArray, xr.DataArray] | None:
    """The lower and upper quantile of the central ``level`` band, if stored."""
    if "quantiles" not in post:
        return None
    levels = np.round(post["quantile"].values, 6)
    lo_q, hi_q = round((1 - level) / 2, 6), round((1 + level) / 2, 6)
    if lo_q not in levels or hi_q not in levels:
        return None
    return (post["quantiles"].sel(quantile=lo_q, method="nearest"),
            post["quantiles"].sel(quantile=hi_q, method="nearest"))


def plot_comparison(posteriors: Mapping[str, xr.Dataset], obs: xr.Dataset, *,
                    burn_in: int = 0, bands: Sequence[str] | None = None,
                    zoom: slice | None = None, component=None, smooth: int = 25,
                    level: float = 0.9, scores: Mapping[str, Mapping[str, float]] | None = None,
                    title: str | None = None):
    """The comparison figure of the methods in ``posteriors`` (label -> posterior dataset
    with ``mean(time, component)``, ``std`` and ``quantiles(quantile, time, component)``).

    Args:
        obs: the record: ``truth(time, component)`` and ``obs(time, component)``.
        burn_in: cycles left out of the scores (shaded in the RMSE panel).
        bands: labels whose posterior bands are drawn side by side (default: the first two).
        zoom: the cycles of the zoomed window (default: the last 24).
        component: the component shown in the zoom (default: the first).
        smooth: running-mean width, in cycles, of the RMSE over time.
        scores: label -> :func:`~pyro_videossm.metrics.posterior.score_posterior` row
            (computed when not given).

    Returns the matplotlib figure.
    """
    if not posteriors:
        raise InputError("plot_comparison needs at least one posterior")
    if "truth" not in obs:
        raise InputError("plot_comparison needs the truth: 'obs' has no 'truth' variable")
    labels = list(posteriors)
    bands = list(labels[:2] if bands is None else bands)
    unknown = [b for b in bands if b not in posteriors]
    if unknown:
        raise InputError(f"bands {unknown} are not among the methods {labels}")
    if scores is None:
        scores = {k: score_posterior(p, obs["truth"], burn_in=burn_in)
                  for k, p in posteriors.items()}
    colors = {k: f"C{i}" for i, k in enumerate(labels)}
    fig = plt.figure(figsize=(13, 13))
    rows = fig.add_gridspec(4, 1, height_ratios=(1, 1.1, 0.75, 1), hspace=0.45)
    _rmse_over_time(fig.add_subplot(rows[0]), posteriors, obs, colors, scores, burn_in, smooth)
    _zoomed_bands(fig, rows[1:3], posteriors, obs, bands, colors,
                  slice(-24, None) if zoom is None else zoom,
                  obs["component"].values[0] if component is None else component, level)
    _score_bars(fig, rows[3], labels, colors, scores)
    if title:
        fig.suptitle(title, y=0.93)
    return fig


def _rmse_over_time(ax, posteriors, obs, colors, scores, burn_in, smooth) -> None:
    """Row 1: per-cycle RMSE of each posterior mean, running mean over ``smooth`` cycles."""
    for k, post in posteriors.items():
        per_time = rmse_per_time(post["mean"], obs["truth"])
        ax.plot(per_time["time"].values, _running_mean(per_time.values, smooth),
                color=colors[k], lw=1.4, label=f"{k} ({scores[k]['rmse']:.3f})")
    time = obs["time"].values
    if burn_in:
        ax.axvspan(time[0], time[min(burn_in, len(time) - 1)], color="0.9", lw=0,
                   label="burn-in (not scored)")
    ax.set_yscale("log")
    ax.set_xlim(time[0], time[-1])
    ax.set_ylabel("RMSE")
    ax.set_xlabel("model time")
    ax.set_title(f"RMSE over time (running mean over {smooth} cycles); legend: RMSE after "
                 "burn-in", fontsize=10)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)


def _zoomed_bands(fig, cells, posteriors, obs, bands, colors, zoom, component, level) -> None:
    """Rows 2-3: per method in ``bands``, the state in the zoomed window (truth, observations,
    mean, band) and below it the same minus the truth."""
    window = obs.isel(time=zoom).sel(component=component)
    t = window["time"].values
    truth = window["truth"]
    grid = cells.subgridspec(2, len(bands), height_ratios=(1.1, 0.75), hspace=0.08,
                             wspace=0.08)
    top, bottom = [], []
    for i, label in enumerate(bands):
        ax = fig.add_subplot(grid[0, i], sharey=top[0] if top else None)
        dev = fig.add_subplot(grid[1, i], sharex=ax, sharey=bottom[0] if bottom else None)
        post = posteriors[label].sel(time=window["time"], component=component)
        band, color = _band(post, level), colors[label]
        for axis, shift in ((ax, 0.0), (dev, truth)):
            if band is not None:
                axis.fill_between(t, band[0] - shift, band[1] - shift, color=color, alpha=0.3,
                                  lw=0, label=f"{level:.0%} posterior band")
            if "obs" in window:
                axis.plot(t, window["obs"] - shift, "o", mfc="none", mec="C3", ms=5, mew=1,
                          label="observations", zorder=2)
            axis.plot(t, truth - shift, color="k", lw=1.0, ls="--", label="truth", zorder=3)
            axis.plot(t, post["mean"] - shift, ".-", color=color, lw=1.8, ms=6,
                      label="posterior mean", zorder=4)
        ax.set_title(f"{label}: component {component}, last {len(t)} cycles", fontsize=10)
        ax.tick_params(labelbottom=False)
        dev.set_xlabel("model time")
        dev.set_xlim(t[0], t[-1])
        if i:
            ax.tick_params(labelleft=False)
            dev.tick_params(labelleft=False)
        top.append(ax)
        bottom.append(dev)
    top[0].set_ylabel(str(component))
    bottom[0].set_ylabel("minus truth")
    handles = [Patch(color="0.5", alpha=0.3, lw=0, label=f"{level:.0%} posterior band"),
               Line2D([], [], ls="none", marker="o", mfc="none", mec="C3", ms=5,
                      label="observations"),
               Line2D([], [], color="k", lw=1.0, ls="--", label="truth"),
               Line2D([], [], color="0.3", lw=1.8, marker=".", ms=6,
                      label="posterior mean\n(colour of the method)")]
    top[-1].legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8,
                   frameon=False)


def _score_bars(fig, cell, labels, colors, scores) -> None:
    """Row 4: bars of :data:`BAR_SCORES` per method."""
    grid = cell.subgridspec(1, len(BAR_SCORES), wspace=0.15)
    y = np.arange(len(labels))
    for i, (key, name, reference) in enumerate(BAR_SCORES):
        ax = fig.add_subplot(grid[0, i])
        values = [float(scores[k].get(key, np.nan)) for k in labels]
        ax.barh(y, values, color=[colors[k] for k in labels])
        for yi, v in zip(y, values):
            if np.isfinite(v):
                ax.text(v, yi, f" {v:.3f}", va="center", fontsize=8)
        if reference is not None:
            ax.axvline(reference, color="k", lw=0.8, ls=":")
            ax.set_xlim(0, 1.15)
        else:
            ax.set_xlim(0, 1.3 * np.nanmax(values))
        ax.set_yticks(y, labels if i == 0 else [""] * len(labels), fontsize=8)
        ax.invert_yaxis()
        ax.set_title(name, fontsize=10)


__all__ = ["plot_comparison"]
