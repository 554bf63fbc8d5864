"""Ensemble Kalman filters: stochastic EnKF, square-root ETKF and the local LETKF.

Each cycle moves the ensemble ``(N, D)`` with one batched forecast call and updates it with
the observed components (``problem.mask``). Inside a cycle everything is batched: the
members, and for the LETKF the local analyses of all grid points at once. Options shared by
the methods:

- ``members``: ensemble size ``N``;
- ``inflation``: multiplicative inflation of the analysis anomalies (DAPPER's ``infl``);
- ``rotate``: mix members with a random mean-preserving orthogonal rotation after each
  analysis (DAPPER's ``rot``), which keeps the mean and covariance;
- ``localization``: radius in grid points (see :mod:`pyro_videossm.filters.localization`);
  for ``enkf`` a Schur-product (B-) localisation of the forecast covariance, for ``etkf`` the
  LETKF with R-localisation; ``cyclic`` (default: True for Lorenz-96) wraps distances;
- ``static_start``: the first analysis uses the full-rank climatological covariance and
  draws the members from it (:func:`static_analysis_ensemble`) instead of updating the
  forecast of the prior draws with their rank-deficient sample covariance;
- ``spinup``, ``spinup_inflation``: during the first ``spinup`` cycles the inflation is at
  least ``spinup_inflation``. From a climatological prior a small tuned inflation (1.013 for
  the ETKF with 24 members on Lorenz-96) can leave the filter stuck at errors above its
  attainable level and then diverge (4 of 10 seeds without spin-up, 0 of 10 with 100 cycles
  at 1.05, measured); the spin-up gets it to its regime first. The default 100 cycles is the
  standard burn-in, so scores after burn-in are of the filter with the inflation asked for.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from pyro_videossm.assimilate import (
    AssimilationMethod,
    AssimilationProblem,
    Estimate,
    register_method,
)
from pyro_videossm.errors import InputError
from pyro_videossm.filters.ensemble import (
    check_ensemble_options,
    cycle_ensemble,
    mean_preserving_basis,
    obs_error_variance,
    post_process,
    random_mean_preserving_rotation,
    with_ensemble_innovations,
)
from pyro_videossm.filters.localization import (
    check_radius,
    is_cyclic,
    local_windows,
    taper_matrix,
)
from pyro_videossm.filters.options import as_bool, as_float, as_int
from pyro_videossm.filters.robust import check_likelihood, default_param, reweighting


def ensemble_transform(Y: Tensor, innovation: Tensor, weight: Tensor) -> Tensor:
    """ETKF transform in ensemble space (Hunt et al. 2007), batched over leading dims.

    Args:
        Y: ``(..., N, P)`` observation-space anomalies of the forecast (members on rows).
        innovation: ``(..., P)`` observation minus forecast mean in observation space.
        weight: ``(..., P)`` diagonal of ``R^{-1}``, 0 for missing observations and
            multiplied by the localisation taper for the LETKF.

    Returns:
        ``G (..., N, N)`` with ``G[j, n] = wbar[j] + W[j, n]``: the analysis member ``n`` is
        ``xbar + sum_j G[j, n] A[j]`` for forecast anomalies ``A``. ``W`` is the symmetric
        square root ``sqrt(N-1) [(N-1) I + Y R^{-1} Y^T]^{-1/2}`` from one symmetric
        eigen-decomposition (mean preserving: ``W 1 = 1``) and ``wbar`` the mean weights.
    """
    N = Y.shape[-2]
    C = Y * weight.unsqueeze(-2)  # (..., N, P) = Y R^{-1}
    eye = torch.eye(N, dtype=Y.dtype, device=Y.device)
    precision = C @ Y.transpose(-1, -2) + (N - 1) * eye
    s, U = torch.linalg.eigh(precision)
    Ut = U.transpose(-1, -2)
    cov = (U / s.unsqueeze(-2)) @ Ut
    wbar = cov @ (C @ innovation.unsqueeze(-1))  # (..., N, 1)
    W = math.sqrt(N - 1) * ((U * s.rsqrt().unsqueeze(-2)) @ Ut)
    return W + wbar


def full_transform(G: Tensor) -> Tensor:
    """The transform ``X (..., N, N)`` acting on whole members: analysis ``E_a = X^T E_f``.

    ``X = 1 1^T / N + (I - 1 1^T / N) G``, i.e. the mean part and the anomaly part of
    :func:`ensemble_transform` together; EnKS applies it to past ensembles.
    """
    return G - G.mean(-2, keepdim=True) + 1.0 / G.shape[-1]


@dataclass
class EnsembleRun:
    """Analysis ensembles ``(T, N, D)`` and, if kept, each cycle's transform.

    ``transforms`` is ``(T, N, N)`` for the global ETKF and ``(T, D, N, N)`` (one per grid
    point) for the LETKF; see :func:`full_transform`. With rotations, the transform includes
    the cycle's rotation ``R``: ``X R^T``. Inflation is not part of it (it only widens the
    current ensemble for the next forecast).
    """

    analysis: Tensor
    transforms: Tensor | None = None
    forecasts: Tensor | None = None

    def estimate(self, problem: AssimilationProblem, analysis: Tensor | None = None
                 ) -> Estimate:
        """The estimate of ``analysis`` (default: the filter's) with the innovation
        statistics of the forecasts."""
        est = Estimate.from_ensemble(self.analysis if analysis is None else analysis)
        if self.forecasts is None:
            return est
        return with_ensemble_innovations(est, self.forecasts, problem)


def _rotation_fn(rotate: bool, members: int, problem: AssimilationProblem):
    if not rotate:
        return lambda generator: None
    basis = mean_preserving_basis(members, device=problem.device, dtype=problem.dtype)
    return lambda generator: random_mean_preserving_rotation(basis, generator)


def run_etkf(problem: AssimilationProblem, *, members: int, inflation: float = 1.0,
             rotate: bool = False, localization: float | None = None,
             cyclic: bool | None = None, static_start: bool = False, spinup: int = 0,
             spinup_inflation: float = 1.05, generator: torch.Generator,
             progress: bool = False, store_transforms: bool = False,
             desc: str | None = None, obs_likelihood: str = "gaussian",
             robust_param: float | None = None) -> EnsembleRun:
    """ETKF (global) or LETKF (``localization`` radius given) over all cycles of ``problem``.

    Each cycle: one batched forecast of the ``N`` members (with model noise), the transform
    (:func:`ensemble_transform`; for the LETKF batched over the ``D`` grid points with the
    observations inside each point's Gaspari-Cohn window), then inflation and rotation of
    the analysis anomalies. With ``static_start`` the first analysis is
    :func:`static_analysis_ensemble` (its transform is stored as the identity); in the
    first ``spinup`` cycles the inflation is ``max(inflation, spinup_inflation)``. Returns the
    analyses, the forecasts (for the innovation statistics) and, with ``store_transforms``,
    the transforms that :mod:`pyro_videossm.filters.enks` applies to past ensembles.
    ``obs_likelihood``, ``robust_param``: see :mod:`pyro_videossm.filters.robust`.
    """
    check_ensemble_options(members, inflation)
    check_radius(localization)
    spin = max(inflation, spinup_inflation)
    T, D = problem.n_cycles, problem.state_dim
    precision = problem.mask.to(problem.dtype) / obs_error_variance(problem)  # (T, D)
    obs = problem.obs
    local = localization is not None
    if local:
        taper = taper_matrix(D, localization, cyclic=is_cyclic(problem.system, cyclic),
                             device=problem.device, dtype=problem.dtype)
        index, taper_w = local_windows(taper)  # (D, L)
    rotation = _rotation_fn(rotate, members, problem)
    r2 = obs_error_variance(problem)
    param = default_param(obs_likelihood, robust_param, problem.obs_noise_df)
    transforms = None
    if store_transforms:
        shape = (T, D, members, members) if local else (T, members, members)
        transforms = torch.empty(shape, dtype=problem.dtype, device=problem.device)
        if static_start and T > 0:  # the static first analysis transforms nothing
            transforms[0] = torch.eye(members, dtype=problem.dtype, device=problem.device)

    def analyse(t: int, ens: Tensor) -> Tensor:
        mean = ens.mean(0)
        A = ens - mean
        innovation = obs[t] - mean
        weight = precision[t]
        if obs_likelihood != "gaussian":
            spread2 = A.square().sum(0) / (members - 1)
            weight = weight * reweighting(innovation, spread2 + r2, obs_likelihood, param)
        if local:
            Y = A[:, index].transpose(0, 1)  # (D, N, L)
            G = ensemble_transform(Y, innovation[index], taper_w * weight[index])
            ens = mean + torch.einsum("djn,jd->nd", G, A)
        else:
            G = ensemble_transform(A, innovation, weight)
            ens = mean + G.T @ A
        R = rotation(generator)
        if store_transforms:
            # the rotation mixes members (E -> R E): past ensembles take it too, so that
            # their members keep corresponding to the current ones
            transforms[t] = full_transform(G) if R is None else full_transform(G) @ R.T
        return post_process(ens, spin if t < spinup else inflation, R)

    out, forecasts = cycle_ensemble(problem, members, generator, analyse,
                                    static_start=static_start, progress=progress,
                                    desc=desc or ("letkf" if local else "etkf"))
    return EnsembleRun(analysis=out, transforms=transforms, forecasts=forecasts)


def run_enkf(problem: AssimilationProblem, *, members: int, inflation: float = 1.0,
             rotate: bool = False, localization: float | None = None,
             cyclic: bool | None = None, static_start: bool = False, spinup: int = 0,
             spinup_inflation: float = 1.05, generator: torch.Generator,
             progress: bool = False, obs_likelihood: str = "gaussian",
             robust_param: float | None = None) -> EnsembleRun:
    """Stochastic EnKF with perturbed observations (Burgers et al. 1998): analyses and
    forecasts ``(T, N, D)``.

    Gain from the ensemble covariance ``P`` (Schur product with the Gaspari-Cohn taper when
    ``localization`` is given): ``K = P H^T (H P H^T + R)^{-1}``, ``H`` selecting the observed
    components. Each member assimilates the observation plus its own draw from ``N(0, R)``,
    the draws centred to mean zero (as DAPPER's ``PertObs``). ``static_start``, ``spinup``:
    see :func:`run_etkf`.
    """
    check_ensemble_options(members, inflation)
    check_radius(localization)
    spin = max(inflation, spinup_inflation)
    D = problem.state_dim
    r2 = obs_error_variance(problem)
    masks = problem.mask.to(problem.dtype)
    obs = problem.obs
    taper = None
    if localization is not None:
        taper = taper_matrix(D, localization, cyclic=is_cyclic(problem.system, cyclic),
                             device=problem.device, dtype=problem.dtype)
    rotation = _rotation_fn(rotate, members, problem)
    param = default_param(obs_likelihood, robust_param, problem.obs_noise_df)

    def analyse(t: int, ens: Tensor) -> Tensor:
        A = ens - ens.mean(0)
        P = (A.T @ A) / (members - 1)
        if taper is not None:
            P = P * taper
        m = masks[t]
        r2_t = r2
        if obs_likelihood != "gaussian":
            r2_t = r2 / reweighting(obs[t] - ens.mean(0), P.diagonal() + r2, obs_likelihood,
                                    param)
        S = P * (m[:, None] * m[None, :]) + torch.diag(m * r2_t + (1.0 - m))
        L, _ = torch.linalg.cholesky_ex(S)
        eps = torch.randn(members, D, generator=generator, dtype=ens.dtype, device=ens.device)
        eps = (eps - eps.mean(0)) * r2_t.sqrt()
        innovation = (obs[t] + eps - ens) * m  # (N, D), zero where not observed
        Z = torch.cholesky_solve(innovation.T, L)  # (D, N) = S^{-1} d
        ens = ens + (Z.T * m) @ P
        return post_process(ens, spin if t < spinup else inflation, rotation(generator))

    out, forecasts = cycle_ensemble(problem, members, generator, analyse,
                                    static_start=static_start, progress=progress, desc="enkf")
    return EnsembleRun(analysis=out, forecasts=forecasts)


class _EnsembleMethod(AssimilationMethod):
    """Shared options and checks of the ensemble filters (see the module docstring)."""

    kind = "filter"

    def __init__(self, members: int = 20, inflation: float = 1.0, rotate: bool = False,
                 localization: float | None = None, cyclic: bool | None = None,
                 static_start: bool = True, spinup: int = 100,
                 spinup_inflation: float = 1.05, obs_likelihood: str = "gaussian",
                 robust_param: float | None = None):
        self.obs_likelihood, self.robust_param = check_likelihood(obs_likelihood, robust_param)
        self.members = as_int("members", members, minimum=2)
        self.inflation = as_float("inflation", inflation, minimum=0, exclusive=True)
        self.rotate = as_bool("rotate", rotate)
        self.localization = as_float("localization", localization, minimum=0, exclusive=True,
                                     allow_none=True)
        self.cyclic = as_bool("cyclic", cyclic, allow_none=True)
        self.static_start = as_bool("static_start", static_start)
        self.spinup = as_int("spinup", spinup, minimum=0)
        self.spinup_inflation = as_float("spinup_inflation", spinup_inflation, minimum=0,
                                         exclusive=True)

    def _kwargs(self) -> dict:
        return dict(members=self.members, inflation=self.inflation, rotate=self.rotate,
                    localization=self.localization, cyclic=self.cyclic,
                    static_start=self.static_start, spinup=self.spinup,
                    spinup_inflation=self.spinup_inflation, obs_likelihood=self.obs_likelihood,
                    robust_param=self.robust_param)

    def accepts_outliers(self, problem: AssimilationProblem) -> bool:
        return self.obs_likelihood != "gaussian" or super().accepts_outliers(problem)


@register_method
class EnKFMethod(_EnsembleMethod):
    """``enkf``: stochastic EnKF (perturbed observations), optional B-localisation.

    Defaults: 20 members, no inflation (at least 1.05 in the first 100 cycles), no rotation,
    static start.
    """

    name = "enkf"

    def run(self, problem: AssimilationProblem, *, generator: torch.Generator,
            progress: bool = False) -> Estimate:
        with torch.no_grad():
            res = run_enkf(problem, generator=generator, progress=progress, **self._kwargs())
        return res.estimate(problem)


@register_method
class ETKFMethod(_EnsembleMethod):
    """``etkf``: ensemble transform Kalman filter (deterministic square root); with
    ``localization`` the LETKF. Defaults: 20 members, inflation 1.02 (at least 1.05 in the
    first 100 cycles), random rotations, static start."""

    name = "etkf"

    def __init__(self, members: int = 20, inflation: float = 1.02, rotate: bool = True,
                 localization: float | None = None, cyclic: bool | None = None,
                 static_start: bool = True, spinup: int = 100,
                 spinup_inflation: float = 1.05, obs_likelihood: str = "gaussian",
                 robust_param: float | None = None):
        super().__init__(members, inflation, rotate, localization, cyclic, static_start,
                         spinup, spinup_inflation, obs_likelihood, robust_param)

    def run(self, problem: AssimilationProblem, *, generator: torch.Generator,
            progress: bool = False) -> Estimate:
        with torch.no_grad():
            res = run_etkf(problem, generator=generator, progress=progress, **self._kwargs())
        return res.estimate(problem)


@register_method
class LETKFMethod(ETKFMethod):
    """``letkf``: the ETKF with R-localisation (local analyses batched over grid points).

    Defaults: 20 members, radius 4 grid points (cyclic on Lorenz-96), inflation 1.05, random
    rotations, static start, 100 spin-up cycles at inflation >= 1.05.
    """

    name = "letkf"

    def __init__(self, members: int = 20, inflation: float = 1.05, rotate: bool = True,
                 localization: float = 4.0, cyclic: bool | None = None,
                 static_start: bool = True, spinup: int = 100,
                 spinup_inflation: float = 1.05, obs_likelihood: str = "gaussian",
                 robust_param: float | None = None):
        if localization is None:
            raise InputError("letkf needs a localization radius (use etkf for the global ETKF)")
        super().__init__(members, inflation, rotate, localization, cyclic, static_start,
                         spinup, spinup_inflation, obs_likelihood, robust_param)
