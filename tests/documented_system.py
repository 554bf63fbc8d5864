"""The plug-in example of :mod:`pyro_videossm.dynamics.base`'s docstring (a Rössler system),
as source and as a class, so that the documented example is the one the tests run."""

from __future__ import annotations

import textwrap

from pyro_videossm.dynamics import base as dynamics_base

#: A module defining ``Rossler``: the docstring's example (after its ``::``) and its imports.
ROSSLER_SOURCE = "import torch\n\nfrom pyro_videossm.dynamics import ODESystem\n\n\n" + (
    textwrap.dedent(dynamics_base.__doc__.split("::\n", 1)[1]).lstrip("\n"))


def documented_rossler(module: str) -> type[dynamics_base.ODESystem]:
    """The example's ``Rossler`` class, defined as if in ``module`` (so that the import path
    ``module:Rossler`` finds it once the caller binds it there)."""
    namespace = {"__name__": module}
    exec(compile(ROSSLER_SOURCE, "<dynamics.base docstring example>", "exec"), namespace)
    return namespace["Rossler"]
