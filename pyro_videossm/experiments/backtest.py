"""Rolling-window backtest of a field forecaster, with scores per window and pooled.

Like :func:`pyro.contrib.forecast.evaluate.backtest`, a fixed context window slides over the
record: with the split time ``t1`` running over ``range(start, T - leads + 1, stride)``
(``start`` defaults to ``context``), the forecaster sees frames ``[t1 - context, t1)`` and is
scored on ``[t1, t1 + leads)``. Unlike Pyro's (which refits a model per window and leaves
the aggregation to the caller), the forecaster here is already trained (or needs no training)
and the scores come both per window and *pooled*: each metric applied once to all windows
stacked along ``sample`` (contingency counts, FSS sums and means over every window and pixel),
which is what the tables of docs/RESULTS.md report.

Shapes: ``data`` holds ``variable(time, y, x)`` or ``variable(sample, time, y, x)`` (windows of
every sample); forecasts are ``(lead_time, member, y, x)``; a metric is ``fn(forecast,
truth) -> per-lead DataArray`` (:mod:`pyro_videossm.metrics.fields`: ``mse``, ``mae``,
``crps``, ``csi``, ``fss``, ...). ``truth`` (a variable of ``data`` or a DataArray of the same
shape) is what the forecast is scored against; default the forecast variable itself.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import xarray as xr

from pyro_videossm.data.selection import select_field
from pyro_videossm.errors import InputError
from pyro_videossm.forecast.base import Forecaster
from pyro_videossm.metrics.fields import crps, mae, mse

Metric = Callable[[xr.DataArray, xr.DataArray], xr.DataArray]
DEFAULT_METRICS: dict[str, Metric] = {"mse": mse, "mae": mae, "crps": crps}


@dataclass
class Backtest:
    """What :func:`backtest` returns.

    Attributes:
        windows: one dict per window: ``sample`` (index or None), ``t0``, ``t1``, ``t2`` (context
            ``[t0, t1)``, scored ``[t1, t2)``), ``init_time``, ``seconds`` (forecast wall time)
            and one ``(leads,)`` array per metric.
        pooled: metric -> ``(leads,)`` array (or the metric's full array, e.g. CSI's
            ``(threshold, leads)``) over all windows at once.
        leads: number of lead times.
    """

    windows: list[dict] = field(default_factory=list)
    pooled: dict[str, np.ndarray] = field(default_factory=dict)
    leads: int = 0

    def mean_over_windows(self, name: str) -> np.ndarray:
        """The per-window scores of ``name`` averaged over windows (equal weights)."""
        return np.mean([w[name] for w in self.windows], axis=0)


def window_splits(duration: int, *, context: int, leads: int, stride: int = 1,
                  start: int | None = None, windows: int | None = None) -> list[int]:
    """The split times ``t1`` (first scored frame) of the rolling windows."""
    for name, value, low in (("context", context, 1), ("leads", leads, 1), ("stride", stride, 1)):
        if int(value) < low:
            raise InputError(f"backtest: {name} must be >= {low}, got {value}")
    start = int(context) if start is None else int(start)
    if start < context:
        raise InputError(f"backtest: start ({start}) leaves less than the context ({context})")
    splits = list(range(start, duration - int(leads) + 1, int(stride)))
    if windows is not None:
        if int(windows) < 1:
            raise InputError(f"backtest: windows must be >= 1, got {windows}")
        splits = splits[:int(windows)]
    if not splits:
        raise InputError(f"backtest: {duration} frames hold no window of {context} context "
                         f"+ {leads} leads from frame {start}")
    return splits


def _truth_array(data: xr.Dataset | xr.DataArray, truth: str | xr.DataArray | None,
                 field_da: xr.DataArray) -> xr.DataArray:
    if truth is None:
        return field_da
    if isinstance(truth, str):
        if not isinstance(data, xr.Dataset) or truth not in data.data_vars:
            raise InputError(f"backtest: no truth variable {truth!r} in the data")
        truth = data[truth]
    if truth.dims != field_da.dims or truth.shape != field_da.shape:
        raise InputError(f"backtest: truth dims {truth.dims} {truth.shape} differ from the "
                         f"field's {field_da.dims} {field_da.shape}")
    return truth


def _window_truth(series: xr.DataArray, t1: int, leads: int, fc: xr.DataArray) -> xr.DataArray:
    """``(lead_time, y, x)``: frames ``[t1, t1 + leads)`` of ``series`` (by index: float time
    steps need not add up exactly to the forecast's valid times)."""
    out = series.isel(time=slice(t1, t1 + leads))
    out = out.drop_vars([c for c in out.coords if c not in out.dims or c == "time"])
    return out.rename(time="lead_time").assign_coords(lead_time=fc["lead_time"].values)


def _stack(arrays: list[xr.DataArray]) -> xr.DataArray:
    """Windows stacked along a new leading ``sample`` dim (dim coordinates only)."""
    plain = [a.drop_vars([c for c in a.coords if c not in a.dims]) for a in arrays]
    return xr.concat(plain, dim="sample", join="exact", coords="minimal", compat="override")


def backtest(forecaster: Forecaster, data: xr.Dataset | xr.DataArray, *, context: int,
             leads: int, stride: int = 1, start: int | None = None, windows: int | None = None,
             metrics: Mapping[str, Metric] | None = None, members: int = 1, seed: int = 0,
             variable: str | None = None, truth: str | xr.DataArray | None = None,
             samples: Sequence[int] | None = None) -> Backtest:
    """Forecast every rolling window of ``data`` and score it (see the module docstring).

    ``windows`` keeps the first ``windows`` splits (per sample); ``samples`` picks samples of a
    ``(sample, time, y, x)`` field (default all); every window is forecast with the same
    ``seed``.
    """
    metrics = dict(DEFAULT_METRICS if metrics is None else metrics)
    if not metrics:
        raise InputError("backtest: no metrics")
    da = select_field(data, variable)
    target = _truth_array(data, truth, da)
    sample_dim = da.dims[0] if da.ndim == 4 else None
    if sample_dim is None:
        records = [(None, da, target)]
    else:
        chosen = range(da.sizes[sample_dim]) if samples is None else samples
        records = [(int(i), da.isel({sample_dim: int(i)}), target.isel({sample_dim: int(i)}))
                   for i in chosen]
    out = Backtest(leads=int(leads))
    fcs, obs = [], []
    for sample, series, truth_series in records:
        splits = window_splits(series.sizes["time"], context=context, leads=leads,
                               stride=stride, start=start, windows=windows)
        for t1 in splits:
            ctx = series.isel(time=slice(t1 - context, t1))
            began = time.perf_counter()
            fc = forecaster.forecast(ctx, leads, members, seed=seed)
            seconds = time.perf_counter() - began
            ob = _window_truth(truth_series, t1, leads, fc["forecast"])
            row = {"sample": sample, "t0": t1 - context, "t1": t1, "t2": t1 + leads,
                   "init_time": fc["init_time"].values.item() if "init_time" in fc.coords
                   else None, "seconds": seconds}
            for name, fn in metrics.items():
                row[name] = np.asarray(fn(fc["forecast"], ob).values)
            out.windows.append(row)
            fcs.append(fc["forecast"])
            obs.append(ob)
    # every window on the first window's lead times (float time steps may differ by rounding)
    lead_time = fcs[0]["lead_time"].values
    pooled_fc = _stack([f.assign_coords(lead_time=lead_time) for f in fcs])
    pooled_ob = _stack([o.assign_coords(lead_time=lead_time) for o in obs])
    out.pooled = {name: np.asarray(fn(pooled_fc, pooled_ob).values)
                  for name, fn in metrics.items()}
    return out


__all__ = ["DEFAULT_METRICS", "Backtest", "backtest", "window_splits"]
