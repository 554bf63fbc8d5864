"""Pick the field variable of a Dataset and check its dims: ``(time, y, x)`` or
``(sample, time, y, x)``, time increasing without duplicates.

The two spatial dims are found by name (:data:`SPATIAL_PAIRS`) or by their CF attributes with
cf_xarray (:func:`spatial_axes`: ``axis: Y/X``, ``standard_name`` ``projection_y_coordinate``
/ ``grid_latitude`` / ``latitude`` ..., units ``degrees_north`` ...), so a rotated-pole
``(time, rlat, rlon)`` field works like a ``(time, y, x)`` one. The field's ``grid_mapping``
variable travels with it as a scalar coordinate (:func:`attach_grid_mapping`).
"""

from __future__ import annotations

import cf_xarray  # noqa: F401 (registers the .cf accessor)
import numpy as np
import xarray as xr

from pyro_videossm.errors import InputError

#: Names of the two spatial dims recognised without CF attributes, (row-like, column-like).
SPATIAL_PAIRS: tuple[tuple[str, str], ...] = (
    ("y", "x"), ("lat", "lon"), ("latitude", "longitude"), ("row", "col"))

#: Names of leading (batch) dimensions accepted in a context DataArray.
SAMPLE_DIMS: tuple[str, ...] = ("sample", "clip", "trajectory")

#: Data variable names tried, in order, when ``variable`` is not given and there are several.
#: ``truth`` is never picked implicitly: a file with a truth but no observations is an error
#: unless ``variable="truth"`` is asked for.
DEFAULT_VARIABLES: tuple[str, ...] = ("obs", "precip", "rain_rate")


def _cf_dims(da: xr.DataArray, axis: str, coordinate: str) -> list[str]:
    """Dimension coordinates of ``da`` that cf_xarray identifies as ``axis`` (``X``/``Y``)
    or as ``coordinate`` (``longitude``/``latitude``)."""
    found: list[str] = []
    for key, table in ((axis, da.cf.axes), (coordinate, da.cf.coordinates)):
        found += [str(n) for n in table.get(key, []) if n in da.dims and str(n) not in found]
    return found


def spatial_axes(da: xr.DataArray) -> tuple[str, str] | None:
    """``(Y dim, X dim)``: ``da``'s last two dims as a spatial pair, or ``None`` when they are
    not one. Found by name (:data:`SPATIAL_PAIRS`), else by the CF attributes of their
    coordinates (cf_xarray: ``axis``, ``standard_name``, ``units``). The dims are in the
    expected order when ``spatial_axes(da) == da.dims[-2:]``; the reverse means transposed."""
    if da.ndim < 2:
        return None
    last = (str(da.dims[-2]), str(da.dims[-1]))
    if last in SPATIAL_PAIRS:
        return last
    if last[::-1] in SPATIAL_PAIRS:
        return last[::-1]
    ys, xs = _cf_dims(da, "Y", "latitude"), _cf_dims(da, "X", "longitude")
    if len(ys) == 1 and len(xs) == 1 and {ys[0], xs[0]} == set(last):
        return ys[0], xs[0]
    return None


def attach_grid_mapping(da: xr.DataArray, ds: xr.Dataset) -> xr.DataArray:
    """``da`` with the variable its ``grid_mapping`` attribute names (a data variable of
    ``ds``) attached as a scalar coordinate, so the projection travels with the field."""
    name = str(da.attrs.get("grid_mapping", "")).split(":")[0].strip()
    if name and name in ds.variables and name not in da.coords and ds[name].ndim == 0:
        return da.assign_coords({name: ds[name].variable})
    return da


def select_field(data: xr.Dataset | xr.DataArray, variable: str | None = None) -> xr.DataArray:
    """Pick the field to forecast and check its dims: ``(time, y, x)`` or ``(sample, time, y,
    x)``; time increasing and without duplicates. One-line :class:`InputError` otherwise."""
    if isinstance(data, xr.DataArray):
        da = data if variable is None or data.name == variable else None
        if da is None:
            raise InputError(f"got variable {data.name!r}, expected {variable!r}")
    elif isinstance(data, xr.Dataset):
        names = [str(v) for v in data.data_vars]
        if variable is not None:
            if variable not in data.data_vars:
                raise InputError(
                    f"missing variable {variable!r} (has: {', '.join(names) or 'none'})")
            name = variable
        else:
            timed = [v for v in names if "time" in data[v].dims and v != "truth"]
            if not timed and "truth" in names:
                raise InputError("missing variable 'obs' (the file has 'truth'; pass "
                                 "variable='truth' / --variable truth to use it)")
            if len(names) == 1:
                name = names[0]
            elif len(timed) == 1:
                name = timed[0]
            else:
                found = [v for v in DEFAULT_VARIABLES if v in timed]
                if not found:
                    raise InputError(
                        "no field to forecast: pass variable= (data variables: "
                        f"{', '.join(names) or 'none'})")
                name = found[0]
        da = attach_grid_mapping(data[name], data)
    else:
        raise InputError(f"expected an xarray Dataset or DataArray, got {type(data).__name__}")
    dims = tuple(map(str, da.dims))
    ok = (da.ndim == 3 and dims[0] == "time") or (
        da.ndim == 4 and dims[1] == "time" and dims[0] in SAMPLE_DIMS)
    if not ok:
        raise InputError(
            f"variable {da.name!r} has dims {dims}, expected (time, y, x) or "
            "(sample, time, y, x)")
    if da.sizes["time"] < 1:
        raise InputError(f"variable {da.name!r} has an empty time axis")
    check_time_order(da)
    return da


def check_time_order(da: xr.DataArray, where: str = "") -> None:
    """One-line :class:`InputError` (starting with ``where``) naming the first duplicate or
    decreasing value of ``da``'s time coordinate; nothing to check without one."""
    if "time" not in da.coords or da.sizes["time"] < 2:
        return
    t = da["time"].values
    d = np.diff(t)
    zero = np.zeros((), dtype=d.dtype)
    if (d == zero).any():
        i = int(np.nonzero(d == zero)[0][0])
        raise InputError(f"{where}time coordinate has a duplicate value ({t[i]})")
    if (d < zero).any():
        i = int(np.nonzero(d < zero)[0][0])
        raise InputError(f"{where}time coordinate is not increasing ({t[i]} then {t[i + 1]})")
