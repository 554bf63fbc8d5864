"""xarray conventions at the toolkit's boundary: CF attributes, atomic netCDF writes, checks.

Data enter and leave as ``xarray.Dataset`` with named dimensions and CF attributes
(``units``, ``long_name``); inside, models and filters work on plain tensors.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import xarray as xr

from pyro_videossm.atomic import atomic_path
from pyro_videossm.errors import InputError

CONVENTIONS = "CF-1.8"


def write_netcdf(ds: xr.Dataset, path: str | os.PathLike) -> Path:
    """Write ``ds`` to ``path`` with the netCDF4 engine, atomically.

    The file is written next to its destination under a temporary name and renamed only
    when complete, so an interrupted write never leaves a partial file behind. The encoding
    follows CF-1.8 (see :func:`cf_encoding`); the values read back are unchanged.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds = cf_encoding(_time_units_to_encoding(ds))
    with atomic_path(path) as tmp:
        ds.to_netcdf(tmp, engine="netcdf4")
    return path


_INT32 = np.iinfo(np.int32)


def _fits_int32(values: np.ndarray) -> bool:
    v = np.asarray(values)
    return v.size == 0 or (np.issubdtype(v.dtype, np.integer) and int(v.min()) >= _INT32.min
                           and int(v.max()) <= _INT32.max)


def cf_encoding(ds: xr.Dataset) -> xr.Dataset:
    """A shallow copy of ``ds`` whose encoding follows CF-1.8 without changing the values read
    back: coordinates get no ``_FillValue`` (unless they hold NaN); 64-bit integers, and
    datetimes / timedeltas whose integer encoding fits, are stored as ``int32`` (CF-1.8 has
    no ``int64``; larger values stay ``int64``); on packed variables (``scale_factor`` /
    ``add_offset`` in the encoding) ``valid_min``, ``valid_max`` and ``valid_range`` are
    written in the packed type, as CF section 8.1 asks."""
    from xarray.coding.times import encode_cf_datetime, encode_cf_timedelta

    ds = ds.copy()
    for name in list(ds.variables):
        var = ds[name].variable
        enc = dict(var.encoding)
        attrs = dict(var.attrs)
        if name in ds.coords and "_FillValue" not in enc and var.chunks is None and not (
                np.issubdtype(var.dtype, np.floating) and bool(np.isnan(var.values).any())):
            enc["_FillValue"] = None
        if "dtype" not in enc and var.chunks is None:  # (never computes a dask array)
            if var.dtype == np.int64 and _fits_int32(var.values):
                enc["dtype"] = "int32"
            elif np.issubdtype(var.dtype, np.datetime64) and var.size:
                num, units, calendar = encode_cf_datetime(
                    var.values, enc.get("units"), enc.get("calendar"))
                if _fits_int32(num):
                    enc.update(dtype="int32", units=units, calendar=calendar)
            elif np.issubdtype(var.dtype, np.timedelta64) and var.size:
                num, units = encode_cf_timedelta(var.values, enc.get("units"))
                if _fits_int32(num):
                    enc.update(dtype="int32", units=units)
        if "scale_factor" in enc or "add_offset" in enc:
            packed = np.dtype(enc.get("dtype", var.dtype))
            scale = float(enc.get("scale_factor", 1.0))
            offset = float(enc.get("add_offset", 0.0))
            for key in ("valid_min", "valid_max", "valid_range"):
                if key in attrs:
                    v = (np.asarray(attrs[key], dtype=np.float64) - offset) / scale
                    attrs[key] = (np.round(v) if packed.kind in "iu" else v).astype(packed)
        ds[name].encoding = enc
        ds[name].attrs = attrs
    return ds


def _is_time_like(var: xr.Variable) -> bool:
    if np.issubdtype(var.dtype, np.datetime64) or np.issubdtype(var.dtype, np.timedelta64):
        return True
    if var.dtype == object and var.size:
        first = var.values.flat[0]
        return type(first).__module__.startswith("cftime")
    return False


def _time_units_to_encoding(ds: xr.Dataset) -> xr.Dataset:
    """Datetime, timedelta and cftime variables are encoded by xarray, which refuses a
    ``units``/``calendar`` attribute next to its own: move those into the encoding."""
    moved = {}
    for name, var in ds.variables.items():
        if _is_time_like(var) and ({"units", "calendar"} & set(var.attrs)):
            moved[name] = var
    if not moved:
        return ds
    ds = ds.copy()
    for name, var in moved.items():
        attrs = dict(var.attrs)
        encoding = dict(var.encoding)
        for key in ("units", "calendar"):
            value = attrs.pop(key, None)
            if value is not None and not (key == "units" and value == "1"):
                encoding.setdefault(key, value)
        ds[name].attrs = attrs
        ds[name].encoding = encoding
    return ds


HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def netcdf_problem(path: Path) -> str | None:
    """Why ``path`` cannot be a whole netCDF file (``None`` if it may be): it starts with neither
    the classic nor the HDF5 signature, or its HDF5 superblock records a larger file (a
    truncated copy; the HDF5 library may crash on those instead of failing)."""
    with open(path, "rb") as f:
        head = f.read(2048 + 64)
    if head[:3] == b"CDF" and head[3:4] in (b"\x01", b"\x02", b"\x05"):
        return None
    start = next((o for o in (0, 512, 1024, 2048) if head[o:o + 8] == HDF5_SIGNATURE), None)
    if start is None:
        return "not netCDF"
    sb = head[start:]
    version = sb[8]
    if version in (0, 1):
        size, at = sb[13], 24 + (4 if version == 1 else 0)
    elif version in (2, 3):
        size, at = sb[9], 12
    else:
        return None
    if size not in (2, 4, 8) or len(sb) < at + 3 * size:
        return None
    base = int.from_bytes(sb[at:at + size], "little")
    end = int.from_bytes(sb[at + 2 * size:at + 3 * size], "little")
    size_now = path.stat().st_size
    if base + end > size_now:  # the end-of-file address is relative to the base address
        return f"truncated: {size_now} of {base + end} bytes"
    return None


def open_dataset(path: str | os.PathLike, **kwargs) -> xr.Dataset:
    """Open a netCDF file, with a one-line :class:`InputError` when it is missing, not netCDF
    or truncated."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a directory, not a netCDF file")
    problem = netcdf_problem(path)
    if problem is not None:
        raise InputError(f"{path}: not a readable netCDF file ({problem})")
    try:
        return xr.open_dataset(path, engine="netcdf4", **kwargs)
    except (OSError, ValueError) as err:
        raise InputError(f"{path}: not a readable netCDF file ({type(err).__name__})") from None


def require_variable(ds: xr.Dataset, name: str, dims: tuple[str, ...], where: str = "") -> None:
    """Raise :class:`InputError` unless ``ds[name]`` exists with exactly ``dims``."""
    where = f"{where}: " if where else ""
    if name not in ds.data_vars:
        raise InputError(
            f"{where}missing variable {name!r} (has: {', '.join(map(str, ds.data_vars)) or 'none'})"
        )
    if tuple(ds[name].dims) != tuple(dims):
        raise InputError(
            f"{where}variable {name!r} has dims {tuple(ds[name].dims)}, expected {tuple(dims)}"
        )


def require_attrs(ds: xr.Dataset, names: Iterable[str], where: str = "") -> None:
    """Raise :class:`InputError` naming the first missing global attribute."""
    where = f"{where}: " if where else ""
    for name in names:
        if name not in ds.attrs:
            raise InputError(f"{where}missing global attribute {name!r}")


def require_increasing_time(ds: xr.Dataset, dim: str = "time", where: str = "") -> None:
    """Raise :class:`InputError` if the time coordinate has duplicates or is out of order."""
    where = f"{where}: " if where else ""
    if dim not in ds.coords:
        return
    t = ds[dim].values
    if t.size > 1:
        d = np.diff(t)
        zero = d == np.zeros((), dtype=d.dtype)
        if zero.any():
            raise InputError(f"{where}time coordinate {dim!r} has duplicate values")
        if (d < np.zeros((), dtype=d.dtype)).any():
            raise InputError(f"{where}time coordinate {dim!r} is not increasing")


def encode_json_attr(value) -> str:
    """Store a dict or list in a netCDF attribute (netCDF has no nested attributes)."""
    return json.dumps(value, sort_keys=True)


def decode_json_attr(ds: xr.Dataset, name: str) -> dict:
    """Read a JSON-encoded attribute back, with a clear error when it is malformed."""
    raw = ds.attrs.get(name, "{}")
    try:
        return json.loads(raw)
    except (TypeError, json.JSONDecodeError):
        raise InputError(f"global attribute {name!r} is not valid JSON: {raw!r}") from None
