"""Calibration of ensemble field forecasts: rank histograms, reliability diagrams, CRPS by lead.

The same rules as ``pysteps.verification`` (``rankhist``, ``reldiag``; the tests check equality),
in numpy so that the core does not need pysteps:

* :func:`rank_histogram`: counts of the observation's rank among ``M`` members (``M + 1``
  bins). Pairs with NaN are left out; with ``x_min``, pairs where the observation and every
  member are below ``x_min`` are left out and values below ``x_min`` tie; a tie puts the
  observation in a rank drawn uniformly among the tied ones.
* :func:`exceedance_probability`: fraction of members ``>= threshold``.
* :func:`reliability`: mean forecast probability and observed frequency of ``>= threshold``
  in ``n_bins`` equal probability bins (bins with fewer than ``min_count`` pairs are NaN).
* :func:`calibration_summary`: all three for a forecast Dataset against its truth, pooled
  over samples, leads and pixels, with the CRPS per lead time.

Shapes: members on axis 0 (``(M, ...)``), observations ``(...)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr

from pyro_videossm.errors import InputError


def rank_histogram(members: np.ndarray, obs: np.ndarray, x_min: float | None = None,
                   rng: np.random.Generator | None = None) -> np.ndarray:
    """Counts ``(M + 1,)`` of the rank of ``obs`` ``(...)`` among ``members`` ``(M, ...)``."""
    members = np.asarray(members, dtype=np.float64)
    obs = np.asarray(obs, dtype=np.float64)
    if members.shape[1:] != obs.shape:
        raise InputError(f"members {members.shape} do not match observations {obs.shape}")
    m = members.shape[0]
    f = members.reshape(m, -1)
    o = obs.reshape(-1)
    ok = np.isfinite(o) & np.isfinite(f).all(axis=0)
    if x_min is not None:
        ok &= (o >= x_min) | (f >= x_min).any(axis=0)
    f, o = f[:, ok].copy(), o[ok].copy()
    if x_min is not None:
        f[f < x_min] = x_min - 1
        o[o < x_min] = x_min - 1
    below = (f < o).sum(axis=0)
    ties = (f == o).sum(axis=0)
    rng = rng or np.random.default_rng()
    rank = below + np.floor(rng.uniform(size=o.size) * (ties + 1)).astype(int)
    return np.bincount(rank, minlength=m + 1)


def exceedance_probability(members: np.ndarray, threshold: float) -> np.ndarray:
    """Fraction of ``members`` ``(M, ...)`` ``>= threshold`` (NaN where a member is NaN)."""
    members = np.asarray(members, dtype=np.float64)
    p = (members >= threshold).mean(axis=0)
    return np.where(np.isnan(members).any(axis=0), np.nan, p)


def reliability(prob: np.ndarray, obs: np.ndarray, threshold: float, n_bins: int = 10,
                min_count: int = 10) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(mean forecast probability, observed frequency, count)`` per probability bin of
    ``prob`` against ``obs >= threshold`` (NaN-free pairs; NaN where a bin has fewer than
    ``min_count`` pairs)."""
    prob = np.asarray(prob, dtype=np.float64).reshape(-1)
    obs = np.asarray(obs, dtype=np.float64).reshape(-1)
    ok = np.isfinite(prob) & np.isfinite(obs)
    prob, yes = prob[ok], obs[ok] >= threshold
    edges = np.linspace(-1e-6, 1 + 1e-6, int(n_bins) + 1)
    idx = np.digitize(prob, edges, right=True)
    count = np.bincount(idx, minlength=n_bins + 2)[1:n_bins + 1]
    psum = np.bincount(idx, weights=prob, minlength=n_bins + 2)[1:n_bins + 1]
    ysum = np.bincount(idx, weights=yes.astype(float), minlength=n_bins + 2)[1:n_bins + 1]
    enough = count >= min_count
    with np.errstate(invalid="ignore", divide="ignore"):
        return (np.where(enough, psum / count, np.nan), np.where(enough, ysum / count, np.nan),
                count)


@dataclass
class CalibrationSummary:
    """What :func:`calibration_summary` returns (all pooled over samples, leads, pixels)."""

    model: str
    members: int
    threshold: float
    rank_counts: np.ndarray         # (M + 1,)
    forecast_probability: np.ndarray  # (n_bins,)
    observed_frequency: np.ndarray    # (n_bins,)
    bin_counts: np.ndarray            # (n_bins,)
    lead_minutes: np.ndarray          # (L,) lead times (minutes, or steps)
    crps: np.ndarray                  # (L,)

    def to_dict(self) -> dict:
        return {k: (v.tolist() if isinstance(v, np.ndarray) else v)
                for k, v in self.__dict__.items()}


def _members_last(fc: xr.DataArray) -> np.ndarray:
    """``(M, S, L, H, W)`` from ``([S,] L, M, H, W)``."""
    f = np.asarray(fc.values, dtype=np.float64)
    if f.ndim == 4:
        f = f[None]
    return np.moveaxis(f, 2, 0)


def calibration_summary(forecasts: list[xr.Dataset] | xr.Dataset,
                        truths: list[xr.DataArray] | xr.DataArray, *, threshold: float,
                        x_min: float | None = None, n_bins: int = 10, min_count: int = 10,
                        seed: int = 0) -> CalibrationSummary:
    """Rank histogram, reliability at ``threshold`` and CRPS per lead of one forecaster's
    forecasts against their aligned truths (:func:`~pyro_videossm.metrics.fields.align_truth`),
    pooled over all of them. ``x_min`` (default ``threshold``'s tenth, for rain where zeros
    tie) is the rank histogram's threshold."""
    from pyro_videossm.metrics.fields import crps

    if isinstance(forecasts, xr.Dataset):
        forecasts, truths = [forecasts], [truths]  # type: ignore[list-item]
    if not forecasts:
        raise InputError("no forecasts to calibrate")
    rng = np.random.default_rng(seed)
    members = int(forecasts[0]["forecast"].sizes["member"])
    ranks = np.zeros(members + 1, dtype=np.int64)
    probs, obs_all, crps_rows = [], [], []
    for fc, ob in zip(forecasts, truths):
        f = _members_last(fc["forecast"])
        o = np.asarray(ob.values, dtype=np.float64)
        o = o[None] if o.ndim == 3 else o
        ranks += rank_histogram(f, o, threshold / 10.0 if x_min is None else x_min, rng)
        probs.append(exceedance_probability(f, threshold).reshape(-1))
        obs_all.append(o.reshape(-1))
        crps_rows.append(np.asarray(crps(fc["forecast"], ob).values))
    p, fr, n = reliability(np.concatenate(probs), np.concatenate(obs_all), threshold, n_bins,
                           min_count)
    lead = forecasts[0]["lead_time"].values
    minutes = (lead / np.timedelta64(1, "m") if np.issubdtype(lead.dtype, np.timedelta64)
               else np.asarray(lead, dtype=float))
    return CalibrationSummary(str(forecasts[0].attrs.get("model", "")), members,
                              float(threshold), ranks, p, fr, n, np.asarray(minutes, float),
                              np.nanmean(np.stack(crps_rows), axis=0))


__all__ = ["CalibrationSummary", "calibration_summary", "exceedance_probability",
           "rank_histogram", "reliability"]
