"""Pieces shared by the ensemble methods: initial draws, observation error, post-processing.

Ensembles are tensors ``(N, D)``: members as a batch dimension, one batched RK4 call
(:meth:`AssimilationProblem.forecast`) moves them all.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor
from tqdm.auto import tqdm

from pyro_videossm.assimilate import AssimilationProblem, Estimate
from pyro_videossm.assimilate.consistency import ensemble_nis
from pyro_videossm.filters.options import as_float, as_int


def obs_error_variance(problem: AssimilationProblem) -> Tensor:
    """Observation error variance ``(D,)`` that Gaussian methods assume.

    ``obs_noise_std**2`` for Gaussian noise; for Student-t noise (scale ``obs_noise_std``,
    ``obs_noise_df`` degrees of freedom) the t variance ``scale**2 * df / (df - 2)`` when
    ``df > 2``, else the squared scale (the variance is infinite).
    """
    var = problem.obs_noise_std**2
    df = problem.obs_noise_df
    if problem.obs_noise_dist == "student_t" and df > 2:
        var = var * (df / (df - 2.0))
    return var


def with_ensemble_innovations(estimate: Estimate, forecasts: Tensor,
                              problem: AssimilationProblem) -> Estimate:
    """``estimate`` with the innovation statistics of the forecast ensembles ``(T, N, D)``
    (:func:`~pyro_videossm.assimilate.consistency.ensemble_nis`)."""
    estimate.nis, estimate.nis_dof = ensemble_nis(forecasts, problem.obs, problem.mask,
                                                  obs_error_variance(problem))
    return estimate


def initial_ensemble(problem: AssimilationProblem, members: int,
                     generator: torch.Generator) -> Tensor:
    """``members`` draws ``(N, D)`` from the Gaussian prior at time 0 (climatology)."""
    eps = torch.randn(members, problem.state_dim, generator=generator, dtype=problem.dtype,
                      device=problem.device)
    return problem.prior_mean + problem.prior_std * eps


def mean_preserving_basis(members: int, *, device=None, dtype=torch.float64) -> Tensor:
    """Orthonormal basis ``(N, N-1)`` of the vectors orthogonal to ``(1, ..., 1)``."""
    ones = torch.ones(members, 1, device=device, dtype=dtype)
    eye = torch.eye(members, device=device, dtype=dtype)
    q, _ = torch.linalg.qr(torch.cat([ones, eye[:, : members - 1]], dim=1))
    return q[:, 1:]


def random_mean_preserving_rotation(basis: Tensor, generator: torch.Generator) -> Tensor:
    """Haar-random orthogonal ``(N, N)`` matrix ``O`` with ``O 1 = 1``.

    ``basis`` is :func:`mean_preserving_basis`; applied to anomalies ``O @ A`` (members on
    the rows) it mixes members while keeping the ensemble mean and covariance.
    """
    n = basis.shape[0]
    z = torch.randn(n - 1, n - 1, generator=generator, dtype=basis.dtype, device=basis.device)
    q, r = torch.linalg.qr(z)
    q = q * torch.sgn(torch.diagonal(r)).unsqueeze(0)  # Haar measure (Mezzadri 2007)
    return basis @ q @ basis.T + 1.0 / n


def post_process(ens: Tensor, inflation: float, rotation: Tensor | None = None) -> Tensor:
    """Multiply the anomalies of ``ens (N, D)`` by ``inflation`` and optionally mix members
    with a mean-preserving ``rotation (N, N)`` (as DAPPER's ``post_process``)."""
    if inflation == 1.0 and rotation is None:
        return ens
    mean = ens.mean(0)
    anomalies = ens - mean
    if rotation is not None:
        anomalies = rotation @ anomalies
    return mean + inflation * anomalies


def check_ensemble_options(members: int, inflation: float) -> None:
    """InputError for fewer than 2 members or non-positive inflation."""
    as_int("members", members, minimum=2)
    as_float("inflation", inflation, minimum=0, exclusive=True)


def static_analysis_ensemble(problem: AssimilationProblem, forecast: Tensor, t: int,
                             generator: torch.Generator) -> Tensor:
    """Analysis ensemble ``(N, D)`` at cycle ``t`` from the climatological covariance.

    The first cycle's forecast of a climatological prior is again climatological, so its
    covariance is known and full rank: ``B = diag(prior_std^2)``. The Kalman analysis with
    ``B`` (componentwise, as ``B`` and ``R`` are diagonal and the observations select
    components) around the forecast ensemble mean gives ``N(m_a, diag(v_a))``; the members
    are draws whose sample mean and per-component sample variance are exactly those.

    A rank-deficient ensemble update of a climatological forecast (``N`` below the number of
    unstable directions or of observed components) leaves errors of climatological size
    outside the ensemble span, which small inflation (e.g. 1.013 with N=24 on Lorenz-96)
    never recovers; this start avoids that transient.
    """
    N = forecast.shape[0]
    mean = forecast.mean(0)
    B = problem.prior_std**2
    gain = problem.mask[t].to(B.dtype) * B / (B + obs_error_variance(problem))
    mean_a = mean + gain * (problem.obs[t] - mean)
    std_a = (B * (1.0 - gain)).sqrt()
    z = torch.randn(forecast.shape, generator=generator, dtype=forecast.dtype,
                    device=forecast.device)
    z = z - z.mean(0)
    z = z / z.pow(2).sum(0).div(N - 1).sqrt()
    return mean_a + std_a * z


def cycle_ensemble(problem: AssimilationProblem, members: int, generator: torch.Generator,
                   analyse: Callable[[int, Tensor], Tensor], *, static_start: bool,
                   progress: bool, desc: str) -> tuple[Tensor, Tensor]:
    """The ensemble filters' cycle: analyses and forecasts ``(T, N, D)``.

    From :func:`initial_ensemble`, each cycle ``t`` forecasts the ``N`` members (with model
    noise) and replaces them by ``analyse(t, forecast)`` ``(N, D)``; with ``static_start``
    the first analysis is :func:`static_analysis_ensemble` instead.
    """
    T, D = problem.n_cycles, problem.state_dim
    out = torch.empty(T, members, D, dtype=problem.dtype, device=problem.device)
    forecasts = torch.empty_like(out)
    ens = initial_ensemble(problem, members, generator)
    for t in tqdm(range(T), disable=not progress, desc=desc, leave=False):
        ens = problem.forecast(ens, noise=True, generator=generator)
        forecasts[t] = ens
        if static_start and t == 0:
            ens = static_analysis_ensemble(problem, ens, t, generator)
        else:
            ens = analyse(t, ens)
        out[t] = ens
    return out, forecasts
