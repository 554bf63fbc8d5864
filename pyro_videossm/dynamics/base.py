"""The small protocol a dynamical system implements to plug into the toolkit.

A system is an autonomous ODE ``dx/dt = drift(x)`` on a state of ``state_dim`` named
components. To bring your own, subclass :class:`ODESystem` (or any object with the same
attributes) and implement :meth:`drift`; simulation, every assimilation method and the
hybrid-physics DMM then work with it unchanged::

    class Rossler(ODESystem):
        name = "rossler"
        component_names = ("x", "y", "z")
        default_dt = 0.05

        def __init__(self, a=0.2, b=0.2, c=5.7):
            super().__init__()
            self.a, self.b, self.c = float(a), float(b), float(c)

        def drift(self, x):
            x_, y, z = x.unbind(-1)
            return torch.stack([-y - z, x_ + self.a * y, self.b + z * (x_ - self.c)], -1)

        def parameters_dict(self):
            return {"a": self.a, "b": self.b, "c": self.c}

        def initial_state(self):
            return torch.tensor([1.0, 1.0, 1.0])
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch
from torch import Tensor, nn

from pyro_videossm.dynamics.integrators import integrate, rk4_step


@runtime_checkable
class DynamicalSystem(Protocol):
    """What the toolkit needs from a system: a name, named components and a batched drift."""

    name: str
    component_names: tuple[str, ...]

    @property
    def state_dim(self) -> int: ...

    def drift(self, x: Tensor) -> Tensor:
        """Time derivative, shape ``(..., state_dim) -> (..., state_dim)``."""
        ...

    def parameters_dict(self) -> dict[str, float]:
        """The system's parameters (written to dataset attributes)."""
        ...

    def initial_state(self) -> Tensor:
        """A state ``(state_dim,)`` from which a spin-up reaches typical behaviour."""
        ...


class ODESystem(nn.Module):
    """Base class for systems: subclasses set ``name``, ``component_names``, implement ``drift``.

    As an ``nn.Module`` a system moves between devices with ``.to()`` and can hold learnable
    parameters (the hybrid DMM uses that for physics with unknown coefficients).
    """

    name: str = "system"
    component_names: tuple[str, ...] = ()
    default_dt: float = 0.01
    units: str = "1"

    @property
    def state_dim(self) -> int:
        return len(self.component_names)

    def drift(self, x: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tensor:
        return self.drift(x)

    def parameters_dict(self) -> dict[str, float]:
        return {}

    def initial_state(self) -> Tensor:
        return torch.zeros(self.state_dim)

    def step(self, x: Tensor, dt: float | None = None) -> Tensor:
        """One RK4 step, shape ``(..., D) -> (..., D)``."""
        return rk4_step(self.drift, x, self.default_dt if dt is None else dt)

    def integrate(self, x: Tensor, n_steps: int, dt: float | None = None, **kwargs) -> Tensor:
        """``n_steps`` RK4 steps; see :func:`pyro_videossm.dynamics.integrators.integrate`."""
        return integrate(self.drift, x, self.default_dt if dt is None else dt, n_steps, **kwargs)

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v:g}" for k, v in self.parameters_dict().items())
