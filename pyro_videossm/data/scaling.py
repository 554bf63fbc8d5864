"""Field scaling: the invertible map between physical units and the units a model works in.

A forecaster stores one :class:`FieldScaling`; :meth:`Forecaster.forecast
<pyro_videossm.forecast.base.Forecaster.forecast>` applies :meth:`FieldScaling.forward` to the
context and :meth:`FieldScaling.inverse` to the forecast, so forecasts come back in the data's
physical units. The map is::

    y = (g(x) - offset) / scale,   g(x) = log(x + eps) if log else x
    x = g^{-1}(y * scale + offset)

``FieldScaling.log(eps)`` is ``log(x + eps)``; ``FieldScaling.fit_minmax(data)`` maps the data's
(optionally log-transformed) range onto [0, 1]. The map inverts exactly up to floating point
rounding. It works on tensors, numpy arrays and xarray objects alike (NaN stays NaN), and
round-trips through plain Python values (:meth:`to_dict` / :meth:`from_dict`) so that it can be
stored in a model file's ``config``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
import xarray as xr

from pyro_videossm.errors import InputError


@dataclass(frozen=True)
class FieldScaling:
    """``y = (g(x) - offset) / scale`` with ``g = log(x + eps)`` when ``log`` else identity.

    Attributes:
        log: apply ``log(x + eps)`` first.
        eps: the offset inside the log (> 0 when ``log``); also the lower bound of the inverse.
        offset: subtracted after ``g``.
        scale: divides after subtracting ``offset`` (> 0).
        units: physical units of ``x`` (recorded for the output's ``units`` attribute).
    """

    log: bool = False
    eps: float = 0.0
    offset: float = 0.0
    scale: float = 1.0
    units: str = ""

    def __post_init__(self) -> None:
        if not (math.isfinite(self.scale) and self.scale > 0):
            raise InputError(f"field scaling: scale must be finite and > 0, got {self.scale}")
        if not math.isfinite(self.offset):
            raise InputError(f"field scaling: offset must be finite, got {self.offset}")
        if self.log and not (math.isfinite(self.eps) and self.eps > 0):
            raise InputError(f"field scaling: log needs eps > 0, got {self.eps}")

    # -- constructors -------------------------------------------------------------------
    @classmethod
    def identity(cls, units: str = "") -> FieldScaling:
        return cls(units=units)

    @classmethod
    def log_transform(cls, eps: float = 0.01, units: str = "") -> FieldScaling:
        """``y = log(x + eps)``."""
        return cls(log=True, eps=float(eps), units=units)

    @classmethod
    def fit_minmax(cls, data, *, log: bool = False, eps: float = 0.01,
                   units: str | None = None) -> FieldScaling:
        """Map the range of ``g(data)`` (NaN ignored) onto [0, 1].

        ``data`` may be a numpy array, tensor or (lazy) xarray object; for a dask-backed
        DataArray only the min and max are computed.
        """
        if units is None:
            units = str(getattr(data, "attrs", {}).get("units", ""))
        probe = cls(log=log, eps=float(eps) if log else 0.0, units=units)
        g = probe._g(data)
        if isinstance(g, xr.DataArray):
            lo, hi = float(g.min(skipna=True)), float(g.max(skipna=True))
        elif isinstance(g, torch.Tensor):
            finite = g[~torch.isnan(g)]
            if finite.numel() == 0:
                raise InputError("field scaling: the data are all missing")
            lo, hi = float(finite.min()), float(finite.max())
        else:
            g = np.asarray(g, dtype=float)
            if np.isnan(g).all():
                raise InputError("field scaling: the data are all missing")
            lo, hi = float(np.nanmin(g)), float(np.nanmax(g))
        if not (math.isfinite(lo) and math.isfinite(hi)):
            raise InputError("field scaling: the data are all missing or not finite")
        scale = hi - lo if hi > lo else 1.0
        return cls(log=log, eps=probe.eps, offset=lo, scale=scale, units=units)

    # -- the map ------------------------------------------------------------------------
    def _g(self, x):
        if not self.log:
            return x
        if isinstance(x, torch.Tensor):
            return torch.log(x + self.eps)
        if isinstance(x, (xr.DataArray, xr.Dataset)):
            return np.log(x + self.eps)
        return np.log(np.asarray(x) + self.eps)

    def _g_inv(self, y):
        if not self.log:
            return y
        if isinstance(y, torch.Tensor):
            return torch.exp(y) - self.eps
        if isinstance(y, (xr.DataArray, xr.Dataset)):
            return np.exp(y) - self.eps
        return np.exp(np.asarray(y)) - self.eps

    def forward(self, x):
        """Physical units -> model units (tensor, array or xarray in, same type out)."""
        y = self._g(x)
        if self.offset != 0.0 or self.scale != 1.0:
            y = (y - self.offset) / self.scale
        if isinstance(y, (xr.DataArray, xr.Dataset)) and not self.is_identity:
            y = y.assign_attrs(units="1", scaling=self.describe())
        return y

    def inverse(self, y):
        """Model units -> physical units (tensor, array or xarray in, same type out)."""
        if self.offset != 0.0 or self.scale != 1.0:
            y = y * self.scale + self.offset
        x = self._g_inv(y)
        if isinstance(x, (xr.DataArray, xr.Dataset)) and self.units:
            x = x.assign_attrs(units=self.units)
        return x

    @property
    def is_identity(self) -> bool:
        return not self.log and self.offset == 0.0 and self.scale == 1.0

    # -- storage ------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain Python values (for a model file's ``config`` or a netCDF JSON attribute)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> FieldScaling:
        """Inverse of :meth:`to_dict`; ``None`` or ``{}`` gives the identity."""
        if not d:
            return cls()
        unknown = set(d) - {"log", "eps", "offset", "scale", "units"}
        if unknown:
            raise InputError(f"field scaling: unknown entries {sorted(unknown)}")
        return cls(log=bool(d.get("log", False)), eps=float(d.get("eps", 0.0)),
                   offset=float(d.get("offset", 0.0)), scale=float(d.get("scale", 1.0)),
                   units=str(d.get("units", "")))

    def describe(self) -> str:
        g = f"log(x + {self.eps:g})" if self.log else "x"
        if self.offset == 0.0 and self.scale == 1.0:
            return g
        return f"({g} - {self.offset:g}) / {self.scale:g}"
