"""Rain-rate contexts without rain: every forecaster forecasts zeros for them.

Nowcasting's convention (pysteps returns zeros when no pixel exceeds its threshold): when a
context of a rain-rate field holds no rain, there is nothing to advect, grow or decay, and the
forecast is zero rain, whatever the model; learned models are not asked (their untrained
corner of input space). :meth:`~pyro_videossm.forecast.base.Forecaster.forecast` applies
this to each sample whose context is dry.

A field is a rain rate when its ``standard_name`` is one of :data:`RAIN_STANDARD_NAMES` or its
``units`` one of :data:`RAIN_RATE_UNITS`; a context is dry when no observed value is > 0 (NaN,
outside the radar's range, is not observed). Other fields (temperatures, digits) are never
dry: zero is not special for them.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

#: CF standard names of precipitation rates
RAIN_STANDARD_NAMES: frozenset[str] = frozenset({
    "rainfall_rate", "lwe_precipitation_rate", "precipitation_flux", "rainfall_flux",
    "lwe_rainfall_rate"})
#: units of a rain rate
RAIN_RATE_UNITS: frozenset[str] = frozenset({
    "mm/h", "mm h-1", "mm hr-1", "mm/hr", "mm.h-1", "mm/hour", "kg m-2 s-1"})


def is_rain_rate(da: xr.DataArray) -> bool:
    """Whether ``da`` is a precipitation rate (by its ``standard_name`` or ``units``)."""
    return (str(da.attrs.get("standard_name", "")).strip() in RAIN_STANDARD_NAMES
            or str(da.attrs.get("units", "")).strip() in RAIN_RATE_UNITS)


def dry_contexts(da: xr.DataArray, values: np.ndarray) -> np.ndarray:
    """``values`` ``(S, T, H, W)`` (physical units, NaN missing) of field ``da`` -> ``(S,)``
    bool: True where ``da`` is a rain rate and the sample's context holds no value > 0."""
    if not is_rain_rate(da):
        return np.zeros(values.shape[0], dtype=bool)
    wet = np.nan_to_num(values, nan=0.0) > 0
    return ~wet.reshape(values.shape[0], -1).any(axis=1)


__all__ = ["RAIN_RATE_UNITS", "RAIN_STANDARD_NAMES", "dry_contexts", "is_rain_rate"]
