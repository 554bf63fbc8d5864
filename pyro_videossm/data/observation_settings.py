"""What an assimilation needs beyond ``obs(time, component)``, gathered from a user's dataset.

Any Dataset with ``obs(time, component)`` (NaN where not observed) can be assimilated;
:func:`complete_observations` fills in the settings that :func:`pyro_videossm.data.simulate`
writes as global attributes, from (in this order of precedence):

- **dynamics**: the ``system`` option (a registered name, ``"module:Class"`` or an
  :class:`~pyro_videossm.dynamics.ODESystem`), else the ``system`` attribute; parameters from
  ``system_parameters`` (option, updating the dataset's own when it names the same system);
- **observation noise** (std per component, or one for all): the ``obs_noise`` option, else a
  variable ``obs_noise_std`` or ``obs_error_std`` with dims ``()`` or ``(component,)``, else the
  ``obs_noise_std`` attribute;
- **cycle** (RK4 step ``integration_step`` and ``steps_per_obs`` steps per observation): both
  attributes when present; otherwise the observation interval is the (regular) spacing of the
  ``time`` coordinate in model time, with the step the given ``integration_step`` or the
  system's ``default_dt`` (rounded so that a whole number of steps makes one interval).
  A numeric ``time`` is model time. A datetime, timedelta or cftime ``time`` needs the length
  of one model time unit: the ``time_unit`` option or the ``model_time_unit`` attribute, a
  duration such as ``"5D"`` or ``"6h"`` (Lorenz-96: one time unit is about 5 days, so one
  cycle of 0.05 is 6 hours);
- **process noise**: the ``process_noise_std`` attribute, else 0 (a perfect model).

Everything that is missing or wrong is reported together, in one line.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence

import numpy as np
import pandas as pd
import xarray as xr

from pyro_videossm.data.conventions import decode_json_attr, encode_json_attr
from pyro_videossm.dynamics import SYSTEMS, ODESystem, make_system
from pyro_videossm.errors import InputError

#: Variables that may hold the observation noise standard deviation, in order of preference.
NOISE_VARIABLES = ("obs_noise_std", "obs_error_std")

#: Relative tolerance for a regular time axis.
REGULAR_RTOL = 1e-6


def time_offsets(values: np.ndarray) -> tuple[np.ndarray, bool]:
    """``(offsets, calendar)``: times as float offsets from the first one, in seconds for a
    datetime, timedelta or cftime axis (``calendar`` True), else the numbers themselves."""
    values = np.asarray(values)
    if values.size == 0:
        return np.zeros(0), False
    if np.issubdtype(values.dtype, np.datetime64) or np.issubdtype(values.dtype, np.timedelta64):
        return (values - values[0]) / np.timedelta64(1, "s"), True
    first = values.flat[0]
    if (values.dtype == object and hasattr(first, "calendar")) or isinstance(
            first, (datetime.datetime, datetime.timedelta)):
        return np.array([(v - first).total_seconds() for v in values], dtype=float), True
    try:
        numbers = values.astype(float)
    except (TypeError, ValueError):
        raise InputError(f"time coordinate of type {values.dtype} is neither numeric nor a "
                         "date") from None
    return numbers - numbers[0], False


def parse_duration(value) -> float:
    """Seconds in a duration: ``"5D"``, ``"6h"``, ``"90 minutes"``, a timedelta or a
    ``numpy.timedelta64``. One-line :class:`InputError` otherwise."""
    try:
        seconds = pd.Timedelta(value).total_seconds()
    except (TypeError, ValueError):
        raise InputError(f"time unit {value!r} is not a duration (e.g. '5D', '6h')") from None
    if not seconds > 0:
        raise InputError(f"time unit {value!r} must be a positive duration")
    return seconds


def complete_observations(
    ds: xr.Dataset,
    *,
    system: str | ODESystem | None = None,
    system_parameters: dict | None = None,
    obs_noise: float | Sequence[float] | None = None,
    time_unit=None,
    require: bool = True,
    where: str | None = None,
) -> xr.Dataset:
    """``ds`` with the attributes ``system``, ``system_parameters``, ``integration_step``,
    ``steps_per_obs``, ``obs_noise_std`` and ``process_noise_std`` filled in (see the module
    docstring for where each comes from).

    ``ds`` must already have passed :func:`~pyro_videossm.data.load_observations`. With
    ``require=False`` (methods that bring their own model, such as a trained DMM) what cannot
    be found is left out instead of reported. Raises one :class:`InputError` naming every
    missing or bad setting: ``"obs.nc: cannot assimilate: no system (...); no observation
    noise (...)"``; ``where`` names the data (default: the file it was read from).
    """
    where = where or ds.encoding.get("source") or "observations"
    problems: list[str] = []
    attrs = dict(ds.attrs)
    built = _system(ds, system, system_parameters, attrs, problems, require)
    noise = _noise(ds, obs_noise, problems, require)
    if noise is not None:
        attrs["obs_noise_std"] = noise
    _cycle(ds, built, time_unit, attrs, problems, require)
    attrs.setdefault("process_noise_std", 0.0)
    if problems:
        raise InputError(f"{where}: cannot assimilate: " + "; ".join(problems))
    out = ds.copy()
    out.attrs = attrs
    return out


def _system(ds, system, parameters, attrs, problems, require) -> ODESystem | None:
    """Build the dynamics and write ``system``/``system_parameters`` into ``attrs``."""
    if isinstance(system, ODESystem) or (system is not None and not isinstance(system, str)):
        if parameters:
            problems.append("system parameters can only be given with a system name")
            return None
        built, name = system, getattr(system, "name", type(system).__name__)
    else:
        name = system if system is not None else ds.attrs.get("system")
        if name is None:
            if require:
                problems.append("no system (give --system NAME|module:Class or a 'system' "
                                "attribute)")
            return None
        name = str(name)
        params: dict = {}
        old = ds.attrs.get("system")
        if old is not None and "system_parameters" in ds.attrs and (
                name == str(old) or _class_name(name) == str(old)):
            try:
                params = decode_json_attr(ds, "system_parameters")
            except InputError as err:
                problems.append(str(err))
        params.update(parameters or {})
        try:
            built = make_system(name, **params)
        except InputError as err:
            problems.append(str(err))
            return None
        except Exception as err:  # a system constructor refusing its parameters
            problems.append(f"system {name!r} cannot be built: {type(err).__name__}: "
                            f"{' '.join(str(err).split())}")
            return None
    dim, n = int(built.state_dim), ds.sizes["component"]
    if dim != n:
        problems.append(f"system {name!r} has {dim} components but 'obs' has {n} (give its "
                        "size with --system-param, e.g. n=" + str(n) + ")")
        return None
    attrs["system"] = name
    attrs["system_parameters"] = encode_json_attr(built.parameters_dict())
    return built


def _class_name(spec: str) -> str | None:
    try:
        return getattr(SYSTEMS.get(spec), "name", None)
    except InputError:
        return None


def _noise(ds, option, problems, require) -> float | np.ndarray | None:
    """Observation noise std: option > variable > attribute; scalar or ``(D,)``."""
    n = ds.sizes["component"]
    source, value = None, None
    if option is not None:
        source, value = "--obs-noise", option
    else:
        for name in NOISE_VARIABLES:
            if name in ds.variables and name not in ds.dims:
                var = ds[name]
                if var.dims not in ((), ("component",)):
                    problems.append(f"variable {name!r} has dims {var.dims}, expected () or "
                                    "('component',)")
                    return None
                source, value = f"variable {name!r}", var.values
                break
        else:
            if "obs_noise_std" in ds.attrs:
                source, value = "attribute 'obs_noise_std'", ds.attrs["obs_noise_std"]
    if source is None:
        if require:
            problems.append("no observation noise (give --obs-noise STD, an 'obs_noise_std' "
                            "variable or attribute)")
        return None
    try:
        std = np.asarray(value, dtype=float).reshape(-1)
    except (TypeError, ValueError):
        problems.append(f"observation noise from {source} is not a number: {value!r}")
        return None
    if std.size not in (1, n):
        problems.append(f"observation noise from {source} has {std.size} values for {n} "
                        "components")
        return None
    never = np.isnan(ds["obs"].values).all(0)
    if std.size == n:  # a NaN std is fine for a component that is never observed
        std = np.where(np.isnan(std) & never, 1.0, std)
    if not (np.isfinite(std) & (std > 0)).all():
        problems.append(f"observation noise from {source} must be finite and > 0, got "
                        f"{_show(std)}")
        return None
    return float(std[0]) if std.size == 1 else std


def _show(values: np.ndarray) -> str:
    return np.array2string(values, precision=4, threshold=6)


def _cycle(ds, system, time_unit, attrs, problems, require) -> None:
    """``integration_step`` and ``steps_per_obs`` from the attributes or the time axis."""
    step, steps = ds.attrs.get("integration_step"), ds.attrs.get("steps_per_obs")
    if step is not None and steps is not None and time_unit is None:
        return  # the attributes define the cycle; the time coordinate is only a label
    interval, why = _interval(ds, time_unit)
    if interval is None:
        if require and why:
            problems.append(why)
        return
    if steps is not None and step is None:
        step = interval / int(steps)
    else:
        base = step if step is not None else getattr(system, "default_dt", None)
        if base is None:
            return  # no system: already reported when required
        steps = max(1, round(interval / float(base)))
        step = interval / steps
    attrs["integration_step"], attrs["steps_per_obs"] = float(step), int(steps)
    attrs.setdefault("obs_interval", float(interval))


def _interval(ds, time_unit) -> tuple[float | None, str]:
    """The observation interval in model time, or ``(None, why not)``."""
    if "time" not in ds.coords:
        return None, ("no time coordinate (give 'integration_step' and 'steps_per_obs' "
                      "attributes, or a regular 'time' coordinate)")
    offsets, calendar = time_offsets(ds["time"].values)
    if offsets.size < 2:
        return None, ("one observation time: the interval is unknown (give "
                      "'integration_step' and 'steps_per_obs' attributes)")
    diffs = np.diff(offsets)
    if not np.allclose(diffs, diffs[0], rtol=REGULAR_RTOL, atol=0.0):
        return None, (f"the time coordinate is not regular (intervals from {diffs.min():g} to "
                      f"{diffs.max():g}{' s' if calendar else ''}): insert NaN rows for the "
                      "missing times, or give 'integration_step' and 'steps_per_obs'")
    if not calendar:
        if time_unit is not None:
            return None, ("a time unit applies to a datetime time axis; this 'time' is "
                          "numeric model time")
        return float(diffs[0]), ""
    unit = time_unit if time_unit is not None else ds.attrs.get("model_time_unit")
    if unit is None:
        return None, ("'time' holds dates: give --time-unit DURATION (how long one model time "
                      "unit lasts, e.g. 5D) or a 'model_time_unit' attribute, or "
                      "'integration_step' and 'steps_per_obs' attributes")
    try:
        seconds = parse_duration(unit)
    except InputError as err:
        return None, str(err)
    return float(diffs[0]) / seconds, ""


def check_time_axis(ds: xr.Dataset, where: str) -> None:
    """One-line :class:`InputError` if ``time`` has duplicates or is not increasing (numeric,
    datetime, timedelta or cftime)."""
    if "time" not in ds.coords or ds.sizes.get("time", 0) < 2:
        return
    diffs = np.diff(time_offsets(ds["time"].values)[0])
    if (diffs == 0).any():
        raise InputError(f"{where}: time coordinate 'time' has duplicate values")
    if not (diffs > 0).all():
        raise InputError(f"{where}: time coordinate 'time' is not increasing")

