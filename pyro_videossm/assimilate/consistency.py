"""Model–data consistency: innovation statistics, ensemble collapse, outlying observations.

A filter that believes its own forecast error covariance ``P_f`` and the observation error
``R`` predicts the innovation ``d_t = y_t - H x_t^f`` to be ``N(0, S_t)`` with
``S_t = H P_f H^T + R``. The normalised innovation squared

    NIS_t = d_t^T S_t^{-1} d_t

is then chi-square with ``m_t`` (observed components) degrees of freedom, so its time mean
should be close to the mean of ``m_t``. The warnings use the median of
``NIS_t / median(chi2(m_t))`` instead, which one gross outlier cannot move. Far above 1, the
dynamics or the noise levels contradict the data (a sine labelled as Lorenz-63 gives ratios
of about 40); far below, the filter's spread is too wide. Every filter records ``NIS_t`` and ``m_t``
(:class:`~pyro_videossm.assimilate.Estimate`), the posterior Dataset stores them
(``innovation_nis(time)``) with the mean and its expected value as attributes, and
:func:`consistency_warnings` turns them into plain-language warnings; so does a particle
filter whose effective sample size stays collapsed.
"""

from __future__ import annotations

import math

import scipy.stats
import torch
from torch import Tensor

#: ``mean NIS / expected`` outside ``[1 / NIS_RATIO_LIMIT, NIS_RATIO_LIMIT]`` is a warning.
#: Tuned filters on the standard settings stay within a factor 2 (inflation and sampling
#: error); contradicting dynamics are orders of magnitude away.
NIS_RATIO_LIMIT = 3.0

#: A particle filter counts as collapsed at a cycle when its effective sample size is below
#: this many particles; it is a warning when that holds for more than half of the cycles.
ESS_COLLAPSED = 2.0

#: An observation farther than this many climatological standard deviations from the
#: climatological mean is refused by a Gaussian likelihood (see :func:`outlying_observation`).
OUTLIER_CLIMATOLOGICAL_STDS = 50.0


def gaussian_nis(mean: Tensor, cov: Tensor, obs: Tensor, mask: Tensor,
                 obs_var: Tensor) -> tuple[Tensor, Tensor]:
    """NIS and degrees of freedom per cycle from forecast moments.

    Args:
        mean: ``(T, D)`` forecast means; cov: ``(T, D, D)`` forecast covariances.
        obs: ``(T, D)``; mask: ``(T, D)`` bool, True where observed.
        obs_var: ``(D,)`` or ``(T, D)`` observation error variances.

    Returns:
        ``nis (T,)`` and ``dof (T,)`` (the count of observed components; NIS is 0 where
        nothing is observed).
    """
    m = mask.to(mean.dtype)
    d = torch.where(mask, obs - mean, torch.zeros_like(mean))
    # S over observed components, identity elsewhere (zero rows/cols of H P H^T), so that
    # unobserved components contribute nothing and S stays invertible.
    s = cov * (m.unsqueeze(-1) * m.unsqueeze(-2))
    s = s + torch.diag_embed(torch.where(mask, obs_var.expand_as(m), torch.ones_like(m)))
    chol, info = torch.linalg.cholesky_ex(s)
    z = torch.linalg.solve_triangular(chol, d.unsqueeze(-1), upper=False).squeeze(-1)
    nis = z.square().sum(-1)
    nis = torch.where(info == 0, nis, torch.full_like(nis, math.nan))
    return nis, m.sum(-1)


def ensemble_nis(forecasts: Tensor, obs: Tensor, mask: Tensor, obs_var: Tensor,
                 weights: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """:func:`gaussian_nis` with the moments of forecast ensembles ``(T, N, D)``.

    ``weights (T, N)`` (normalised) weight the members, as the prior weights of a particle
    filter's forecast particles do; without them the sample covariance (``N - 1``) is used.
    """
    if weights is None:
        mean = forecasts.mean(1)
        anom = forecasts - mean.unsqueeze(1)
        cov = anom.transpose(1, 2) @ anom / max(forecasts.shape[1] - 1, 1)
    else:
        w = weights.unsqueeze(-1)
        mean = (w * forecasts).sum(1)
        anom = forecasts - mean.unsqueeze(1)
        cov = (w * anom).transpose(1, 2) @ anom
    return gaussian_nis(mean, cov, obs, mask, obs_var)


def effective_sample_size(weights: Tensor) -> Tensor:
    """``1 / sum_n w_n^2`` of normalised weights ``(..., N)``: ``(...)``."""
    return 1.0 / weights.square().sum(-1)


def nis_summary(nis: Tensor, dof: Tensor, burn_in: int = 0) -> dict[str, float]:
    """Over the observed cycles after ``burn_in``: ``nis_mean`` and its expected value
    ``nis_expected`` (the mean of ``m_t``), and ``nis_median_ratio``, the median of
    ``NIS_t / median(chi2(m_t))`` (1 for a consistent filter, robust to outliers)."""
    nis, dof = nis[burn_in:], dof[burn_in:]
    used = (dof > 0) & torch.isfinite(nis)
    if not bool(used.any()):
        return {"nis_mean": math.nan, "nis_expected": math.nan, "nis_median_ratio": math.nan}
    nis, dof = nis[used].double().cpu(), dof[used].double().cpu()
    chi2_median = torch.from_numpy(scipy.stats.chi2.median(dof.numpy()))
    return {"nis_mean": float(nis.mean()), "nis_expected": float(dof.mean()),
            "nis_median_ratio": float((nis / chi2_median).median())}


def consistency_warnings(method: str, summary: dict[str, float], ess: Tensor | None = None,
                         members: int | None = None) -> list[str]:
    """Plain-language warnings for inconsistent innovations (from :func:`nis_summary`) or a
    collapsed particle filter (``ess (T,)``)."""
    out = []
    ratio = summary.get("nis_median_ratio", math.nan)
    said = (f"(median NIS ratio {ratio:.3g}; mean NIS {summary.get('nis_mean', math.nan):.4g}, "
            f"expected {summary.get('nis_expected', math.nan):.3g})")
    if math.isfinite(ratio) and ratio > 0:
        if ratio > NIS_RATIO_LIMIT:
            out.append(
                f"{method}: the innovations are {ratio:.3g} times larger than the filter "
                f"expects {said}: the dynamics, the observation noise or the observation "
                "operator contradict the data")
        elif ratio < 1.0 / NIS_RATIO_LIMIT:
            out.append(
                f"{method}: the innovations are {1 / ratio:.3g} times smaller than the "
                f"filter expects {said}: its spread is too wide (inflation or noise levels "
                "too large)")
    if ess is not None and ess.numel():
        collapsed = float((ess < ESS_COLLAPSED).to(torch.float64).mean())
        if collapsed > 0.5:
            n = f" of {members}" if members else ""
            out.append(
                f"{method}: the particle filter collapsed: effective sample size below "
                f"{ESS_COLLAPSED:g}{n} particles in {100 * collapsed:.0f}% of the cycles "
                "(median " + f"{float(ess.median()):.3g}); its posterior is not trustworthy")
    return out


def outlying_observation(obs: Tensor, mask: Tensor, mean: Tensor, std: Tensor,
                         limit: float = OUTLIER_CLIMATOLOGICAL_STDS) -> tuple[int, int] | None:
    """The first ``(cycle, component)`` whose observation is more than ``limit``
    climatological standard deviations from the climatological mean, or ``None``.

    ``obs``, ``mask`` ``(T, D)``; ``mean``, ``std`` ``(D,)``. One vectorised pass.
    """
    z = ((obs - mean) / std.clamp_min(torch.finfo(std.dtype).tiny)).abs()
    bad = mask & ~(z <= limit)
    if not bool(bad.any()):
        return None
    flat = int(torch.nonzero(bad.flatten())[0])
    return flat // obs.shape[1], flat % obs.shape[1]
