"""Scores of field forecasts per lead time: MSE, MAE, CRPS, SSIM, CSI and FSS, over xarray.

A forecast (see :mod:`pyro_videossm.forecast.base`) is ``forecast([sample,] lead_time, member,
y, x)``; :func:`align_truth` picks the matching truth ``([sample,] lead_time, y, x)`` from a
data set by valid time (coordinates named the CF way, ``forecast_period``, ``realization``,
``forecast_reference_time``, are read as ``lead_time``, ``member``, ``init_time``: see
:func:`~pyro_videossm.data.forecast_names.toolkit_forecast_names`). Every score reduces
over samples and pixels and keeps ``lead_time`` (CSI also ``threshold``; FSS ``threshold`` and
``scale``). NaN in the truth or the forecast
(e.g. outside radar range) is left out of every sum.

* ``mse``, ``mae``: of the ensemble mean.
* ``crps``: ensemble CRPS ``E|X - y| - 0.5 E|X - X'|`` over members (= MAE for one member).
* ``ssim``: Wang et al. (2004) SSIM of the ensemble mean with an 11 x 11 Gaussian window
  (sigma 1.5, K1 0.01, K2 0.03, population covariances), averaged over the pixels whose window
  lies inside the frame and holds no missing value (as ``skimage.metrics.structural_similarity
  (gaussian_weights=True, sigma=1.5, use_sample_covariance=False)`` does on complete frames).
  ``data_range`` defaults to the truth's range.
* ``csi``: critical success index ``hits / (hits + misses + false alarms)`` of the ensemble
  mean exceeding each threshold (``>=``), contingency counts summed over samples and pixels.
* ``fss``: fractions skill score (Roberts & Lean 2008) of the ensemble mean at each threshold
  and neighbourhood size (uniform filter, zero outside the grid), ``1 - sum (Pf - Po)^2 /
  sum (Pf^2 + Po^2)`` summed over samples and pixels; missing truth pixels count as not
  exceeding in the fractions and are left out of the sums.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
import xarray as xr

from pyro_videossm.data.forecast_names import toolkit_forecast_names
from pyro_videossm.errors import InputError
from pyro_videossm.metrics.posterior import crps_ensemble, markdown_table

#: Thresholds (mm/h) and scales (pixels) used for rain rates by default.
DEFAULT_THRESHOLDS: tuple[float, ...] = (0.5, 1.0, 4.0)
DEFAULT_SCALES: tuple[int, ...] = (1, 4, 16)


# -- aligning forecast and truth -------------------------------------------------------
def align_truth(forecast: xr.Dataset, truth: xr.Dataset | xr.DataArray,
                variable: str | None = None) -> xr.DataArray:
    """The truth at the forecast's valid times: ``([sample,] lead_time, y, x)``.

    ``truth`` holds ``(time, y, x)`` or ``(sample, time, y, x)``; from a Dataset the variable is
    ``variable``, else ``truth`` if present, else the forecast's ``source_variable``.
    """
    if "forecast" not in forecast:
        raise InputError("not a forecast: no 'forecast' variable")
    forecast = toolkit_forecast_names(forecast)
    fc = forecast["forecast"]
    if isinstance(truth, xr.Dataset):
        name = variable or ("truth" if "truth" in truth.data_vars
                            else forecast.attrs.get("source_variable"))
        if name not in truth.data_vars:
            raise InputError(f"truth has no variable {name!r} "
                             f"(has: {', '.join(map(str, truth.data_vars))})")
        truth = truth[name]
    if "time" not in truth.dims:
        raise InputError(f"truth variable {truth.name!r} has no 'time' dim (dims {truth.dims})")
    spatial = tuple(map(str, fc.dims[-2:]))
    if tuple(map(str, truth.dims[-2:])) != spatial:
        raise InputError(f"truth dims {truth.dims} do not end in the forecast's {spatial}")
    if truth.shape[-2:] != fc.shape[-2:]:
        raise InputError(f"truth grid {truth.shape[-2:]} differs from the forecast's "
                         f"{fc.shape[-2:]}")
    for d in spatial:
        if d in truth.coords and d in fc.coords and not np.allclose(
                truth[d].values, fc[d].values, rtol=1e-6, atol=1e-9):
            raise InputError(f"truth coordinate {d!r} differs from the forecast's")
    if "valid_time" in forecast.coords:
        valid = forecast["valid_time"].values
        missing = np.setdiff1d(valid, truth["time"].values)
        if missing.size:
            raise InputError(f"the truth has no time {missing[0]} (forecast valid time); "
                             f"it covers {truth['time'].values[0]} .. "
                             f"{truth['time'].values[-1]}")
        out = truth.sel(time=valid)
    elif "init_index" in forecast.attrs:
        idx = int(forecast.attrs["init_index"]) + forecast["lead_step"].values
        if idx.max() >= truth.sizes["time"]:
            raise InputError("the truth ends before the forecast's last lead time")
        out = truth.isel(time=idx)
    else:
        raise InputError("the forecast has no valid_time: cannot match it to the truth")
    out = out.rename(time="lead_time").assign_coords(lead_time=fc["lead_time"].values)
    sample = str(fc.dims[0]) if fc.ndim == 5 else None
    if sample:
        if sample not in out.dims:
            raise InputError(f"the forecast has a {sample!r} dim but the truth has not")
        if sample in fc.coords and sample in out.coords:
            try:
                out = out.sel({sample: fc[sample].values})
            except KeyError:
                raise InputError(f"the truth lacks some of the forecast's {sample}s") from None
        elif out.sizes[sample] != fc.sizes[sample]:
            raise InputError(f"{sample} count differs: forecast {fc.sizes[sample]}, "
                             f"truth {out.sizes[sample]}")
        out = out.transpose(sample, "lead_time", *spatial)
    elif out.ndim == 4:
        raise InputError(f"the truth has a {out.dims[0]!r} dim; pick one (the forecast has none)")
    return out.drop_vars([c for c in out.coords if c not in out.dims and c != "valid_time"],
                         errors="ignore")


def _arrays(fc: xr.DataArray, truth: xr.DataArray) -> tuple[np.ndarray, np.ndarray]:
    """``(S, L, M, H, W)`` forecast and ``(S, L, H, W)`` truth as float64 numpy."""
    f = np.asarray(fc.values, dtype=np.float64)
    o = np.asarray(truth.values, dtype=np.float64)
    if f.ndim == 4:
        f, o = f[None], o[None]
    if f.ndim != 5 or o.shape != f.shape[:2] + f.shape[3:]:
        raise InputError(f"forecast shape {fc.shape} does not match truth shape {truth.shape}")
    return f, o


def _per_lead(values: np.ndarray, fc: xr.DataArray, name: str, long_name: str,
              units: str | None = None, extra: dict | None = None) -> xr.DataArray:
    dims = tuple(extra or ()) + ("lead_time",)
    coords = {"lead_time": fc["lead_time"]}
    coords.update({k: (k, np.asarray(v)) for k, v in (extra or {}).items()})
    attrs = {"long_name": long_name}
    if units is not None:
        attrs["units"] = units
    return xr.DataArray(values, dims=dims, coords=coords, name=name, attrs=attrs)


def _ensemble_mean(f: np.ndarray) -> np.ndarray:
    if not np.isnan(f).any():
        return f.mean(axis=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN pixels stay NaN
        return np.nanmean(f, axis=2)


def _nanmean_lead(x: np.ndarray) -> np.ndarray:
    """Mean over everything but axis 1 (lead), skipping NaN; (S, L, ...) -> (L,)."""
    x = np.moveaxis(x, 1, 0).reshape(x.shape[1], -1)
    ok = ~np.isnan(x)
    n = ok.sum(axis=1)
    s = np.where(ok, x, 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, s / np.maximum(n, 1), np.nan)


# -- pointwise scores ------------------------------------------------------------------
def mse(fc: xr.DataArray, truth: xr.DataArray) -> xr.DataArray:
    """Mean squared error of the ensemble mean per lead time."""
    f, o = _arrays(fc, truth)
    u = _units(fc)
    return _per_lead(_nanmean_lead((_ensemble_mean(f) - o) ** 2), fc, "mse",
                     "mean squared error", f"({u})2" if u else None)


def mae(fc: xr.DataArray, truth: xr.DataArray) -> xr.DataArray:
    """Mean absolute error of the ensemble mean per lead time."""
    f, o = _arrays(fc, truth)
    return _per_lead(_nanmean_lead(np.abs(_ensemble_mean(f) - o)), fc, "mae",
                     "mean absolute error", _units(fc))


def crps(fc: xr.DataArray, truth: xr.DataArray) -> xr.DataArray:
    """Ensemble CRPS per lead time (members are ``member``)."""
    order = [d for d in fc.dims if d != "member"]
    c = np.asarray(crps_ensemble(fc, truth, dim="member").transpose(*order).values)
    return _per_lead(_nanmean_lead(c[None] if c.ndim == 3 else c), fc, "crps",
                     "continuous ranked probability score (ensemble)", _units(fc))


def spread(fc: xr.DataArray) -> xr.DataArray:
    """Root of the mean ensemble variance per lead time (0 for one member)."""
    f = np.asarray(fc.values, dtype=np.float64)
    if f.ndim == 4:
        f = f[None]
    if f.shape[2] > 1:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            var = np.nanvar(f, axis=2)
    else:
        var = np.where(np.isnan(f[:, :, 0]), np.nan, 0.0)
    return _per_lead(np.sqrt(_nanmean_lead(var)), fc, "spread", "ensemble spread", _units(fc))


def _units(da: xr.DataArray) -> str:
    return str(da.attrs.get("units", ""))


# -- SSIM ------------------------------------------------------------------------------
def gaussian_window(sigma: float = 1.5, truncate: float = 3.5,
                    dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Normalised 1D Gaussian of radius ``int(truncate * sigma + 0.5)`` (as scipy.ndimage)."""
    r = int(truncate * sigma + 0.5)
    x = torch.arange(-r, r + 1, dtype=dtype)
    w = torch.exp(-0.5 * (x / sigma) ** 2)
    return w / w.sum()


def ssim_frames(x: torch.Tensor, y: torch.Tensor, data_range: float, *, sigma: float = 1.5,
                k1: float = 0.01, k2: float = 0.03) -> torch.Tensor:
    """Mean SSIM of each frame pair ``(N, H, W)`` -> ``(N,)``.

    NaN marks missing pixels: the SSIM map is averaged over the pixels whose whole window is
    inside the frame and free of NaN (NaN where there is none).
    """
    if x.shape != y.shape or x.dim() != 3:
        raise InputError(f"ssim needs two (N, H, W) stacks of equal shape, got {tuple(x.shape)}"
                         f" and {tuple(y.shape)}")
    g = gaussian_window(sigma, dtype=x.dtype).to(x.device)
    k = g.numel()
    if x.shape[-1] < k or x.shape[-2] < k:
        raise InputError(f"frames of {tuple(x.shape[-2:])} pixels are smaller than the SSIM "
                         f"window ({k} x {k})")
    bad = (torch.isnan(x) | torch.isnan(y)).to(x.dtype)
    x = torch.nan_to_num(x)
    y = torch.nan_to_num(y)
    wr, wc = g.view(1, 1, k, 1), g.view(1, 1, 1, k)

    def filt(a: torch.Tensor) -> torch.Tensor:  # valid separable Gaussian filter
        return F.conv2d(F.conv2d(a.unsqueeze(1), wr), wc).squeeze(1)

    ux, uy = filt(x), filt(y)
    vx = filt(x * x) - ux * ux
    vy = filt(y * y) - uy * uy
    vxy = filt(x * y) - ux * uy
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    ones = torch.ones(1, 1, k, k, dtype=x.dtype, device=x.device)
    ok = F.conv2d(bad.unsqueeze(1), ones).squeeze(1) == 0
    n = ok.sum(dim=(-2, -1))
    total = torch.where(ok, s, torch.zeros_like(s)).sum(dim=(-2, -1))
    return torch.where(n > 0, total / n.clamp_min(1), torch.full_like(total, float("nan")))


def ssim(fc: xr.DataArray, truth: xr.DataArray, data_range: float | None = None,
         sigma: float = 1.5) -> xr.DataArray:
    """SSIM of the ensemble mean per lead time (mean over samples)."""
    f, o = _arrays(fc, truth)
    if data_range is None:
        data_range = float(np.nanmax(o) - np.nanmin(o)) if not np.isnan(o).all() else 1.0
        data_range = data_range or 1.0
    m = _ensemble_mean(f)
    s, lead = m.shape[:2]
    vals = ssim_frames(torch.from_numpy(m.reshape(s * lead, *m.shape[2:])),
                       torch.from_numpy(o.reshape(s * lead, *o.shape[2:])),
                       float(data_range), sigma=sigma).numpy().reshape(s, lead)
    out = _per_lead(_nanmean_lead(vals), fc, "ssim", "structural similarity index", "1")
    out.attrs["data_range"] = float(data_range)
    return out


# -- categorical and neighbourhood scores ---------------------------------------------
def contingency(f: np.ndarray, o: np.ndarray, threshold: float) -> dict[str, np.ndarray]:
    """Hits, misses, false alarms, correct negatives per lead: ``f``, ``o`` ``(S, L, H, W)``
    (NaN in either: left out)."""
    ok = ~(np.isnan(f) | np.isnan(o))
    fy = (f >= threshold) & ok
    oy = (o >= threshold) & ok
    axes = tuple(i for i in range(f.ndim) if i != 1)
    return {"hits": (fy & oy).sum(axes), "misses": (~fy & oy & ok).sum(axes),
            "false_alarms": (fy & ~oy & ok).sum(axes),
            "correct_negatives": (~fy & ~oy & ok).sum(axes)}


def csi(fc: xr.DataArray, truth: xr.DataArray,
        thresholds: Sequence[float] = DEFAULT_THRESHOLDS) -> xr.DataArray:
    """Critical success index ``(threshold, lead_time)`` of the ensemble mean (NaN where
    neither forecast nor truth reaches the threshold)."""
    f, o = _arrays(fc, truth)
    m = _ensemble_mean(f)
    rows = []
    for thr in thresholds:
        c = contingency(m, o, float(thr))
        den = c["hits"] + c["misses"] + c["false_alarms"]
        with np.errstate(invalid="ignore", divide="ignore"):
            rows.append(np.where(den > 0, c["hits"] / np.maximum(den, 1), np.nan))
    return _per_lead(np.array(rows), fc, "csi", "critical success index", "1",
                     {"threshold": np.asarray(thresholds, dtype=float)})


def fractions(binary: np.ndarray, scale: int) -> np.ndarray:
    """Fraction of ``binary`` pixels in each ``scale x scale`` neighbourhood over the last two
    axes (``scipy.ndimage.uniform_filter``, zeros outside the grid)."""
    from scipy.ndimage import uniform_filter

    if scale == 1:
        return binary.astype(np.float64)
    size = (1,) * (binary.ndim - 2) + (int(scale), int(scale))
    return uniform_filter(binary.astype(np.float64), size=size, mode="constant", cval=0.0)


def fss(fc: xr.DataArray, truth: xr.DataArray,
        thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
        scales: Sequence[int] = DEFAULT_SCALES) -> xr.DataArray:
    """Fractions skill score ``(threshold, scale, lead_time)`` of the ensemble mean."""
    f, o = _arrays(fc, truth)
    m = _ensemble_mean(f)
    ok = ~np.isnan(o)
    out = np.full((len(thresholds), len(scales), f.shape[1]), np.nan)
    axes = tuple(i for i in range(m.ndim) if i != 1)
    for i, thr in enumerate(thresholds):
        fb = np.nan_to_num(m, nan=-np.inf) >= thr
        ob = np.nan_to_num(o, nan=-np.inf) >= thr
        for j, n in enumerate(scales):
            if int(n) != n or n < 1:
                raise InputError(f"FSS scales must be integers >= 1, got {n}")
            pf, po = fractions(fb, int(n)), fractions(ob, int(n))
            num = np.where(ok, (pf - po) ** 2, 0.0).sum(axes)
            den = np.where(ok, pf * pf + po * po, 0.0).sum(axes)
            with np.errstate(invalid="ignore", divide="ignore"):
                out[i, j] = np.where(den > 0, 1.0 - num / np.maximum(den, 1e-300), np.nan)
    return _per_lead(out, fc, "fss", "fractions skill score", "1",
                     {"threshold": np.asarray(thresholds, dtype=float),
                      "scale": np.asarray(scales, dtype=int)})


# -- everything at once ---------------------------------------------------------------
def score_forecast(forecast: xr.Dataset, truth: xr.Dataset | xr.DataArray, *,
                   variable: str | None = None, thresholds: Sequence[float] | None = None,
                   scales: Sequence[int] = DEFAULT_SCALES, data_range: float | None = None,
                   with_ssim: bool = True) -> xr.Dataset:
    """All scores per lead time as a Dataset (``mse``, ``rmse``, ``mae``, ``crps``,
    ``spread``, ``ssim``, and ``csi``/``fss`` when there are thresholds: by default
    :data:`DEFAULT_THRESHOLDS` for rain in mm/h, none otherwise)."""
    if any(int(s) < 1 for s in scales):
        raise InputError(f"FSS scales must be >= 1 pixel, got {list(scales)}")
    if data_range is not None and not data_range > 0:
        raise InputError(f"the SSIM data range must be > 0, got {data_range}")
    forecast = toolkit_forecast_names(forecast)
    obs = align_truth(forecast, truth, variable)
    fc = forecast["forecast"]
    if np.isnan(obs.values).all():
        raise InputError("the truth is all missing at the forecast's valid times")
    out = {"mse": mse(fc, obs), "mae": mae(fc, obs), "crps": crps(fc, obs),
           "spread": spread(fc)}
    out["rmse"] = np.sqrt(out["mse"]).rename("rmse").assign_attrs(
        long_name="root mean squared error", units=_units(fc))
    if with_ssim and min(fc.shape[-2:]) >= gaussian_window().numel():
        out["ssim"] = ssim(fc, obs, data_range)
    if thresholds is None:
        thresholds = DEFAULT_THRESHOLDS if _units(fc).replace(" ", "") in (
            "mm/h", "mmh-1", "mm/hr") else ()
    if thresholds:
        out["csi"] = csi(fc, obs, thresholds)
        out["fss"] = fss(fc, obs, thresholds, scales)
    ds = xr.Dataset(out)
    ds.attrs.update({"model": forecast.attrs.get("model", ""),
                     "members": int(fc.sizes["member"]),
                     "samples": int(fc.sizes[fc.dims[0]]) if fc.ndim == 5 else 1})
    return ds


def scores_table(scores: xr.Dataset, *, model: str | None = None, floatfmt: str = ".4g") -> str:
    """A markdown table with one row per lead time."""
    rows = []
    lead = scores["lead_time"].values
    for i, lt in enumerate(lead):
        row: dict = {}
        if model is not None:
            row["model"] = model
        row["lead"] = _fmt_lead(lt)
        for name in ("rmse", "mae", "crps", "spread", "ssim"):
            if name in scores:
                row[name] = float(scores[name].values[i])
        if "csi" in scores:
            for thr in scores["threshold"].values:
                row[f"csi@{thr:g}"] = float(scores["csi"].sel(threshold=thr).values[i])
        if "fss" in scores:
            for thr in scores["threshold"].values:
                for n in scores["scale"].values:
                    row[f"fss@{thr:g}/{n}px"] = float(
                        scores["fss"].sel(threshold=thr, scale=n).values[i])
        rows.append(row)
    return markdown_table(rows, floatfmt=floatfmt)


def _fmt_lead(lt) -> str:
    if isinstance(lt, np.timedelta64):
        minutes = lt / np.timedelta64(1, "m")
        if minutes < 120:
            return f"{minutes:g} min"
        return f"{minutes / 60:g} h"
    return f"{float(lt):g}"
