"""The TorchScript fast path of Lorenz-63's RK4 integration is the plain RK4 loop, bit for bit,
and is used only where it applies."""

import pytest
import torch

from pyro_videossm.dynamics import lorenz63 as l63mod
from pyro_videossm.dynamics.integrators import euler_step, integrate, rk4_step
from pyro_videossm.dynamics.lorenz63 import Lorenz63


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_fast_path_is_bit_identical_to_the_python_loop(dtype):
    system = Lorenz63(rho=24.0)
    g = torch.Generator().manual_seed(3)
    x = (torch.randn(10, 3, generator=g) * 5 + torch.tensor([0.0, 0.0, 25.0])).to(dtype)
    fast = system.integrate(x, 25, 0.01)
    slow = integrate(system.drift, x, 0.01, 25, step=rk4_step)
    assert torch.equal(fast, slow)
    # batch shapes and zero steps
    xb = x.reshape(2, 5, 3)
    assert torch.equal(system.integrate(xb, 7), integrate(system.drift, xb, 0.01, 7))
    assert torch.equal(system.integrate(x, 0), x)


def test_fast_path_is_taken_only_for_plain_deterministic_rk4(monkeypatch):
    calls = []
    real = l63mod._scripted_rk4

    def spy():
        calls.append(1)
        return real()

    monkeypatch.setattr(l63mod, "_scripted_rk4", spy)
    system = Lorenz63()
    x = torch.randn(4, 3, dtype=torch.float64) + torch.tensor([0.0, 0.0, 25.0])
    system.integrate(x, 3, 0.01)
    assert len(calls) == 1
    g = torch.Generator().manual_seed(0)
    system.integrate(x, 3, 0.01, noise_std=0.5, generator=g)      # noise: Python loop
    system.integrate(x, 3, 0.01, return_path=True)                 # path: Python loop
    system.integrate(x, 3, 0.01, step=euler_step)                  # other step
    xg = x.clone().requires_grad_(True)
    out = system.integrate(xg, 3, 0.01)                            # gradient recorded
    assert len(calls) == 1
    # the gradient path still differentiates
    out.sum().backward()
    assert xg.grad is not None and torch.isfinite(xg.grad).all()
    with torch.no_grad():
        system.integrate(xg, 3, 0.01)                              # no gradient: fast
    assert len(calls) == 2
    with pytest.raises(ValueError):
        system.integrate(x, -1, 0.01)


def test_a_subclass_with_its_own_drift_is_not_short_cut():
    class Forced(Lorenz63):
        def drift(self, x):
            return super().drift(x) + 1.0

    system = Forced()
    x = torch.tensor([[1.0, 2.0, 20.0]], dtype=torch.float64)
    assert torch.equal(system.integrate(x, 5, 0.01),
                       integrate(system.drift, x, 0.01, 5, step=rk4_step))
    assert not torch.equal(system.integrate(x, 5, 0.01), Lorenz63().integrate(x, 5, 0.01))
