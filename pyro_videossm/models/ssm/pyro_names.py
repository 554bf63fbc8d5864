"""Names under which model instances enter Pyro's param store.

``pyro.module(name, module)`` keeps the tensors already stored under a name: a second model
registered under the name of a first one would be trained through the first one's tensors
and never change itself. :func:`unique_pyro_name` gives each instance its own name, and
:func:`register_module` lets a module's own tensors win over stale entries.
"""

from __future__ import annotations

import itertools

import pyro
from pyro.params.param_store import param_with_module_name
from torch import nn

_counters: dict[str, itertools.count] = {}


def unique_pyro_name(prefix: str) -> str:
    """``prefix`` the first time it is asked for in this process, then ``prefix_2``,
    ``prefix_3``, ...: a name under which a module's parameters enter Pyro's param store
    without meeting another instance's. A process that builds one model gets the same name
    every run, so optimiser states saved by parameter name (checkpoints) resume."""
    n = next(_counters.setdefault(prefix, itertools.count(1)))
    return prefix if n == 1 else f"{prefix}_{n}"


def register_module(name: str, module: nn.Module) -> nn.Module:
    """``pyro.module(name, module)`` where the module's own parameters win: entries of the
    param store under the same names that hold other tensors (left by another instance that
    used the name) are replaced, so the parameters the ELBO sees are the module's."""
    store = pyro.get_param_store()
    for param_name, param in module.named_parameters():
        full = param_with_module_name(name, param_name)
        held = store._params.get(full)
        if held is not None and held is not param:
            del store[full]
    return pyro.module(name, module)


__all__ = ["register_module", "unique_pyro_name"]
