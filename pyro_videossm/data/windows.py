"""Cut time series into training windows: ``(batch, time, ...)`` tensors plus boolean masks.

NaN in the data becomes ``mask = False`` (and 0 in the values), so likelihoods can skip it.
"""

from __future__ import annotations

import numpy as np
import torch
import xarray as xr
from torch import Tensor

from pyro_videossm.errors import InputError


def to_tensor_and_mask(
    values: np.ndarray, dtype: torch.dtype = torch.float32
) -> tuple[Tensor, Tensor]:
    """NaN-aware conversion: returns ``(values with NaN -> 0, mask = not NaN)``."""
    arr = np.asarray(values)
    mask = ~np.isnan(arr)
    x = torch.as_tensor(np.where(mask, arr, 0.0), dtype=dtype)
    return x, torch.as_tensor(mask)


def window_starts(n_time: int, length: int, stride: int) -> np.ndarray:
    """Start indices of all full windows of ``length`` steps taken every ``stride`` steps."""
    if length < 1 or stride < 1:
        raise InputError(f"window length and stride must be >= 1, got {length}, {stride}")
    if length > n_time:
        raise InputError(f"window length {length} is longer than the data ({n_time} time steps)")
    return np.arange(0, n_time - length + 1, stride)


def take_windows(values: np.ndarray, series: np.ndarray, starts: np.ndarray,
                 length: int) -> np.ndarray:
    """Windows ``values[series[i], starts[i]:starts[i] + length]`` of ``values (S, T, ...)``,
    stacked: ``(len(starts), length, ...)``."""
    series, starts = np.asarray(series, dtype=int), np.asarray(starts, dtype=int)
    idx = starts[:, None] + np.arange(int(length))[None, :]
    return values[series[:, None], idx]


def cut_windows(
    da: xr.DataArray,
    length: int,
    stride: int | None = None,
    *,
    time_dim: str = "time",
    dtype: torch.dtype = torch.float32,
) -> tuple[Tensor, Tensor]:
    """Cut ``da`` (time first after transposition) into windows.

    Returns ``x`` of shape ``(batch, length, *rest)`` and a boolean ``mask`` of the same
    shape (False where the data are NaN). Any other leading dimension (e.g. ``sample``) is
    folded into ``batch``.
    """
    if time_dim not in da.dims:
        raise InputError(f"variable {da.name!r} has no {time_dim!r} dimension (dims {da.dims})")
    stride = length if stride is None else stride
    other = [d for d in da.dims if d != time_dim]
    lead = [d for d in other if d in ("sample", "clip", "trajectory")]
    rest = [d for d in other if d not in lead]
    arr = da.transpose(*lead, time_dim, *rest).values
    arr = arr.reshape((-1,) + arr.shape[len(lead):])  # (n_series, time, *rest)
    starts = window_starts(arr.shape[1], length, stride)
    series = np.repeat(np.arange(arr.shape[0]), starts.size)
    win = take_windows(arr, series, np.tile(starts, arr.shape[0]), length)  # series-major
    return to_tensor_and_mask(win, dtype)
