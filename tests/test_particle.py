"""Particle filter: exactness on a linear-Gaussian problem (against a closed-form Kalman
filter written here), weights, systematic resampling, masks, likelihoods, and Lorenz-63."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from pyro_videossm.assimilate import AssimilationProblem, get_method
from pyro_videossm.data import simulate
from pyro_videossm.dynamics import ODESystem
from pyro_videossm.errors import InputError
from pyro_videossm.filters.particle import (
    ParticleFilter,
    effective_sample_size,
    log_likelihood,
    systematic_resample,
)
from pyro_videossm.metrics.posterior import rmse

DT, STEPS, Q = 0.1, 2, 0.6
A = torch.tensor([[-0.2, 1.0], [-1.0, -0.3]], dtype=torch.float64)  # damped rotation


class LinearSystem(ODESystem):
    """``dx/dt = A x``, states ``(..., 2)``."""

    name = "linear2"
    component_names = ("a", "b")

    def __init__(self, a: torch.Tensor):
        super().__init__()
        self.register_buffer("a", a.clone())

    def drift(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.a.mT


def linear_problem(cycles: int = 30, seed: int = 0) -> AssimilationProblem:
    """A 2-D linear-Gaussian problem with process noise and a mixed observation mask."""
    gen = torch.Generator().manual_seed(seed)
    system = LinearSystem(A)
    prior_mean = torch.tensor([1.0, -0.5], dtype=torch.float64)
    prior_std = torch.tensor([1.0, 0.7], dtype=torch.float64)
    x = prior_mean + prior_std * torch.randn(2, generator=gen, dtype=torch.float64)
    truth = []
    for _ in range(cycles):
        x = system.integrate(x, STEPS, DT, noise_std=Q, generator=gen)
        truth.append(x)
    truth = torch.stack(truth)
    obs_std = torch.tensor([0.5, 0.8], dtype=torch.float64)
    mask = torch.ones(cycles, 2, dtype=torch.bool)
    mask[1::3, 1] = False  # only "a" observed
    mask[2::5, 0] = False  # only "b" observed (or nothing where both patterns meet)
    mask[7] = False  # a cycle with no observation at all
    obs = torch.where(mask, truth + obs_std * torch.randn(truth.shape, generator=gen,
                                                          dtype=torch.float64), 0.0)
    return AssimilationProblem(
        system=system, dt=DT, steps_per_obs=STEPS, obs=obs, mask=mask, obs_noise_std=obs_std,
        process_noise_std=Q, prior_mean=prior_mean, prior_std=prior_std,
        times=np.arange(1, cycles + 1) * DT * STEPS, component_names=("a", "b"),
    )


def kalman_filter(p: AssimilationProblem) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact filter for ``p``: RK4 on a linear ODE is the matrix polynomial ``M`` per step."""
    h = DT * A
    eye = torch.eye(2, dtype=torch.float64)
    m_step = eye + h + h @ h / 2 + h @ h @ h / 6 + h @ h @ h @ h / 24
    f = torch.linalg.matrix_power(m_step, STEPS)
    q = sum(Q**2 * DT * torch.linalg.matrix_power(m_step, i)
            @ torch.linalg.matrix_power(m_step, i).mT for i in range(STEPS))
    mean, cov = p.prior_mean.clone(), torch.diag(p.prior_std**2)
    means, stds = [], []
    for k in range(p.n_cycles):
        mean, cov = f @ mean, f @ cov @ f.mT + q
        obs_idx = p.mask[k].nonzero().flatten()
        if len(obs_idx):
            h_op = eye[obs_idx]
            s = h_op @ cov @ h_op.mT + torch.diag(p.obs_noise_std[obs_idx] ** 2)
            gain = cov @ h_op.mT @ torch.linalg.inv(s)
            mean = mean + gain @ (p.obs[k, obs_idx] - h_op @ mean)
            cov = (eye - gain @ h_op) @ cov
        means.append(mean)
        stds.append(cov.diagonal().sqrt())
    return torch.stack(means), torch.stack(stds)


def run_pf(problem: AssimilationProblem, seed: int = 0, **options):
    gen = torch.Generator().manual_seed(seed)
    return ParticleFilter(**options).run(problem, generator=gen)


def test_pf_converges_to_kalman_filter_on_linear_gaussian_problem():
    problem = linear_problem()
    kf_mean, kf_std = kalman_filter(problem)
    errors = {}
    for n in (100, 20000):
        est = run_pf(problem, members=n, jitter=0.0, resample_threshold=0.5)
        errors[n] = ((est.mean - kf_mean).abs() / kf_std).mean().item()
        if n == 20000:
            std_ratio = (est.std / kf_std).mean().item()
    assert errors[20000] < 0.03, errors
    assert errors[20000] < errors[100] / 4, errors  # Monte Carlo error ~ 1/sqrt(N)
    assert abs(std_ratio - 1) < 0.03


def test_weights_normalised_and_estimate_is_weighted_ensemble():
    problem = linear_problem(cycles=12)
    est = run_pf(problem, members=64)
    assert est.ensemble.shape == (12, 64, 2) and est.weights.shape == (12, 64)
    assert (est.weights >= 0).all()
    torch.testing.assert_close(est.weights.sum(-1), torch.ones(12, dtype=torch.float64))
    torch.testing.assert_close(est.mean, (est.weights.unsqueeze(-1) * est.ensemble).sum(1))


def test_systematic_resampling_is_unbiased_and_low_variance():
    gen = torch.Generator().manual_seed(0)
    w = torch.tensor([0.05, 0.3, 0.0, 0.125, 0.2, 0.025, 0.3], dtype=torch.float64)
    n, draws = w.numel(), 20000
    idx = systematic_resample(w.expand(draws, n), gen)  # independent draws, one per row
    counts = torch.zeros(draws, n, dtype=torch.float64).scatter_add_(
        1, idx, torch.ones_like(idx, dtype=torch.float64))
    # E[count_j] = N w_j, and every draw gives floor(N w_j) or ceil(N w_j) copies.
    torch.testing.assert_close(counts.mean(0), n * w, atol=0.02, rtol=0)
    assert ((counts >= torch.floor(n * w)) & (counts <= torch.ceil(n * w))).all()
    assert (counts[:, 2] == 0).all()  # a zero weight is never picked


def test_effective_sample_size():
    assert effective_sample_size(torch.full((10,), 0.1)).item() == pytest.approx(10)
    assert effective_sample_size(torch.tensor([1.0, 0, 0])).item() == pytest.approx(1)


@pytest.mark.parametrize("dist", ["gaussian", "student_t"])
def test_log_likelihood_matches_torch_distributions_up_to_a_constant(dist):
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(50, 3, generator=gen, dtype=torch.float64) * 2
    y = torch.tensor([0.3, -1.0, 2.0], dtype=torch.float64)
    std = torch.tensor([0.5, 1.0, 2.0], dtype=torch.float64)
    mask = torch.tensor([True, False, True])
    ours = log_likelihood(x, y, mask, std, dist=dist, df=3.0)
    if dist == "gaussian":
        ref = torch.distributions.Normal(x, std).log_prob(y)
    else:
        ref = torch.distributions.StudentT(3.0, x, std).log_prob(y)
    ref = (ref * mask).sum(-1)
    torch.testing.assert_close(ours - ours[0], ref - ref[0])


def test_masked_values_are_ignored_and_no_data_means_no_update():
    problem = linear_problem(cycles=15)
    est = run_pf(problem, members=200)
    garbage = problem.obs.masked_fill(~problem.mask, 1e6)
    problem_garbage = AssimilationProblem(**{**problem.__dict__, "obs": garbage})
    torch.testing.assert_close(run_pf(problem_garbage, members=200).mean, est.mean)

    blind = AssimilationProblem(**{**problem.__dict__, "process_noise_std": 0.0,
                                   "mask": torch.zeros_like(problem.mask)})
    est = run_pf(blind, members=200)
    torch.testing.assert_close(est.weights, torch.full_like(est.weights, 1 / 200))
    # No resampling: the particles are just the prior ensemble moved by the dynamics.
    torch.testing.assert_close(est.ensemble[1:], blind.forecast(est.ensemble[:-1]))


def test_registered_and_options_checked():
    method = get_method("pf", members=50, jitter=0.2, resample_threshold=1.0)
    assert isinstance(method, ParticleFilter)
    assert method.options()["members"] == 50
    for bad in ({"members": 1}, {"jitter": -0.1}, {"resample_threshold": 1.5},
                {"covariance": "banded"}, {"fallback_ess": -1.0}):
        with pytest.raises(InputError):
            ParticleFilter(**bad)


@pytest.mark.parametrize("dist", ["gaussian", "student_t"])
def test_lorenz63_short_run_beats_observation_noise(dist):
    obs = simulate("lorenz63", cycles=120, seed=3, obs_noise_dist=dist)
    post = get_method("pf")(obs, seed=0)  # the defaults: N = 800
    error = rmse(post["mean"], obs["truth"], burn_in=40)
    assert error < 0.6 * math.sqrt(2.0), error
    assert post.attrs["method"] == "pf"
    assert np.isfinite(post["quantiles"].values).all()


def test_kalman_jitter_covariance_is_the_gaussian_posterior_covariance():
    from pyro_videossm.filters.particle import _kalman_posterior_cov

    gen = torch.Generator().manual_seed(2)
    p = torch.tensor([[2.0, 0.8, 0.1], [0.8, 1.0, -0.3], [0.1, -0.3, 0.5]], dtype=torch.float64)
    x = torch.randn(200000, 3, generator=gen, dtype=torch.float64) @ torch.linalg.cholesky(p).mT
    w = torch.full((200000,), 1 / 200000, dtype=torch.float64)
    mask = torch.tensor([True, False, True])
    std = torch.tensor([0.7, 9.0, 0.4], dtype=torch.float64)
    h = torch.eye(3, dtype=torch.float64)[mask]
    s = h @ p @ h.mT + torch.diag(std[mask] ** 2)
    expected = p - p @ h.mT @ torch.linalg.solve(s, h @ p)
    torch.testing.assert_close(_kalman_posterior_cov(x, w, mask, std), expected, atol=0.02, rtol=0)
