"""Pick the field variable of a Dataset and check its dims: ``(time, y, x)`` or
``(sample, time, y, x)``, time increasing without duplicates."""

from __future__ import annotations

import numpy as np
import xarray as xr

from pyro_videossm.errors import InputError

#: Names of leading (batch) dimensions accepted in a context DataArray.
SAMPLE_DIMS: tuple[str, ...] = ("sample", "clip", "trajectory")

#: Data variable names tried, in order, when ``variable`` is not given and there are several.
#: ``truth`` is never picked implicitly: a file with a truth but no observations is an error
#: unless ``variable="truth"`` is asked for.
DEFAULT_VARIABLES: tuple[str, ...] = ("obs", "precip", "rain_rate")


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
        da = data[name]
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
