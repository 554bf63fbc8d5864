"""EnKF / ETKF / LETKF: exactness of the transform, convergence to the Kalman filter as the
ensemble grows, rotation, masks, localisation, and accuracy on Lorenz-63/96."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from pyro_videossm.assimilate import AssimilationProblem, get_method
from pyro_videossm.data import simulate
from pyro_videossm.dynamics import ODESystem
from pyro_videossm.errors import InputError
from pyro_videossm.filters.enkf import ensemble_transform, run_enkf, run_etkf
from pyro_videossm.filters.ensemble import (
    initial_ensemble,
    mean_preserving_basis,
    post_process,
    random_mean_preserving_rotation,
)
from pyro_videossm.filters.kalman import kalman_filter, kalman_update
from pyro_videossm.filters.localization import gaspari_cohn, taper_matrix

DT = torch.float64


class Rotation2(ODESystem):
    """Linear test system: a damped rotation in each of two planes, ``dx/dt = A x``."""

    name = "rotation2"
    component_names = ("a", "b", "c", "d")
    default_dt = 0.1

    def __init__(self):
        super().__init__()
        A = torch.tensor([[-0.05, 1.0, 0, 0], [-1.0, -0.05, 0, 0],
                          [0, 0, -0.05, 2.0], [0, 0, -2.0, -0.05]])
        self.register_buffer("A", A)

    def drift(self, x):
        return x @ self.A.T

    def initial_state(self):
        return torch.ones(4)


def _linear_problem(cycles=25, q=0.5, seed=0, steps_per_obs=1):
    system = Rotation2()
    ds = simulate(system, cycles=cycles, dt=0.1, steps_per_obs=steps_per_obs,
                  obs_noise_std=0.7, process_noise_std=q, spinup=0.0, seed=seed,
                  obs_operator="subset:0,2,3")
    problem = AssimilationProblem.from_dataset(ds, system=system)
    # The damped system has no climatology: set an explicit Gaussian prior.
    mean = torch.tensor([1.0, -0.5, 0.3, 0.8], dtype=DT)
    return dataclasses.replace(problem, prior_mean=mean,
                               prior_std=torch.full((4,), 1.5, dtype=DT))


def _exact_kf(problem):
    D = problem.state_dim
    eye = torch.eye(D, dtype=DT)
    F = problem.system.step(eye, problem.dt).T  # one RK4 step per cycle
    Q = problem.cycle_noise_var * eye
    R = torch.diag(problem.obs_noise_std**2)
    return kalman_filter(problem.obs, F, Q, eye, R, problem.prior_mean,
                         torch.diag(problem.prior_std**2), mask=problem.mask)


def test_etkf_transform_gives_kf_analysis_covariance():
    gen = torch.Generator().manual_seed(0)
    N, D = 12, 5
    ens = torch.randn(N, D, generator=gen, dtype=DT) * torch.tensor([1, 2, .5, 1, 3.0])
    mean = ens.mean(0)
    A = ens - mean
    P = A.T @ A / (N - 1)
    y = torch.randn(D, generator=gen, dtype=DT)
    mask = torch.tensor([True, False, True, True, False])
    r2 = torch.tensor([0.5, 1.0, 2.0, 0.3, 1.0], dtype=DT)
    G = ensemble_transform(A, (y - mean) * mask, mask / r2)
    ens_a = mean + G.T @ A
    m_kf, P_kf, _ = kalman_update(mean, P, y, mask, torch.eye(D, dtype=DT), torch.diag(r2))
    torch.testing.assert_close(ens_a.mean(0), m_kf)
    Aa = ens_a - ens_a.mean(0)
    torch.testing.assert_close(Aa.T @ Aa / (N - 1), P_kf)
    # the symmetric square root keeps 1 as an eigenvector: the mean is the analysis mean
    W = G - G.mean(0, keepdim=True)
    torch.testing.assert_close(W.sum(0), torch.zeros(N, dtype=DT), atol=1e-12, rtol=0)


def test_rotation_is_mean_and_covariance_preserving():
    gen = torch.Generator().manual_seed(1)
    N = 7
    O = random_mean_preserving_rotation(mean_preserving_basis(N, dtype=DT), gen)
    torch.testing.assert_close(O @ O.T, torch.eye(N, dtype=DT))
    torch.testing.assert_close(O @ torch.ones(N, dtype=DT), torch.ones(N, dtype=DT))
    ens = torch.randn(N, 3, generator=gen, dtype=DT)
    out = post_process(ens, 1.0, O)
    assert not torch.allclose(out, ens)
    torch.testing.assert_close(out.mean(0), ens.mean(0))
    torch.testing.assert_close(torch.cov(out.T), torch.cov(ens.T))
    torch.testing.assert_close(post_process(ens, 1.5, None).std(0), 1.5 * ens.std(0))


def test_etkf_equals_kalman_filter_on_linear_perfect_model():
    """No model noise, N > D: the deterministic ETKF reproduces the KF started from the
    ensemble's own initial mean and covariance, with and without rotation."""
    problem = _linear_problem(q=0.0)
    N = 9
    gen = torch.Generator().manual_seed(5)
    ens0 = initial_ensemble(problem, N, gen)
    eye = torch.eye(4, dtype=DT)
    ref = kalman_filter(problem.obs, problem.system.step(eye, problem.dt).T, 0 * eye, eye,
                        torch.diag(problem.obs_noise_std**2), ens0.mean(0),
                        torch.cov(ens0.T), mask=problem.mask)
    for rotate in (False, True):
        res = run_etkf(problem, members=N, rotate=rotate,
                       generator=torch.Generator().manual_seed(5))
        torch.testing.assert_close(res.analysis.mean(1), ref.filtered_means)
        A = res.analysis - res.analysis.mean(1, keepdim=True)
        torch.testing.assert_close(A.transpose(1, 2) @ A / (N - 1), ref.filtered_covs)


@pytest.mark.parametrize("method,large", [("enkf", 1000), ("etkf", 300)])
def test_ensemble_filters_approach_kf_as_ensemble_grows(method, large):
    """With model noise: the ensemble mean and spread converge to the exact KF's."""
    problem = _linear_problem(cycles=25, q=0.5)
    ref = _exact_kf(problem)
    kf_std = torch.diagonal(ref.filtered_covs, dim1=-2, dim2=-1).sqrt()
    run = (lambda p, **k: run_enkf(p, **k).analysis) if method == "enkf" else (
        lambda p, **k: run_etkf(p, **k).analysis)
    errors = {}
    for N in (20, large):
        errs = []
        for seed in range(3):
            ens = run(problem, members=N, generator=torch.Generator().manual_seed(seed))
            mean_err = ((ens.mean(1) - ref.filtered_means) / kf_std).abs().mean()
            std_err = (ens.std(1) / kf_std - 1).abs().mean()
            errs.append(float(mean_err + std_err))
        errors[N] = sum(errs) / len(errs)
    assert errors[large] < 0.3 * errors[20]
    assert errors[large] < 0.1


@pytest.mark.parametrize("method,options", [
    ("enkf", {}), ("enkf", {"localization": 1.0}), ("etkf", {}),
    ("letkf", {"localization": 1.0}),
])
def test_masked_values_are_ignored(method, options):
    problem = _linear_problem(cycles=8, q=0.3)
    garbage = problem.obs.clone()
    garbage[~problem.mask] = 1e6
    garbage[3] = -1e6
    mask = problem.mask.clone()
    mask[3] = False  # a cycle without observations
    runs = []
    for obs in (problem.obs, garbage):
        p = dataclasses.replace(problem, obs=obs, mask=mask)
        est = get_method(method, members=6, inflation=1.0, **options).run(
            p, generator=torch.Generator().manual_seed(0))
        runs.append(est)
    torch.testing.assert_close(runs[0].ensemble, runs[1].ensemble)
    assert runs[0].mean.abs().max() < 100


def test_no_observation_leaves_the_forecast_unchanged():
    problem = _linear_problem(cycles=3, q=0.0)
    p = dataclasses.replace(problem, mask=torch.zeros_like(problem.mask))
    res = run_etkf(p, members=5, generator=torch.Generator().manual_seed(0))
    ens = initial_ensemble(p, 5, torch.Generator().manual_seed(0))
    for t in range(3):
        ens = p.forecast(ens)
        torch.testing.assert_close(res.analysis[t], ens)


@pytest.mark.parametrize("run", [lambda p, **k: run_enkf(p, **k).analysis,
                                 lambda p, **k: run_etkf(p, **k).analysis])
def test_spinup_inflation_only_in_the_first_cycles(run):
    problem = _linear_problem(cycles=6, q=0.0)
    p = dataclasses.replace(problem, mask=torch.zeros_like(problem.mask))  # nothing observed
    ens = run(p, members=5, inflation=1.1, spinup=3, spinup_inflation=2.0,
              generator=torch.Generator().manual_seed(0))
    prev = initial_ensemble(p, 5, torch.Generator().manual_seed(0))
    for t in range(6):
        forecast = p.forecast(prev)
        anomalies = forecast - forecast.mean(0)
        torch.testing.assert_close(ens[t] - ens[t].mean(0), (2.0 if t < 3 else 1.1) * anomalies)
        prev = ens[t]


def test_gaspari_cohn_taper():
    r = torch.linspace(0, 3, 301, dtype=DT)
    g = gaspari_cohn(r)
    assert g[0] == 1 and (g[r >= 2] == 0).all() and (g >= 0).all()
    assert (g[1:] <= g[:-1]).all()  # decreasing
    for knot in (1.0, 2.0):  # continuous at the knots
        lo, hi = gaspari_cohn(torch.tensor([knot - 1e-9, knot + 1e-9], dtype=DT))
        assert abs(lo - hi) < 1e-7
    C = taper_matrix(40, 4.0, cyclic=True, dtype=DT)
    assert torch.linalg.eigvalsh(C).min() > -1e-10  # a correlation matrix
    torch.testing.assert_close(C[0, 39], C[0, 1])  # ring
    assert taper_matrix(40, 4.0, cyclic=False, dtype=DT)[0, 39] == 0


def test_letkf_with_huge_radius_is_the_global_etkf():
    problem = _linear_problem(cycles=6, q=0.2)
    g = run_etkf(problem, members=6, inflation=1.05, generator=torch.Generator().manual_seed(2))
    l = run_etkf(problem, members=6, inflation=1.05, localization=1e7,
                 generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(l.analysis, g.analysis)


def test_etkf_enkf_on_lorenz63():
    ds = simulate("lorenz63", cycles=300, seed=3)
    truth = torch.as_tensor(ds["truth"].values)
    for method, opts in [("etkf", {"inflation": 1.02}), ("enkf", {"inflation": 1.04})]:
        post = get_method(method, members=10, **opts)(ds, seed=1)
        err = float(((torch.as_tensor(post["mean"].values) - truth) ** 2).mean(-1).sqrt()
                    [100:].mean())
        assert err < 0.8, (method, err)  # observation noise std 1.41


def test_letkf_on_lorenz96():
    ds = simulate("lorenz96", cycles=250, seed=3)
    truth = torch.as_tensor(ds["truth"].values)
    post = get_method("letkf", members=8, localization=4, inflation=1.05)(ds, seed=0)
    assert post.attrs["method"] == "letkf"
    err = float(((torch.as_tensor(post["mean"].values) - truth) ** 2).mean(-1).sqrt()
                [100:].mean())
    assert err < 0.4  # observation noise 1


def test_static_start_is_the_climatological_analysis():
    problem = _linear_problem(cycles=2, q=0.0)
    N = 50
    res = run_etkf(problem, members=N, static_start=True,
                   generator=torch.Generator().manual_seed(3))
    forecast = problem.forecast(initial_ensemble(problem, N, torch.Generator().manual_seed(3)))
    B, r2, m = problem.prior_std**2, problem.obs_noise_std**2, problem.mask[0]
    gain = m * B / (B + r2)
    mean = forecast.mean(0)
    torch.testing.assert_close(res.analysis[0].mean(0), mean + gain * (problem.obs[0] - mean))
    torch.testing.assert_close(res.analysis[0].std(0), (B * (1 - gain)).sqrt())


def test_etkf_n24_on_lorenz96_from_climatology():
    """The published setting (N=24, inflation 1.013) converges from the climatological prior."""
    ds = simulate("lorenz96", cycles=300, seed=1)
    truth = torch.as_tensor(ds["truth"].values)
    post = get_method("etkf", members=24, inflation=1.013)(ds, seed=0)
    err = float(((torch.as_tensor(post["mean"].values) - truth) ** 2).mean(-1).sqrt()
                [100:].mean())
    assert err < 0.3


@pytest.mark.parametrize("method,options", [
    ("etkf", {"members": 1}), ("etkf", {"members": 2.5}), ("etkf", {"members": "many"}),
    ("enkf", {"inflation": -1.0}), ("enkf", {"inflation": "big"}),
    ("letkf", {"localization": 0.0}), ("letkf", {"localization": None}),
    ("etkf", {"rotate": "perhaps"}), ("enkf", {"localization": float("nan")}),
])
def test_bad_options(method, options):
    with pytest.raises(InputError):
        get_method(method, **options)


def test_options_are_recorded():
    post = get_method("letkf", members="6", rotate="false")(simulate("lorenz96", cycles=5))
    assert '"members": 6' in post.attrs["method_options"]
    assert '"rotate": false' in post.attrs["method_options"]
