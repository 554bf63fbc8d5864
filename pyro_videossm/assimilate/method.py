"""One interface for every assimilation method, classical or learned, and a registry by name.

Every method is called the same way::

    posterior = get_method("etkf", members=10, inflation=1.02)(obs_dataset)

observations Dataset in (see :func:`pyro_videossm.data.simulate`), posterior Dataset out
(``mean``, ``std``, ``quantiles``; see :func:`posterior_dataset`). Swapping methods is
swapping the name. A method implements :meth:`AssimilationMethod.run` on tensors.
"""

from __future__ import annotations

import importlib
import inspect
import time
from abc import ABC, abstractmethod
from typing import ClassVar

import torch
import xarray as xr

from pyro_videossm.assimilate.estimate import DEFAULT_QUANTILES, Estimate, posterior_dataset
from pyro_videossm.assimilate.problem import AssimilationProblem
from pyro_videossm.dynamics import ODESystem
from pyro_videossm.errors import InputError

#: name -> method class. Filled by :func:`register_method` when the modules below load.
METHODS: dict[str, type[AssimilationMethod]] = {}

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

    def options(self) -> dict:
        """The options this instance was built with (for attributes and reproducibility)."""
        sig = inspect.signature(type(self).__init__)
        return {
            k: getattr(self, k) for k in sig.parameters
            if k != "self" and hasattr(self, k) and _is_plain(getattr(self, k))
        }

    @abstractmethod
    def run(self, problem: AssimilationProblem, *, generator: torch.Generator,
            progress: bool = False) -> Estimate:
        """Assimilate all cycles of ``problem`` and return the state estimate."""

    def __call__(
        self,
        obs: xr.Dataset,
        *,
        system: ODESystem | None = None,
        quantiles: tuple[float, ...] = DEFAULT_QUANTILES,
        n_samples: int = 0,
        seed: int = 0,
        device: str | torch.device = "cpu",
        dtype: torch.dtype | None = None,
        progress: bool = False,
    ) -> xr.Dataset:
        """Observations Dataset in, posterior Dataset out.

        Args:
            obs: dataset with ``obs(time, component)`` and the simulation attributes.
            system: forecast dynamics overriding those named in ``obs.attrs`` (e.g. a
                misspecified or user-defined model).
            quantiles: quantile levels to write.
            n_samples: posterior members to write as ``samples`` (ensemble methods).
            seed: seeds the method's randomness (ensemble draws, noise, resampling).
            device: where the computation runs (``"cpu"``, ``"cuda"``, ...).
            dtype: tensor dtype (default: the method's ``default_dtype``).
            progress: show a progress bar over cycles.
        """
        problem = AssimilationProblem.from_dataset(
            obs, system=system, device=device, dtype=dtype or self.default_dtype
        )
        generator = torch.Generator(device=problem.device).manual_seed(int(seed))
        start = time.perf_counter()
        estimate = self.run(problem, generator=generator, progress=progress)
        if problem.device.type == "cuda":
            torch.cuda.synchronize(problem.device)
        seconds = time.perf_counter() - start
        if not torch.isfinite(estimate.mean).all():
            raise RuntimeError(f"{self.name}: the posterior mean is not finite (filter diverged)")
        return posterior_dataset(
            estimate, problem, method=self.name, kind=self.kind, options=self.options(),
            quantiles=quantiles, n_samples=n_samples,
            extra_attrs={"seed": int(seed), "wall_seconds": seconds,
                         "seconds_per_cycle": seconds / problem.n_cycles},
        )


def _is_plain(value) -> bool:
    return isinstance(value, (bool, int, float, str, type(None), list, tuple))


def register_method(cls: type[AssimilationMethod]) -> type[AssimilationMethod]:
    """Class decorator: make a method available by its ``name``."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} must set a non-empty 'name'")
    METHODS[cls.name] = cls
    return cls


def _load_builtins() -> None:
    for module in BUILTIN_METHOD_MODULES:
        importlib.import_module(module)


def available_methods() -> list[str]:
    """Names of all registered methods."""
    _load_builtins()
    return sorted(METHODS)


def get_method(name: str, **options) -> AssimilationMethod:
    """Build a method by name with its options; an unknown name or option is an InputError."""
    _load_builtins()
    try:
        cls = METHODS[name]
    except KeyError:
        raise InputError(
            f"unknown method {name!r}; available: {', '.join(sorted(METHODS)) or 'none'}"
        ) from None
    accepted = set(inspect.signature(cls.__init__).parameters) - {"self"}
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise InputError(
            f"method {name!r} takes no option {unknown[0]!r} "
            f"(options: {', '.join(sorted(accepted)) or 'none'})"
        )
    return cls(**options)


def assimilate(obs: xr.Dataset, method: str = "etkf", *, system: ODESystem | None = None,
               seed: int = 0, device: str | torch.device = "cpu", progress: bool = False,
               quantiles: tuple[float, ...] = DEFAULT_QUANTILES, n_samples: int = 0,
               **options) -> xr.Dataset:
    """``assimilate(obs, "enks", members=10)``: run a method by name; see :func:`get_method`."""
    return get_method(method, **options)(
        obs, system=system, seed=seed, device=device, progress=progress,
        quantiles=quantiles, n_samples=n_samples,
    )
