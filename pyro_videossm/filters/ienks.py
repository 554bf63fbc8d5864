"""Iterative ensemble Kalman smoother (iEnKS; Bocquet & Sakov 2014), square-root version.

Data assimilation window (DAW) of ``lag`` ``L`` cycles, shifted by one cycle (``S = 1``),
each observation assimilated once (the "single DA" variant). At cycle ``t`` the ensemble
``E0 (N, D)`` sits at the window start ``s = t - L`` (the prior time ``-1`` while ``t < L``);
its members are ``x0 + (w + T_n) X0`` for the mean ``x0``, anomalies ``X0`` (members on the
rows) and ensemble-space coordinates ``w (N,)``. The cost::

    J(w) = (N-1)/2 |w|^2 + 1/2 |y_t - H M_{s->t}(x0 + w X0)|^2_R

is minimised by Gauss-Newton in ensemble space: each iteration moves the ensemble
``x0 + (w + T) X0`` through the window (one batched forecast of all members), takes the
observation anomalies ``Y`` and "de-conditions" them by the current transform,
``Y0 = T^{-1} Y`` (the sensitivities of the observations to ``w``), and steps::

    H = Y0 R^{-1} Y0^T + (N-1) I,   dw = H^{-1} (Y0 R^{-1} (y_t - ybar) - (N-1) w),
    T = sqrt(N-1) H^{-1/2}

until ``|dw|^2 < tolerance * N``. For a linear model the first step is exact (the ETKF /
Kalman smoother in ensemble space) and the second is zero. With ``mda`` (multiple data
assimilation) each of the ``iterations`` passes assimilates ``y_t`` with ``R`` inflated by
the number of passes, as ETKF updates of the current ensemble (``w += w_c T``,
``T <- T_c T``), without a convergence test.

The smoothed ensemble at the window start is the posterior for cycle ``s``; it is inflated
and (optionally) rotated, then moved one cycle (with model noise) to start the next window.
After the last cycle the final window's smoothed ensemble is moved to the end of the record,
which gives the last ``L`` cycles (smoothed with every observation). The filter estimate at
the window end is the last forecast corrected by the linearised final increment (as
DAPPER's ``'a'`` statistic: for one iteration it is the ETKF analysis).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor
from tqdm.auto import tqdm

from pyro_videossm.assimilate import (
    AssimilationMethod,
    AssimilationProblem,
    Estimate,
    register_method,
)
from pyro_videossm.filters.ensemble import (
    initial_ensemble,
    mean_preserving_basis,
    obs_error_variance,
    post_process,
    random_mean_preserving_rotation,
    with_ensemble_innovations,
)
from pyro_videossm.filters.options import as_bool, as_float, as_int


@dataclass
class IEnKSRun:
    """Output of :func:`run_ienks`. Shapes: ``T`` cycles, ``N`` members, ``D`` components.

    Attributes:
        smoothed: ``(T, N, D)`` ensemble at each cycle given the observations up to ``L``
            cycles later (all of them for the last ``L`` cycles).
        filtered: ``(T, N, D)`` analysis at each window end (the filter estimate).
        model_runs: ``(T,)`` forecasts through the window at each cycle (Gauss-Newton
            iterations, the last one the convergence check).
        forecasts: ``(T, N, D)`` the first forecast of each window to its end (from the
            observations before it): the innovation statistics' forecast ensemble.
    """

    smoothed: Tensor
    filtered: Tensor
    model_runs: Tensor
    forecasts: Tensor


def _move(problem: AssimilationProblem, ens: Tensor, cycles: int, *, noise: bool = False,
          generator: torch.Generator | None = None) -> Tensor:
    for _ in range(cycles):
        ens = problem.forecast(ens, noise=noise, generator=generator)
    return ens


def run_ienks(problem: AssimilationProblem, *, members: int, lag: int = 1,
              iterations: int = 10, tolerance: float = 1e-4, mda: bool = False,
              inflation: float = 1.0, rotate: bool = False, generator: torch.Generator,
              progress: bool = False) -> IEnKSRun:
    """The iEnKS (see the module docstring) over all cycles of ``problem``."""
    N, T, D = members, problem.n_cycles, problem.state_dim
    dtype, device = problem.dtype, problem.device
    N1 = N - 1
    precision = problem.mask.to(dtype) / obs_error_variance(problem)  # (T, D)
    obs = torch.where(problem.mask, problem.obs, torch.zeros((), dtype=dtype, device=device))
    eye = torch.eye(N, dtype=dtype, device=device)
    basis = mean_preserving_basis(N, device=device, dtype=dtype) if rotate else None
    smoothed = torch.empty(T, N, D, dtype=dtype, device=device)
    filtered = torch.empty(T, N, D, dtype=dtype, device=device)
    forecasts = torch.empty_like(filtered)
    runs = torch.zeros(T, dtype=torch.long)
    alpha = float(iterations) if mda else 1.0
    E = initial_ensemble(problem, N, generator)  # at the window start
    start = -1
    for t in tqdm(range(T), disable=not progress, desc="ienks", leave=False):
        cycles = t - start
        x0 = E.mean(0)
        X0 = E - x0
        w = torch.zeros(N, dtype=dtype, device=device)
        Tm, Tinv = eye, eye
        weight = precision[t] / alpha
        for it in range(iterations):
            Ef = _move(problem, x0 + (w + Tm) @ X0, cycles)
            if it == 0:
                forecasts[t] = Ef
            runs[t] = it + 1
            ybar = Ef.mean(0)
            Y = Ef - ybar  # state anomalies at the window end (observed where weight > 0)
            dy = obs[t] - ybar
            T_old, Tinv_old = Tm, Tinv
            if mda:
                hessian = (Y * weight) @ Y.T + N1 * eye
                lam, V = torch.linalg.eigh(hessian)
                w_c = (V / lam) @ (V.T @ (Y @ (weight * dy)))
                dw = w_c @ Tm
                Tm = math.sqrt(N1) * ((V * lam.rsqrt()) @ V.T) @ Tm
                Tinv = torch.linalg.inv(Tm)
            else:
                Y0 = Tinv @ Y
                hessian = (Y0 * weight) @ Y0.T + N1 * eye
                lam, V = torch.linalg.eigh(hessian)
                grad = Y0 @ (weight * dy) - N1 * w
                dw = (V / lam) @ (V.T @ grad)
                Tm = math.sqrt(N1) * ((V * lam.rsqrt()) @ V.T)
                Tinv = ((V * lam.sqrt()) @ V.T) / math.sqrt(N1)
            w = w + dw
            if not mda and float(dw @ dw) < tolerance * N:
                break
        # linearised increment of the last forecast: start increment (1 dw^T + T - T_old) X0
        # maps to (1 dw^T + T - T_old) T_old^{-1} Y at the window end
        filtered[t] = Ef + (dw + Tm - T_old) @ (Tinv_old @ Y)
        E = x0 + (w + Tm) @ X0  # smoothed ensemble at the window start
        full = t - lag >= -1
        if full and start >= 0:
            smoothed[start] = E
        last_smoothed, last_start = E, start
        R = random_mean_preserving_rotation(basis, generator) if rotate else None
        E = post_process(E, inflation, R)
        if full:
            E = problem.forecast(E, noise=True, generator=generator)
            start += 1
    # the final window: its smoothed start ensemble moved to the end of the record
    E = last_smoothed
    for s in range(last_start + 1, T):
        E = problem.forecast(E, noise=True, generator=generator)
        smoothed[s] = E
    return IEnKSRun(smoothed=smoothed, filtered=filtered, model_runs=runs, forecasts=forecasts)


@register_method
class IEnKSMethod(AssimilationMethod):
    """``ienks``: iterative ensemble Kalman smoother (square-root, Gauss-Newton, lag ``L``,
    shift 1). The posterior is the smoothed (lagged) ensemble; the window-end analyses of the
    last run are kept in ``self.filter_estimate`` and the model runs per cycle in
    ``self.model_runs``.

    Options:
        members: ensemble size ``N`` (>= 2).
        lag: window length ``L`` in cycles (>= 1); cycle ``t`` is estimated from the
            observations up to ``t + L``.
        iterations: most Gauss-Newton iterations per cycle (>= 1); with ``mda`` the number
            of passes.
        tolerance: stop when ``|dw|^2 < tolerance * N``.
        mda: multiple data assimilation instead of Gauss-Newton.
        inflation: multiplicative inflation of the smoothed anomalies before the shift.
        rotate: random mean-preserving rotation of the smoothed anomalies before the shift.

    Defaults (DAPPER's Lorenz-63 setting): 10 members, lag 1, inflation 1.02, rotations.
    """

    name = "ienks"
    kind = "smoother"

    def __init__(self, members: int = 10, lag: int = 1, iterations: int = 10,
                 tolerance: float = 1e-4, mda: bool = False, inflation: float = 1.02,
                 rotate: bool = True):
        self.members = as_int("members", members, minimum=2)
        self.lag = as_int("lag", lag, minimum=1)
        self.iterations = as_int("iterations", iterations, minimum=1)
        self.tolerance = as_float("tolerance", tolerance, minimum=0)
        self.mda = as_bool("mda", mda)
        self.inflation = as_float("inflation", inflation, minimum=0, exclusive=True)
        self.rotate = as_bool("rotate", rotate)
        self.filter_estimate: Estimate | None = None
        self.model_runs: Tensor | None = None

    def run(self, problem: AssimilationProblem, *, generator: torch.Generator,
            progress: bool = False) -> Estimate:
        with torch.no_grad():
            res = run_ienks(problem, members=self.members, lag=self.lag,
                            iterations=self.iterations, tolerance=self.tolerance,
                            mda=self.mda, inflation=self.inflation, rotate=self.rotate,
                            generator=generator, progress=progress)
        self.filter_estimate = Estimate.from_ensemble(res.filtered)
        self.model_runs = res.model_runs
        return with_ensemble_innovations(Estimate.from_ensemble(res.smoothed), res.forecasts,
                                         problem)
