"""Two toy models with known optima, used to test and demonstrate the training loop.

They are deliberately tiny; they are not models of the toolkit.
"""

from __future__ import annotations

import math

import pyro
import pyro.distributions as dist
import torch
from pyro import poutine
from torch import nn

from pyro_videossm.dynamics.base import ODESystem


class ConjugateGaussian(nn.Module):
    """Per-item latent ``z ~ N(0, I)``, observation ``x | z ~ N(z, s^2 I)``; ``x (B, D)``.

    The exact posterior is ``z | x ~ N(x / (1 + s^2), s^2 / (1 + s^2) I)`` and the evidence
    ``x ~ N(0, (1 + s^2) I)``. The guide ``q(z | x) = N(w x + b, q_scale^2)`` (``w, b`` from an
    ``nn.Linear(1, 1)`` registered with ``pyro.module``; ``q_scale`` a positive
    ``pyro.param``) contains the exact posterior, where the ELBO equals ``log p(x)``.
    The model scales the latent site by ``annealing_factor`` (``poutine.scale``).

    With ``batch["eps"]`` (B, D) the guide's sample is ``w x + b + q_scale * eps``
    (:class:`GivenNoiseNormal`): the ELBO estimate of an item is then a function of the item
    alone, whatever batch or process it lands in.
    """

    def __init__(self, obs_std: float = 0.5, name: str = "conjugate") -> None:
        super().__init__()
        self.obs_std = obs_std
        self.name = name
        self.encoder = nn.Linear(1, 1)

    def model(self, batch: dict[str, torch.Tensor], annealing_factor: float = 1.0) -> None:
        x = batch["x"]
        with pyro.plate("items", x.shape[0]):
            with poutine.scale(scale=annealing_factor):
                z = pyro.sample("z", dist.Normal(torch.zeros_like(x), 1.0).to_event(1))
            pyro.sample("x", dist.Normal(z, self.obs_std).to_event(1), obs=x)

    def guide(self, batch: dict[str, torch.Tensor], annealing_factor: float = 1.0) -> None:
        pyro.module(self.name, self)
        x = batch["x"]
        q_scale = pyro.param(f"{self.name}_q_scale", lambda: torch.ones((), device=x.device),
                             constraint=dist.constraints.positive)
        with pyro.plate("items", x.shape[0]):
            with poutine.scale(scale=annealing_factor):
                loc = self.encoder(x.unsqueeze(-1)).squeeze(-1)
                if "eps" in batch:
                    q = GivenNoiseNormal(loc, q_scale.expand_as(loc), batch["eps"])
                else:
                    q = dist.Normal(loc, q_scale)
                pyro.sample("z", q.to_event(1))

    def exact_posterior(self) -> tuple[float, float]:
        """``(w, std)`` of the exact posterior ``N(w x, std^2)``."""
        v = self.obs_std**2
        return 1.0 / (1.0 + v), math.sqrt(v / (1.0 + v))

    def exact_nll(self, x: torch.Tensor) -> float:
        """``-log p(x)`` per item (the loss of a perfect guide)."""
        scale = math.sqrt(1.0 + self.obs_std**2)
        return float(-dist.Normal(0.0, scale).log_prob(x).sum(-1).mean())


class GivenNoiseNormal(dist.Normal):
    """``Normal(loc, scale)`` whose reparameterised sample is ``loc + scale * noise`` for a
    given standard-normal ``noise`` of the batch shape (common random numbers)."""

    def __init__(self, loc: torch.Tensor, scale: torch.Tensor, noise: torch.Tensor) -> None:
        super().__init__(loc, scale)
        self.noise = noise

    def expand(self, batch_shape, _instance=None) -> GivenNoiseNormal:
        shape = torch.Size(batch_shape)
        return GivenNoiseNormal(self.loc.expand(shape), self.scale.expand(shape),
                                self.noise.expand(shape))

    def rsample(self, sample_shape: tuple = ()) -> torch.Tensor:
        if sample_shape:
            raise ValueError("GivenNoiseNormal draws one sample")
        return self.loc + self.scale * self.noise


class LinearRegression(nn.Module):
    """``y = x @ weight.T + bias``; ``x (B, D) -> (B, 1)``. :func:`mse_loss` is its loss."""

    def __init__(self, in_dim: int = 1) -> None:
        super().__init__()
        self.linear = nn.Linear(in_dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x)


def mse_loss(module: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Mean squared error of ``module(batch["x"])`` against ``batch["y"]`` (B, 1)."""
    return ((module(batch["x"]) - batch["y"]) ** 2).mean()


class Rotation(ODESystem):
    """A linear system (harmonic oscillator): RK4 over an interval is a linear map."""

    name = "rotation"
    component_names = ("a", "b")
    default_dt = 0.1

    def drift(self, x):
        a, b = x.unbind(-1)
        return torch.stack([b, -a], -1)

    def parameters_dict(self):
        return {}

    def initial_state(self):
        return torch.tensor([1.0, 0.0])
