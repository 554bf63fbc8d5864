"""Dynamical systems (one module each), a batched RK4 integrator and the plug-in protocol.

Systems are looked up by name in :data:`SYSTEMS` (a :class:`~pyro_videossm.registry.Registry`):
the built-in ones, those registered with :func:`register_system`, those other packages declare
in the entry-point group ``pyro_videossm.systems``, and any ``"module:Class"`` import path.
"""

from __future__ import annotations

import inspect

from torch import nn

from pyro_videossm.dynamics.base import DynamicalSystem, ODESystem
from pyro_videossm.dynamics.integrators import euler_step, integrate, rk4_step
from pyro_videossm.dynamics.lorenz63 import Lorenz63
from pyro_videossm.dynamics.lorenz96 import Lorenz96
from pyro_videossm.errors import InputError
from pyro_videossm.registry import Registry

#: name -> system class (or factory returning a system).
SYSTEMS: Registry[type[ODESystem]] = Registry("system")
SYSTEMS.register(Lorenz63)
SYSTEMS.register(Lorenz96)


def register_system(cls: type[ODESystem]) -> type[ODESystem]:
    """Register a user system class under ``cls.name`` so datasets can name it in attrs."""
    return SYSTEMS.register(cls)


def make_system(name: str, **parameters) -> ODESystem:
    """Build a system by registered name or ``"module:Class"`` with its parameters.

    ``make_system("lorenz96", n=40, forcing=8)``; ``make_system("my_pkg.rossler:Rossler", c=9)``.
    An unknown name or parameter, or an object that is not a system, is an :class:`InputError`.
    """
    obj = SYSTEMS.get(name)
    if isinstance(obj, nn.Module) or not callable(obj):  # an instance given by import path
        if parameters:
            raise InputError(f"system {name!r} is an instance and takes no parameters")
        system = obj
    else:
        _check_parameters(name, obj, parameters)
        system = obj(**parameters)
    if not isinstance(system, DynamicalSystem):
        raise InputError(f"{name!r} is not a dynamical system (it needs name, component_names, "
                         "state_dim, drift, parameters_dict and initial_state)")
    return system


def _check_parameters(name: str, factory, parameters: dict) -> None:
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):  # no signature to check against
        return
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return
    accepted = [k for k, p in params.items()
                if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    unknown = sorted(set(parameters) - set(accepted))
    if unknown:
        raise InputError(f"system {name!r} takes no parameter {unknown[0]!r} "
                         f"(parameters: {', '.join(accepted) or 'none'})")


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
