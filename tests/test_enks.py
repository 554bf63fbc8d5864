"""EnKS: window products, lag 0 = the ETKF, the full smoother = RTS on a linear-Gaussian
perfect model, and smoother error below filter error on Lorenz-63."""

from __future__ import annotations

import pytest
import torch
from linear_reference import DT, linear_problem

from pyro_videossm.assimilate import AssimilationProblem, get_method
from pyro_videossm.data import simulate
from pyro_videossm.errors import InputError
from pyro_videossm.filters.enkf import run_etkf
from pyro_videossm.filters.enks import smooth_ensembles, window_products
from pyro_videossm.filters.ensemble import initial_ensemble
from pyro_videossm.filters.kalman import kalman_filter, rts_smoother


@pytest.mark.parametrize("lag", [0, 1, 3, 5, 6, 11, 40])
def test_window_products_match_direct_products(lag):
    gen = torch.Generator().manual_seed(lag)
    T, N = 11, 3
    X = torch.eye(N, dtype=DT) + 0.3 * torch.randn(T, 2, N, N, generator=gen, dtype=DT)
    P = window_products(X, lag)
    for s in range(T):
        ref = torch.eye(N, dtype=DT).expand(2, N, N)
        for t in range(s + 1, min(s + lag, T - 1) + 1):
            ref = ref @ X[t]
        torch.testing.assert_close(P[s], ref)


def test_lag_zero_is_the_etkf_analysis():
    ds = simulate("lorenz63", cycles=40, seed=2)
    etkf = get_method("etkf", members=8, inflation=1.03, rotate=True)(ds, seed=3, n_samples=8)
    enks = get_method("enks", members=8, inflation=1.03, rotate=True, lag=0)(
        ds, seed=3, n_samples=8)
    torch.testing.assert_close(torch.as_tensor(enks["samples"].values),
                               torch.as_tensor(etkf["samples"].values))
    assert enks.attrs["estimate"] == "smoother"


@pytest.mark.parametrize("rotate", [False, True])
def test_full_enks_equals_rts_on_linear_perfect_model(rotate):
    """No model noise and N > D: ETKF = KF and the full EnKS = RTS, started from the initial
    ensemble's own mean and covariance (rotations must mix past members like present ones)."""
    problem = linear_problem(30)
    N = 6
    ens0 = initial_ensemble(problem, N, torch.Generator().manual_seed(0))
    eye = torch.eye(3, dtype=DT)
    F = problem.forecast(eye).T
    ref = kalman_filter(problem.obs, F, 0 * eye, eye, torch.diag(problem.obs_noise_std**2),
                        ens0.mean(0), torch.cov(ens0.T), mask=problem.mask)
    ms, Ps = rts_smoother(ref.filtered_means, ref.filtered_covs, ref.predicted_means,
                          ref.predicted_covs, F)
    res = run_etkf(problem, members=N, rotate=rotate, inflation=1.0,
                   generator=torch.Generator().manual_seed(0), store_transforms=True)
    smooth = smooth_ensembles(res.analysis, res.transforms, lag=None)
    torch.testing.assert_close(smooth.mean(1), ms)
    A = smooth - smooth.mean(1, keepdim=True)
    torch.testing.assert_close(A.transpose(1, 2) @ A / (N - 1), Ps)
    # a fixed lag covering the whole run is the full smoother; the last cycle is the filter
    torch.testing.assert_close(smooth_ensembles(res.analysis, res.transforms, lag=29), smooth)
    torch.testing.assert_close(smooth[-1], res.analysis[-1])


def test_local_transforms_smooth_each_grid_point():
    """With per-grid-point transforms that are all equal, the local path equals the global."""
    gen = torch.Generator().manual_seed(4)
    T, N, D = 7, 4, 5
    X = torch.eye(N, dtype=DT) + 0.2 * torch.randn(T, N, N, generator=gen, dtype=DT)
    ens = torch.randn(T, N, D, generator=gen, dtype=DT)
    glob = smooth_ensembles(ens, X, lag=3)
    loc = smooth_ensembles(ens, X.unsqueeze(1).expand(T, D, N, N), lag=3)
    torch.testing.assert_close(loc, glob)


def test_enks_beats_its_filter_on_lorenz63():
    ds = simulate("lorenz63", cycles=300, seed=5)
    problem = AssimilationProblem.from_dataset(ds)
    truth = torch.as_tensor(ds["truth"].values)
    method = get_method("enks", members=10)
    est = method.run(problem, generator=torch.Generator().manual_seed(0))

    def rmse(m):
        return float(((m - truth) ** 2).mean(-1).sqrt()[100:].mean())

    assert rmse(est.mean) < 0.85 * rmse(method.filter_estimate.mean)
    assert rmse(est.mean) < 0.7  # observation noise std 1.41


def test_bad_lag():
    with pytest.raises(InputError):
        get_method("enks", lag=-1)
    with pytest.raises(InputError):
        get_method("enks", lag=1.5)
