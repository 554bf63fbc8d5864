"""Lorenz-63: the three-variable convection model of Lorenz (1963)."""

from __future__ import annotations

import torch
from torch import Tensor

from pyro_videossm.dynamics.base import ODESystem


class Lorenz63(ODESystem):
    """``dx = sigma (y - x)``, ``dy = x (rho - z) - y``, ``dz = x y - beta z``.

    States have shape ``(..., 3)``. The classic chaotic setting is sigma=10, rho=28, beta=8/3.
    """

    name = "lorenz63"
    component_names = ("x", "y", "z")
    default_dt = 0.01

    def __init__(self, sigma: float = 10.0, rho: float = 28.0, beta: float = 8.0 / 3.0):
        super().__init__()
        self.sigma = float(sigma)
        self.rho = float(rho)
        self.beta = float(beta)

    def drift(self, x: Tensor) -> Tensor:
        x_, y, z = x.unbind(-1)
        return torch.stack(
            [self.sigma * (y - x_), x_ * (self.rho - z) - y, x_ * y - self.beta * z], dim=-1
        )

    def parameters_dict(self) -> dict[str, float]:
        return {"sigma": self.sigma, "rho": self.rho, "beta": self.beta}

    def initial_state(self) -> Tensor:
        # A point on the attractor (as used in Sakov et al. 2012 and DAPPER's sakov2012).
        return torch.tensor([1.509, -1.531, 25.46])

    def fixed_points(self) -> Tensor:
        """The three equilibria, shape ``(3, 3)``: the origin and ``C±``."""
        c = (self.beta * (self.rho - 1.0)) ** 0.5
        return torch.tensor(
            [[0.0, 0.0, 0.0], [c, c, self.rho - 1.0], [-c, -c, self.rho - 1.0]],
            dtype=torch.float64,
        )
