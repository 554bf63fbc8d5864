"""iEnKS: on a linear perfect model with N > D it is the fixed-lag Kalman smoother (RTS on
the record cut ``lag`` cycles later), its filter estimate the Kalman filter, Gauss-Newton
converges after one step and MDA gives the same; on Lorenz-63 it beats the ETKF."""

from __future__ import annotations

import pytest
import torch
from linear_reference import kalman_reference, linear_problem

from pyro_videossm.assimilate import AssimilationProblem, get_method
from pyro_videossm.data import simulate
from pyro_videossm.errors import InputError
from pyro_videossm.filters.ensemble import initial_ensemble
from pyro_videossm.filters.ienks import run_ienks


def _moments(ens):
    A = ens - ens.mean(-2, keepdim=True)
    return ens.mean(-2), A.transpose(-1, -2) @ A / (ens.shape[-2] - 1)


@pytest.mark.parametrize("lag,mda,rotate", [(1, False, False), (3, False, True), (3, True, False),
                                            (40, False, False)])
def test_ienks_is_the_fixed_lag_kalman_smoother_on_a_linear_model(lag, mda, rotate):
    problem = linear_problem(cycles=12, missing=(5,))
    N = 6
    ens0 = initial_ensemble(problem, N, torch.Generator().manual_seed(0))
    m0, P0 = ens0.mean(0), torch.cov(ens0.T)
    res = run_ienks(problem, members=N, lag=lag, iterations=3 if mda else 10, mda=mda,
                    inflation=1.0, rotate=rotate, generator=torch.Generator().manual_seed(0))
    T = problem.n_cycles
    kf, _, _ = kalman_reference(problem, m0, P0)
    mean, cov = _moments(res.filtered)
    torch.testing.assert_close(mean, kf.filtered_means)
    torch.testing.assert_close(cov, kf.filtered_covs)
    mean, cov = _moments(res.smoothed)
    for s in range(T):
        _, ms, Ps = kalman_reference(problem, m0, P0, last=min(s + lag, T - 1))
        torch.testing.assert_close(mean[s], ms[s])
        torch.testing.assert_close(cov[s], Ps[s])
    if not mda:  # one Gauss-Newton step, and a second run that finds it converged
        assert res.model_runs[problem.mask.any(1)].eq(2).all()
        assert res.model_runs[~problem.mask.any(1)].eq(1).all()  # nothing to assimilate


def test_ienks_beats_the_etkf_on_lorenz63():
    ds = simulate("lorenz63", cycles=300, seed=1)
    problem = AssimilationProblem.from_dataset(ds)
    truth = torch.as_tensor(ds["truth"].values)

    def rmse(m):
        return float(((m - truth) ** 2).mean(-1).sqrt()[100:].mean())

    method = get_method("ienks", members=10, lag=1, inflation=1.02, rotate=True)
    est = method.run(problem, generator=torch.Generator().manual_seed(1))
    etkf = get_method("etkf", members=10, inflation=1.02).run(
        problem, generator=torch.Generator().manual_seed(1))
    assert rmse(est.mean) < 0.3  # DAPPER's iEnKS: about 0.25 (obs noise std 1.41)
    assert rmse(est.mean) < rmse(method.filter_estimate.mean) < 0.8 * rmse(etkf.mean)
    assert method.model_runs.float().mean() < 3


@pytest.mark.parametrize("option", [{"members": 1}, {"lag": 0}, {"iterations": 0},
                                    {"lag": 1.5}, {"inflation": 0}, {"tolerance": -1}])
def test_bad_options(option):
    with pytest.raises(InputError):
        get_method("ienks", **option)


def test_posterior_dataset_of_the_ienks():
    ds = simulate("lorenz63", cycles=20, seed=0)
    post = get_method("ienks", members=6, lag=2, mda=True, iterations=3)(ds, seed=1,
                                                                         n_samples=4)
    assert post.attrs["method"] == "ienks" and post.attrs["estimate"] == "smoother"
    assert post["samples"].shape == (4, 20, 3)
    assert bool(post["mean"].notnull().all()) and bool((post["std"] > 0).all())
