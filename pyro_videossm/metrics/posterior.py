"""Scores over xarray: RMSE, ensemble spread, CRPS, interval coverage, and a table writer.

Posterior datasets (see :mod:`pyro_videossm.assimilate`) hold ``mean``, ``std``,
``quantiles(quantile, ...)`` and optionally ``samples(sample, ...)``; truth is a DataArray
with the same dims. Scores reduce over ``component`` per time, then average over time after
a burn-in.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import xarray as xr

from pyro_videossm.errors import InputError


def rmse_per_time(
    estimate: xr.DataArray, truth: xr.DataArray, dim: str = "component"
) -> xr.DataArray:
    """Root mean squared error over ``dim`` at each time."""
    return np.sqrt(((estimate - truth) ** 2).mean(dim))


def time_average(score: xr.DataArray, burn_in: int = 0, dim: str = "time") -> float:
    """Average of a per-time score after dropping the first ``burn_in`` times."""
    n = score.sizes[dim]
    if int(burn_in) != burn_in or not 0 <= burn_in < n:
        raise InputError(f"burn-in must be an integer in [0, {n}) for a record of {n} cycles, "
                         f"got {burn_in}")
    return float(score.isel({dim: slice(burn_in, None)}).mean(dim))


def rmse(estimate: xr.DataArray, truth: xr.DataArray, burn_in: int = 0) -> float:
    """Time-averaged RMSE after burn-in (the standard assimilation score)."""
    return time_average(rmse_per_time(estimate, truth), burn_in)


def spread(std: xr.DataArray, burn_in: int = 0, dim: str = "component") -> float:
    """Time-averaged ensemble spread: the root of the mean variance over ``dim``."""
    return time_average(np.sqrt((std**2).mean(dim)), burn_in)


def crps_gaussian(mean: xr.DataArray, std: xr.DataArray, truth: xr.DataArray) -> xr.DataArray:
    """Closed-form CRPS of ``N(mean, std^2)`` at ``truth`` (elementwise)."""
    s = np.maximum(std, 1e-12)
    z = (truth - mean) / s
    pdf = np.exp(-0.5 * z**2) / math.sqrt(2 * math.pi)
    cdf = 0.5 * (1 + _erf(z / math.sqrt(2)))
    return s * (z * (2 * cdf - 1) + 2 * pdf - 1 / math.sqrt(math.pi))


def _erf(x: xr.DataArray) -> xr.DataArray:
    from scipy.special import erf

    return xr.apply_ufunc(erf, x)


def crps_ensemble(samples: xr.DataArray, truth: xr.DataArray, dim: str = "sample") -> xr.DataArray:
    """Ensemble CRPS ``E|X - y| - 0.5 E|X - X'|`` (elementwise over the other dims).

    Uses the sorted-members identity, O(N log N) per point, instead of all member pairs.
    """
    n = samples.sizes[dim]
    if n < 1:
        raise InputError("CRPS needs at least one ensemble member")
    term1 = np.abs(samples - truth).mean(dim)
    x = samples.transpose(..., dim)
    xs = np.sort(x.values, axis=-1)
    i = np.arange(1, n + 1)
    # E|X - X'| = 2 / n^2 * sum_i (2i - n - 1) x_(i)
    gini = (2.0 / n**2) * (xs * (2 * i - n - 1)).sum(-1)
    term2 = xr.DataArray(gini, dims=[d for d in x.dims if d != dim],
                         coords={k: v for k, v in term1.coords.items()})
    return term1 - 0.5 * term2


def crps(posterior: xr.Dataset, truth: xr.DataArray, burn_in: int = 0) -> float:
    """Time-averaged CRPS: from ``samples`` if present, else Gaussian from ``mean``/``std``."""
    if "samples" in posterior:
        c = crps_ensemble(posterior["samples"], truth)
    else:
        c = crps_gaussian(posterior["mean"], posterior["std"], truth)
    return time_average(c.mean("component"), burn_in)


def coverage(posterior: xr.Dataset, truth: xr.DataArray, level: float = 0.9,
             burn_in: int = 0) -> float:
    """Fraction of truth inside the central ``level`` interval of the posterior quantiles.

    Needs the quantiles ``(1 - level) / 2`` and ``(1 + level) / 2`` in ``posterior``.
    """
    lo_q, hi_q = round((1 - level) / 2, 6), round((1 + level) / 2, 6)
    levels = np.round(posterior["quantile"].values, 6)
    if lo_q not in levels or hi_q not in levels:
        raise InputError(
            f"coverage at {level:.0%} needs quantiles {lo_q} and {hi_q}; the posterior has "
            f"{list(levels)}"
        )
    q = posterior["quantiles"]
    lo = q.isel(quantile=int(np.where(levels == lo_q)[0][0]))
    hi = q.isel(quantile=int(np.where(levels == hi_q)[0][0]))
    inside = ((truth >= lo) & (truth <= hi)).astype(float)
    return time_average(inside.mean("component"), burn_in)


def score_posterior(posterior: xr.Dataset, truth: xr.DataArray, burn_in: int = 0) -> dict:
    """The standard table row: RMSE, spread, CRPS and 50%/90% coverage after burn-in."""
    if "mean" not in posterior:
        raise InputError("posterior has no 'mean' variable")
    truth = truth.sel(time=posterior["time"]) if "time" in truth.dims else truth
    row = {
        "rmse": rmse(posterior["mean"], truth, burn_in),
        "spread": spread(posterior["std"], burn_in),
        "crps": crps(posterior, truth, burn_in),
    }
    for level in (0.5, 0.9):
        try:
            row[f"coverage_{int(level * 100)}"] = coverage(posterior, truth, level, burn_in)
        except InputError:
            pass
    return row


def markdown_table(rows: Sequence[Mapping], columns: Sequence[str] | None = None,
                   floatfmt: str = ".3f") -> str:
    """A GitHub-flavoured markdown table from a list of dicts (columns in first-seen order)."""
    if not rows:
        return ""
    if columns is None:
        columns = []
        for r in rows:
            columns += [k for k in r if k not in columns]

    def fmt(v) -> str:
        if isinstance(v, float):
            return format(v, floatfmt) if math.isfinite(v) else str(v)
        return "" if v is None else str(v)

    lines = ["| " + " | ".join(columns) + " |", "| " + " | ".join("---" for _ in columns) + " |"]
    lines += ["| " + " | ".join(fmt(r.get(c)) for c in columns) + " |" for r in rows]
    return "\n".join(lines)
