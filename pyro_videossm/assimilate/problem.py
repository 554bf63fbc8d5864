"""The assimilation problem as tensors: what every method, classical or learned, receives."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np
import torch
import xarray as xr
from torch import Tensor

from pyro_videossm.data.chaotic import load_observations, system_from_attrs
from pyro_videossm.data.observation_settings import complete_observations
from pyro_videossm.data.windows import to_tensor_and_mask
from pyro_videossm.dynamics import ODESystem
from pyro_videossm.errors import InputError


@dataclass
class AssimilationProblem:
    """Observations of a system on a regular cycle, ready for a filter or smoother.

    Shapes: ``T`` observation cycles, ``D`` state components.

    Attributes:
        system: the forecast model's dynamics (may differ from the truth's: misspecification);
            ``None`` only for methods that bring their own model (``require=False``).
        dt: RK4 step; ``steps_per_obs`` steps make one cycle (NaN and 0 when unknown, for
            methods that bring their own model).
        obs: ``(T, D)`` observed values, 0 where not observed.
        mask: ``(T, D)`` bool, True where observed.
        obs_noise_std: ``(D,)`` observation noise standard deviation per component.
        process_noise_std: diffusion ``q`` of additive model noise (variance ``q^2 dt`` a step).
        prior_mean, prior_std: ``(D,)`` Gaussian prior for the state at time 0 (before cycle 1).
        times: ``(T,)`` observation times; ``component_names``: the ``D`` names.
        time_coord: the dataset's ``time`` coordinate (values, attributes and encoding), which
            the posterior copies.
    """

    system: ODESystem | None
    dt: float
    steps_per_obs: int
    obs: Tensor
    mask: Tensor
    obs_noise_std: Tensor
    process_noise_std: float
    prior_mean: Tensor
    prior_std: Tensor
    times: np.ndarray
    component_names: tuple[str, ...]
    obs_noise_dist: str = "gaussian"
    obs_noise_df: float = 0.0
    attrs: dict = field(default_factory=dict)
    time_coord: xr.DataArray | None = None

    @property
    def n_cycles(self) -> int:
        return self.obs.shape[0]

    @property
    def state_dim(self) -> int:
        return self.obs.shape[1]

    @property
    def device(self) -> torch.device:
        return self.obs.device

    @property
    def dtype(self) -> torch.dtype:
        return self.obs.dtype

    @property
    def cycle_noise_var(self) -> float:
        """Process noise variance accumulated over one cycle (per component)."""
        return self.process_noise_std**2 * self.dt * self.steps_per_obs

    def forecast(self, x: Tensor, *, noise: bool = False,
                 generator: torch.Generator | None = None) -> Tensor:
        """Move states ``(..., D)`` forward one observation cycle with batched RK4.

        With ``noise=True`` and a nonzero ``process_noise_std``, stochastic forcing is added
        after each step, as in the simulation (members of an ensemble get independent noise).
        """
        q = self.process_noise_std if noise else 0.0
        return self.system.integrate(x, self.steps_per_obs, self.dt, noise_std=q,
                                     generator=generator)

    @classmethod
    def from_dataset(
        cls,
        ds: xr.Dataset,
        *,
        system: ODESystem | str | None = None,
        system_parameters: dict | None = None,
        obs_noise: float | list[float] | None = None,
        time_unit=None,
        require: bool = True,
        where: str | None = None,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float64,
    ) -> AssimilationProblem:
        """Build the problem from any dataset with ``obs(time, component)``.

        The dynamics, observation noise and cycle come from the arguments, else from the
        dataset (see :func:`~pyro_videossm.data.observation_settings.complete_observations`,
        which reports everything missing in one line). ``system`` (a name, ``"module:Class"``
        or an :class:`ODESystem`) overrides the dynamics named in the attributes, e.g. a
        misspecified model or a user system that is not registered. With ``require=False``
        (methods that bring their own model) missing settings are left unknown: no system,
        NaN noise and step, and the observations' own mean and spread as prior.
        """
        where = where or ds.encoding.get("source") or "observations"
        ds = load_observations(ds, where=where)
        ds = complete_observations(ds, system=system, system_parameters=system_parameters,
                                   obs_noise=obs_noise, time_unit=time_unit, require=require,
                                   where=where)
        if isinstance(system, str) or system is None:
            system = system_from_attrs(ds) if "system" in ds.attrs else None
        names = tuple(str(c) for c in ds["component"].values) if "component" in ds.coords else ()
        D = ds.sizes["component"]
        obs, mask = to_tensor_and_mask(ds["obs"].values, dtype)
        dt = float(ds.attrs.get("integration_step", np.nan))
        if system is not None:
            mean, std = climatology(system, dt)
            system = copy.deepcopy(system).to(device=device, dtype=dtype)
        else:
            values = ds["obs"].values
            mean = torch.as_tensor(np.nan_to_num(np.nanmean(values, 0)))
            std = torch.as_tensor(np.nan_to_num(np.nanstd(values, 0), nan=1.0).clip(1e-6))
        noise = np.broadcast_to(np.asarray(ds.attrs.get("obs_noise_std", np.nan), dtype=float),
                                (D,))
        return cls(
            system=system,
            dt=dt,
            steps_per_obs=int(ds.attrs.get("steps_per_obs", 0)),
            obs=obs.to(device),
            mask=mask.to(device),
            obs_noise_std=torch.as_tensor(noise.copy(), dtype=dtype, device=device),
            process_noise_std=float(ds.attrs["process_noise_std"]),
            prior_mean=mean.to(device=device, dtype=dtype),
            prior_std=std.to(device=device, dtype=dtype),
            times=ds["time"].values if "time" in ds.coords else np.arange(obs.shape[0]),
            component_names=names or (tuple(system.component_names) if system is not None
                                      else tuple(f"x{i}" for i in range(D))),
            obs_noise_dist=str(ds.attrs.get("obs_noise_dist", "gaussian")),
            obs_noise_df=float(ds.attrs.get("obs_noise_df", 0.0)),
            attrs=dict(ds.attrs),
            time_coord=ds["time"] if "time" in ds.coords else None,
        )


def climatology(system: ODESystem, dt: float, *, members: int = 32, spinup: int = 2000,
                steps: int = 4000, every: int = 10) -> tuple[Tensor, Tensor]:
    """Climatological mean and standard deviation ``(D,)`` of a system, by long integration.

    Used as the prior at time 0 (an initial ensemble drawn from climatology). Cached per
    system class, parameters and step.
    """
    key = (type(system), tuple(sorted(system.parameters_dict().items())), float(dt),
           members, spinup, steps, every)
    return _climatology_cached(key, system, dt, members, spinup, steps, every)


_CLIMATOLOGY_CACHE: dict = {}


def _climatology_cached(key, system, dt, members, spinup, steps, every):
    if key in _CLIMATOLOGY_CACHE:
        return _CLIMATOLOGY_CACHE[key]
    flat = climatological_states(system, dt, members=members, spinup=spinup, steps=steps,
                                 every=every)
    out = (flat.mean(0), flat.std(0))
    _CLIMATOLOGY_CACHE[key] = out
    return out


def climatological_states(system: ODESystem, dt: float, *, members: int = 32,
                          spinup: int = 2000, steps: int = 4000, every: int = 10) -> Tensor:
    """States ``(members * ceil(steps / every), D)`` (float64, CPU) of a long free run.

    ``members`` runs start at the system's initial state plus unit noise (seed 12345); the
    first ``spinup`` steps are discarded and every ``every``-th of the next ``steps`` kept.
    The sample behind :func:`climatology` and the 3D-Var climatological covariance.
    InputError if the run diverges.
    """
    gen = torch.Generator().manual_seed(12345)
    with torch.no_grad():
        sys64 = copy.deepcopy(system).to(device="cpu", dtype=torch.float64)
        x0 = sys64.initial_state().to(torch.float64).cpu()
        x = x0 + torch.randn(members, x0.shape[-1], generator=gen, dtype=torch.float64)
        x = sys64.integrate(x, spinup, dt)
        path = sys64.integrate(x, steps, dt, return_path=True)[::every]
    flat = path.reshape(-1, path.shape[-1])
    if not torch.isfinite(flat).all():
        raise InputError(f"climatology of {system.name!r} diverged with dt={dt}")
    return flat
