"""Heavy-tailed observations at inference: a DMM guide with iteratively reweighted
observation messages (IRLS).

A trained guide reads the observations in two ways: its learned parts (the RNN, the learned
message's centre, the smoother guide's first linearisation path) and, for the hybrid DMM, the
observation's own Gaussian message ``N(x_t, R)``. One observation of 1e4 on Lorenz-63 drags
both. With a Huber or Student-t likelihood each observed component gets the weight of
:func:`pyro_videossm.filters.robust.reweighting` (the ensemble filters' own) from its
standardised residual against the guide's current posterior,

    z = (x - m) / sqrt(v + r^2),   w = min(1, c / |z|)  (Huber)  or  (nu + 1) / (nu + z^2),

``m, v`` the mean and variance of the guide's draws of the predicted observation and ``r``
the model's observation noise (scale). Then

- the observation's own message gets the variance ``r^2 / w`` (as in the ensemble filters);
- the learned parts read the pseudo-observation ``m + w (x - m)`` (Huber's winsorised
  observation for the Huber weight: ``m + sqrt(v + r^2) clip(z, -c, c)``), which stays
  within a few predicted standard deviations of ``m`` however far ``x`` is.

The first pass takes ``m, v`` from the climatology the guide standardises its inputs with
(``encoder.x_loc``, ``encoder.x_scale^2``); then ``iterations`` more passes, each with the
weights recomputed from the previous pass's draws (``samples`` draws each); the draws of
the last pass are returned. Inliers (``|z|`` about 1) keep a weight close to 1.

Shapes: ``B`` windows, ``T`` cycles, ``X`` observed components, ``S`` draws.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor

from pyro_videossm.errors import InputError
from pyro_videossm.filters.robust import reweighting
from pyro_videossm.nn.dmm_blocks import BernoulliLikelihood

if TYPE_CHECKING:
    from pyro_videossm.models.ssm.dmm import DMM

#: degrees of freedom of the first pass's Student-t weights (against the climatology)
FIRST_PASS_DF = 4.0


def irls_weights(x: Tensor, mask: Tensor, mean: Tensor, var: Tensor, obs_var: Tensor,
                 obs_likelihood: str, param: float) -> tuple[Tensor, Tensor]:
    """Weights ``w`` in ``(0, 1]`` (1 where not observed) and pseudo-observations
    ``m + w (x - m)`` (0 where not observed), both ``(B, T, X)``.

    ``x, mask (B, T, X)``; ``mean, var`` the predicted observation's mean and variance
    (broadcastable); ``obs_var (X,)`` the observation noise variance.
    """
    innovation = torch.where(mask, x - mean, torch.zeros_like(x))
    w = reweighting(innovation, var + obs_var, obs_likelihood, param)
    w = torch.where(mask, w, torch.ones_like(w))
    pseudo = torch.where(mask, mean + w * innovation, torch.zeros_like(x))
    return w, pseudo


@torch.no_grad()
def robust_posterior_draws(dmm: DMM, batch: dict[str, Tensor], samples: int, *,
                           obs_likelihood: str, param: float, iterations: int = 3,
                           generator: torch.Generator | None = None
                           ) -> tuple[Tensor, Tensor]:
    """Guide draws ``(S, B, T, Z)`` with reweighted observation messages (see the module
    docstring) and the final weights ``(B, T, X)``.

    ``batch``: ``{"x": (B, T, X), "mask": (B, T, X)}``; ``obs_likelihood``: ``"huber"`` or
    ``"student_t"`` (``"gaussian"``: one plain pass, weights 1); ``param``: Huber's ``c`` or
    Student-t's ``nu``; ``iterations >= 1``: reweighting passes before the returned one.
    """
    if isinstance(dmm.likelihood, BernoulliLikelihood):
        raise InputError("a heavy-tailed observation likelihood needs a DMM with Gaussian or "
                         "Student-t observations, not Bernoulli")
    if int(iterations) < 1:
        raise InputError(f"robust_iterations must be >= 1, got {iterations}")
    x = batch["x"]
    data = dmm.unpack(batch)
    if obs_likelihood == "gaussian":
        return dmm.sample_posterior(batch, samples, generator=generator), torch.ones_like(x)
    obs_var = dmm.likelihood.log_scale.exp().to(x).pow(2)
    encoder = dmm.guide.encoder
    mean, var = encoder.x_loc.to(x), encoder.x_scale.to(x).pow(2)  # climatology first
    for k in range(int(iterations) + 1):
        # the first pass always redescends (Student-t, 4 degrees of freedom): Huber's weights
        # keep an outlier c climatological standard deviations from the climatology
        likelihood, nu = (obs_likelihood, param) if k else ("student_t", FIRST_PASS_DF)
        w, pseudo = irls_weights(data.x, data.obs_mask, mean, var, obs_var, likelihood, nu)
        z = dmm.sample_posterior({**batch, "obs_weight": w, "x_pseudo": pseudo}, samples,
                                 generator=generator)
        predicted = dmm.emitter(z)  # hybrid: the state; neural: E[x_t | z_t]
        mean, var = predicted.mean(0), predicted.var(0)
    return z, w


__all__ = ["irls_weights", "robust_posterior_draws"]
