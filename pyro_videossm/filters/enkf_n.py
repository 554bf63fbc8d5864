"""Finite-size ensemble Kalman filter (EnKF-N): the ETKF with the inflation inferred each cycle.

The EnKF-N (Bocquet 2011; Bocquet, Raanes & Hannart 2015) treats the forecast mean and
covariance as unknown, integrates them out under a Jeffreys hyperprior, and so accounts for
the sampling error of a finite ensemble without a tuned inflation. Its dual form reduces the
analysis to a scalar optimisation over the prior inflation ``l1`` of the anomalies: with
``Y R^{-1/2} = V diag(s) U^T`` (normalised observation anomalies, members on the rows) and
``du = U^T R^{-1/2} (y - H xbar)``, minimise::

    J(l1) = sum_i du_i^2 / (l1^2 s_i^2 + N - 1) + eN / l1^2 + cL log(l1^2)

with ``eN = (N+1)/N`` and ``cL = N/(N-1)`` (the Legendre dual of the primal
``(N/2) log(eN + |w|^2)`` prior term, divided by ``N - 1``), then take the ETKF update of the
anomalies inflated by ``l1``: ``zeta = (N-1) / l1^2`` replaces ``N - 1`` in the
ensemble-space precision ``Y R^{-1} Y^T + zeta I``. With ``mode_correction`` the hyperprior's
mode is moved towards ``l1 = 1`` as the observations become uninformative (``I - KH`` near
the identity), as in DAPPER's ``hyperprior_coeffs`` (after Bocquet, Raanes & Hannart 2015):
without it, an unobserved ensemble is slightly deflated every cycle.

``J`` may have several local minima (Bocquet 2011, Fig. 2), so it is minimised globally in
``u = log(l1^2)``: a coarse grid, then a fine grid around the best point and a parabolic
step. Everything is batched torch on the problem's device.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from pyro_videossm.assimilate import (
    AssimilationMethod,
    AssimilationProblem,
    Estimate,
    register_method,
)
from pyro_videossm.filters.ensemble import (
    cycle_ensemble,
    mean_preserving_basis,
    obs_error_variance,
    random_mean_preserving_rotation,
    with_ensemble_innovations,
)
from pyro_videossm.filters.options import as_bool, as_int

#: Search range of ``u = log(l1^2)``: inflation factors ``l1`` from ``e^-8`` to ``e^8``.
_U_RANGE = (-16.0, 16.0)
_COARSE, _FINE = 321, 201


def hyperprior_coefficients(s: Tensor, members: int, mode_correction: bool = True
                            ) -> tuple[Tensor, Tensor]:
    """``(eN, cL)`` of the dual cost for singular values ``s`` of ``Y R^{-1/2}``.

    Without correction ``eN = (N+1)/N`` and ``cL = N/(N-1)``: the mode of the hyperprior
    term ``eN / l1^2 + cL log l1^2`` is ``l1^2 = eN / cL < 1``. The correction multiplies
    ``cL`` and divides ``eN`` by ``sqrt(mode^(I-KH))`` with ``I-KH`` the mean of
    ``(N-1) / (s_i^2 + N - 1)`` over the ``N`` ensemble directions, so that the mode is 1
    when the observations carry no information.
    """
    N1 = members - 1
    eN = torch.as_tensor((members + 1) / members, dtype=s.dtype, device=s.device)
    cL = torch.as_tensor(members / N1, dtype=s.dtype, device=s.device)
    if not mode_correction:
        return eN, cL
    s2 = torch.zeros(members, dtype=s.dtype, device=s.device)
    k = min(members, s.shape[-1])
    s2[:k] = s[:k] ** 2
    i_kh = (N1 / (s2 + N1)).mean()
    mc = (eN / cL) ** (0.5 * i_kh)
    return eN / mc, cL * mc


def dual_cost(u: Tensor, s2: Tensor, du2: Tensor, members: int, eN: Tensor, cL: Tensor
              ) -> Tensor:
    """``J`` at ``u = log(l1^2)`` (any shape ``(...)``), for ``s^2``, ``du^2`` of shape ``(K,)``."""
    l2 = u.exp().unsqueeze(-1)
    return (du2 / (l2 * s2 + members - 1)).sum(-1) + eN * (-u).exp() + cL * u


def optimal_inflation(s: Tensor, du: Tensor, members: int, eN: Tensor, cL: Tensor) -> Tensor:
    """The inflation ``l1`` (scalar tensor) minimising :func:`dual_cost` over ``l1 > 0``."""
    s2, du2 = s**2, du**2
    coarse = torch.linspace(*_U_RANGE, _COARSE, dtype=s.dtype, device=s.device)
    i = dual_cost(coarse, s2, du2, members, eN, cL).argmin()
    step = coarse[1] - coarse[0]
    fine = coarse[i] + step * torch.linspace(-1.0, 1.0, _FINE, dtype=s.dtype, device=s.device)
    J = dual_cost(fine, s2, du2, members, eN, cL)
    j = J.argmin().clamp(1, _FINE - 2)
    h = fine[1] - fine[0]
    jm, j0, jp = J[j - 1], J[j], J[j + 1]
    curvature = jm - 2 * j0 + jp
    shift = torch.where(curvature > 0, 0.5 * (jm - jp) / curvature.clamp_min(1e-300),
                        torch.zeros_like(curvature)).clamp(-1.0, 1.0)
    return (0.5 * (fine[j] + shift * h)).exp()


def enkf_n_transform(Y: Tensor, dy: Tensor, *, mode_correction: bool = True
                     ) -> tuple[Tensor, Tensor, Tensor]:
    """Ensemble-space EnKF-N update for normalised anomalies ``Y = A_obs R^{-1/2} (N, P)``
    (members on the rows) and innovation ``dy = R^{-1/2} (y - H xbar) (P,)``.

    Returns the mean weights ``w (N,)``, the symmetric transform ``T (N, N)`` (analysis
    members ``xbar + (w + T_n) A``) and the inflation ``l1``.
    """
    N = Y.shape[0]
    _, s, Uh = torch.linalg.svd(Y, full_matrices=False)  # Y = V diag(s) Uh
    du = Uh @ dy
    eN, cL = hyperprior_coefficients(s, N, mode_correction)
    l1 = optimal_inflation(s, du, N, eN, cL)
    zeta = (N - 1) / l1**2
    eye = torch.eye(N, dtype=Y.dtype, device=Y.device)
    lam, V = torch.linalg.eigh(Y @ Y.T + zeta * eye)
    Vt = V.T
    w = (V / lam) @ (Vt @ (Y @ dy))
    T = math.sqrt(N - 1) * ((V * lam.rsqrt()) @ Vt)
    return w, T, l1


def enkf_n_analysis(ens: Tensor, obs: Tensor, precision: Tensor, *,
                    mode_correction: bool = True) -> tuple[Tensor, Tensor]:
    """One EnKF-N (dual, symmetric square root) analysis of ``ens (N, D)``.

    ``obs (D,)`` is observed where ``precision (D,)`` (``R^{-1}`` diagonal, 0 where missing)
    is positive. Returns the analysis ``(N, D)`` and the inflation ``l1`` (scalar tensor).
    """
    mean = ens.mean(0)
    A = ens - mean
    root = precision.sqrt()
    dy = torch.where(precision > 0, obs - mean, torch.zeros_like(mean)) * root
    w, T, l1 = enkf_n_transform(A * root, dy, mode_correction=mode_correction)
    return mean + (w + T) @ A, l1


def run_enkf_n(problem: AssimilationProblem, *, members: int, rotate: bool = False,
               mode_correction: bool = True, static_start: bool = True,
               generator: torch.Generator, progress: bool = False
               ) -> tuple[Tensor, Tensor, Tensor]:
    """EnKF-N over all cycles: analyses ``(T, N, D)``, inflations ``l1`` ``(T,)`` and the
    forecasts ``(T, N, D)`` (for the innovation statistics).

    Each cycle: one batched forecast of the members (with model noise), then
    :func:`enkf_n_analysis` and, with ``rotate``, a random mean-preserving rotation. With
    ``static_start`` the first analysis is :func:`static_analysis_ensemble` (inflation 1).
    """
    precision = problem.mask.to(problem.dtype) / obs_error_variance(problem)
    inflation = torch.ones(problem.n_cycles, dtype=problem.dtype, device=problem.device)
    basis = mean_preserving_basis(members, device=problem.device, dtype=problem.dtype)

    def analyse(t: int, ens: Tensor) -> Tensor:
        ens, inflation[t] = enkf_n_analysis(ens, problem.obs[t], precision[t],
                                            mode_correction=mode_correction)
        if rotate:
            R = random_mean_preserving_rotation(basis, generator)
            ens = ens.mean(0) + R @ (ens - ens.mean(0))
        return ens

    out, forecasts = cycle_ensemble(problem, members, generator, analyse,
                                    static_start=static_start, progress=progress,
                                    desc="enkf-n")
    return out, inflation, forecasts


@register_method
class EnKFNMethod(AssimilationMethod):
    """``enkf-n``: finite-size ETKF (dual form); the inflation is estimated, not tuned.

    Options:
        members: ensemble size ``N`` (>= 2).
        rotate: random mean-preserving rotation of the analysis anomalies each cycle.
        mode_correction: move the hyperprior mode towards no inflation for weak
            observations (see :func:`hyperprior_coefficients`).
        static_start: first analysis from the climatological covariance (as ``etkf``).

    The inflation ``l1`` of each cycle of the last run is kept in ``self.inflation_factors``.
    """

    name = "enkf-n"
    kind = "filter"

    def __init__(self, members: int = 20, rotate: bool = False,
                 mode_correction: bool = True, static_start: bool = True):
        self.members = as_int("members", members, minimum=2)
        self.rotate = as_bool("rotate", rotate)
        self.mode_correction = as_bool("mode_correction", mode_correction)
        self.static_start = as_bool("static_start", static_start)
        self.inflation_factors: Tensor | None = None

    def run(self, problem: AssimilationProblem, *, generator: torch.Generator,
            progress: bool = False) -> Estimate:
        with torch.no_grad():
            ens, self.inflation_factors, forecasts = run_enkf_n(
                problem, members=self.members, rotate=self.rotate,
                mode_correction=self.mode_correction, static_start=self.static_start,
                generator=generator, progress=progress)
        return with_ensemble_innovations(Estimate.from_ensemble(ens), forecasts, problem)
