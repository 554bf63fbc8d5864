"""Frame strips of a field forecast: truth, forecast members, ensemble mean and error."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr

from pyro_videossm.data.forecast_names import toolkit_forecast_names
from pyro_videossm.errors import InputError
from pyro_videossm.metrics.fields import _fmt_lead, align_truth


def _pick(n: int, k: int) -> np.ndarray:
    """``k`` indices spread evenly over ``range(n)`` (all if ``n <= k``), last included."""
    if n <= k:
        return np.arange(n)
    return np.unique(np.round(np.linspace(0, n - 1, k)).astype(int))


def plot_forecast_strip(forecast: xr.Dataset, truth: xr.Dataset | xr.DataArray | None = None, *,
                        sample: int = 0, members: int = 3, max_leads: int = 8,
                        variable: str | None = None, cmap: str = "viridis"):
    """One figure: a column per lead time (at most ``max_leads``, spread evenly); rows truth,
    up to ``members`` forecast members, the ensemble mean (if several members) and the error
    of the mean. ``truth`` is the data set (or variable) the forecast is scored against; it
    also gives the frame at the initial time (first column). ``sample`` picks the sequence
    when the forecast has a sample dim. Returns the matplotlib figure."""
    forecast = toolkit_forecast_names(forecast)
    fc = forecast["forecast"]
    has_sample = fc.ndim == 5
    if has_sample:
        if not 0 <= sample < fc.sizes[fc.dims[0]]:
            raise InputError(f"sample {sample} out of range (0..{fc.sizes[fc.dims[0]] - 1})")
        fc_s = fc.isel({fc.dims[0]: sample})
    else:
        fc_s = fc
    obs = init = None
    if truth is not None:
        obs = align_truth(forecast, truth, variable)
        if has_sample:
            obs = obs.isel({obs.dims[0]: sample})
        src = truth
        if isinstance(truth, xr.Dataset):
            name = variable or ("truth" if "truth" in truth.data_vars
                                else forecast.attrs.get("source_variable"))
            src = truth[name]
        if "init_time" in forecast.coords and "time" in src.coords:
            t0 = forecast["init_time"].values
            if t0 in src["time"].values:
                init = src.sel(time=t0)
                if has_sample and init.ndim == 3:
                    init = init.isel({init.dims[0]: sample})
    leads = _pick(fc_s.sizes["lead_time"], max_leads)
    mem = np.arange(min(members, fc_s.sizes["member"]))
    f = fc_s.values  # (L, M, H, W)
    mean = np.nanmean(f, axis=1) if f.shape[1] > 1 else f[:, 0]
    rows: list[tuple[str, np.ndarray | None, str]] = []
    if obs is not None:
        rows.append(("truth", obs.values, "field"))
    for m in mem:
        label = "forecast" if f.shape[1] == 1 else f"member {m}"
        rows.append((label, f[:, m], "field"))
    if f.shape[1] > 1:
        rows.append((f"mean of {f.shape[1]}", mean, "field"))
    if obs is not None:
        rows.append(("error (mean - truth)", mean - obs.values, "error"))
    shown = [r[1][leads] for r in rows if r[2] == "field"]
    if init is not None:
        shown.append(init.values[None])
    stack = np.concatenate([s.ravel() for s in shown])
    stack = stack[np.isfinite(stack)]
    vmin = float(np.percentile(stack, 0.5)) if stack.size else 0.0
    vmax = float(np.percentile(stack, 99.5)) if stack.size else 1.0
    if vmin >= 0 or (stack.size and stack.min() >= 0):
        vmin = 0.0
    vmax = vmax if vmax > vmin else vmin + 1.0
    errs = [r[1][leads] for r in rows if r[2] == "error"]
    emax = float(np.nanpercentile(np.abs(errs[0]), 99.5)) if errs and np.isfinite(
        errs[0]).any() else 1.0
    emax = emax or 1.0
    ncol = len(leads) + (1 if init is not None else 0)
    fig, axes = plt.subplots(len(rows), ncol, figsize=(1.7 * ncol + 1.2, 1.7 * len(rows) + 0.6),
                             squeeze=False)
    units = fc.attrs.get("units", "")
    field_im = err_im = None
    for r, (label, data, kind) in enumerate(rows):
        for c in range(ncol):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            col = c - (1 if init is not None else 0)
            if col < 0:
                if r == 0:
                    field_im = ax.imshow(init.values, cmap=cmap, vmin=vmin, vmax=vmax)
                    ax.set_title("init", fontsize=9)
                    ax.set_ylabel(label, fontsize=8)
                else:
                    ax.axis("off")
                continue
            img = data[leads[col]]
            if kind == "error":
                err_im = ax.imshow(img, cmap="RdBu_r", vmin=-emax, vmax=emax)
            else:
                field_im = ax.imshow(img, cmap=cmap, vmin=vmin, vmax=vmax)
            if r == 0:
                ax.set_title(f"+{_fmt_lead(fc_s['lead_time'].values[leads[col]])}", fontsize=9)
            if col == 0 and not (init is not None and r == 0):
                ax.set_ylabel(label, fontsize=8)
    field_axes = [axes[r, c] for r, row in enumerate(rows) if row[2] == "field"
                  for c in range(ncol)]
    if field_im is not None:
        fig.colorbar(field_im, ax=field_axes, shrink=0.8, label=units)
    if err_im is not None:
        fig.colorbar(err_im, ax=list(axes[-1]), shrink=0.8, label=units)
    title = f"{forecast.attrs.get('model', 'forecast')}"
    if "init_time" in forecast.coords:
        title += f", init {np.datetime_as_string(forecast['init_time'].values, unit='m')}" if (
            np.issubdtype(forecast["init_time"].dtype, np.datetime64)) else (
            f", init t = {float(forecast['init_time'].values):g}")
    if has_sample:
        title += f", {fc.dims[0]} {sample}"
    fig.suptitle(title, fontsize=10)
    return fig
