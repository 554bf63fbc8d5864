"""Kalman filter and Rauch-Tung-Striebel smoother: batched torch, any device, with masks.

Core functions work on explicit matrices for the linear-Gaussian state-space model::

    x_0 ~ N(m0, P0)
    x_t = F x_{t-1} + w_t,   w_t ~ N(0, Q)          t = 1..T
    y_t = H x_t + v_t,       v_t ~ N(0, R)          (entries with mask False are missing)

(the same convention as :class:`pyro.distributions.GaussianHMM`: the prior is one step before
the first observation). Every tensor may carry leading batch dimensions ``*B``.

The methods ``kf`` and ``rts`` apply them to an :class:`AssimilationProblem`: exactly for
linear dynamics, and as the extended Kalman filter / smoother for nonlinear ones, with the
cycle's forecast linearised at the analysis mean by reverse-mode autodiff through the RK4
integrator.
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
from pyro_videossm.assimilate.consistency import gaussian_nis
from pyro_videossm.filters.ensemble import obs_error_variance
from pyro_videossm.filters.options import as_float

_LOG_2PI = math.log(2 * math.pi)


@dataclass
class KalmanResult:
    """Output of :func:`kalman_filter`. Shapes: batch ``*B``, ``T`` cycles, state ``D``.

    Attributes:
        filtered_means: ``(*B, T, D)`` mean of ``x_t`` given ``y_1..y_t``.
        filtered_covs: ``(*B, T, D, D)``.
        predicted_means: ``(*B, T, D)`` mean of ``x_t`` given ``y_1..y_{t-1}``.
        predicted_covs: ``(*B, T, D, D)``.
        log_likelihood: ``(*B,)`` ``log p(y_1..y_T)`` over the observed entries.
    """

    filtered_means: Tensor
    filtered_covs: Tensor
    predicted_means: Tensor
    predicted_covs: Tensor
    log_likelihood: Tensor


def _symmetrise(P: Tensor) -> Tensor:
    return 0.5 * (P + P.transpose(-1, -2))


def kalman_predict(mean: Tensor, cov: Tensor, F: Tensor, Q: Tensor) -> tuple[Tensor, Tensor]:
    """Forecast step: ``(F m, F P F^T + Q)`` for ``mean (*B, D)``, ``cov (*B, D, D)``."""
    mean = (F @ mean.unsqueeze(-1)).squeeze(-1)
    cov = _symmetrise(F @ cov @ F.transpose(-1, -2) + Q)
    return mean, cov


def kalman_update(mean: Tensor, cov: Tensor, y: Tensor, mask: Tensor | None, H: Tensor,
                  R: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Analysis step with missing observations.

    Args:
        mean, cov: forecast ``(*B, D)``, ``(*B, D, D)``.
        y: observation ``(*B, P)`` (values where ``mask`` is False are ignored, NaN allowed).
        mask: ``(*B, P)`` bool, True where observed; None means all observed.
        H: ``(*B, P, D)`` observation matrix; R: ``(*B, P, P)`` observation error covariance.

    Returns:
        analysis mean ``(*B, D)``, covariance ``(*B, D, D)`` (Joseph form) and the
        log-likelihood increment ``log p(y_t | y_1..y_{t-1})`` ``(*B,)`` of the observed
        entries. Missing entries become dummy observations ``0 = 0 x + N(0, 1)``, which leave
        the analysis unchanged; their ``-log(2 pi) / 2`` is added back to the likelihood.
        No data-dependent shapes, so the step batches over masks and runs without host syncs.
    """
    if mask is None:
        mask = torch.ones(y.shape, dtype=torch.bool, device=y.device)
    m = mask.to(mean.dtype)
    y = torch.where(mask, y, torch.zeros((), dtype=y.dtype, device=y.device))
    Hm = H * m.unsqueeze(-1)
    Rm = R * (m.unsqueeze(-1) * m.unsqueeze(-2)) + torch.diag_embed(1.0 - m)
    innov = y - (Hm @ mean.unsqueeze(-1)).squeeze(-1)
    PHt = cov @ Hm.transpose(-1, -2)  # (*B, D, P)
    S = _symmetrise(Hm @ PHt + Rm)
    L, _ = torch.linalg.cholesky_ex(S)
    Kt = torch.cholesky_solve(PHt.transpose(-1, -2), L)  # (*B, P, D) = K^T
    K = Kt.transpose(-1, -2)
    mean = mean + (K @ innov.unsqueeze(-1)).squeeze(-1)
    I_KH = torch.eye(mean.shape[-1], dtype=mean.dtype, device=mean.device) - K @ Hm
    cov = _symmetrise(I_KH @ cov @ I_KH.transpose(-1, -2) + K @ Rm @ Kt)
    z = torch.linalg.solve_triangular(L, innov.unsqueeze(-1), upper=False).squeeze(-1)
    logdet = 2.0 * torch.log(torch.diagonal(L, dim1=-2, dim2=-1)).sum(-1)
    loglik = -0.5 * ((z**2).sum(-1) + logdet + m.sum(-1) * _LOG_2PI)
    return mean, cov, loglik


def _at(A: Tensor, t: int, time_varying: bool) -> Tensor:
    """``A`` at cycle ``t`` when it has a time axis at dim -3 (size T or 1), else ``A``."""
    if not time_varying:
        return A
    return A[..., t if A.shape[-3] > 1 else 0, :, :]


def kalman_filter(obs: Tensor, F: Tensor, Q: Tensor, H: Tensor, R: Tensor, m0: Tensor,
                  P0: Tensor, mask: Tensor | None = None, *,
                  progress: bool = False) -> KalmanResult:
    """Kalman filter over ``T`` cycles (see the module docstring for the model).

    Args:
        obs: ``(*B, T, P)`` observations (entries with ``mask`` False are ignored).
        F, Q: ``(*B, D, D)``; H: ``(*B, P, D)``; R: ``(*B, P, P)``. A matrix with one more
            dimension than ``obs`` is time-varying, its axis -3 indexing the cycle
            (``F[..., t, :, :]`` maps ``x_{t-1}`` to ``x_t``, cycles counted from 0).
        m0, P0: prior ``(*B, D)``, ``(*B, D, D)`` of the state one step before ``obs[..., 0, :]``.
        mask: ``(*B, T, P)`` bool, True where observed (None: all observed).
        progress: show a progress bar over cycles.

    Returns:
        :class:`KalmanResult` with filtered and one-step predicted moments and the
        log-likelihood of the observed entries.
    """
    T = obs.shape[-2]
    tv = {name: A.dim() == obs.dim() + 1 for name, A in (("F", F), ("Q", Q), ("H", H),
                                                          ("R", R))}
    mean, cov = m0, P0
    fm, fc, pm, pc, ll = [], [], [], [], []
    for t in tqdm(range(T), disable=not progress, desc="kalman filter", leave=False):
        mean, cov = kalman_predict(mean, cov, _at(F, t, tv["F"]), _at(Q, t, tv["Q"]))
        pm.append(mean)
        pc.append(cov)
        mask_t = None if mask is None else mask[..., t, :]
        mean, cov, inc = kalman_update(mean, cov, obs[..., t, :], mask_t, _at(H, t, tv["H"]),
                                       _at(R, t, tv["R"]))
        fm.append(mean)
        fc.append(cov)
        ll.append(inc)
    def stack(xs, dim):  # the first cycles may have fewer batch dims than later ones
        return torch.stack(torch.broadcast_tensors(*xs), dim)

    return KalmanResult(
        filtered_means=stack(fm, -2), filtered_covs=stack(fc, -3),
        predicted_means=stack(pm, -2), predicted_covs=stack(pc, -3),
        log_likelihood=stack(ll, -1).sum(-1),
    )


def rts_smoother(filtered_means: Tensor, filtered_covs: Tensor, predicted_means: Tensor,
                 predicted_covs: Tensor, F: Tensor) -> tuple[Tensor, Tensor]:
    """Rauch-Tung-Striebel backward pass: smoothed means ``(*B, T, D)`` and covs ``(*B, T, D, D)``.

    Takes a :func:`kalman_filter` result's moments and the transition ``F``: ``(*B, D, D)``,
    or time-varying ``(*B, T, D, D)`` (same number of dims as ``filtered_covs``) with
    ``F[..., t, :, :]`` mapping ``x_{t-1}`` to ``x_t``. For the extended smoother the
    predicted means are the nonlinear forecasts of the filtered means and ``F`` the Jacobians.
    """
    T = filtered_means.shape[-2]
    time_varying = F.dim() == filtered_covs.dim()
    ms, Ps = filtered_means[..., T - 1, :], filtered_covs[..., T - 1, :, :]
    means, covs = [ms], [Ps]
    for t in range(T - 2, -1, -1):
        Pf = filtered_covs[..., t, :, :]
        Pp = predicted_covs[..., t + 1, :, :]
        Ft = _at(F, t + 1, time_varying)
        # G = Pf F^T Pp^+: a pseudo-inverse, since without process noise the covariance of a
        # dissipative system collapses onto the unstable directions (Pp singular).
        G = Pf @ Ft.transpose(-1, -2) @ torch.linalg.pinv(Pp, hermitian=True, rtol=1e-12)
        Gt = G.transpose(-1, -2)
        ms = filtered_means[..., t, :] + (
            G @ (ms - predicted_means[..., t + 1, :]).unsqueeze(-1)).squeeze(-1)
        Ps = _symmetrise(Pf + G @ (Ps - Pp) @ Gt)
        means.append(ms)
        covs.append(Ps)
    return torch.stack(means[::-1], -2), torch.stack(covs[::-1], -3)


# ----------------------------------------------------------------------------------------
# Methods on an AssimilationProblem: exact KF/RTS for linear dynamics, EKF/ERTS otherwise.


def linearised_forecast(problem: AssimilationProblem, mean: Tensor) -> tuple[Tensor, Tensor,
                                                                             Tensor]:
    """Forecast ``mean (D,)`` one cycle; return ``(forecast (D,), F (D, D), Q (D, D))``.

    ``F`` is the Jacobian of the cycle's RK4 map at ``mean``, by reverse-mode autodiff through
    the integrator: the batched forecast moves ``D`` copies of the mean and one backward
    pass of ``sum_i y_i[i]`` gives row ``i`` of ``F`` on copy ``i`` (about twice as fast as
    ``torch.func.jacrev``'s vmap, same values). With process noise (variance ``q^2 dt``
    added after each of the cycle's steps) ``Q`` is that noise carried to the end of the
    cycle by the Jacobians of the remaining steps, ``q^2 dt sum_j G_j G_j^T``, from the same
    backward pass; exact for linear dynamics.
    """
    D = mean.shape[-1]
    q2dt = problem.process_noise_std**2 * problem.dt
    system, dt, n = problem.system, problem.dt, problem.steps_per_obs
    with torch.enable_grad():
        copies = mean.detach().expand(D, D).clone().requires_grad_(True)
        if q2dt == 0:
            out = problem.forecast(copies)
            (F,) = torch.autograd.grad(torch.diagonal(out).sum(), copies)
            Q = torch.zeros(D, D, dtype=mean.dtype, device=mean.device)
        else:
            increments = torch.zeros(D, n, D, dtype=mean.dtype, device=mean.device,
                                     requires_grad=True)
            out = copies
            for j in range(n):
                out = system.step(out, dt) + increments[:, j]
            F, G = torch.autograd.grad(torch.diagonal(out).sum(), (copies, increments))
            Q = q2dt * torch.einsum("ajb,cjb->ac", G, G)
    return out[0].detach(), F, Q


def extended_kalman_filter(problem: AssimilationProblem, *, inflation: float = 1.0,
                           jitter: float = 0.0, progress: bool = False
                           ) -> tuple[KalmanResult, Tensor]:
    """(Extended) Kalman filter on a problem; returns the result and the Jacobians ``(T, D, D)``.

    Forecast covariance ``inflation * F P F^T + Q + jitter * I``; observations of the
    components selected by ``problem.mask`` with variance :func:`obs_error_variance`.
    The prior is ``N(prior_mean, diag(prior_std^2))``.
    """
    T, D = problem.n_cycles, problem.state_dim
    eye = torch.eye(D, dtype=problem.dtype, device=problem.device)
    H = eye
    R = torch.diag(obs_error_variance(problem))
    mean = problem.prior_mean
    cov = torch.diag(problem.prior_std**2)
    fm, fc, pm, pc, Fs, ll = [], [], [], [], [], []
    for t in tqdm(range(T), disable=not progress, desc="kalman", leave=False):
        mean, F, Q = linearised_forecast(problem, mean)
        cov = _symmetrise(inflation * (F @ cov @ F.T) + Q + jitter * eye)
        pm.append(mean)
        pc.append(cov)
        Fs.append(F)
        mean, cov, inc = kalman_update(mean, cov, problem.obs[t], problem.mask[t], H, R)
        fm.append(mean)
        fc.append(cov)
        ll.append(inc)
    result = KalmanResult(
        filtered_means=torch.stack(fm), filtered_covs=torch.stack(fc),
        predicted_means=torch.stack(pm), predicted_covs=torch.stack(pc),
        log_likelihood=torch.stack(ll).sum(),
    )
    return result, torch.stack(Fs)


def _with_innovations(est: Estimate, result: KalmanResult,
                      problem: AssimilationProblem) -> Estimate:
    """Attach the filter's innovation statistics (exact forecast moments) to ``est``."""
    est.nis, est.nis_dof = gaussian_nis(result.predicted_means, result.predicted_covs,
                                        problem.obs, problem.mask, obs_error_variance(problem))
    return est


def _diag_std(covs: Tensor) -> Tensor:
    return torch.diagonal(covs, dim1=-2, dim2=-1).clamp_min(0).sqrt()


@register_method
class KalmanFilterMethod(AssimilationMethod):
    """``kf``: the Kalman filter (extended KF for nonlinear dynamics).

    Options:
        inflation: multiplicative inflation of ``F P F^T`` each cycle (1 = none).
        jitter: variance added to every component of the forecast covariance each cycle
            (additive inflation): keeps the EKF stable on chaotic systems without model noise.
    """

    name = "kf"
    kind = "filter"

    def __init__(self, inflation: float = 1.0, jitter: float = 0.0):
        self.inflation = as_float("inflation", inflation, minimum=0, exclusive=True)
        self.jitter = as_float("jitter", jitter, minimum=0)
        #: ``log p(observations)`` of the last run (Gaussian approximation for nonlinear systems)
        self.log_likelihood: Tensor | None = None

    def _filter(self, problem: AssimilationProblem, progress: bool):
        with torch.no_grad():
            result, F = extended_kalman_filter(problem, inflation=self.inflation,
                                               jitter=self.jitter, progress=progress)
        self.log_likelihood = result.log_likelihood
        return result, F

    def run(self, problem: AssimilationProblem, *, generator: torch.Generator,
            progress: bool = False) -> Estimate:
        result, _ = self._filter(problem, progress)
        return _with_innovations(
            Estimate(mean=result.filtered_means, std=_diag_std(result.filtered_covs)),
            result, problem)


@register_method
class RTSSmootherMethod(KalmanFilterMethod):
    """``rts``: Rauch-Tung-Striebel smoother on the (extended) Kalman filter; options as ``kf``."""

    name = "rts"
    kind = "smoother"

    def run(self, problem: AssimilationProblem, *, generator: torch.Generator,
            progress: bool = False) -> Estimate:
        result, F = self._filter(problem, progress)
        means, covs = rts_smoother(result.filtered_means, result.filtered_covs,
                                   result.predicted_means, result.predicted_covs, F)
        return _with_innovations(Estimate(mean=means, std=_diag_std(covs)), result, problem)
