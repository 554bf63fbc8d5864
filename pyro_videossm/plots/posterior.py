"""Matplotlib figures: posterior bands against truth and observations."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr


def plot_posterior(posterior: xr.Dataset, truth: xr.Dataset | None = None, *,
                   components: list[str] | None = None, level: float = 0.9,
                   max_components: int = 6, time_slice: slice | None = None):
    """Truth, observations, posterior mean and central ``level`` band per component.

    Returns the matplotlib figure (one panel per component, at most ``max_components``).
    """
    comps = list(posterior["component"].values) if components is None else components
    comps = comps[:max_components]
    post = posterior.isel(time=time_slice) if time_slice is not None else posterior
    t = post["time"].values
    levels = np.round(post["quantile"].values, 6)
    lo_q, hi_q = round((1 - level) / 2, 6), round((1 + level) / 2, 6)
    has_band = lo_q in levels and hi_q in levels
    fig, axes = plt.subplots(len(comps), 1, figsize=(10, 1.9 * len(comps) + 0.6),
                             sharex=True, squeeze=False)
    for ax, c in zip(axes[:, 0], comps):
        p = post.sel(component=c)
        if has_band:
            lo = p["quantiles"].sel(quantile=lo_q, method="nearest")
            hi = p["quantiles"].sel(quantile=hi_q, method="nearest")
            ax.fill_between(t, lo, hi, color="C0", alpha=0.25, lw=0,
                            label=f"{level:.0%} posterior band")
        ax.plot(t, p["mean"], color="C0", lw=1.2, label="posterior mean")
        if truth is not None:
            tr = truth.sel(time=post["time"], component=c)
            ax.plot(t, tr["truth"], color="k", lw=1.0, label="truth")
            if "obs" in tr:
                ax.plot(t, tr["obs"], ".", color="C3", ms=3, label="observations")
        ax.set_ylabel(str(c))
    axes[0, 0].legend(loc="upper right", ncol=4, fontsize=8, frameon=False)
    axes[-1, 0].set_xlabel("model time")
    method = posterior.attrs.get("method", "")
    estimate = posterior.attrs.get("estimate", "")
    fig.suptitle(f"{method} {estimate} posterior".strip(), y=1.0)
    fig.tight_layout()
    return fig
