"""The CF standard names of a forecast's coordinates, and reading forecasts named the CF way.

The toolkit's forecast (:func:`pyro_videossm.forecast.base.forecast_dataset`) names its
coordinates ``lead_time``, ``member``, ``init_time`` and ``valid_time`` and gives them the CF
standard names of :data:`FORECAST_STANDARD_NAMES`. A forecast written elsewhere may use other
names for the same coordinates (``forecast_period``, ``realization``, ``step``, ``number``,
...): :func:`toolkit_forecast_names` finds them by their ``standard_name`` (cf_xarray) or by
the CF name itself and renames them, so scoring and plotting read both.
"""

from __future__ import annotations

import cf_xarray  # noqa: F401 (registers the .cf accessor)
import xarray as xr

#: toolkit coordinate -> its CF standard name (``valid_time`` is a CF ``time``).
FORECAST_STANDARD_NAMES: dict[str, str] = {
    "lead_time": "forecast_period",
    "member": "realization",
    "init_time": "forecast_reference_time",
    "valid_time": "time",
}


def toolkit_forecast_names(ds: xr.Dataset) -> xr.Dataset:
    """``ds`` with the coordinates whose standard name (or name) is ``forecast_period``,
    ``realization`` or ``forecast_reference_time`` renamed ``lead_time``, ``member`` and
    ``init_time``; a name the toolkit already uses, or a standard name on several
    variables, is left alone. (``time``, too common, is never renamed.)"""
    found = ds.cf.standard_names
    rename: dict[str, str] = {}
    for ours, cf in FORECAST_STANDARD_NAMES.items():
        if ours in ds.variables or cf == "time":
            continue
        names = [str(n) for n in found.get(cf, [])] or ([cf] if cf in ds.variables else [])
        if len(names) == 1 and names[0] not in rename:
            rename[names[0]] = ours
    return ds.rename(rename) if rename else ds
