"""Dynamics: fixed points, RK4 order, agreement with scipy, batch equals loop."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.integrate import solve_ivp

from pyro_videossm.dynamics import (
    DynamicalSystem,
    Lorenz63,
    Lorenz96,
    ODESystem,
    euler_step,
    integrate,
    make_system,
)
from pyro_videossm.errors import InputError


def test_lorenz63_fixed_points_have_zero_drift():
    sys = Lorenz63().double()
    fp = sys.fixed_points().double()
    assert torch.allclose(sys.drift(fp), torch.zeros_like(fp), atol=1e-12)
    # and a point off the equilibria does move
    assert sys.drift(fp + 0.1).abs().max() > 0.1


def test_lorenz96_fixed_point_is_forcing():
    sys = Lorenz96(n=12, forcing=5.0)
    x = torch.full((3, 12), 5.0, dtype=torch.float64)
    assert torch.allclose(sys.drift(x), torch.zeros_like(x))


def test_lorenz96_drift_matches_indexwise_formula():
    sys = Lorenz96(n=7, forcing=8.0)
    x = torch.randn(7, dtype=torch.float64)
    n = 7
    expected = torch.stack([
        (x[(i + 1) % n] - x[(i - 2) % n]) * x[(i - 1) % n] - x[i] + 8.0 for i in range(n)
    ])
    assert torch.allclose(sys.drift(x), expected)


@pytest.mark.parametrize("system", [Lorenz63(), Lorenz96(n=10)])
def test_rk4_is_fourth_order(system):
    x0 = system.initial_state().double() + 0.5
    horizon = 0.2
    ref = integrate(system.drift, x0, horizon / 1024, 1024)
    errors = []
    for n in (8, 16, 32):
        x = integrate(system.drift, x0, horizon / n, n)
        errors.append((x - ref).norm().item())
    orders = [math.log2(errors[i] / errors[i + 1]) for i in range(2)]
    assert all(3.7 < p < 4.3 for p in orders), orders
    # Euler, for contrast, is first order: the test can tell them apart.
    e = [(integrate(system.drift, x0, horizon / n, n, step=euler_step) - ref).norm().item()
         for n in (64, 128)]
    assert 0.8 < math.log2(e[0] / e[1]) < 1.2


@pytest.mark.parametrize("system", [Lorenz63(), Lorenz96(n=40)])
def test_rk4_agrees_with_scipy_solve_ivp(system):
    x0 = system.initial_state().double() + 0.3
    dt, n = 0.001, 1000  # RK4's global error ~ dt^4 is then far below the tolerance
    x = integrate(system.drift, x0, dt, n).numpy()

    def f(t, y):
        return system.drift(torch.from_numpy(y)).numpy()

    sol = solve_ivp(f, (0, dt * n), x0.numpy(), method="DOP853", rtol=1e-11, atol=1e-11)
    np.testing.assert_allclose(x, sol.y[:, -1], rtol=1e-7, atol=1e-7)


def test_batch_equals_loop_any_leading_shape():
    sys = Lorenz96(n=9)
    x = torch.randn(2, 3, 9, dtype=torch.float64) + 8
    batched = sys.integrate(x, 20, 0.05)
    looped = torch.stack([
        torch.stack([sys.integrate(x[i, j], 20, 0.05) for j in range(3)]) for i in range(2)
    ])
    assert batched.shape == (2, 3, 9)
    assert torch.equal(batched, looped)


def test_return_path_and_process_noise():
    sys = Lorenz63()
    x0 = sys.initial_state().double()
    path = sys.integrate(x0, 5, 0.01, return_path=True)
    assert path.shape == (5, 3)
    assert torch.equal(path[-1], sys.integrate(x0, 5, 0.01))
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    a = sys.integrate(x0, 5, 0.01, noise_std=1.0, generator=g1)
    b = sys.integrate(x0, 5, 0.01, noise_std=1.0, generator=g2)
    assert torch.equal(a, b) and not torch.equal(a, path[-1])


def test_protocol_and_user_system():
    class Decay(ODESystem):
        name = "decay"
        component_names = ("a", "b")

        def drift(self, x):
            return -x

    sys = Decay()
    assert isinstance(sys, DynamicalSystem)
    x = sys.integrate(torch.ones(2, dtype=torch.float64), 100, 0.01)
    assert torch.allclose(x, torch.full((2,), math.exp(-1.0), dtype=torch.float64), atol=1e-9)


def test_make_system_unknown_name():
    with pytest.raises(InputError, match="unknown system 'lorenz99'"):
        make_system("lorenz99")
    assert make_system("lorenz96", n=8).state_dim == 8
