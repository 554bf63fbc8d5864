"""Simulated observations of chaotic systems, as ``xarray.Dataset``.

:func:`simulate` integrates a system with batched RK4 (optionally with process noise),
observes it every ``steps_per_obs`` steps through an observation operator with Gaussian or
Student-t noise, and returns ``truth(time, component)`` and ``obs(time, component)`` (NaN
where a component is not observed) with every setting in the attributes. The attributes are
enough to rebuild the assimilation problem. :func:`load_observations` checks any such
dataset (a user's own too: only ``obs(time, component)`` is required);
:func:`~pyro_videossm.data.observation_settings.complete_observations` finds the settings.
"""

from __future__ import annotations

import copy
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import xarray as xr

from pyro_videossm import __version__
from pyro_videossm.data.conventions import (
    CONVENTIONS,
    decode_json_attr,
    encode_json_attr,
    open_dataset,
    require_variable,
)
from pyro_videossm.data.observation import observed_indices, operator_spec
from pyro_videossm.data.observation_settings import check_time_axis
from pyro_videossm.dynamics import SYSTEMS, ODESystem, make_system
from pyro_videossm.errors import InputError


@dataclass(frozen=True)
class ObservationSetting:
    """Defaults of a benchmark setting (the ``simulate`` defaults for a named system)."""

    dt: float
    steps_per_obs: int
    obs_noise_std: float
    cycles: int
    spinup: float  # model time units integrated (and discarded) before the first cycle


#: The standard benchmark settings (Sakov et al. 2012 for Lorenz-63; Lorenz-96 with N=40, F=8).
STANDARD_SETTINGS: dict[str, ObservationSetting] = {
    "lorenz63": ObservationSetting(
        dt=0.01, steps_per_obs=25, obs_noise_std=math.sqrt(2.0), cycles=1000, spinup=10.0
    ),
    "lorenz96": ObservationSetting(
        dt=0.05, steps_per_obs=1, obs_noise_std=1.0, cycles=1000, spinup=20.0
    ),
}

#: Global attributes every simulated observation dataset carries (a user's own dataset may
#: lack them: see :func:`~pyro_videossm.data.observation_settings.complete_observations`).
REQUIRED_ATTRS = (
    "system",
    "system_parameters",
    "integration_step",
    "steps_per_obs",
    "obs_noise_std",
    "process_noise_std",
)


#: Attributes of a numeric (model) time coordinate: model time is nondimensional and has no
#: reference date, so it carries neither CF time ``units`` nor ``axis: T``.
MODEL_TIME_ATTRS = {"long_name": "model time", "units": "1",
                    "comment": "nondimensional time of the system's equations"}


def setting_for(system: ODESystem, name: str | None = None) -> ObservationSetting | None:
    """The benchmark defaults of a system: :data:`STANDARD_SETTINGS` under ``name`` (the name
    it was asked by) or ``system.name``, else the system's own ``observation_setting``
    attribute (an :class:`ObservationSetting`, for plug-in systems), else None."""
    for key in (name, getattr(system, "name", None)):
        if key in STANDARD_SETTINGS:
            return STANDARD_SETTINGS[key]
    own = getattr(system, "observation_setting", None)
    return own if isinstance(own, ObservationSetting) else None


def simulate(
    system: str | ODESystem = "lorenz63",
    *,
    cycles: int | None = None,
    dt: float | None = None,
    steps_per_obs: int | None = None,
    obs_operator: str | Sequence[int] = "all",
    obs_noise_std: float | None = None,
    obs_noise_dist: str = "gaussian",
    obs_noise_df: float = 4.0,
    process_noise_std: float = 0.0,
    spinup: float | None = None,
    seed: int = 0,
    x0: torch.Tensor | None = None,
    **system_parameters: float,
) -> xr.Dataset:
    """Simulate a trajectory and its noisy observations.

    Args:
        system: a registered name (``"lorenz63"``, ``"lorenz96"``, a plug-in's), an import
            path ``"module:Class"`` or an :class:`ODESystem`. Settings not given come from
            :func:`setting_for`, else from the system's ``default_dt`` with one observation
            per step, noise std 1, 1000 cycles and a spin-up of 10 time units.
        cycles: number of observation times after spin-up.
        dt: RK4 integration step (model time units).
        steps_per_obs: integration steps between observations.
        obs_operator: ``"all"``, ``"every:K"``, ``"subset:I,J"`` or a list of indices.
        obs_noise_std: observation noise standard deviation (Gaussian), or scale (Student-t).
        obs_noise_dist: ``"gaussian"`` or ``"student_t"`` (heavy-tailed, ``obs_noise_df``).
        process_noise_std: diffusion of additive process noise, ``x += q sqrt(dt) eps`` after
            every RK4 step (0 for a perfect model).
        spinup: model time integrated and discarded before the first cycle.
        seed: seeds the initial perturbation, process noise and observation noise.
        x0: initial state before spin-up (default: the system's ``initial_state()`` plus a
            unit Gaussian perturbation drawn from ``seed``).
        **system_parameters: passed to the system constructor when ``system`` is a name.

    Returns:
        Dataset with ``truth(time, component)``, ``obs(time, component)`` and the settings
        as global attributes.
    """
    if isinstance(system, str):
        name = system
        system = make_system(system, **system_parameters)
    else:
        if system_parameters:
            raise InputError("system parameters can only be given with a system name")
        name = system.name
    std = setting_for(system, name)
    if dt is None and std is None:
        dt = getattr(system, "default_dt", None)
        if dt is None:
            raise InputError(f"system {name!r} has no standard setting and no default_dt: "
                             "give the integration step dt")
    dt = float(dt if dt is not None else std.dt)
    if steps_per_obs is None:
        steps_per_obs = std.steps_per_obs if std else 1
    if obs_noise_std is None:
        obs_noise_std = std.obs_noise_std if std else 1.0
    steps_per_obs, obs_noise_std = int(steps_per_obs), float(obs_noise_std)
    cycles = int(cycles if cycles is not None else (std.cycles if std else 1000))
    spinup = float(spinup if spinup is not None else (std.spinup if std else 10.0))
    _check_settings(dt, steps_per_obs, obs_noise_std, obs_noise_dist, obs_noise_df,
                    process_noise_std, cycles, spinup)
    dim = system.state_dim
    obs_idx = observed_indices(obs_operator, dim)

    gen = torch.Generator().manual_seed(int(seed))
    system = copy.deepcopy(system).to(torch.float64)
    if x0 is None:
        x = system.initial_state().to(torch.float64)
        x = x + torch.randn(dim, generator=gen, dtype=torch.float64)
    else:
        x = torch.as_tensor(x0, dtype=torch.float64)
        if x.shape != (dim,):
            raise InputError(f"x0 must have shape ({dim},), got {tuple(x.shape)}")
    with torch.no_grad():
        x = system.integrate(x, round(spinup / dt), dt, noise_std=process_noise_std, generator=gen)
        truth = torch.empty(cycles, dim, dtype=torch.float64)
        for k in range(cycles):
            x = system.integrate(x, steps_per_obs, dt, noise_std=process_noise_std, generator=gen)
            truth[k] = x
    if not torch.isfinite(truth).all():
        raise InputError(f"the {name} trajectory diverged; reduce the integration step dt={dt}")

    eps = _observation_noise(obs_noise_dist, obs_noise_df, (cycles, len(obs_idx)), gen)
    obs = torch.full((cycles, dim), float("nan"), dtype=torch.float64)
    obs[:, obs_idx] = truth[:, obs_idx] + obs_noise_std * eps

    obs_interval = dt * steps_per_obs
    time = obs_interval * np.arange(1, cycles + 1)
    return _make_dataset(
        truth.numpy(), obs.numpy(), time, system, name,
        attrs={
            "integration_step": dt,
            "steps_per_obs": steps_per_obs,
            "obs_interval": obs_interval,
            "observation_operator": operator_spec(obs_operator),
            "observed_components": np.asarray(obs_idx, dtype=np.int64),
            "obs_noise_dist": obs_noise_dist,
            "obs_noise_std": obs_noise_std,
            "obs_noise_df": float(obs_noise_df) if obs_noise_dist == "student_t" else 0.0,
            "process_noise_std": float(process_noise_std),
            "spinup": spinup,
            "seed": int(seed),
        },
    )


def _check_settings(dt, steps_per_obs, obs_noise_std, dist, df, q, cycles, spinup) -> None:
    if not dt > 0:
        raise InputError(f"integration step dt must be > 0, got {dt}")
    if steps_per_obs < 1:
        raise InputError(f"steps_per_obs must be >= 1, got {steps_per_obs}")
    if not obs_noise_std > 0:
        raise InputError(f"observation noise std must be > 0, got {obs_noise_std}")
    if dist not in ("gaussian", "student_t"):
        raise InputError(f"obs_noise_dist must be 'gaussian' or 'student_t', got {dist!r}")
    if not df > 0:  # refused even when unused (Gaussian noise): it is a mistake either way
        raise InputError(f"Student-t degrees of freedom must be > 0, got {df}")
    if not q >= 0:
        raise InputError(f"process noise std must be >= 0, got {q}")
    if cycles < 1:
        raise InputError(f"cycles must be >= 1, got {cycles}")
    if not spinup >= 0:
        raise InputError(f"spinup must be >= 0, got {spinup}")


def _observation_noise(dist: str, df: float, shape, gen: torch.Generator) -> torch.Tensor:
    """Standard noise draws tied to ``gen``: N(0, 1), or Student-t with ``df`` degrees."""
    z = torch.randn(shape, generator=gen, dtype=torch.float64)
    if dist == "gaussian":
        return z
    # t = z / sqrt(chi2_df / df); chi2 by inverse CDF so that the draw follows ``gen``.
    from scipy.stats import chi2

    u = torch.rand(shape, generator=gen, dtype=torch.float64)
    g = torch.from_numpy(chi2.ppf(u.numpy(), df))
    return z / torch.sqrt(g / df)


def _make_dataset(truth, obs, time, system: ODESystem, name: str, attrs: dict) -> xr.Dataset:
    units = getattr(system, "units", "1")
    comp = list(system.component_names)
    ds = xr.Dataset(
        {
            "truth": (("time", "component"), truth, {
                "long_name": f"true {name} state", "units": units}),
            "obs": (("time", "component"), obs, {
                "long_name": f"observed {name} state (NaN where not observed)", "units": units}),
        },
        coords={
            "time": ("time", time, MODEL_TIME_ATTRS),
            "component": ("component", np.asarray(comp, dtype=object),
                          {"long_name": "state component"}),
        },
        attrs={
            "Conventions": CONVENTIONS,
            "title": f"Simulated {name} trajectory and observations",
            "source": f"pyro-videossm {__version__}",
            "system": name,
            "system_parameters": encode_json_attr(system.parameters_dict()),
            **attrs,
        },
    )
    return ds


def load_observations(source: str | os.PathLike | xr.Dataset, *, require_truth: bool = False,
                      where: str | None = None) -> xr.Dataset:
    """Open and check an observation dataset (path or Dataset): simulated, or a user's own.

    Only ``obs(time, component)`` is required (and ``truth`` with ``require_truth``); the
    settings attributes, where present, are checked. Raises :class:`InputError` with one line
    naming the problem: not netCDF, missing ``obs``, wrong dims, a time axis out of order,
    all-NaN or infinite observations, negative noise levels. What an assimilation needs beyond
    this is found (or reported) by
    :func:`~pyro_videossm.data.observation_settings.complete_observations`.
    """
    if isinstance(source, xr.Dataset):
        ds = source
        where = where or "observations"
    else:
        where = where or str(source)
        ds = open_dataset(source)
        ds.load()
    require_variable(ds, "obs", ("time", "component"), where)
    if require_truth:
        require_variable(ds, "truth", ("time", "component"), where)
    check_time_axis(ds, where)
    obs = ds["obs"].values
    if not np.issubdtype(obs.dtype, np.number):
        raise InputError(f"{where}: 'obs' holds {obs.dtype} values, not numbers")
    if np.isinf(obs).any():
        raise InputError(f"{where}: 'obs' contains infinite values")
    if np.isnan(obs).all():
        raise InputError(f"{where}: 'obs' is all NaN: nothing is observed")
    a = ds.attrs
    try:
        noise = np.asarray(a.get("obs_noise_std", 1.0), dtype=float)
        q = float(a.get("process_noise_std", 0.0))
        step, steps = float(a.get("integration_step", 1.0)), float(a.get("steps_per_obs", 1))
    except (TypeError, ValueError):
        raise InputError(f"{where}: the noise and step attributes must be numbers") from None
    if not (noise > 0).all():
        raise InputError(f"{where}: obs_noise_std must be > 0, got {a['obs_noise_std']}")
    if not q >= 0:
        raise InputError(f"{where}: process_noise_std must be >= 0, got {a['process_noise_std']}")
    if not step > 0 or not steps >= 1:
        raise InputError(f"{where}: integration_step must be > 0 and steps_per_obs >= 1")
    if "system_parameters" in a:
        decode_json_attr(ds, "system_parameters")
    return ds


def system_from_attrs(ds: xr.Dataset) -> ODESystem:
    """Rebuild the system named in a dataset's attributes (registered name or module:Class)."""
    return make_system(ds.attrs["system"], **decode_json_attr(ds, "system_parameters"))


def with_system(ds: xr.Dataset, system: str, parameters: dict | None = None) -> xr.Dataset:
    """``ds`` whose attributes name ``system`` (a registered name or ``"module:Class"``).

    The dataset's own ``system_parameters`` are kept when ``system`` is the system it already
    names (same name, or a class whose ``name`` is that name); ``parameters`` update them.
    The system is built once here, so a bad name or parameter is an :class:`InputError`.
    """
    params: dict = {}
    if "system" in ds.attrs and "system_parameters" in ds.attrs:
        old = str(ds.attrs["system"])
        if system == old or getattr(SYSTEMS.get(system), "name", None) == old:
            params = decode_json_attr(ds, "system_parameters")
    params.update(parameters or {})
    built = make_system(system, **params)
    out = ds.copy()
    out.attrs = {**ds.attrs, "system": system,
                 "system_parameters": encode_json_attr(built.parameters_dict())}
    return out
