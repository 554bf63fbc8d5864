"""Quantile-forecast scores: pinball (quantile) loss, interval coverage (ICP) and width (MIL).

For a forecast quantile ``q_tau`` at level ``tau`` and an outcome ``y`` the pinball loss is::

    rho_tau(y - q_tau) = max(tau (y - q_tau), (tau - 1) (y - q_tau))

(``0.5 |y - q|`` at the median; twice the mean over levels approximates the CRPS). For the
central interval ``[q_lo, q_hi]`` (10–90 % by default, a nominal 80 % interval):

* ICP (interval coverage probability): the fraction of outcomes with ``q_lo <= y <= q_hi``;
* MIL (mean interval length): the mean of ``q_hi - q_lo``, in the data's units.

Frames of the moving-digits data are in [0, 1], so pinball loss and MIL are in that scale.

Two forms: torch (:func:`quantile_loss`, used as a training loss, with a boolean mask) and
xarray (:func:`pinball`, :func:`interval_coverage`, :func:`interval_length`,
:func:`quantile_scores`) for forecasts with a ``quantile`` dimension. NaN outcomes are skipped.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import xarray as xr
from torch import Tensor

from pyro_videossm.errors import InputError


def check_levels(levels: Sequence[float]) -> tuple[float, ...]:
    """Quantile levels as a tuple: strictly increasing, each in (0, 1)."""
    out = tuple(float(t) for t in levels)
    if not out:
        raise InputError("at least one quantile level is needed")
    if any(not 0.0 < t < 1.0 for t in out):
        raise InputError(f"quantile levels must lie in (0, 1), got {list(out)}")
    if any(b <= a for a, b in zip(out, out[1:])):
        raise InputError(f"quantile levels must be strictly increasing, got {list(out)}")
    return out


def quantile_loss(pred: Tensor, target: Tensor, levels: Sequence[float] | Tensor,
                  dim: int = -1, mask: Tensor | None = None) -> Tensor:
    """Mean pinball loss over levels and (masked) elements.

    Args:
        pred: quantile forecasts, levels along ``dim`` (e.g. ``(B, L, Q, H, W)`` with ``dim=2``).
        target: outcomes, shaped like ``pred`` without ``dim``.
        levels: the ``Q`` levels of ``pred``.
        dim: the level dimension of ``pred``.
        mask: boolean like ``target``; False elements do not count.

    Returns:
        scalar: ``mean over valid elements of (1/Q) sum_q rho_{tau_q}(y - q)``.
    """
    dim = dim % pred.dim()
    tau = torch.as_tensor(levels, dtype=pred.dtype, device=pred.device)
    shape = [1] * pred.dim()
    shape[dim] = -1
    tau = tau.view(shape)
    err = target.unsqueeze(dim) - pred
    loss = torch.maximum(tau * err, (tau - 1.0) * err).mean(dim)
    if mask is None:
        return loss.mean()
    m = mask.to(loss.dtype)
    return (loss * m).sum() / m.sum().clamp_min(1.0)


# -- xarray --------------------------------------------------------------------------------
def _levels(q: xr.DataArray, dim: str) -> np.ndarray:
    if dim not in q.dims:
        raise InputError(f"quantile forecast has no {dim!r} dimension (dims {q.dims})")
    if dim not in q.coords:
        raise InputError(f"quantile forecast has no {dim!r} coordinate with the levels")
    lev = np.asarray(q[dim].values, dtype=float)
    check_levels(lev)
    return lev


def _at(q: xr.DataArray, level: float, dim: str) -> xr.DataArray:
    lev = _levels(q, dim)
    i = int(np.argmin(np.abs(lev - level)))
    if abs(lev[i] - level) > 1e-9:
        raise InputError(f"quantile forecast has no level {level} (levels {lev.tolist()})")
    return q.isel({dim: i}, drop=True)


def pinball(quantiles: xr.DataArray, truth: xr.DataArray, dim: str = "quantile",
            reduce: Sequence[str] | None = None) -> xr.DataArray:
    """Pinball loss averaged over levels (and over ``reduce`` dims, default all), NaN skipped.

    ``quantiles`` has a ``dim`` coordinate with the levels; ``truth`` broadcasts against it.
    """
    tau = xr.DataArray(_levels(quantiles, dim), dims=dim, coords={dim: quantiles[dim]})
    err = truth - quantiles
    loss = np.maximum(tau * err, (tau - 1.0) * err).mean(dim)
    loss = loss.where(truth.notnull())
    return loss.mean(reduce) if reduce is not None else loss.mean()


def interval_coverage(lower: xr.DataArray, upper: xr.DataArray, truth: xr.DataArray,
                      reduce: Sequence[str] | None = None) -> xr.DataArray:
    """ICP: fraction of ``truth`` inside ``[lower, upper]`` (ends included), NaN skipped."""
    inside = ((truth >= lower) & (truth <= upper)).astype(float).where(truth.notnull())
    return inside.mean(reduce) if reduce is not None else inside.mean()


def interval_length(lower: xr.DataArray, upper: xr.DataArray,
                    truth: xr.DataArray | None = None,
                    reduce: Sequence[str] | None = None) -> xr.DataArray:
    """MIL: mean of ``upper - lower`` (where ``truth`` is not NaN, when given)."""
    width = upper - lower
    if truth is not None:
        width = width.where(truth.notnull())
    return width.mean(reduce) if reduce is not None else width.mean()


def quantile_scores(quantiles: xr.DataArray, truth: xr.DataArray, *, lower: float = 0.1,
                    upper: float = 0.9, dim: str = "quantile") -> dict[str, float]:
    """``{"pinball", "icp", "mil", "median_mse"}`` over all elements.

    ``icp``/``mil`` use the central interval ``[q_lower, q_upper]`` (nominal coverage
    ``upper - lower``); ``median_mse`` is the mean squared error of the median (if present).
    """
    if not 0 < lower < upper < 1:
        raise InputError(f"interval levels must satisfy 0 < lower < upper < 1, got "
                         f"{lower}, {upper}")
    lo, hi = _at(quantiles, lower, dim), _at(quantiles, upper, dim)
    out = {
        "pinball": float(pinball(quantiles, truth, dim)),
        "icp": float(interval_coverage(lo, hi, truth)),
        "mil": float(interval_length(lo, hi, truth)),
    }
    if np.any(np.isclose(_levels(quantiles, dim), 0.5)):
        med = _at(quantiles, 0.5, dim)
        out["median_mse"] = float(((med - truth) ** 2).where(truth.notnull()).mean())
    return out
