"""Lorenz-96: a ring of ``n`` variables with advection, damping and forcing (Lorenz 1996)."""

from __future__ import annotations

import torch
from torch import Tensor

from pyro_videossm.dynamics.base import ODESystem
from pyro_videossm.errors import InputError


class Lorenz96(ODESystem):
    """``dx_i = (x_{i+1} - x_{i-2}) x_{i-1} - x_i + F`` with cyclic indices.

    States have shape ``(..., n)``. With ``n = 40`` and ``F = 8`` the system is chaotic.
    """

    name = "lorenz96"
    default_dt = 0.05

    def __init__(self, n: int = 40, forcing: float = 8.0):
        super().__init__()
        if n < 4:
            raise InputError(f"Lorenz-96 needs n >= 4 variables, got {n}")
        self.n = int(n)
        self.forcing = float(forcing)
        self.component_names = tuple(f"x{i}" for i in range(self.n))

    def drift(self, x: Tensor) -> Tensor:
        x_plus1 = torch.roll(x, -1, dims=-1)
        x_minus1 = torch.roll(x, 1, dims=-1)
        x_minus2 = torch.roll(x, 2, dims=-1)
        return (x_plus1 - x_minus2) * x_minus1 - x + self.forcing

    def parameters_dict(self) -> dict[str, float]:
        return {"n": self.n, "forcing": self.forcing}

    def initial_state(self) -> Tensor:
        x = torch.full((self.n,), self.forcing)
        x[0] += 0.01  # the equilibrium x_i = F is unstable; a small kick starts the chaos
        return x
