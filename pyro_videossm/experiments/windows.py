"""One windowed-data builder for every model the toolkit trains: :func:`build_windows`.

A training set is a set of *windows*: ``length = context + leads`` consecutive time steps cut
from a variable with a ``time`` dim. Three kinds of data are recognised from the dims:

* ``field``: ``VAR(time, y, x)`` or ``VAR(sample|clip|trajectory, time, y, x)`` (precipitation,
  heat, moving digits, radar; also ``lat/lon``, ``row/col``), read through
  :class:`~pyro_videossm.data.fields.FieldWindows` and *streamed* from the file when the
  windows would take more than ``in_memory_bytes``;
* ``series``: ``VAR(time, component)`` or ``VAR(sample, time, component)`` (the chaotic
  systems' ``obs``);
* ``video``: ``frames(clip, time, channel, y, x)`` (sprites; values checked finite in [0, 1]
  with :func:`~pyro_videossm.data.sprites.frames_tensor`).

**Batch format.** Every window is ``{"x": (T, ...) float32, "mask": (T, ...) bool}`` in model
units (NaN -> ``x = 0, mask = False``), plus one int64 scalar per name of ``labels`` (per-sample
variables such as ``motion``). In memory, the windows are stacked: ``{"x": (N, T, ...), ...}``;
streamed, ``train``/``valid`` are ``torch.utils.data.Dataset`` objects with those items. The
order is series-major (all windows of series 0 by start time, then series 1, ...).

**Validation split** (chronological, never shared frames): with several series (a leading
sample dim of size > 1), the last ``n_valid = max(1, round(valid_fraction * S))`` series
validate; with one long series, the last ``n_valid = max(round(valid_fraction * T), length)``
time steps do (at least one window). ``valid_fraction = 0``: no validation. Windows are cut
inside each part with the same ``stride``, so no validation window shares a time step with a
training window.

**Normalisation**: :mod:`pyro_videossm.experiments.normalization` (``robust``, ``minmax``,
``log``, ``none`` = identity), fitted on the training part only: ``minmax``/``log`` on its
exact range (read in blocks), ``robust`` on up to ``fit_frames`` frames spread evenly over it.

**Missing frames** (``missing``): ``"frame"`` (default for fields and video) drops the windows
holding a time step with no value at all; ``"window"`` (default for series, whose observations
are sparse in time) drops only windows with no value at all; ``"keep"`` keeps every window.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import xarray as xr
from torch.utils.data import Dataset

from pyro_videossm.data.fields import LEADING_DIMS, pick_variable
from pyro_videossm.data.scaling import FieldScaling
from pyro_videossm.data.selection import spatial_axes
from pyro_videossm.data.windows import take_windows
from pyro_videossm.errors import InputError
from pyro_videossm.experiments.normalization import check_normalization, fit_scaling

#: windows up to this many bytes are loaded into memory; larger field data are streamed
IN_MEMORY_BYTES = 1 << 30
#: frames ``robust`` normalisation is fitted on (spread over the training part)
FIT_FRAMES = 256
KINDS = ("field", "series", "video")
MISSING = ("frame", "window", "keep")


@dataclass
class WindowData:
    """Training and validation windows of one variable, in model units.

    ``train``/``valid``: stacked tensors ``{"x": (N, T, *frame_shape), "mask", labels...}`` or
    a streaming ``Dataset`` of such items (``valid`` is ``None`` without validation).
    ``train_windows``/``valid_windows``: ``(N, 2)`` int arrays of ``(series, start time index)``
    of every window in the source variable.
    """

    train: Any
    valid: Any | None
    scaling: FieldScaling
    variable: str
    frame_shape: tuple[int, ...]
    n_train: int
    n_valid: int
    kind: str = "field"
    train_windows: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), int))
    valid_windows: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), int))

    @property
    def grid(self) -> tuple[int, int]:
        """The frames' spatial size ``(H, W)`` (fields and video)."""
        return tuple(self.frame_shape[-2:])  # type: ignore[return-value]


# -- the split rule ---------------------------------------------------------------------------
def validation_size(n: int, valid_fraction: float, *, by: str, length: int = 1) -> int:
    """Trailing samples (``by="series"``) or time steps (``by="time"``) held out for validation.

    Series: ``max(1, round(f * n))``; time: ``max(round(f * n), length)``; 0 when ``f = 0``.
    Raises :class:`InputError` when no training window would be left.
    """
    if not 0 <= valid_fraction < 1:
        raise InputError(f"--valid-fraction must be in [0, 1), got {valid_fraction}")
    if valid_fraction == 0:
        n_valid = 0
    elif by == "series":
        n_valid = max(1, int(round(valid_fraction * n)))
    else:
        n_valid = max(int(round(valid_fraction * n)), int(length))
    if by == "series" and n_valid >= n:
        raise InputError("no training sample left: lower --valid-fraction")
    if by == "time" and n - n_valid < length:
        if n < length:
            raise InputError(f"{n} time steps, fewer than context + leads = {length}")
        raise InputError("no training window is left after holding out the validation part; "
                         "lower --valid-fraction (0 for none)")
    return n_valid


# -- selection ----------------------------------------------------------------------------------
def select_variable(ds: xr.Dataset | xr.DataArray, variable: str | None = None) -> xr.DataArray:
    """``variable``, else ``frames``, else the only variable with a time dim, else the first of
    ``obs``, ``precip``, ``rain_rate``, ``truth``."""
    if isinstance(ds, xr.DataArray):
        if variable is not None and ds.name != variable:
            raise InputError(f"got variable {ds.name!r}, expected {variable!r}")
        return ds
    if variable is None and "frames" in ds.data_vars:
        return ds["frames"]
    return pick_variable(ds, variable, hint="no variable to train on: pass --variable")


def data_kind(da: xr.DataArray) -> str:
    """``field``, ``series`` or ``video`` from the dims (see the module docstring)."""
    dims = tuple(map(str, da.dims))
    if "time" not in dims:
        raise InputError(f"variable {da.name!r} has dims {dims}: no 'time' dim")
    lead = dims[0] in LEADING_DIMS
    if dims.index("time") != int(lead):
        raise InputError(f"variable {da.name!r} has dims {dims}: 'time' must come "
                         f"{'after the sample dim' if lead else 'first'}")
    rest = dims[int(lead) + 1:]
    if "channel" in rest:
        return "video"
    if len(rest) == 2 and spatial_axes(da) is not None:
        return "field"
    if len(rest) == 1:
        return "series"
    raise InputError(f"variable {da.name!r} has dims {dims}, expected (time, y, x), "
                     "(time, component) or (clip, time, channel, y, x), with an optional "
                     "leading sample dim")


# -- the builder --------------------------------------------------------------------------------
def build_windows(data: str | os.PathLike | xr.Dataset | xr.DataArray, context: int,
                  leads: int = 0, *, variable: str | None = None, stride: int = 1,
                  valid_stride: int | None = None, valid_fraction: float = 0.1,
                  normalize: str = "none",
                  labels: Sequence[str] = (), missing: str | None = None,
                  kind: str | None = None, in_memory_bytes: int = IN_MEMORY_BYTES,
                  fit_frames: int = FIT_FRAMES) -> WindowData:
    """Training and validation windows of ``context + leads`` steps (rules: module docstring).

    ``data``: a netCDF path, a Dataset or a DataArray. ``valid_stride``: steps between
    validation windows (default ``stride``). ``labels``: per-sample variables
    (dims ``(sample,)``) added to every window's item as int64. ``kind``: ``field``,
    ``series`` or ``video`` (default: from the dims; ``video`` reads grey ``frames(clip, time,
    y, x)`` as one channel).
    """
    from pyro_videossm.data.conventions import open_dataset

    if int(context) != context or int(leads) != leads or context < 1 or leads < 0:
        raise InputError(f"context must be >= 1 and leads >= 0, got {context}, {leads}")
    if int(stride) != stride or stride < 1:
        raise InputError(f"--stride must be >= 1, got {stride}")
    valid_stride = stride if valid_stride is None else valid_stride
    if int(valid_stride) != valid_stride or valid_stride < 1:
        raise InputError(f"valid_stride must be >= 1, got {valid_stride}")
    check_normalization(normalize)
    ds = data if isinstance(data, (xr.Dataset, xr.DataArray)) else open_dataset(data)
    where = "" if isinstance(data, (xr.Dataset, xr.DataArray)) else f"{data}: "
    da = select_variable(ds, variable)
    found = data_kind(da)
    if kind is not None and kind not in KINDS:
        raise InputError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    if kind is not None and kind != found and not (kind == "video" and found == "field"):
        raise InputError(f"variable {da.name!r} with dims {tuple(da.dims)} is not {kind} data")
    kind = kind or found
    missing = missing or ("window" if kind == "series" else "frame")
    if missing not in MISSING:
        raise InputError(f"missing must be one of {', '.join(MISSING)}, got {missing!r}")
    length = int(context) + int(leads)
    lead = str(da.dims[0]) if da.dims[0] in LEADING_DIMS else None
    n_series = da.sizes[lead] if lead else 1
    n_time = da.sizes["time"]
    if n_time < length:
        raise InputError(f"{where}variable {da.name!r} has {n_time} frames, fewer than "
                         f"context + leads = {context} + {leads}")
    label_values = _labels(ds, lead, labels)
    if lead and n_series > 1:
        n_valid = validation_size(n_series, valid_fraction, by="series")
        cut = n_series - n_valid
        parts = {"train": (slice(0, cut), slice(0, n_time)),
                 "valid": (slice(cut, n_series), slice(0, n_time)) if n_valid else None}
    else:
        n_valid = validation_size(n_time, valid_fraction, by="time", length=length)
        cut = n_time - n_valid
        parts = {"train": (slice(0, n_series), slice(0, cut)),
                 "valid": (slice(0, n_series), slice(cut, n_time)) if n_valid else None}
    units = str(da.attrs.get("units", ""))
    train_series, train_time = parts["train"]
    scaling = fit_scaling(_fit_values(da, lead, train_series, train_time, normalize, fit_frames),
                          normalize, units)
    if kind == "video":
        da = _video_values(da, where)
    cutter = _field_part if kind == "field" else _array_part
    built = {}
    for name, part in parts.items():
        if part is None:
            built[name] = (None, np.zeros((0, 2), int))
            continue
        built[name] = cutter(da, lead, part[0], part[1], length=length, context=context,
                             stride=stride if name == "train" else valid_stride,
                             scaling=scaling, missing=missing, labels=label_values,
                             in_memory_bytes=in_memory_bytes)
    frame_shape = tuple(int(n) for n in da.shape[(2 if lead else 1):])
    return WindowData(built["train"][0], built["valid"][0], scaling, str(da.name), frame_shape,
                      len(built["train"][1]), len(built["valid"][1]), kind,
                      built["train"][1], built["valid"][1])


def _labels(ds, lead: str | None, names: Sequence[str]) -> dict[str, np.ndarray]:
    out = {}
    for name in names:
        if not isinstance(ds, xr.Dataset) or name not in ds.data_vars:
            raise InputError(f"missing label variable {name!r}")
        v = ds[name]
        if lead is None or tuple(v.dims) != (lead,):
            raise InputError(f"label {name!r} must have dims ({lead or 'sample'},), got {v.dims}")
        values = np.asarray(v.values)
        if not np.issubdtype(values.dtype, np.integer):
            raise InputError(f"label {name!r} must hold integers, got {values.dtype}")
        out[name] = values.astype(np.int64)
    return out


def _series_first(da: xr.DataArray, lead: str | None, dtype=np.float64) -> np.ndarray:
    """``(series, time, ...)`` values."""
    v = np.asarray(da.values, dtype=dtype)
    return v if lead else v[None]


def _fit_values(da, lead, series: slice, time: slice, normalize: str,
                fit_frames: int) -> np.ndarray:
    """What the scaling is fitted on: frames sampled from the training part (``robust``,
    ``none``) or its exact ``[min, max]`` read in blocks (``minmax``, ``log``)."""
    part = da.isel({lead: series, "time": time}) if lead else da.isel(time=time)
    n_s = part.sizes[lead] if lead else 1
    n_t = part.sizes["time"]
    if normalize in ("robust", "none"):
        flat = np.unique(np.linspace(0, n_s * n_t - 1, max(1, fit_frames)).astype(int))
        if lead:
            frames = [np.asarray(part[i // n_t, i % n_t].values, dtype=np.float64)
                      for i in flat]
        else:
            frames = [np.asarray(part.isel(time=flat).values, dtype=np.float64)]
        return np.stack(frames) if lead else frames[0]
    lo, hi, block = np.inf, -np.inf, max(1, fit_frames // n_t) if lead else fit_frames
    for i0 in range(0, n_s if lead else n_t, block):
        sel = {lead: slice(i0, i0 + block)} if lead else {"time": slice(i0, i0 + block)}
        v = np.asarray(part.isel(sel).values, dtype=np.float64)
        v = v[~np.isnan(v)]
        if v.size and not np.isfinite(v).all():
            raise InputError("the data contain infinite values")
        if v.size:
            lo, hi = min(lo, float(v.min())), max(hi, float(v.max()))
    return np.array([lo, hi]) if np.isfinite(lo) else np.array([np.nan])


def _video_values(da: xr.DataArray, where: str) -> xr.DataArray:
    """Video frames checked finite in [0, 1] (``frames_tensor``), as ``(clip, time, channel,
    y, x)``."""
    from pyro_videossm.data.sprites import frames_tensor

    frames = da.rename("frames")
    x = frames_tensor(frames.to_dataset(), where.rstrip(": "))
    dims = ("clip", "time", "channel", "y", "x")
    return xr.DataArray(x.numpy(), dims=dims, name=da.name, attrs=da.attrs)


def _scaled(values: np.ndarray, scaling: FieldScaling) -> dict[str, torch.Tensor]:
    """``{"x": scaled values (NaN -> 0) float32, "mask": not NaN}`` (scaled in float64 unless
    the scaling is the identity)."""
    if scaling.is_identity:
        y = values
    else:
        with np.errstate(invalid="ignore", divide="ignore"):
            y = np.asarray(scaling.forward(np.asarray(values, dtype=np.float64)))
    mask = ~np.isnan(y)
    x = np.where(mask, y, 0.0).astype(np.float32, copy=False)
    return {"x": torch.from_numpy(x), "mask": torch.from_numpy(mask)}


def _field_part(da, lead, series: slice, time: slice, *, length, context, stride, scaling,
                missing, labels, in_memory_bytes):
    """Windows of one part of a field, through :class:`FieldWindows` (streamed when large)."""
    from pyro_videossm.data.fields import FieldWindows

    if missing == "window":
        raise InputError("fields drop windows with a missing frame ('frame') or keep them")
    part = da.isel({lead: series}) if lead else da
    offset = series.start or 0
    windows = FieldWindows(part, context=context, leads=length - context, stride=stride,
                           time_range=time, scaling=scaling,
                           missing_frames="skip" if missing == "frame" else "keep")
    index = np.array([windows.window(i) for i in range(len(windows))], dtype=int).reshape(-1, 2)
    index[:, 0] += offset
    frame_bytes = 5 * int(np.prod(windows.spatial_shape)) * length  # float32 values + mask
    if len(windows) * frame_bytes > in_memory_bytes:
        return (_Labelled(windows, labels, index[:, 0]) if labels else windows), index
    values = _series_first(part.isel(time=time), lead)
    batch = _scaled(take_windows(values, index[:, 0] - offset, index[:, 1] - time.start,
                                 length), scaling)
    batch.update({k: torch.from_numpy(v[index[:, 0]]) for k, v in labels.items()})
    return batch, index


def _array_part(da, lead, series: slice, time: slice, *, length, context, stride, scaling,
                missing, labels, in_memory_bytes):
    """Windows of one part of in-memory data (series, video)."""
    from pyro_videossm.data.windows import window_starts

    dtype = np.float32 if da.dtype == np.float32 else np.float64
    values = _series_first(da.isel({lead: series, "time": time}) if lead
                           else da.isel(time=time), lead, dtype)
    starts = window_starts(values.shape[1], length, stride)
    s_idx = np.repeat(np.arange(values.shape[0]), starts.size)
    t_idx = np.tile(starts, values.shape[0])
    win = take_windows(values, s_idx, t_idx, length)
    if missing != "keep":
        valid = ~np.isnan(win).reshape(win.shape[0], length, -1)
        keep = valid.any(2).all(1) if missing == "frame" else valid.any((1, 2))
        win, s_idx, t_idx = win[keep], s_idx[keep], t_idx[keep]
        if win.shape[0] == 0:
            raise InputError("no window with observations left")
    index = np.stack([s_idx + (series.start or 0), t_idx + (time.start or 0)], 1)
    batch = _scaled(win, scaling)
    batch.update({k: torch.from_numpy(v[index[:, 0]]) for k, v in labels.items()})
    return batch, index


class _Labelled(Dataset):
    """A streamed field's windows with per-sample labels added to each item."""

    def __init__(self, windows: Dataset, labels: dict[str, np.ndarray],
                 series: np.ndarray) -> None:
        self.windows, self.labels, self.series = windows, labels, series

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        item = dict(self.windows[i])
        item.update({k: torch.as_tensor(v[self.series[i]]) for k, v in self.labels.items()})
        return item
