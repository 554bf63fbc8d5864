"""Kalman filter and RTS smoother against closed forms: GaussianHMM likelihood, dense Gaussian
conditioning of the joint over all states and observations (with missing data), and the
method-level kf/rts on a linear ODE system."""

from __future__ import annotations

import math

import pyro.distributions as dist
import pytest
import torch

from pyro_videossm.assimilate import AssimilationProblem, get_method
from pyro_videossm.data import simulate
from pyro_videossm.dynamics import ODESystem
from pyro_videossm.errors import InputError
from pyro_videossm.filters.kalman import (
    extended_kalman_filter,
    kalman_filter,
    linearised_forecast,
    rts_smoother,
)

DT = torch.float64


def _spd(n: int, gen: torch.Generator, scale: float = 1.0) -> torch.Tensor:
    a = torch.randn(n, n, generator=gen, dtype=DT)
    return scale * (a @ a.T / n + 0.3 * torch.eye(n, dtype=DT))


def _random_model(gen, D=3, P=2, T=6, time_varying=False):
    shape = (T, D, D) if time_varying else (D, D)
    F = 0.8 * torch.randn(shape, generator=gen, dtype=DT) / math.sqrt(D)
    Q = _spd(D, gen, 0.5)
    H = torch.randn(P, D, generator=gen, dtype=DT)
    R = _spd(P, gen, 0.4)
    m0 = torch.randn(D, generator=gen, dtype=DT)
    P0 = _spd(D, gen)
    return F, Q, H, R, m0, P0


def _joint(F, Q, H, R, m0, P0, T):
    """Mean and covariance of (x_1..x_T, y_1..y_T) as one dense Gaussian."""
    D, P = F.shape[-1], H.shape[0]
    Ft = [F[t] if F.dim() == 3 else F for t in range(T)]
    # z = (x_0, w_1..w_T, v_1..v_T) is independent Gaussian; X = Mx z, Y = H X + v.
    nz = D + T * D + T * P
    eye = torch.eye(D, dtype=DT)
    Mx = torch.zeros(T * D, nz, dtype=DT)
    prev = torch.zeros(D, nz, dtype=DT)
    prev[:, :D] = eye
    for t in range(T):
        cur = Ft[t] @ prev
        cur[:, D + t * D: D + (t + 1) * D] += eye
        Mx[t * D:(t + 1) * D] = cur
        prev = cur
    My = torch.block_diag(*[H] * T) @ Mx
    My[:, D + T * D:] += torch.eye(T * P, dtype=DT)
    M = torch.cat([Mx, My])
    mz = torch.cat([m0, torch.zeros(T * D + T * P, dtype=DT)])
    Cz = torch.block_diag(P0, *[Q] * T, *[R] * T)
    return M @ mz, M @ Cz @ M.T


def _condition(mean, cov, xi, yi, y):
    """Moments of the entries xi given the entries yi equal y."""
    Syy = cov[yi][:, yi]
    K = torch.linalg.solve(Syy, cov[yi][:, xi]).T
    return mean[xi] + K @ (y - mean[yi]), cov[xi][:, xi] - K @ cov[yi][:, xi]


def test_loglik_matches_pyro_gaussian_hmm():
    gen = torch.Generator().manual_seed(0)
    D, P, T, B = 3, 2, 7, 4
    F, Q, H, R, m0, P0 = _random_model(gen, D, P, T)
    hmm = dist.GaussianHMM(
        dist.MultivariateNormal(m0, P0), F.T, dist.MultivariateNormal(torch.zeros(D, dtype=DT), Q),
        H.T, dist.MultivariateNormal(torch.zeros(P, dtype=DT), R), duration=T,
    )
    y = hmm.sample((B,))  # (B, T, P)
    res = kalman_filter(y, F, Q, H, R, m0, P0)
    assert res.log_likelihood.shape == (B,)
    torch.testing.assert_close(res.log_likelihood, hmm.log_prob(y), rtol=1e-10, atol=1e-9)


@pytest.mark.parametrize("time_varying", [False, True])
def test_filter_and_smoother_equal_dense_gaussian_conditioning(time_varying):
    gen = torch.Generator().manual_seed(1)
    D, P, T = 3, 2, 6
    F, Q, H, R, m0, P0 = _random_model(gen, D, P, T, time_varying)
    mean, cov = _joint(F, Q, H, R, m0, P0, T)
    z = mean + torch.linalg.cholesky(cov) @ torch.randn(len(mean), generator=gen, dtype=DT)
    x_idx = torch.arange(T * D).reshape(T, D)
    y_idx = T * D + torch.arange(T * P).reshape(T, P)
    y = z[y_idx]
    mask = torch.rand(T, P, generator=gen) > 0.3
    mask[2] = False  # a cycle with no observation at all
    mask[0, 0] = True
    y_nan = torch.where(mask, y, torch.nan)  # missing values must not leak in

    res = kalman_filter(y_nan, F, Q, H, R, m0, P0, mask=mask)
    ms, Ps = rts_smoother(res.filtered_means, res.filtered_covs, res.predicted_means,
                          res.predicted_covs, F)
    for t in range(T):
        seen = y_idx[: t + 1][mask[: t + 1]]
        fm, fc = _condition(mean, cov, x_idx[t], seen, z[seen])
        torch.testing.assert_close(res.filtered_means[t], fm)
        torch.testing.assert_close(res.filtered_covs[t], fc)
        every = y_idx[mask]
        sm, sc = _condition(mean, cov, x_idx[t], every, z[every])
        torch.testing.assert_close(ms[t], sm)
        torch.testing.assert_close(Ps[t], sc)
    # log-likelihood: the marginal density of the observed entries
    every = y_idx[mask]
    ll = dist.MultivariateNormal(mean[every], cov[every][:, every]).log_prob(z[every])
    torch.testing.assert_close(res.log_likelihood, ll)


def test_batched_filter_equals_separate_runs():
    gen = torch.Generator().manual_seed(2)
    D, P, T = 2, 3, 5
    models = [_random_model(gen, D, P, T) for _ in range(2)]
    stacked = [torch.stack(parts) for parts in zip(*models)]
    y = torch.randn(2, T, P, generator=gen, dtype=DT)
    mask = torch.rand(2, T, P, generator=gen) > 0.4
    res = kalman_filter(y, *stacked, mask=mask)
    ms, Ps = rts_smoother(res.filtered_means, res.filtered_covs, res.predicted_means,
                          res.predicted_covs, stacked[0])
    for b, model in enumerate(models):
        one = kalman_filter(y[b], *model, mask=mask[b])
        torch.testing.assert_close(res.filtered_means[b], one.filtered_means)
        torch.testing.assert_close(res.log_likelihood[b], one.log_likelihood)
        sm, _ = rts_smoother(one.filtered_means, one.filtered_covs, one.predicted_means,
                             one.predicted_covs, model[0])
        torch.testing.assert_close(ms[b], sm)


class TwoOscillators(ODESystem):
    """Linear test system ``dx/dt = A x``: two harmonic oscillators (skew-symmetric A)."""

    name = "two_oscillators"
    component_names = ("a", "b", "c", "d")
    default_dt = 0.05

    def __init__(self, w1: float = 1.0, w2: float = 2.5):
        super().__init__()
        self.w1, self.w2 = w1, w2
        A = torch.zeros(4, 4)
        A[0, 1], A[1, 0], A[2, 3], A[3, 2] = w1, -w1, w2, -w2
        self.register_buffer("A", A)

    def drift(self, x):
        return x @ self.A.T

    def parameters_dict(self):
        return {"w1": self.w1, "w2": self.w2}

    def initial_state(self):
        return torch.ones(4)


@pytest.fixture(scope="module")
def linear_problem():
    system = TwoOscillators()
    ds = simulate(system, cycles=150, dt=0.05, steps_per_obs=3, obs_noise_std=0.6,
                  process_noise_std=0.4, spinup=1.0, seed=3)
    obs = ds["obs"].values
    obs[::4, 1] = float("nan")  # missing observations in some cycles
    obs[5] = float("nan")
    ds["obs"] = (("time", "component"), obs, ds["obs"].attrs)
    return ds, system


def test_kf_method_on_linear_system_is_exact_kf(linear_problem):
    ds, system = linear_problem
    problem = AssimilationProblem.from_dataset(ds, system=system)
    # The exact discrete model: one RK4 step x -> M x, noise q^2 dt I after each step.
    D, n, q2dt = 4, problem.steps_per_obs, problem.process_noise_std**2 * problem.dt
    eye = torch.eye(D, dtype=DT)
    M = problem.system.step(eye, problem.dt).T
    F = torch.linalg.matrix_power(M, n)
    Q = q2dt * sum(torch.linalg.matrix_power(M, j) @ torch.linalg.matrix_power(M, j).T
                   for j in range(n))
    _, F_lin, Q_lin = linearised_forecast(problem, torch.randn(D, dtype=DT))
    torch.testing.assert_close(F_lin, F)
    torch.testing.assert_close(Q_lin, Q)
    R = torch.diag(problem.obs_noise_std**2)
    ref = kalman_filter(problem.obs, F, Q, eye, R, problem.prior_mean,
                        torch.diag(problem.prior_std**2), mask=problem.mask)
    kf = get_method("kf")
    est = kf.run(problem, generator=torch.Generator())
    torch.testing.assert_close(est.mean, ref.filtered_means)
    torch.testing.assert_close(est.std**2, torch.diagonal(ref.filtered_covs, dim1=-2, dim2=-1))
    torch.testing.assert_close(kf.log_likelihood, ref.log_likelihood)


def test_rts_beats_kf_beats_observations_on_linear_system(linear_problem):
    ds, system = linear_problem
    truth = torch.as_tensor(ds["truth"].values)
    post = {m: get_method(m)(ds, system=system) for m in ("kf", "rts")}
    rmse = {m: float(((torch.as_tensor(p["mean"].values) - truth) ** 2).mean(-1).sqrt()
                     [20:].mean()) for m, p in post.items()}
    assert post["rts"].attrs["estimate"] == "smoother"
    assert rmse["rts"] <= rmse["kf"] < 0.6  # observation noise std 0.6
    assert rmse["rts"] < 0.9 * rmse["kf"]


def test_ekf_and_erts_on_lorenz63():
    ds = simulate("lorenz63", cycles=120, seed=4)
    truth = torch.as_tensor(ds["truth"].values)
    problem = AssimilationProblem.from_dataset(ds)
    with torch.no_grad():
        res, F = extended_kalman_filter(problem, inflation=3.0)
    ms, _ = rts_smoother(res.filtered_means, res.filtered_covs, res.predicted_means,
                         res.predicted_covs, F)

    def rmse(m):
        return float(((m - truth) ** 2).mean(-1).sqrt()[30:].mean())

    assert rmse(ms) <= rmse(res.filtered_means) < 1.2  # observation noise std sqrt(2)


def test_bad_options():
    with pytest.raises(InputError):
        get_method("kf", inflation=0.0)
    with pytest.raises(InputError):
        get_method("rts", jitter=-1.0)
