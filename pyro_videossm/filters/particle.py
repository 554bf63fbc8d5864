"""Bootstrap particle filter with systematic resampling and spread-scaled regularisation.

The particles are a batch dimension ``(N, D)``: one :meth:`AssimilationProblem.forecast`
call moves all of them through one cycle. Weights live in log space and are normalised with
``logsumexp``. When the effective sample size falls below ``resample_threshold · N``, the
particles are resampled (systematic) and every particle is jittered with Gaussian noise whose
covariance is ``jitter²`` times the weighted ensemble covariance (a regularised particle
filter, Musso, Oudjane & Le Gland 2001; DAPPER's ``PartFilt(reg=...)``). In a deterministic
model (no process noise) the jitter is the only source of new diversity: a fixed jitter is
too small where the posterior is wide and too large where it is sharp, while a spread-scaled
one follows the posterior.

The cycle loop is free of host synchronisation: whether to resample is a tensor, and
``torch.where`` picks the resampled or the kept particles, so the filter runs the same way on
CPU and GPU.
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
from pyro_videossm.assimilate.consistency import effective_sample_size, ensemble_nis
from pyro_videossm.errors import InputError
from pyro_videossm.filters.ensemble import obs_error_variance

__all__ = ["ParticleFilter", "effective_sample_size", "log_likelihood", "systematic_resample"]


def log_likelihood(
    particles: Tensor,
    obs: Tensor,
    mask: Tensor,
    obs_noise_std: Tensor,
    *,
    dist: str = "gaussian",
    df: float = 0.0,
) -> Tensor:
    """Observation log-likelihood of each particle, up to a constant shared by all particles.

    Args:
        particles: ``(..., N, D)`` states.
        obs: ``(D,)`` observed values (any value where ``mask`` is False).
        mask: ``(D,)`` bool, True where observed; unobserved components contribute nothing.
        obs_noise_std: ``(D,)`` noise standard deviation (Gaussian) or scale (Student-t).
        dist: ``"gaussian"`` or ``"student_t"``.
        df: Student-t degrees of freedom.

    Returns:
        ``(..., N)`` log-likelihoods (constants dropped).
    """
    z = torch.where(mask, (obs - particles) / obs_noise_std, torch.zeros_like(particles))
    if dist == "gaussian":
        per_component = -0.5 * z.square()
    elif dist == "student_t":
        per_component = -0.5 * (df + 1.0) * torch.log1p(z.square() / df)
    else:
        raise InputError(f"particle filter: unknown observation noise {dist!r}")
    return per_component.sum(-1)


def systematic_resample(weights: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Systematic resampling: indices ``(..., N)`` into the particles, from weights ``(..., N)``
    (normalised along the last axis; leading axes are independent draws).

    One uniform ``u`` gives the points ``(u + i) / N``; particle ``j`` is picked as often as
    points fall in its slice of the cumulative weights, i.e. ``floor(N w_j)`` or
    ``ceil(N w_j)`` times, ``N w_j`` in expectation (unbiased, lower variance than
    multinomial resampling).
    """
    n = weights.shape[-1]
    u = torch.rand(weights.shape[:-1] + (1,), generator=generator, dtype=weights.dtype,
                   device=weights.device)
    points = (u + torch.arange(n, dtype=weights.dtype, device=weights.device)) / n
    cdf = weights.cumsum(-1)
    return torch.searchsorted(cdf, points).clamp_(max=n - 1)


@register_method
class ParticleFilter(AssimilationMethod):
    """Bootstrap particle filter (SIR) with regularisation: ``pf``.

    Options:
        members: number of particles ``N``.
        jitter: bandwidth of the regularisation. After resampling, each particle gets
            Gaussian noise with covariance ``jitter²·C``, ``C`` the weighted (reliability-
            unbiased) covariance of the particles before resampling (but see
            ``fallback_ess``). 0 gives the plain bootstrap filter. Default 0.3: Scott's rule
            gives ``N^(-1/(D+4))`` = 0.38 for N = 800, D = 3, and DAPPER's tuned value for
            this setting is 0.9 × that = 0.35. On the standard Lorenz-63 setting 0.3 reaches
            DAPPER's RMSE; 0.2 scored about 0.01 lower on seeds 0-5 but a narrower kernel
            lets the cloud collapse more easily, so the default stays on the safe side.
            Smaller ensembles need a wider kernel (Scott's rule grows as ``N`` shrinks).
        resample_threshold: resample when the effective sample size is below
            ``resample_threshold · N`` (1: at every observed cycle; 0: never). Default 0.5;
            with 0.2 the filter lost track on seed 3.
        covariance: ``"full"`` (jitter along the ensemble's principal axes) or ``"diag"``
            (per-component spread only). Lorenz-63's posterior is strongly correlated:
            ``"diag"`` gave RMSE 0.34-0.36 where ``"full"`` gave 0.27.
        fallback_ess: when the effective sample size is below this, ``C`` is the Gaussian
            (Kalman) posterior covariance ``P - P H^T (H P H^T + R)^-1 H P`` computed from
            the forecast particles (``P`` their prior-weighted covariance) instead of the
            weighted covariance of the few surviving particles, which is a noisy and often far
            too small estimate: the cloud then collapses away from the truth and a
            spread-scaled jitter never brings it back. Without it (0) the filter lost track
            for good on seed 14 (RMSE 6.9 instead of 0.30).

    Numbers above: ``python -m assimilation.run lorenz63_pf_tuning`` (docs/RESULTS.md; seed
    14 with ``--first-seed 14 --seeds 1``).

    The estimate keeps the weighted particles *before* resampling at each cycle (resampling
    only adds noise to the posterior summary).
    """

    name = "pf"
    kind = "filter"

    def __init__(self, members: int = 800, jitter: float = 0.3, resample_threshold: float = 0.5,
                 covariance: str = "full", fallback_ess: float = 10.0):
        if int(members) < 2:
            raise InputError(f"pf: members must be >= 2, got {members}")
        if not (jitter >= 0 and math.isfinite(jitter)):
            raise InputError(f"pf: jitter must be a finite number >= 0, got {jitter}")
        if not 0 <= resample_threshold <= 1:
            raise InputError(f"pf: resample_threshold must be in [0, 1], got {resample_threshold}")
        self.members = int(members)
        self.jitter = float(jitter)
        self.resample_threshold = float(resample_threshold)
        if not fallback_ess >= 0:
            raise InputError(f"pf: fallback_ess must be >= 0, got {fallback_ess}")
        self.fallback_ess = float(fallback_ess)
        if covariance not in ("full", "diag"):
            raise InputError(f"pf: covariance must be 'full' or 'diag', got {covariance!r}")
        self.covariance = covariance

    def run(self, problem: AssimilationProblem, *, generator: torch.Generator,
            progress: bool = False) -> Estimate:
        n, d, t_len = self.members, problem.state_dim, problem.n_cycles
        dtype, device = problem.dtype, problem.device
        if problem.obs_noise_dist == "student_t" and not problem.obs_noise_df > 0:
            raise InputError("pf: Student-t observation noise needs obs_noise_df > 0")
        x = problem.prior_mean + problem.prior_std * torch.randn(
            n, d, generator=generator, dtype=dtype, device=device
        )
        log_w = torch.full((n,), -math.log(n), dtype=dtype, device=device)
        history = torch.empty(t_len, n, d, dtype=dtype, device=device)
        weights = torch.empty(t_len, n, dtype=dtype, device=device)
        prior_weights = torch.empty_like(weights)
        observed_any = problem.mask.any(-1)  # (T,)
        threshold = self.resample_threshold * n

        cycles = range(t_len)
        if progress:
            from tqdm.auto import tqdm

            cycles = tqdm(cycles, desc="pf", unit="cycle")
        with torch.no_grad():
            for k in cycles:
                x = problem.forecast(x, noise=True, generator=generator)
                w_prior = log_w.exp()
                log_w = log_w + log_likelihood(
                    x, problem.obs[k], problem.mask[k], problem.obs_noise_std,
                    dist=problem.obs_noise_dist, df=problem.obs_noise_df,
                )
                log_w = log_w - torch.logsumexp(log_w, -1)
                w = log_w.exp()
                history[k] = x
                weights[k] = w
                prior_weights[k] = w_prior
                x, log_w = self._resample(x, w, log_w, threshold, observed_any[k], generator,
                                          w_prior, problem.mask[k], problem.obs_noise_std)
        est = Estimate.from_ensemble(history, weights)
        est.nis, est.nis_dof = ensemble_nis(history, problem.obs, problem.mask,
                                            obs_error_variance(problem), prior_weights)
        est.ess = effective_sample_size(weights)
        return est

    def _resample(self, x: Tensor, w: Tensor, log_w: Tensor, threshold: float,
                  observed: Tensor, generator: torch.Generator, w_prior: Tensor, mask: Tensor,
                  obs_std: Tensor) -> tuple[Tensor, Tensor]:
        """Resample and jitter where the ESS is low (a tensor condition: no host sync).

        ``x (N, D)`` forecast particles with posterior weights ``w`` and prior weights
        ``w_prior`` ``(N,)``; ``mask``, ``obs_std`` ``(D,)`` describe this cycle's observation.
        """
        n = x.shape[0]
        sum_w2 = w.square().sum(-1)
        do = (1.0 / sum_w2 < threshold) & observed
        idx = systematic_resample(w, generator)
        new_x = x[idx]
        if self.jitter > 0:
            anom = _weighted_anomalies(x, w)
            cov = anom.mT @ anom  # (D, D)
            if self.fallback_ess > 0:
                few = 1.0 / sum_w2 < self.fallback_ess
                cov = torch.where(few, _kalman_posterior_cov(x, w_prior, mask, obs_std), cov)
            eps = torch.randn(new_x.shape, generator=generator, dtype=x.dtype, device=x.device)
            if self.covariance == "diag":
                noise = cov.diagonal().clamp_min(0).sqrt() * eps
            else:
                evals, evecs = torch.linalg.eigh(cov)
                noise = (eps * evals.clamp_min(0).sqrt()) @ evecs.mT
            new_x = new_x + self.jitter * noise
        x = torch.where(do, new_x, x)
        log_w = torch.where(do, torch.full_like(log_w, -math.log(n)), log_w)
        return x, log_w


def _weighted_anomalies(x: Tensor, w: Tensor) -> Tensor:
    """Scaled anomalies ``A (N, D)`` with ``A^T A`` the weighted covariance of ``x (N, D)``.

    Reliability-weights unbiasing (``1 / (1 - sum w^2)``); degenerate weights (one particle
    holds all) fall back to equal weights so that the covariance does not vanish.
    """
    n = x.shape[0]
    degenerate = w.square().sum(-1) > 1.0 - 1e-10
    w = torch.where(degenerate, torch.full_like(w, 1.0 / n), w)
    unbias = 1.0 / (1.0 - w.square().sum(-1))
    mean = (w.unsqueeze(-1) * x).sum(0)
    return (w * unbias).sqrt().unsqueeze(-1) * (x - mean)


def _kalman_posterior_cov(x: Tensor, w: Tensor, mask: Tensor, obs_std: Tensor) -> Tensor:
    """Gaussian (Kalman) posterior covariance ``(D, D)`` from the forecast particles ``(N, D)``
    with weights ``w (N,)``: ``P - P H^T (H P H^T + R)^-1 H P`` over the observed components
    (``mask (D,)``, noise ``obs_std (D,)``; Student-t scales are used as if Gaussian)."""
    anom = _weighted_anomalies(x, w)
    p = anom.mT @ anom
    m = mask.to(x.dtype)
    hp = m.unsqueeze(-1) * p  # rows of unobserved components zeroed
    s = hp * m + torch.diag(torch.where(mask, obs_std.square(), torch.ones_like(obs_std)))
    return p - hp.mT @ torch.linalg.solve(s, hp)
