"""Stream (context + leads) windows of a 2D field from netCDF, without loading the file whole.

:class:`FieldWindows` is a ``torch.utils.data.Dataset`` over the windows of a field
``variable(time, y, x)`` or ``variable(sample, time, y, x)``: item ``i`` reads only its
``context + leads`` frames from disk (xarray's lazy indexing of the netCDF4 backend, or a dask
array's slice) and returns ``{"x": (T, H, W), "mask": (T, H, W)}`` with ``T = context + leads``
in model units (the :class:`~pyro_videossm.data.scaling.FieldScaling` applied), NaN ->
``x = 0, mask = False``. Give it a ``time_range`` (see :func:`chronological_split`) and its
windows stay inside that block.

Checks (one-line :class:`~pyro_videossm.errors.InputError`): missing variable, misnamed or
misordered dims, time out of order or duplicated, all-missing frames (scanned once, in time
chunks), context + leads longer than the data.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import xarray as xr
from torch import Tensor
from torch.utils.data import Dataset

from pyro_videossm.data.conventions import open_dataset
from pyro_videossm.data.scaling import FieldScaling
from pyro_videossm.data.selection import (  # noqa: F401 (SPATIAL_PAIRS re-exported)
    SPATIAL_PAIRS,
    check_time_order,
    spatial_axes,
)
from pyro_videossm.errors import InputError

#: Accepted names of a leading series dim.
LEADING_DIMS: tuple[str, ...] = ("sample", "clip", "trajectory")

#: Variable names tried, in order, when none is given and the file has several.
FIELD_NAMES: tuple[str, ...] = ("obs", "precip", "rain_rate", "truth")


def check_field(da: xr.DataArray, *, where: str = "", check_missing: bool = True,
                chunk: int = 64) -> np.ndarray | None:
    """Check ``da``'s dims and time axis; with ``check_missing`` scan it (``chunk`` time steps
    at a time) and return the per-frame validity ``(series, time)`` (True where a frame has at
    least one value). Raises a one-line :class:`InputError` on the problems listed above."""
    where = f"{where}: " if where else ""
    dims = tuple(map(str, da.dims))
    expected = "(time, y, x) or (sample, time, y, x)"
    if "time" not in dims:
        raise InputError(f"{where}variable {da.name!r} has dims {dims}: no 'time' dim "
                         f"(expected {expected})")
    if da.ndim == 3:
        lead: tuple[str, ...] = ()
    elif da.ndim == 4 and dims[0] in LEADING_DIMS:
        lead = (dims[0],)
    else:
        raise InputError(f"{where}variable {da.name!r} has dims {dims}, expected {expected}")
    if dims[len(lead)] != "time":
        raise InputError(f"{where}variable {da.name!r} has dims {dims}: 'time' must come "
                         f"{'after the sample dim' if lead else 'first'} (expected {expected})")
    spatial = dims[len(lead) + 1:]
    axes = spatial_axes(da)
    if axes != spatial:
        raise InputError(
            f"{where}variable {da.name!r} has spatial dims {spatial}, expected "
            + (f"{axes} (transpose it)" if axes is not None
               else " or ".join(f"({a}, {b})" for a, b in SPATIAL_PAIRS)
               + " or dims whose coordinates have CF axis Y, X attributes"))
    if da.sizes["time"] == 0:
        raise InputError(f"{where}variable {da.name!r} has no time steps")
    check_time_order(da, where)
    if not check_missing:
        return None
    valid = frame_validity(da, chunk=chunk)
    if not valid.any():
        raise InputError(f"{where}variable {da.name!r} is all missing")
    return valid


def frame_validity(da: xr.DataArray, chunk: int = 64) -> np.ndarray:
    """``(series, time)`` bool: frames with at least one non-NaN value; reads about ``chunk``
    frames at a time (several series per read when they are short), so memory stays at one
    chunk."""
    chunk = max(1, int(chunk))
    n_t = da.sizes["time"]
    spatial = list(da.dims[-2:])
    lead = str(da.dims[0]) if da.ndim == 4 else None
    n_s = da.sizes[lead] if lead else 1
    per_read = max(1, chunk // n_t) if lead else 1
    rows = []
    for s0 in range(0, n_s, per_read):
        part = da.isel({lead: slice(s0, s0 + per_read)}) if lead else da
        out = []
        for t0 in range(0, n_t, chunk):
            v = np.asarray(part.isel(time=slice(t0, t0 + chunk)).notnull().any(dim=spatial)
                           .values)
            out.append(v.reshape(-1, v.shape[-1]))
        rows.append(np.concatenate(out, axis=1))
    return np.concatenate(rows, axis=0)


def chronological_split(n_time: int | xr.DataArray | xr.Dataset,
                        fractions: Sequence[float] = (0.7, 0.15, 0.15),
                        names: Sequence[str] = ("train", "valid", "test")) -> dict[str, slice]:
    """Contiguous time blocks, in order: ``{"train": slice(0, a), "valid": slice(a, b), ...}``.

    Block sizes are ``round(fraction * n_time)`` (the last takes the rest); windows cut within
    one block (``FieldWindows(..., time_range=block)``) never straddle two.
    """
    n = int(n_time.sizes["time"]) if isinstance(n_time, (xr.DataArray, xr.Dataset)) else int(
        n_time)
    f = np.asarray(fractions, dtype=float)
    if len(f) != len(names) or (f < 0).any() or not np.isclose(f.sum(), 1.0):
        raise InputError(f"split fractions {tuple(fractions)} must be >= 0, one per name "
                         f"{tuple(names)}, and sum to 1")
    edges = np.round(np.cumsum(np.concatenate([[0.0], f])) * n).astype(int)
    edges[-1] = n
    return {str(name): slice(int(a), int(b)) for name, a, b in zip(names, edges[:-1], edges[1:])}


def pick_variable(ds: xr.Dataset, variable: str | None = None, *, where: str = "",
                  hint: str = "no field variable found; pass variable=") -> xr.DataArray:
    """``ds[variable]``, else the only variable with a time dim, else the first of
    :data:`FIELD_NAMES` with one. One-line :class:`InputError` starting with ``where``;
    ``hint`` says what to do when no variable qualifies."""
    names = [str(v) for v in ds.data_vars]
    if variable is not None:
        if variable not in ds.data_vars:
            raise InputError(f"{where}missing variable {variable!r} "
                             f"(has: {', '.join(names) or 'none'})")
        return ds[variable]
    timed = [v for v in names if "time" in ds[v].dims]
    if len(timed) == 1:
        return ds[timed[0]]
    found = [v for v in FIELD_NAMES if v in timed]
    if not found:
        raise InputError(f"{where}{hint} (has: {', '.join(names) or 'none'})")
    return ds[found[0]]


class FieldWindows(Dataset):
    """Windows of ``context + leads`` consecutive frames, streamed from a field.

    Args:
        source: a netCDF path (opened lazily, per process), a Dataset or a DataArray (lazy
            or in memory) holding ``(time, y, x)`` or ``(sample, time, y, x)``.
        variable: the field's name in a file or Dataset (default: the only variable with a time
            dim, else the first of ``obs``, ``precip``, ``rain_rate``, ``truth``).
        context, leads: frames before and after the forecast's initial time; items are
            ``T = context + leads`` frames long.
        stride: time steps between window starts.
        time_range: ``slice`` (or ``(start, stop)``) of time indices the windows stay within.
        scaling: applied to the values (physical -> model units); identity by default.
        missing_frames: a window frame with no valid value: ``"error"`` (default), ``"skip"``
            (drop windows containing one) or ``"keep"`` (no scan; the mask is all False there).
        chunk: time steps per read when scanning for missing frames.

    Items: ``{"x": (T, H, W) float, "mask": (T, H, W) bool}``.
    """

    def __init__(self, source: str | os.PathLike | xr.Dataset | xr.DataArray,
                 variable: str | None = None, *, context: int, leads: int, stride: int = 1,
                 time_range: slice | tuple[int, int] | None = None,
                 scaling: FieldScaling | None = None, missing_frames: str = "error",
                 dtype: torch.dtype = torch.float32, chunk: int = 64) -> None:
        if int(context) != context or int(leads) != leads or context < 1 or leads < 0:
            raise InputError(f"context must be >= 1 and leads >= 0, got {context}, {leads}")
        if int(stride) != stride or stride < 1:
            raise InputError(f"stride must be an integer >= 1, got {stride}")
        if missing_frames not in ("error", "skip", "keep"):
            raise InputError(f"missing_frames must be error, skip or keep, got {missing_frames!r}")
        self.context, self.leads, self.stride = int(context), int(leads), int(stride)
        self.length = self.context + self.leads
        self.scaling = scaling or FieldScaling()
        self.dtype = dtype
        self.path: Path | None = None
        self.variable = variable
        self._pid = -1
        self._da: xr.DataArray | None = None
        if isinstance(source, (str, os.PathLike)):
            self.path = Path(source)
            da = self._open()
            where = str(self.path)
        elif isinstance(source, xr.Dataset):
            da, where = pick_variable(source, variable), ""
        elif isinstance(source, xr.DataArray):
            da, where = source, ""
        else:
            raise InputError(f"expected a netCDF path, Dataset or DataArray, got "
                             f"{type(source).__name__}")
        valid = check_field(da, where=where, check_missing=missing_frames != "keep",
                            chunk=chunk)
        self.variable = str(da.name)
        self._lead_dim = str(da.dims[0]) if da.ndim == 4 else None
        self.n_series = da.sizes[self._lead_dim] if self._lead_dim else 1
        self.n_time = da.sizes["time"]
        self.spatial_dims = tuple(map(str, da.dims[-2:]))
        self.spatial_shape = tuple(da.shape[-2:])
        if isinstance(time_range, tuple):
            time_range = slice(*time_range)
        lo, hi, step = (time_range or slice(None)).indices(self.n_time)
        if step != 1:
            raise InputError("time_range must be a contiguous slice")
        self.time_range = slice(lo, hi)
        span = hi - lo
        if self.length > span:
            raise InputError(f"context + leads = {self.length} is longer than the data "
                             f"({span} time steps{' in time_range' if time_range else ''})")
        starts = np.arange(lo, hi - self.length + 1, self.stride)
        series = np.repeat(np.arange(self.n_series), starts.size)
        starts = np.tile(starts, self.n_series)
        if valid is not None:
            bad = ~valid
            csum = np.concatenate([np.zeros((bad.shape[0], 1), int), np.cumsum(bad, 1)], 1)
            n_bad = csum[series, starts + self.length] - csum[series, starts]
            if missing_frames == "error" and (n_bad > 0).any():
                s, t = np.argwhere(bad[:, lo:hi])[0]
                label = da["time"].values[lo + t] if "time" in da.coords else lo + t
                raise InputError(
                    f"{where + ': ' if where else ''}frame at time {label}"
                    f"{f' of {self._lead_dim} {s}' if self._lead_dim else ''} is all missing "
                    "(pass missing_frames='skip' to drop the windows that contain it)")
            keep = n_bad == 0
            series, starts = series[keep], starts[keep]
            if series.size == 0:
                raise InputError("no window without all-missing frames")
        self._series, self._starts = series, starts
        self._time = da["time"].values if "time" in da.coords else None
        self.coords = {k: da[k].variable for k in self.spatial_dims if k in da.coords}
        self.attrs = dict(da.attrs)
        if self.path is None:
            self._da = da
        else:
            self._close()

    # -- file handle, opened per process (safe with DataLoader workers) -------------------
    def _open(self) -> xr.DataArray:
        assert self.path is not None
        ds = open_dataset(self.path, cache=False)
        da = pick_variable(ds, self.variable, where=f"{self.path}: ")
        self._ds, self._da, self._pid = ds, da, os.getpid()
        return da

    def _close(self) -> None:
        if self.path is not None and getattr(self, "_ds", None) is not None:
            self._ds.close()
        self._ds, self._da, self._pid = None, None, -1

    def _array(self) -> xr.DataArray:
        if self.path is not None and (self._da is None or self._pid != os.getpid()):
            return self._open()
        assert self._da is not None
        return self._da

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        if self.path is not None:
            state.update(_ds=None, _da=None, _pid=-1)
        return state

    # -- windows -------------------------------------------------------------------------
    def __len__(self) -> int:
        return int(self._series.size)

    def window(self, i: int) -> tuple[int, int]:
        """``(series index, start time index)`` of window ``i``."""
        return int(self._series[i]), int(self._starts[i])

    def times(self, i: int) -> np.ndarray | None:
        """Time coordinate values of window ``i``'s frames."""
        _, t0 = self.window(i)
        return None if self._time is None else self._time[t0:t0 + self.length]

    def read(self, i: int) -> np.ndarray:
        """Window ``i`` as read from the source: ``(T, H, W)`` float64, physical units."""
        if not -len(self) <= i < len(self):
            raise IndexError(i)
        s, t0 = self.window(i)
        da = self._array()
        sel: dict[str, Any] = {"time": slice(t0, t0 + self.length)}
        if self._lead_dim:
            sel[self._lead_dim] = s
        block = da.isel(sel)
        if block.chunks is not None:  # dask: compute in this thread (no pool per window)
            return np.asarray(block.data.compute(scheduler="synchronous"), dtype=np.float64)
        return np.asarray(block.values, dtype=np.float64)

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        with np.errstate(invalid="ignore", divide="ignore"):
            y = np.asarray(self.scaling.forward(self.read(i)), dtype=np.float64)
        mask = ~np.isnan(y)
        x = torch.from_numpy(np.where(mask, y, 0.0)).to(self.dtype)
        return {"x": x, "mask": torch.from_numpy(mask)}

    def to_tensors(self, max_items: int | None = None) -> dict[str, Tensor]:
        """All windows (or the first ``max_items``) stacked: ``{"x": (N, T, H, W), "mask"}``
        (small data only: this loads them)."""
        n = len(self) if max_items is None else min(len(self), int(max_items))
        items = [self[i] for i in range(n)]
        return {k: torch.stack([it[k] for it in items]) for k in ("x", "mask")}
