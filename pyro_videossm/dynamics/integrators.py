"""Batched explicit integrators for autonomous ODEs ``dx/dt = f(x)``.

Every function accepts states of shape ``(..., state_dim)``: any leading batch shape
(ensemble members, particles, mini-batches) is moved by the same call.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

Drift = Callable[[Tensor], Tensor]


def rk4_step(drift: Drift, x: Tensor, dt: float) -> Tensor:
    """One classical fourth-order Runge-Kutta step of size ``dt``: ``(..., D) -> (..., D)``."""
    k1 = drift(x)
    k2 = drift(x + 0.5 * dt * k1)
    k3 = drift(x + 0.5 * dt * k2)
    k4 = drift(x + dt * k3)
    return x + (dt / 6.0) * (k1 + 2.0 * k2 + 2.0 * k3 + k4)


def euler_step(drift: Drift, x: Tensor, dt: float) -> Tensor:
    """One forward Euler step (first order; for convergence tests and cheap drafts)."""
    return x + dt * drift(x)


def integrate(
    drift: Drift,
    x0: Tensor,
    dt: float,
    n_steps: int,
    *,
    step: Callable[[Drift, Tensor, float], Tensor] = rk4_step,
    noise_std: float = 0.0,
    generator: torch.Generator | None = None,
    return_path: bool = False,
) -> Tensor:
    """Integrate ``n_steps`` steps of size ``dt`` from ``x0`` (shape ``(..., D)``).

    ``noise_std`` > 0 adds process noise after each step as an Euler-Maruyama diffusion
    term: ``x += noise_std * sqrt(dt) * eps`` with ``eps ~ N(0, I)``.

    Returns the final state ``(..., D)``, or with ``return_path`` the states after every
    step, ``(n_steps, ..., D)``.
    """
    if n_steps < 0:
        raise ValueError(f"n_steps must be >= 0, got {n_steps}")
    x = x0
    path = []
    for _ in range(n_steps):
        x = step(drift, x, dt)
        if noise_std > 0:
            eps = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
            x = x + noise_std * dt**0.5 * eps
        if return_path:
            path.append(x)
    if return_path:
        if not path:
            return x0.new_empty((0,) + tuple(x0.shape))
        return torch.stack(path)
    return x
