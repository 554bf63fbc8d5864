"""Dynamical systems (one module each), a batched RK4 integrator and the plug-in protocol."""

from __future__ import annotations

from pyro_videossm.dynamics.base import DynamicalSystem, ODESystem
from pyro_videossm.dynamics.integrators import euler_step, integrate, rk4_step
from pyro_videossm.dynamics.lorenz63 import Lorenz63
from pyro_videossm.dynamics.lorenz96 import Lorenz96
from pyro_videossm.errors import InputError

SYSTEMS: dict[str, type[ODESystem]] = {"lorenz63": Lorenz63, "lorenz96": Lorenz96}


def register_system(cls: type[ODESystem]) -> type[ODESystem]:
    """Register a user system class under ``cls.name`` so datasets can name it in attrs."""
    SYSTEMS[cls.name] = cls
    return cls


def make_system(name: str, **parameters) -> ODESystem:
    """Build a registered system by name, e.g. ``make_system("lorenz96", n=40, forcing=8)``."""
    try:
        cls = SYSTEMS[name]
    except KeyError:
        raise InputError(
            f"unknown system {name!r}; known systems: {', '.join(sorted(SYSTEMS))}"
        ) from None
    return cls(**parameters)


__all__ = [
    "DynamicalSystem",
    "ODESystem",
    "Lorenz63",
    "Lorenz96",
    "SYSTEMS",
    "euler_step",
    "integrate",
    "make_system",
    "register_system",
    "rk4_step",
]
