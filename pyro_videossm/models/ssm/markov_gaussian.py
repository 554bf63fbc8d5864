"""A Gaussian Markov chain as one Pyro distribution: the DMM's latent sequence in one site.

:class:`MarkovGaussian` has batch shape ``batch_shape`` and event shape ``(T, Z)``. It samples
sequentially (each step needs the previous draw) and scores a whole sequence in one batched
call. Its KL divergence to another chain has no closed form in general (the conditionals
depend nonlinearly on the previous state), so none is registered with
:func:`torch.distributions.kl_divergence` (``TraceMeanField_ELBO`` then falls back to Monte
Carlo); :meth:`MarkovGaussian.kl_estimate` gives the unbiased per-step closed-form estimate
at an explicit draw.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from pyro.distributions import TorchDistribution, constraints
from torch import Tensor

_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)

StepFn = Callable[[Tensor | None, int], tuple[Tensor, Tensor]]
BatchedFn = Callable[[Tensor], tuple[Tensor, Tensor]]


class MarkovGaussian(TorchDistribution):
    """A Gaussian Markov chain over ``T`` steps: batch shape ``batch_shape``, event ``(T, Z)``.

    ``z_1 ~ N(step(None, 0))``, ``z_t | z_{t-1} ~ N(step(z_{t-1}, t))``. A step gives
    ``(loc, scale)``: a diagonal ``scale (..., Z)`` (standard deviations), or a full
    ``scale (..., Z, Z)``, read as the lower Cholesky factor ``U`` of the precision
    (covariance ``(U U^T)^{-1}``; the hybrid DMM's Gauss–Newton smoother guide).

    Args:
        step: ``(z_prev (..., Z) or None, t) -> (loc, scale)``, one step (for sampling).
        batched: ``z (..., T, Z) -> (loc, scale) (..., T, Z)``, every conditional of a given
            sequence in one call (for scoring).
        time_mask: ``batch_shape + (T,)`` bool; steps where it is False add nothing to
            :meth:`log_prob` (ragged sequences).
        path: optional ``eps (*sample_shape, *batch_shape, T, Z) -> (z, loc, scale)``, the
            whole sequential draw from standard normal noise in one call (the same numbers
            as chaining ``step``, faster; diagonal steps only), used by :meth:`rsample`.

    :meth:`rsample` draws sequentially with reparameterisation and keeps the per-step
    parameters it used, so scoring its own draw costs nothing; any other value is scored
    with ``batched``. Either way the result is the same function of the value: the kept
    parameters only save the recomputation.
    """

    arg_constraints: dict = {}
    support = constraints.independent(constraints.real, 2)
    has_rsample = True

    def __init__(self, step: StepFn, batched: BatchedFn, batch_shape: torch.Size, T: int,
                 Z: int, *, time_mask: Tensor | None = None, dtype=torch.float32,
                 device: torch.device | str = "cpu",
                 path: Callable[[Tensor], tuple[Tensor, Tensor, Tensor]] | None = None):
        self._step, self._batched, self._path = step, batched, path
        self.time_mask = time_mask
        self._dtype, self._device = dtype, torch.device(device)
        self._cache: tuple[Tensor, Tensor, Tensor] | None = None
        #: optional ``torch.Generator`` for the draws of :meth:`rsample`
        self.generator: torch.Generator | None = None
        super().__init__(torch.Size(batch_shape), torch.Size((T, Z)), validate_args=False)

    def expand(self, batch_shape, _instance=None):
        if torch.Size(batch_shape) == self.batch_shape:
            return self
        return super().expand(batch_shape, _instance)

    def rsample(self, sample_shape: tuple[int, ...] = ()) -> Tensor:
        shape = torch.Size(sample_shape) + self.batch_shape + self.event_shape
        eps = torch.randn(shape, dtype=self._dtype, device=self._device,
                          generator=self.generator)
        if self._path is not None:
            self._cache = self._path(eps)
            return self._cache[0]
        z_prev, zs, locs, scales = None, [], [], []
        for t, e in enumerate(eps.unbind(-2)):
            loc, scale = self._step(z_prev, t)
            if scale.dim() > loc.dim():  # precision Cholesky factor U: z = loc + U^{-T} e
                scale = scale.expand(e.shape + e.shape[-1:])
                z_prev = loc + torch.linalg.solve_triangular(
                    scale.transpose(-1, -2), e.unsqueeze(-1), upper=True).squeeze(-1)
            else:
                scale = scale.expand_as(e)
                z_prev = loc + scale * e
            zs.append(z_prev)
            locs.append(loc.expand_as(e))
            scales.append(scale)
        value = torch.stack(zs, -2)
        full = scales[0].dim() > zs[0].dim()
        self._cache = (value, torch.stack(locs, -2), torch.stack(scales, -3 if full else -2))
        return value

    def sample(self, sample_shape: tuple[int, ...] = ()) -> Tensor:
        with torch.no_grad():
            return self.rsample(sample_shape)

    def conditionals(self, value: Tensor) -> tuple[Tensor, Tensor]:
        """``loc, scale (..., T, Z)`` (full: ``scale (..., T, Z, Z)``) of ``z_t | z_{t-1}``
        along the sequence ``value``."""
        if self._cache is not None and value is self._cache[0]:
            return self._cache[1], self._cache[2]
        return self._batched(value)

    def _masked_sum(self, per_step: Tensor) -> Tensor:
        if self.time_mask is not None:
            per_step = per_step.masked_fill(~self.time_mask, 0.0)
        return per_step.sum(-1)

    def log_prob(self, value: Tensor) -> Tensor:
        loc, scale = self.conditionals(value)
        if scale.dim() > loc.dim():  # precision Cholesky factors (..., T, Z, Z)
            u = (scale.transpose(-1, -2) @ (value - loc).unsqueeze(-1)).squeeze(-1)
            log_det = scale.diagonal(dim1=-2, dim2=-1).log()
            lp = -0.5 * u**2 + log_det - _HALF_LOG_2PI
        else:
            lp = -0.5 * ((value - loc) / scale) ** 2 - scale.log() - _HALF_LOG_2PI
        return self._masked_sum(lp.sum(-1))

    def kl_estimate(self, prior: MarkovGaussian, value: Tensor) -> Tensor:
        """``sum_t KL(q(z_t | z_{t-1}) || p(z_t | z_{t-1}))`` along ``value = z_{1:T}``
        (this chain is ``q``, ``prior`` is ``p``; shape ``sample_shape + batch_shape``).

        Each step's Gaussian KL is in closed form; the conditioning states come from
        ``value``. When ``value`` is a draw from this chain the expectation of the estimate
        is ``KL(q || p)`` (chain rule), an unbiased, lower-variance replacement for
        ``log q(value) - log p(value)``. A full-covariance ``q`` (precision Cholesky
        factors) is allowed against a diagonal ``p``; a full ``p`` is not.
        """
        q_loc, q_scale = self.conditionals(value)
        p_loc, p_scale = prior.conditionals(value)
        if p_scale.dim() > p_loc.dim():
            raise NotImplementedError("kl_estimate needs a diagonal prior")
        if q_scale.dim() > q_loc.dim():  # full q (precision Cholesky U) against a diagonal p
            eye = torch.eye(q_scale.shape[-1], dtype=q_scale.dtype, device=q_scale.device)
            u_inv = torch.linalg.solve_triangular(q_scale, eye.expand_as(q_scale), upper=False)
            q_var = u_inv.pow(2).sum(-2)  # diagonal of (U U^T)^{-1}
            log_q_scale = -q_scale.diagonal(dim1=-2, dim2=-1).log()  # per-component share
            kl = 0.5 * (q_var / p_scale**2 + ((q_loc - p_loc) / p_scale) ** 2 - 1) \
                + p_scale.log() - log_q_scale
            return self._masked_sum(kl.sum(-1))
        var_ratio = (q_scale / p_scale) ** 2
        kl = 0.5 * (var_ratio + ((q_loc - p_loc) / p_scale) ** 2 - 1 - var_ratio.log())
        return self._masked_sum(kl.sum(-1))


__all__ = ["BatchedFn", "MarkovGaussian", "StepFn"]
