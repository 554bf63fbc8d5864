"""3D-Var and 4D-Var against Kalman references on a linear model: 3D-Var with the KF's
forecast covariance is the KF analysis (and with the steady-state covariance the whole
steady-state KF run); strong-constraint 4D-Var over a window is the RTS smoother there.
Bad options and covariances are one-line InputErrors."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from linear_reference import DT, kalman_reference, linear_problem, transition

from pyro_videossm.assimilate import AssimilationProblem, get_method
from pyro_videossm.data import simulate
from pyro_videossm.errors import InputError
from pyro_videossm.filters.kalman import kalman_filter, kalman_update
from pyro_videossm.filters.var3d import var3d_analysis


@pytest.mark.parametrize("solver", ["cholesky", "cg"])
def test_3dvar_with_the_forecast_covariance_is_the_kalman_analysis(solver):
    problem = linear_problem(cycles=6, process_noise_std=0.2)
    m0, P0 = problem.prior_mean, torch.diag(problem.prior_std**2)
    kf, _, _ = kalman_reference(problem, m0, P0)
    obs_var = problem.obs_noise_std**2
    for t in range(problem.n_cycles):
        mean, cov = var3d_analysis(kf.predicted_means[t], kf.predicted_covs[t],
                                   problem.obs[t], problem.mask[t], obs_var, solver=solver)
        torch.testing.assert_close(mean, kf.filtered_means[t])
        torch.testing.assert_close(cov, kf.filtered_covs[t])


def test_3dvar_with_the_steady_state_covariance_is_the_steady_state_kalman_filter():
    problem = linear_problem(cycles=15, process_noise_std=0.3)
    F, Q = transition(problem)
    eye = torch.eye(3, dtype=DT)
    R = torch.diag(problem.obs_noise_std**2)
    mask = problem.mask[0]
    P = eye
    for _ in range(500):  # Riccati recursion to the steady forecast covariance
        _, Pa, _ = kalman_update(torch.zeros(3, dtype=DT), P, torch.zeros(3, dtype=DT), mask,
                                 eye, R)
        P = F @ Pa @ F.T + Q
    kf = kalman_filter(problem.obs, F, Q, eye, R, problem.prior_mean, Pa, mask=problem.mask)
    torch.testing.assert_close(kf.predicted_covs, P.expand(15, 3, 3))
    for solver in ("cholesky", "cg"):
        method = get_method("3dvar", background_cov=P.tolist(), scale=1.0, solver=solver)
        est = method.run(problem, generator=torch.Generator())
        torch.testing.assert_close(est.mean, kf.filtered_means)
        torch.testing.assert_close(est.std, torch.diagonal(Pa).sqrt().expand(15, 3))


def test_3dvar_beats_the_observations_on_lorenz63():
    ds = simulate("lorenz63", cycles=300, seed=1)
    truth = torch.as_tensor(ds["truth"].values)
    post = get_method("3dvar")(ds)
    rmse = float(((torch.as_tensor(post["mean"].values) - truth) ** 2).mean(-1).sqrt()[100:]
                 .mean())
    assert rmse < 1.2  # observation noise std 1.41; the ETKF reaches about 0.55
    assert post.attrs["method"] == "3dvar" and post.attrs["estimate"] == "filter"


@pytest.mark.parametrize("B", [[[1.0, 2.0], [2.0, 1.0]], [[1.0, 0.0], [0.0, 0.0]],
                               [[1.0, 0.5], [0.0, 1.0]], [[1.0, 0.0, 0.0]], [[1.0, 0.0], [0.0]],
                               [[float("nan")]]])
@pytest.mark.parametrize("method", ["3dvar", "4dvar"])
def test_bad_background_covariance(method, B):
    with pytest.raises(InputError):
        get_method(method, background_cov=B)


def test_background_covariance_of_the_wrong_size():
    ds = simulate("lorenz63", cycles=5, seed=0)
    for method in ("3dvar", "4dvar"):
        with pytest.raises(InputError, match="3 components"):
            get_method(method, background_cov=[[1.0, 0.0], [0.0, 1.0]])(ds)


@pytest.mark.parametrize("option", [{"scale": 0}, {"solver": "lu"}])
def test_bad_3dvar_options(option):
    with pytest.raises(InputError):
        get_method("3dvar", **option)


@pytest.mark.parametrize("optimizer", ["gauss-newton", "lbfgs"])
def test_4dvar_over_the_record_is_the_rts_smoother(optimizer):
    """One window over the whole record of a perfect linear model, the prior as background:
    the analysis trajectory is the RTS smoother mean, its covariance the smoother's."""
    problem = linear_problem(cycles=10, missing=(4,))
    _, ms, Ps = kalman_reference(problem, problem.prior_mean, torch.diag(problem.prior_std**2))
    method = get_method("4dvar", window=10, optimizer=optimizer, tolerance=1e-12)
    est = method.run(problem, generator=torch.Generator())
    torch.testing.assert_close(est.mean, ms, rtol=1e-7, atol=1e-7)
    torch.testing.assert_close(est.std, torch.diagonal(Ps, dim1=-2, dim2=-1).sqrt(),
                               rtol=1e-7, atol=1e-7)
    if optimizer == "gauss-newton":
        assert method.iterations_done == [1]  # one step is exact for a linear model


def test_4dvar_windows_start_from_the_forecast_of_the_analysis():
    """Disjoint windows of 4: the second is the RTS smoother of its cycles with the first
    window's analysis trajectory at cycle 3 as background and the user's B (times scale)."""
    problem = linear_problem(cycles=8)
    B = torch.tensor([[0.5, 0.1, 0.0], [0.1, 0.4, 0.05], [0.0, 0.05, 0.3]], dtype=DT)
    est = get_method("4dvar", window=4, background_cov=B.tolist(), scale=2.0).run(
        problem, generator=torch.Generator())
    _, first, _ = kalman_reference(problem, problem.prior_mean,
                                   torch.diag(problem.prior_std**2), last=3)
    torch.testing.assert_close(est.mean[:4], first)
    rest = dataclasses.replace(problem, obs=problem.obs[4:], mask=problem.mask[4:])
    _, second, Ps = kalman_reference(rest, first[3], 2.0 * B)
    torch.testing.assert_close(est.mean[4:], second)
    torch.testing.assert_close(est.std[4:], torch.diagonal(Ps, dim1=-2, dim2=-1).sqrt())


def test_4dvar_tracks_lorenz63():
    ds = simulate("lorenz63", cycles=80, seed=1)
    truth = torch.as_tensor(ds["truth"].values)
    problem = AssimilationProblem.from_dataset(ds)

    def rmse(method):
        est = method.run(problem, generator=torch.Generator().manual_seed(0))
        return float(((est.mean - truth) ** 2).mean(-1).sqrt()[30:].mean())

    assert rmse(get_method("4dvar")) < 0.6 * rmse(get_method("3dvar"))
    assert rmse(get_method("4dvar", window=2, hybrid_weight=0.5, hybrid_members=10)) < 0.8


@pytest.mark.parametrize("option", [{"window": 0}, {"shift": 0}, {"window": 2, "shift": 3},
                                    {"iterations": 0}, {"optimizer": "adam"},
                                    {"hybrid_weight": 1.5}, {"scale": -1},
                                    {"hybrid_members": 1}])
def test_bad_4dvar_options(option):
    with pytest.raises(InputError):
        get_method("4dvar", **option)


def test_4dvar_window_longer_than_the_record():
    ds = simulate("lorenz63", cycles=5, seed=0)
    with pytest.raises(InputError, match="longer than the record"):
        get_method("4dvar", window=6)(ds)


def _newest_reference(problem, B, window):
    """DAPPER's ``Var4D`` cycling on a linear model, by Kalman updates: the window ending at
    ``t`` starts at ``c = max(t - window, -1)``; its start state is updated by the
    observation of ``t`` alone through ``H F^(t - c)``; the next background is that analysis
    moved to the next start (the first background: the prior mean with ``B``, as in DAPPER).
    Returns the smoothed means (at the starts, then the last
    window's trajectory), the filtered means (window ends) and the smoothed stds."""
    F, _ = transition(problem)
    R = torch.diag(problem.obs_noise_std**2)
    T = problem.n_cycles
    smoothed, filtered = torch.empty(T, 3, dtype=DT), torch.empty(T, 3, dtype=DT)
    std = torch.empty(T, 3, dtype=DT)
    start, xb, P = -1, problem.prior_mean, B
    xa = Pa = None
    for t in range(T):
        c = max(t - window, -1)
        if xa is not None:
            xb, P = (xa if c == start else F @ xa), B
            start = c
        M = torch.linalg.matrix_power(F, t - c)
        xa, Pa, _ = kalman_update(xb, P, problem.obs[t], problem.mask[t], M, R)
        filtered[t] = M @ xa
        if c >= 0:
            smoothed[c], std[c] = xa, Pa.diagonal().sqrt()
    for k in range(c + 1, T):
        Mk = torch.linalg.matrix_power(F, k - c)
        smoothed[k], std[k] = Mk @ xa, (Mk @ Pa @ Mk.T).diagonal().sqrt()
    return smoothed, filtered, std


@pytest.mark.parametrize("window", [1, 3])
def test_4dvar_with_the_newest_observations_is_dapper_cycling(window):
    """``observations="newest"`` on a linear perfect model (one cycle without observations):
    each window's analysis is the Kalman update of its start by its last observation alone,
    the smoothed estimate the window starts and the filter estimate the window ends."""
    problem = linear_problem(cycles=9, missing=(5,))
    B = torch.tensor([[0.5, 0.1, 0.0], [0.1, 0.4, 0.05], [0.0, 0.05, 0.3]], dtype=DT)
    method = get_method("4dvar", window=window, observations="newest",
                        background_cov=B.tolist(), scale=2.0)
    est = method.run(problem, generator=torch.Generator())
    smoothed, filtered, std = _newest_reference(problem, 2.0 * B, window)
    torch.testing.assert_close(est.mean, smoothed)
    torch.testing.assert_close(est.std, std)
    torch.testing.assert_close(method.filter_estimate.mean, filtered)
    # one Gauss-Newton step is exact (the next one is zero); cycle 5 has nothing to fit
    assert method.iterations_done == [0 if t == 5 else 1 for t in range(9)]
    assert method.shift == 1


@pytest.mark.parametrize("option", [{"observations": "some"},
                                    {"observations": "newest", "window": 3, "shift": 2}])
def test_bad_4dvar_observation_options(option):
    with pytest.raises(InputError):
        get_method("4dvar", **option)


@pytest.mark.parametrize("option", ["window=6", "background_cov=[[1,2,0],[2,1,0],[0,0,1]]",
                                    "observations=newest"])
def test_bad_4dvar_input_on_the_command_line(option, tmp_path, capsys):
    """``videossm assimilate --method 4dvar``: a window longer than the record (5 cycles) and
    a ``B`` that is not positive definite each give one line and exit 2, no output file;
    the valid ``observations=newest`` run writes its posterior."""
    from pyro_videossm.cli import main
    from pyro_videossm.data import write_netcdf

    obs, out = tmp_path / "l63.nc", tmp_path / "post.nc"
    write_netcdf(simulate("lorenz63", cycles=5, seed=0), obs)
    capsys.readouterr()
    code = main(["assimilate", str(obs), "--method", "4dvar", "--set", option, "-o", str(out),
                 "--no-progress"])
    err = capsys.readouterr().err
    if option.startswith("observations"):
        assert code == 0 and out.exists()
        return
    assert code == 2 and not out.exists()
    assert len(err.strip().splitlines()) == 1
    assert ("longer than the record" if "window" in option else "positive definite") in err


def test_4dvar_does_not_backtrack_round_off(monkeypatch):
    """With ``tolerance=0`` every window runs all its Gauss-Newton iterations; once converged
    the step is round-off and the cost may rise by round-off. That is no rise: each iteration
    runs the model once (its linearisation) and never halves the step, so a window of 10
    iterations makes 11 model runs (before, about 26 per window on this record)."""
    import pyro_videossm.filters.var4d as var4d

    runs = []
    plain = var4d.trajectory

    def counted(*args, **kwargs):
        runs.append(1)
        return plain(*args, **kwargs)

    monkeypatch.setattr(var4d, "trajectory", counted)
    obs = simulate("lorenz63", cycles=6, dt=0.01, steps_per_obs=25, obs_noise_std=2.0**0.5,
                   seed=0)
    method = get_method("4dvar", window=1, observations="newest", iterations=10,
                        tolerance=0.0, scale=0.1)
    method(obs, seed=0)
    assert method.iterations_done == [10] * 6
    assert len(runs) == 6 * 11
