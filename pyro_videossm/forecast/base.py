"""One interface for every field forecaster, and a registry by name.

Every forecaster in the toolkit, learned or not, answers the same two calls:

* :meth:`Forecaster.predict` on tensors: context ``(B, T_ctx, H, W)`` with a boolean mask
  (False = missing) in, forecast ``(B, leads, members, H, W)`` out, in the units the model
  works in (the *scaled* units, see :class:`~pyro_videossm.data.scaling.FieldScaling`);
* :meth:`Forecaster.forecast` on xarray: a context Dataset in, a forecast Dataset out, in the
  data's physical units (the forecaster's ``scaling`` is applied and inverted for you).

The forecast Dataset (see :func:`forecast_dataset`)::

    forecast(lead_time, member, y, x)            or   forecast(sample, lead_time, member, y, x)
    coords: init_time (scalar: last context time), lead_time (timedelta64 or numeric in the
            time's units), lead_step(lead_time) = 1..L, valid_time(lead_time), y, x (+ sample)
    attrs:  product="forecast", model=<name>, source_variable, deterministic, members,
            context_length, seed, scaling (JSON), time_step; the variable keeps the source's
            units, standard_name and grid_mapping (the grid-mapping variable is copied)

The coordinates carry CF standard names (docs/CONVENTIONS.md): ``lead_time`` is the
``forecast_period``, ``member`` the ``realization``, ``init_time`` the
``forecast_reference_time`` and ``valid_time`` the ``time`` (the last two, and the first,
only when the context's time is a date or a duration, not dimensionless model time); with
cf_xarray, ``fc.cf["forecast_period"]`` finds ``lead_time`` and so on.

Registry (:data:`FORECASTERS`, a :class:`~pyro_videossm.registry.Registry`, open to other
packages through the entry-point group ``pyro_videossm.forecasters``):
:func:`register_forecaster`, :func:`get_forecaster` (by name with options) and
:func:`load_forecaster` (from a model file written by :func:`pyro_videossm.infer.save_model_file`;
the file's ``name`` selects the class, whose :meth:`Forecaster.from_model_file` rebuilds it).
Modules listed in :data:`BUILTIN_FORECASTER_MODULES` are imported on first lookup; a new
forecaster adds its module path there.
"""

from __future__ import annotations

import inspect
import json
import os
from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np
import torch
import xarray as xr
from torch import Tensor

from pyro_videossm.data.forecast_names import FORECAST_STANDARD_NAMES as CF_NAMES
from pyro_videossm.data.scaling import FieldScaling
from pyro_videossm.data.selection import SAMPLE_DIMS, select_field  # noqa: F401 (re-export)
from pyro_videossm.errors import InputError
from pyro_videossm.forecast.dry_context import dry_contexts
from pyro_videossm.registry import Registry

#: Modules whose import registers the built-in forecasters (loaded on first lookup).
BUILTIN_FORECASTER_MODULES: tuple[str, ...] = (
    "pyro_videossm.forecast.persistence",
    "pyro_videossm.models.forecasters.convlstm",
    "pyro_videossm.models.ssm.conv_dmm",
    "pyro_videossm.models.forecasters.spatiotemporal_transformer",
    "pyro_videossm.models.forecasters.sequence_baselines",
    "pyro_videossm.models.ssm.dmm_flat",
    "pyro_videossm.forecast.pysteps_nowcasts",
    "pyro_videossm.models.ssm.advection_conv_dmm",
)

#: name -> forecaster class: :func:`register_forecaster`, the modules above, the entry-point
#: group ``pyro_videossm.forecasters`` and ``"module:Class"`` paths.
FORECASTERS: Registry[type[Forecaster]] = Registry(
    "forecaster", builtins=BUILTIN_FORECASTER_MODULES)


class Forecaster(ABC):
    """Base class: subclasses set ``name`` and ``deterministic`` and implement :meth:`predict`.

    Attributes:
        scaling: physical units <-> model units; :meth:`forecast` applies it to the context
            and inverts it on the forecast. Identity by default.
        device: where :meth:`forecast` puts the context tensors (and its generator).
        dtype: the dtype of those tensors (float32 unless a subclass says otherwise).
    """

    name: ClassVar[str] = ""
    #: True: one member only (the member dimension has size 1 whatever ``members`` asks).
    deterministic: ClassVar[bool] = True

    scaling: FieldScaling = FieldScaling()
    device: torch.device = torch.device("cpu")
    #: dtype of the tensors :meth:`forecast` passes to :meth:`predict`.
    dtype: torch.dtype = torch.float32

    # -- tensors ------------------------------------------------------------------------
    @abstractmethod
    def predict(self, context: Tensor, mask: Tensor, leads: int, members: int = 1, *,
                generator: torch.Generator | None = None) -> Tensor:
        """Forecast ``leads`` steps after the context.

        Args:
            context: ``(B, T_ctx, H, W)`` in model (scaled) units; 0 where ``mask`` is False.
            mask: ``(B, T_ctx, H, W)`` bool, False where the data are missing.
            leads: number of steps to forecast (>= 1).
            members: ensemble members to draw (stochastic forecasters).
            generator: source of randomness (on the context's device).

        Returns:
            ``(B, leads, M, H, W)`` in model units, ``M = 1`` if ``deterministic`` else
            ``members``.
        """

    # -- model files --------------------------------------------------------------------
    @classmethod
    def from_model_file(cls, ckpt: dict[str, Any], *,
                        device: str | torch.device = "cpu") -> Forecaster:
        """Rebuild from ``load_model_file``'s dict (``name``, ``config``, ``state_dict``,
        ``extra``). Learned forecasters override this; store the scaling in ``config`` as
        ``config["scaling"] = scaling.to_dict()`` and restore it with ``FieldScaling.from_dict``.
        """
        raise InputError(f"forecaster {cls.name!r} cannot be loaded from a model file")

    def options(self) -> dict[str, Any]:
        """Constructor options of this instance (plain values), for the output's attributes."""
        sig = inspect.signature(type(self).__init__)
        out = {}
        for k in sig.parameters:
            if k in ("self", "args", "kwargs") or not hasattr(self, k):
                continue
            v = getattr(self, k)
            if isinstance(v, (bool, int, float, str, type(None), list, tuple)):
                out[k] = v
        return out

    # -- xarray -------------------------------------------------------------------------
    def forecast(self, context: xr.Dataset | xr.DataArray, leads: int, members: int = 1, *,
                 variable: str | None = None, seed: int = 0,
                 batch_size: int | None = None) -> xr.Dataset:
        """Context Dataset in, forecast Dataset out (physical units; see the module doc).

        A rain-rate context without rain forecasts zeros without calling :meth:`predict`
        (:mod:`~pyro_videossm.forecast.dry_context`); too short a context raises in
        :meth:`check_context_length` first.

        Args:
            context: a Dataset holding ``variable(time, y, x)`` or ``variable(sample, time, y,
                x)`` (any two spatial dim names; a leading ``sample``/``clip``/``trajectory``
                dim is kept), or that DataArray itself. The whole time axis is the context;
                its last time is ``init_time``. NaN = missing.
            leads: steps to forecast (>= 1), at the context's time step.
            members: ensemble members (ignored by deterministic forecasters: one member).
            variable: the data variable to forecast (default: the only one, else the first of
                ``obs``, ``precip``, ``rain_rate``, ``truth`` present).
            seed: seeds the forecaster's randomness.
            batch_size: samples per :meth:`predict` call (default: all at once).
        """
        da = select_field(context, variable)
        leads, members = _check_counts(leads, members)
        lead_dim = da.dims[0] if da.ndim == 4 else None
        values = np.asarray(da.transpose(*([lead_dim] if lead_dim else []), "time",
                                         *da.dims[-2:]).values, dtype=np.float64)
        if lead_dim is None:
            values = values[None]
        if np.isnan(values).all():
            raise InputError(f"variable {da.name!r}: the context is all missing")
        self.check_context_length(values.shape[1])
        # a rain-rate context without rain forecasts zeros (forecast/dry_context.py)
        wet = np.nonzero(~dry_contexts(da, values))[0]
        m = 1 if self.deterministic else members
        fc = np.zeros((values.shape[0], leads, m, *values.shape[-2:]))
        if wet.size:
            fc[wet] = self._predict_scaled(values[wet], leads, members, seed, batch_size)
        if lead_dim is None:
            fc = fc[0]
        return forecast_dataset(
            fc, da, model=self.name, deterministic=self.deterministic, seed=seed,
            scaling=self.scaling, options=self.options(),
        )

    def check_context_length(self, frames: int) -> None:
        """Raise a one-line InputError when ``frames`` context frames are too few for this
        forecaster (e.g. for its optical flow); any number >= 1 by default."""
        return None

    def _predict_scaled(self, values: np.ndarray, leads: int, members: int, seed: int,
                        batch_size: int | None) -> np.ndarray:
        """``values`` ``(S, T, H, W)`` physical units (NaN missing) -> scaled, :meth:`predict`
        in batches, unscaled: ``(S, leads, M, H, W)``."""
        with np.errstate(invalid="ignore", divide="ignore"):
            scaled = np.asarray(self.scaling.forward(values), dtype=np.float64)
        mask_np = ~np.isnan(scaled)
        x = torch.from_numpy(np.where(mask_np, scaled, 0.0)).to(self.dtype)
        mask = torch.from_numpy(mask_np)
        device = torch.device(self.device)
        generator = torch.Generator(device=device).manual_seed(int(seed))
        n = x.shape[0]
        step = n if not batch_size else max(1, int(batch_size))
        outs = []
        with torch.no_grad():
            for i in range(0, n, step):
                out = self.predict(x[i:i + step].to(device), mask[i:i + step].to(device),
                                   leads, members, generator=generator)
                outs.append(self._check_output(out, x[i:i + step].shape, leads, members)
                            .detach().to("cpu", torch.float64))
        return self.scaling.inverse(torch.cat(outs).numpy())

    def _check_output(self, out: Tensor, shape: torch.Size, leads: int, members: int) -> Tensor:
        b, _, h, w = shape
        m = 1 if self.deterministic else members
        if tuple(out.shape) != (b, leads, m, h, w):
            raise RuntimeError(
                f"forecaster {self.name!r} returned shape {tuple(out.shape)}, "
                f"expected {(b, leads, m, h, w)}"
            )
        return out


def _check_counts(leads: int, members: int) -> tuple[int, int]:
    if int(leads) != leads or leads < 1:
        raise InputError(f"leads must be an integer >= 1, got {leads}")
    if int(members) != members or members < 1:
        raise InputError(f"members must be an integer >= 1, got {members}")
    return int(leads), int(members)


#: Units of a numeric time that are a duration (a CF ``forecast_period`` may carry them).
TIME_UNITS: frozenset[str] = frozenset({
    "s", "sec", "secs", "second", "seconds", "min", "mins", "minute", "minutes", "h", "hr",
    "hrs", "hour", "hours", "d", "day", "days"})


def _is_reference_time(time: xr.DataArray) -> bool:
    """True for datetimes, cftimes or numbers in ``"<unit> since <date>"`` units."""
    t = np.asarray(time.values)
    if np.issubdtype(t.dtype, np.datetime64):
        return True
    if t.dtype == object and t.size:
        return type(t.flat[0]).__module__.startswith("cftime")
    return " since " in str(time.attrs.get("units", ""))


def lead_times(time: xr.DataArray | None, leads: int,
               time_step: Any = None) -> tuple[Any, np.ndarray, np.ndarray, dict]:
    """``(init_time, lead_time, valid_time, lead_time_attrs)`` for a context's time coordinate.

    The step is ``time_step`` if given, else the last difference of ``time``; datetime times
    give ``timedelta64`` lead times, numeric ones numbers in the time's units, and a context of
    one step without a time step gives lead times in steps (units ``1``, no valid time). The
    attributes carry ``standard_name: forecast_period`` when the lead time is a duration
    (timedelta64, or numeric time in a unit of :data:`TIME_UNITS` or ``"<unit> since ..."``).
    """
    k = np.arange(1, leads + 1)
    in_steps = {"long_name": "lead time (in time steps)", "units": "1"}
    if time is None or time.size == 0:
        return None, k, k, in_steps
    t = time.values
    init = t[-1]
    if time_step is None and t.size >= 2:
        time_step = t[-1] - t[-2]
    if time_step is None:
        return init, k, np.full(leads, init), in_steps
    period = {"long_name": "lead time", "standard_name": CF_NAMES["lead_time"]}
    if np.issubdtype(np.asarray(t).dtype, np.datetime64):
        step = np.asarray(time_step).astype("timedelta64[ns]")
        lead = k * step
        return init, lead, init + lead, period
    step = float(time_step)
    lead = k * step
    attrs: dict[str, Any] = {"long_name": "lead time"}
    units = str(time.attrs.get("units", ""))
    if units:
        duration = units.split(" since ")[0].strip()
        attrs["units"] = duration if " since " in units else units
        if attrs["units"].lower() in TIME_UNITS:
            attrs["standard_name"] = CF_NAMES["lead_time"]
    return init, lead, init + lead, attrs


def forecast_dataset(fc: np.ndarray, context: xr.DataArray, *, model: str,
                     deterministic: bool, seed: int = 0, scaling: FieldScaling | None = None,
                     options: dict | None = None, time_step: Any = None,
                     extra_attrs: dict | None = None) -> xr.Dataset:
    """Wrap ``fc`` ``([S,] L, M, H, W)`` (physical units) as the forecast Dataset for
    ``context`` (the DataArray given to the forecaster; see the module doc). The context's
    spatial coordinates and its ``grid_mapping`` variable (a scalar coordinate of
    ``context``, see :func:`~pyro_videossm.data.selection.attach_grid_mapping`) are carried
    over."""
    spatial = tuple(map(str, context.dims[-2:]))
    sample_dim = str(context.dims[0]) if context.ndim == 4 else None
    leads, members = fc.shape[-4], fc.shape[-3]
    time = context["time"] if "time" in context.coords else None
    init, lead, valid, lead_attrs = lead_times(time, leads, time_step)
    dims = ((sample_dim,) if sample_dim else ()) + ("lead_time", "member") + spatial
    coords: dict[str, Any] = {
        "lead_time": ("lead_time", lead, lead_attrs),
        "lead_step": ("lead_time", np.arange(1, leads + 1),
                      {"long_name": "lead time in time steps", "units": "1"}),
        "member": ("member", np.arange(members),
                   {"long_name": "ensemble member", "standard_name": CF_NAMES["member"],
                    "units": "1"}),
    }
    if init is not None:
        assert time is not None
        t_attrs = {k: v for k, v in time.attrs.items() if k in ("units", "calendar")}
        reference = _is_reference_time(time)
        coords["init_time"] = ((), init, {
            "long_name": "forecast initial time", **t_attrs,
            **({"standard_name": CF_NAMES["init_time"]} if reference else {})})
        coords["valid_time"] = ("lead_time", valid, {
            "long_name": "valid time", **t_attrs,
            **({"standard_name": CF_NAMES["valid_time"]} if reference else {})})
    grid_mapping = str(context.attrs.get("grid_mapping", "")).split(":")[0].strip()
    data_vars: dict[str, Any] = {}
    for name, c in context.coords.items():
        if name == grid_mapping and c.ndim == 0:
            data_vars[str(name)] = c.variable
        elif name != "time" and set(c.dims) <= set(spatial) | ({sample_dim} - {None}):
            coords[str(name)] = c.variable
    src_attrs = dict(context.attrs)
    var_attrs = {k: src_attrs[k] for k in ("units", "standard_name") if k in src_attrs}
    if grid_mapping in data_vars:
        var_attrs["grid_mapping"] = src_attrs["grid_mapping"]
    if scaling is not None and scaling.units and "units" not in var_attrs:
        var_attrs["units"] = scaling.units
    var_attrs["long_name"] = f"forecast of {src_attrs.get('long_name', context.name)}"
    if time_step is None and "time" in context.coords and context.sizes["time"] >= 2:
        t = context["time"].values
        time_step = t[-1] - t[-2]
    attrs = {
        "Conventions": "CF-1.8",
        "title": f"{model} forecast of {context.name}",
        "product": "forecast",
        "model": model,
        "source_variable": str(context.name),
        "deterministic": int(bool(deterministic)),
        "members": int(members),
        "context_length": int(context.sizes["time"]),
        "leads": int(leads),
        "seed": int(seed),
        "scaling": json.dumps((scaling or FieldScaling()).to_dict(), sort_keys=True),
        "model_options": json.dumps(options or {}, sort_keys=True, default=str),
        "time_step": _plain_step(time_step),
    }
    attrs.update(extra_attrs or {})
    data_vars["forecast"] = (dims, np.asarray(fc), var_attrs)
    return xr.Dataset(data_vars, coords=coords, attrs=attrs)


def _plain_step(step: Any) -> str:
    if step is None:
        return "1 step"
    if isinstance(step, np.timedelta64):
        return f"{step.astype('timedelta64[s]').astype(np.int64)} seconds"
    return str(float(step))


# -- registry -------------------------------------------------------------------------
def register_forecaster(cls: type[Forecaster]) -> type[Forecaster]:
    """Class decorator: make a forecaster available by its ``name``."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} must set a non-empty 'name'")
    return FORECASTERS.register(cls, name=cls.name)


def available_forecasters() -> list[str]:
    """Names of all known forecasters (built in, registered and from entry points)."""
    return FORECASTERS.names()


def forecaster_class(name: str) -> type[Forecaster]:
    """The forecaster class registered as ``name`` (or imported from ``"module:Class"``)."""
    return FORECASTERS.subclass(name, Forecaster)


def get_forecaster(name: str, **options) -> Forecaster:
    """Build a forecaster by name with its constructor options (InputError if unknown)."""
    return FORECASTERS.build(name, Forecaster, options, ignore=("self", "args", "kwargs"))


def load_forecaster(model_file: str | os.PathLike, *,
                    device: str | torch.device = "cpu") -> Forecaster:
    """Rebuild a trained forecaster from a model file (``save_model_file``); the file's
    ``name`` selects the registered class, whose ``from_model_file(ckpt, device=)`` builds it."""
    from pyro_videossm.infer import load_model_file  # the shared training loop's file format

    ckpt = load_model_file(model_file)
    name = ckpt.get("name")
    if not isinstance(name, str) or name not in FORECASTERS:
        raise InputError(
            f"{model_file}: model {name!r} is not a forecaster "
            f"(forecasters: {', '.join(available_forecasters()) or 'none'})"
        )
    return forecaster_class(name).from_model_file(ckpt, device=device)
