"""One interface for every assimilation method, classical or learned, and a registry by name.

Every method is called the same way::

    posterior = get_method("etkf", members=10, inflation=1.02)(obs_dataset)

observations Dataset in (see :func:`pyro_videossm.data.simulate`), posterior Dataset out
(``mean``, ``std``, ``quantiles``; see :func:`posterior_dataset`). Swapping methods is
swapping the name. A method implements :meth:`AssimilationMethod.run` on tensors.
"""

from __future__ import annotations

import inspect
import time
import warnings
from abc import ABC, abstractmethod
from typing import ClassVar

import torch
import xarray as xr

from pyro_videossm.assimilate.consistency import (
    OUTLIER_CLIMATOLOGICAL_STDS,
    consistency_warnings,
    nis_summary,
    outlying_observation,
)
from pyro_videossm.assimilate.estimate import DEFAULT_QUANTILES, Estimate, posterior_dataset
from pyro_videossm.assimilate.problem import AssimilationProblem
from pyro_videossm.dynamics import ODESystem
from pyro_videossm.errors import DataWarning, InputError
from pyro_videossm.registry import Registry

#: Modules whose import registers the built-in methods (loaded on first lookup).
BUILTIN_METHOD_MODULES: tuple[str, ...] = (
    "pyro_videossm.filters.kalman",
    "pyro_videossm.filters.enkf",
    "pyro_videossm.filters.enks",
    "pyro_videossm.filters.particle",
    "pyro_videossm.filters.enkf_n",
    "pyro_videossm.filters.ienks",
    "pyro_videossm.filters.var3d",
    "pyro_videossm.filters.var4d",
    "pyro_videossm.models.ssm.dmm_assimilation",
)

#: name -> method class: :func:`register_method`, the modules above, the entry-point group
#: ``pyro_videossm.methods`` and ``"module:Class"`` paths.
METHODS: Registry[type[AssimilationMethod]] = Registry(
    "method", builtins=BUILTIN_METHOD_MODULES)


class AssimilationMethod(ABC):
    """Base class: subclasses set ``name`` and ``kind`` and implement :meth:`run`.

    Constructor keyword arguments are the method's options (e.g. ``members``, ``inflation``);
    they are recorded in the posterior's ``method_options`` attribute.
    """

    name: ClassVar[str] = ""
    #: ``"filter"`` (analysis at each cycle from past and present data) or ``"smoother"``.
    kind: ClassVar[str] = "filter"
    #: Default dtype for the tensors the method works in.
    default_dtype: ClassVar[torch.dtype] = torch.float64
    #: Whether the method needs dynamics, observation noise and cycle from the data (classical
    #: filters); False for methods that bring their own trained model (the DMM).
    needs_settings: ClassVar[bool] = True

    def options(self) -> dict:
        """The options this instance was built with (for attributes and reproducibility)."""
        sig = inspect.signature(type(self).__init__)
        return {
            k: getattr(self, k) for k in sig.parameters
            if k != "self" and hasattr(self, k) and _is_plain(getattr(self, k))
        }

    def accepts_outliers(self, problem: AssimilationProblem) -> bool:
        """Whether the method's likelihood tolerates gross outliers (heavy-tailed). If not,
        an observation far outside the system's climatology is refused before the run."""
        return problem.obs_noise_dist != "gaussian"

    @abstractmethod
    def run(self, problem: AssimilationProblem, *, generator: torch.Generator,
            progress: bool = False) -> Estimate:
        """Assimilate all cycles of ``problem`` and return the state estimate."""

    def __call__(
        self,
        obs: xr.Dataset,
        *,
        system: ODESystem | str | None = None,
        system_parameters: dict | None = None,
        obs_noise: float | list[float] | None = None,
        time_unit=None,
        quantiles: tuple[float, ...] = DEFAULT_QUANTILES,
        n_samples: int = 0,
        seed: int = 0,
        device: str | torch.device = "cpu",
        dtype: torch.dtype | None = None,
        progress: bool = False,
    ) -> xr.Dataset:
        """Observations Dataset in, posterior Dataset out.

        Args:
            obs: any dataset with ``obs(time, component)`` (NaN where not observed). What
                the arguments below do not give comes from its variables and attributes;
                everything missing is reported in one line (see
                :func:`~pyro_videossm.data.observation_settings.complete_observations`).
            system: forecast dynamics (a registered name, ``"module:Class"`` or an
                :class:`ODESystem`) overriding those named in ``obs.attrs`` (e.g. a
                misspecified or user-defined model).
            system_parameters: parameters of a ``system`` given by name.
            obs_noise: observation noise std (one, or one per component), overriding an
                ``obs_noise_std`` variable or attribute.
            time_unit: duration of one model time unit (``"5D"``), for a datetime ``time``.
            quantiles: quantile levels to write.
            n_samples: posterior members to write as ``samples`` (ensemble methods).
            seed: seeds the method's randomness (ensemble draws, noise, resampling).
            device: where the computation runs (``"cpu"``, ``"cuda"``, ...).
            dtype: tensor dtype (default: the method's ``default_dtype``).
            progress: show a progress bar over cycles.
        """
        problem = AssimilationProblem.from_dataset(
            obs, system=system, system_parameters=system_parameters, obs_noise=obs_noise,
            time_unit=time_unit, require=self.needs_settings, device=device,
            dtype=dtype or self.default_dtype,
        )
        if not self.accepts_outliers(problem):
            check_outliers(problem, self.name)
        generator = torch.Generator(device=problem.device).manual_seed(int(seed))
        start = time.perf_counter()
        try:
            estimate = self.run(problem, generator=generator, progress=progress)
        except torch.linalg.LinAlgError as err:
            raise InputError(f"{self.name}: numerical failure ({str(err).splitlines()[0]}); "
                             "the filter diverged on these data") from None
        if problem.device.type == "cuda":
            torch.cuda.synchronize(problem.device)
        seconds = time.perf_counter() - start
        finite = torch.isfinite(estimate.mean).all(-1)
        if not bool(finite.all()):
            cycle = int(torch.nonzero(~finite)[0])
            raise InputError(f"{self.name}: the posterior diverged at cycle {cycle} "
                             f"(time {problem.times[cycle]}): not finite")
        attrs = {"seed": int(seed), "wall_seconds": seconds,
                 "seconds_per_cycle": seconds / problem.n_cycles}
        attrs.update(consistency_attrs(estimate, self.name, problem.n_cycles,
                                       getattr(self, "members", None)))
        return posterior_dataset(
            estimate, problem, method=self.name, kind=self.kind, options=self.options(),
            quantiles=quantiles, n_samples=n_samples, extra_attrs=attrs,
        )


def check_outliers(problem: AssimilationProblem, method: str) -> None:
    """One-line InputError naming the first observation that lies far outside the system's
    climatology (:data:`~pyro_videossm.assimilate.consistency.OUTLIER_CLIMATOLOGICAL_STDS`
    standard deviations): a Gaussian likelihood would chase it and diverge."""
    hit = outlying_observation(problem.obs, problem.mask, problem.prior_mean, problem.prior_std)
    if hit is not None:
        t, d = hit
        value = float(problem.obs[t, d])
        raise InputError(
            f"{method}: observation {value:.6g} of {problem.component_names[d]!r} at cycle {t} "
            f"(time {problem.times[t]}) is more than {OUTLIER_CLIMATOLOGICAL_STDS:g} "
            "climatological standard deviations away; remove it or use a heavy-tailed "
            "likelihood (--set obs_likelihood=huber)")


def consistency_attrs(estimate: Estimate, method: str, n_cycles: int,
                      members: int | None = None) -> dict:
    """Posterior attributes ``nis_mean``, ``nis_expected``, ``nis_median_ratio``,
    ``ess_median`` and ``consistency_warnings`` (after the first tenth of the cycles); each
    warning is also issued as a :class:`DataWarning`."""
    attrs: dict = {}
    if estimate.nis is not None and estimate.nis_dof is not None:
        attrs.update(nis_summary(estimate.nis, estimate.nis_dof, n_cycles // 10))
    if estimate.ess is not None:
        attrs["ess_median"] = float(estimate.ess.median())
    found = consistency_warnings(method, attrs, estimate.ess, members)
    for w in found:
        warnings.warn(w, DataWarning, stacklevel=3)
    attrs["consistency_warnings"] = " | ".join(found)
    return attrs


def _is_plain(value) -> bool:
    return isinstance(value, (bool, int, float, str, type(None), list, tuple))


def register_method(cls: type[AssimilationMethod]) -> type[AssimilationMethod]:
    """Class decorator: make a method available by its ``name``."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} must set a non-empty 'name'")
    return METHODS.register(cls, name=cls.name)


def available_methods() -> list[str]:
    """Names of all known methods (built in, registered and from entry points)."""
    return METHODS.names()


def method_class(name: str) -> type[AssimilationMethod]:
    """The method class registered as ``name`` (or imported from ``"module:Class"``)."""
    return METHODS.subclass(name, AssimilationMethod)


def get_method(name: str, **options) -> AssimilationMethod:
    """Build a method by name with its options; an unknown name or option is an InputError."""
    return METHODS.build(name, AssimilationMethod, options)


def assimilate(obs: xr.Dataset, method: str = "etkf", *, system: ODESystem | str | None = None,
               system_parameters: dict | None = None,
               obs_noise: float | list[float] | None = None, time_unit=None,
               seed: int = 0, device: str | torch.device = "cpu", progress: bool = False,
               quantiles: tuple[float, ...] = DEFAULT_QUANTILES, n_samples: int = 0,
               **options) -> xr.Dataset:
    """``assimilate(obs, "enks", members=10)``: run a method by name; see :func:`get_method`
    and :meth:`AssimilationMethod.__call__` (``system``, ``obs_noise``, ``time_unit`` for a
    dataset that lacks them)."""
    return get_method(method, **options)(
        obs, system=system, system_parameters=system_parameters, obs_noise=obs_noise,
        time_unit=time_unit, seed=seed, device=device, progress=progress,
        quantiles=quantiles, n_samples=n_samples,
    )
