"""Gridded precipitation from CF netCDF (e.g. NOAA CMAP pentad ``precip(time, lat, lon)``).

:func:`open_precip` opens the file lazily (dask chunks along time), picks the variable,
checks its dims and time axis, crops a lat/lon (or y/x) box and converts the rate to a target
unit, all without reading the data. :func:`fit_scaling` fits the invertible transform models
train in (``log(x + eps)``, min–max, or both; see
:class:`~pyro_videossm.data.scaling.FieldScaling`) — fit it on the training split only.
:func:`chronological_split` cuts the time axis into train / valid / test blocks; windows cut
inside one block (:class:`~pyro_videossm.data.fields.FieldWindows` with ``time_range``) never
straddle two.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence

import numpy as np
import xarray as xr

from pyro_videossm.data.conventions import open_dataset
from pyro_videossm.data.fields import check_field, chronological_split
from pyro_videossm.data.scaling import FieldScaling
from pyro_videossm.data.selection import attach_grid_mapping, spatial_axes
from pyro_videossm.errors import InputError

__all__ = ["LWE_STANDARD_NAMES", "RATE_UNITS", "chronological_split", "convert_rate", "crop",
           "fit_scaling", "open_precip", "rate_factor", "rate_standard_name"]

#: Precipitation-rate units and their value in mm/h (1 kg m-2 of water is 1 mm).
RATE_UNITS: dict[str, float] = {
    "mm/h": 1.0, "mm h-1": 1.0, "mm/hr": 1.0, "mm hr-1": 1.0, "mm hour-1": 1.0,
    "mm/day": 1.0 / 24.0, "mm day-1": 1.0 / 24.0, "mm/d": 1.0 / 24.0, "mm d-1": 1.0 / 24.0,
    "kg m-2 s-1": 3600.0, "kg/m2/s": 3600.0, "kg m**-2 s**-1": 3600.0, "kg/m^2/s": 3600.0,
    "mm/s": 3600.0, "mm s-1": 3600.0, "m/s": 3.6e6, "m s-1": 3.6e6,
}

#: CF standard names of water as a mass per area (canonical units ``kg m-2 s-1`` for fluxes,
#: ``kg m-2`` for amounts) -> the same quantity as a liquid-water-equivalent depth (``m s-1``,
#: ``m``), from the CF standard-name table (version 93). A conversion between a mass unit and
#: a depth unit renames the variable's ``standard_name`` along these pairs.
LWE_STANDARD_NAMES: dict[str, str] = {
    "precipitation_flux": "lwe_precipitation_rate",
    "rainfall_flux": "rainfall_rate",
    "snowfall_flux": "lwe_snowfall_rate",
    "convective_precipitation_flux": "lwe_convective_precipitation_rate",
    "stratiform_precipitation_flux": "lwe_stratiform_precipitation_rate",
    "precipitation_amount": "lwe_thickness_of_precipitation_amount",
    "rainfall_amount": "thickness_of_rainfall_amount",
}

#: Variable names tried, in order, when none is given.
PRECIP_NAMES: tuple[str, ...] = ("precip", "rain_rate", "pr", "tp", "precipitation", "prcp")


def _norm_units(u: str) -> str:
    u = re.sub(r"\s+", " ", str(u).strip().lower())
    return u.replace("^", "").replace("**", "") if u not in RATE_UNITS else u


def rate_factor(from_units: str, to_units: str) -> float:
    """Multiplier taking a rate in ``from_units`` to ``to_units`` (see :data:`RATE_UNITS`)."""
    table = {_norm_units(k): v for k, v in RATE_UNITS.items()}
    a, b = _norm_units(from_units), _norm_units(to_units)
    for name, key in ((from_units, a), (to_units, b)):
        if key not in table:
            raise InputError(f"unknown precipitation unit {name!r} "
                             f"(known: mm/h, mm/day, kg m-2 s-1, mm/s, m/s)")
    return table[a] / table[b]


def _is_mass_rate(units: str) -> bool:
    return _norm_units(units).startswith("kg")


def rate_standard_name(standard_name: str, from_units: str, to_units: str) -> str | None:
    """The CF standard name of a rate after converting it from ``from_units`` to ``to_units``:
    unchanged between two mass units or two depth units; along :data:`LWE_STANDARD_NAMES`
    between a mass flux (``kg m-2 s-1``) and a depth rate (``mm/h``), e.g.
    ``precipitation_flux`` <-> ``lwe_precipitation_rate``; ``None`` (drop it) when the name
    has no counterpart (a standard name whose canonical units no longer match is wrong)."""
    if _is_mass_rate(from_units) == _is_mass_rate(to_units):
        return standard_name
    pairs = LWE_STANDARD_NAMES if _is_mass_rate(from_units) else {
        v: k for k, v in LWE_STANDARD_NAMES.items()}
    return pairs.get(standard_name)


def convert_rate(da: xr.DataArray, units: str) -> xr.DataArray:
    """Convert a rate DataArray (with a ``units`` attribute) to ``units``; stays lazy. Its
    ``standard_name`` follows the units (see :func:`rate_standard_name`)."""
    if "units" not in da.attrs:
        raise InputError(f"variable {da.name!r} has no 'units' attribute: cannot convert to "
                         f"{units!r}")
    factor = rate_factor(da.attrs["units"], units)
    attrs = {**da.attrs, "units": units}
    if "standard_name" in attrs:
        name = rate_standard_name(str(attrs["standard_name"]), da.attrs["units"], units)
        if name is None:
            del attrs["standard_name"]
        else:
            attrs["standard_name"] = name
    out = (da if factor == 1.0 else da * factor).rename(da.name).copy(deep=False)
    out.attrs = attrs  # replaced, not merged: a dropped standard_name stays dropped
    return out


def _box_index(coord: np.ndarray, box: Sequence[float], name: str,
               periodic: bool = False) -> np.ndarray:
    lo, hi = map(float, box)
    c = np.asarray(coord, dtype=np.float64)
    if periodic:
        # bring the box into the coordinate's convention (0..360 or -180..180)
        if c.min() >= 0 and min(lo, hi) < 0:
            lo, hi = lo % 360.0, hi % 360.0
        elif c.max() <= 180 and max(lo, hi) > 180:
            lo, hi = ((lo + 180) % 360) - 180, ((hi + 180) % 360) - 180
        if lo > hi:  # across the dateline / meridian: east part first, then west
            east = np.nonzero(c >= lo)[0]
            west = np.nonzero(c <= hi)[0]
            idx = np.concatenate([east[np.argsort(c[east])], west[np.argsort(c[west])]])
        else:
            idx = np.nonzero((c >= lo) & (c <= hi))[0]
    else:
        lo, hi = min(lo, hi), max(lo, hi)
        idx = np.nonzero((c >= lo) & (c <= hi))[0]
    if idx.size == 0:
        raise InputError(f"crop {name}=({box[0]:g}, {box[1]:g}) selects nothing "
                         f"(coordinate range {c.min():g} .. {c.max():g})")
    return idx


def crop(da: xr.DataArray, **boxes: Sequence[float] | None) -> xr.DataArray:
    """Keep the coordinates inside ``(low, high)`` boxes, e.g. ``crop(da, lat=(30, 60),
    lon=(-20, 40))`` or ``crop(da, y=(..), x=(..))``. Longitude boxes may cross the dateline
    (``low > high``) and use either -180..180 or 0..360. Lazy."""
    for name, box in boxes.items():
        if box is None:
            continue
        if name not in da.dims:
            raise InputError(f"cannot crop {name!r}: variable {da.name!r} has dims {da.dims}")
        if len(box) != 2:
            raise InputError(f"crop {name} needs (low, high), got {box!r}")
        periodic = name in ("lon", "longitude")
        da = da.isel({name: _box_index(da[name].values, box, name, periodic)})
    return da


def open_precip(
    path: str | os.PathLike,
    variable: str | None = None,
    *,
    units: str | None = "mm/h",
    chunks: int | None = 64,
    lat: Sequence[float] | None = None,
    lon: Sequence[float] | None = None,
    y: Sequence[float] | None = None,
    x: Sequence[float] | None = None,
    time: slice | None = None,
) -> xr.DataArray:
    """Open gridded precipitation lazily as ``variable(time, lat, lon)`` (or ``(time, y, x)``,
    or any ``(time, Y, X)`` whose axes CF attributes identify, e.g. rotated-pole ``rlat, rlon``
    with their ``grid_mapping`` variable attached as a scalar coordinate).

    Args:
        path: CF netCDF file.
        variable: the data variable (default: the first of ``precip``, ``rain_rate``, ``pr``,
            ``tp``, ``precipitation``, ``prcp``, or the only variable).
        units: convert to these rate units (``None``: keep the file's).
        chunks: time steps per dask chunk (``None``: no dask; xarray's lazy indexing).
        lat, lon, y, x: crop boxes ``(low, high)`` (see :func:`crop`); ``y`` and ``x`` crop
            the Y and X dims whatever their names.
        time: a label slice of times to keep, e.g. ``slice("1990", "1999")``.
    """
    ds = open_dataset(path, chunks={"time": int(chunks)} if chunks else None)
    if variable is None:
        names = [str(v) for v in ds.data_vars if "time" in ds[v].dims]
        found = [v for v in PRECIP_NAMES if v in names]
        if found:
            variable = found[0]
        elif len(names) == 1:
            variable = names[0]
        else:
            raise InputError(f"{path}: no precipitation variable found; pass variable= "
                             f"(has: {', '.join(map(str, ds.data_vars)) or 'none'})")
    if variable not in ds.data_vars:
        raise InputError(f"{path}: missing variable {variable!r} "
                         f"(has: {', '.join(map(str, ds.data_vars)) or 'none'})")
    da = attach_grid_mapping(ds[variable], ds)
    rename = {d: n for d, n in (("latitude", "lat"), ("longitude", "lon")) if d in da.dims}
    if rename:
        da = da.rename(rename)
    check_field(da, where=str(path), check_missing=False)
    if time is not None:
        da = da.sel(time=time)
        if da.sizes["time"] == 0:
            raise InputError(f"{path}: the time selection {time} is empty")
    boxes: dict[str, Sequence[float] | None] = {"lat": lat, "lon": lon}
    for name, box, dim in zip(("y", "x"), (y, x), spatial_axes(da) or ("y", "x")):
        if box is not None:  # y=/x= crop the Y/X dims whatever their names (rlat, rlon, ...)
            target = name if name in da.dims else dim
            if boxes.get(target) is not None:
                raise InputError(f"crop boxes {name}= and {target}= both select {target!r}")
            boxes[target] = box
    da = crop(da, **boxes)
    if units is not None:
        da = convert_rate(da, units)
    return da


def fit_scaling(da: xr.DataArray, transform: str = "log", *, eps: float = 0.01) -> FieldScaling:
    """The transform models train in, fitted on ``da`` (use the training split only).

    ``transform``: ``"none"``, ``"log"`` (``log(x + eps)``), ``"minmax"`` (onto [0, 1]) or
    ``"log-minmax"`` (log, then onto [0, 1]).
    """
    units = str(da.attrs.get("units", ""))
    if transform == "none":
        return FieldScaling.identity(units)
    if transform == "log":
        return FieldScaling.log_transform(eps, units)
    if transform in ("minmax", "log-minmax"):
        return FieldScaling.fit_minmax(da, log=transform == "log-minmax", eps=eps, units=units)
    raise InputError(f"unknown transform {transform!r} (none, log, minmax, log-minmax)")
