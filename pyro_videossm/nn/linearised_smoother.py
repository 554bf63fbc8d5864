"""Backward messages of a linearised smoother, for the hybrid DMM's smoothing guide.

For a state-space model ``z_{t+1} = f(z_t) + N(0, diag(q²))`` whose observations at each step
give a Gaussian message about ``z_t`` in information form (precision ``p_t``, diagonal, and
information vector ``i_t = p_t x_t``), the message that the later observations send to
``z_t``,

    β_t(z) = p(x_{t+1:T} | z_t = z) ≈ exp(-½ zᵀ Λ_t z + η_tᵀ z),

is computed by a backward information filter along a reference path ``m_{1:T}``, with ``f``
linearised there (``f(z) ≈ f(m_t) + J_t (z - m_t)``)::

    Λ_T = 0, η_T = 0
    L = Λ_{t+1} + diag(p_{t+1}),  e = η_{t+1} + i_{t+1}        (what x_{t+1:T} say about z_{t+1})
    M = (I + L Q)^{-1} L,  n = (I + L Q)^{-1} e                 (= (L^{-1} + Q)^{-1}, no L^{-1})
    Λ_t = J_tᵀ M J_t,  η_t = J_tᵀ (n - M (f(m_t) - J_t m_t))

For a linear model this is exact, and ``q(z_t | z_{t-1}) ∝ N(z_t; f(z_{t-1}), Q) · N(x_t) · β_t``
is then the exact smoothing conditional ``p(z_t | z_{t-1}, x_{t:T})``. For a nonlinear model the
guide relinearises along its own mean path (Gauss–Newton), see
``pyro_videossm.models.ssm.guides.SmootherGuide``.

Where components are never observed, the Gauss–Newton iterations need a first path that
already tracks them: :func:`forward_filter_path` gives one, the means of an extended Kalman
filter (the transition linearised at each filtered mean, full covariances), which carries what
the observed components say about the others through the Jacobians.

Shapes: ``B`` windows (any leading dims), ``T`` steps, ``Z`` state components.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor


def jacobian(fn: Callable[[Tensor], tuple[Tensor, Tensor]], m: Tensor, eps: Tensor
             ) -> tuple[Tensor, Tensor, Tensor]:
    """A transition ``fn: z -> (loc, scale)`` at ``m``: ``loc(m)``, the Jacobian
    ``J[..., i, j] = ∂loc_i / ∂m_j`` by central differences, and ``scale(m)``.

    All ``2 Z + 1`` points move in one call of ``fn`` (``eps (Z,)``: step per component).
    Returns ``(..., Z)``, ``(..., Z, Z)`` and ``(..., Z)``.
    """
    Z = m.shape[-1]
    shift = torch.diag_embed(eps).to(m)  # (Z, Z), row j moves component j
    points = torch.cat([m.unsqueeze(-2), m.unsqueeze(-2) + shift, m.unsqueeze(-2) - shift], -2)
    out, scale = fn(points)
    f = out[..., 0, :]
    jac = (out[..., 1:Z + 1, :] - out[..., Z + 1:, :]) / (2 * eps.to(m).unsqueeze(-1))
    return f, jac.transpose(-1, -2), scale[..., 0, :]


def backward_messages(f: Tensor, J: Tensor, ref: Tensor, precision: Tensor,
                      information: Tensor, q_var: Tensor) -> tuple[Tensor, Tensor]:
    """``Λ (B, T, Z, Z)`` and ``η (B, T, Z)``: the message of ``x_{t+1:T}`` about ``z_t``.

    Args:
        f, J: ``(B, T - 1, Z)``, ``(B, T - 1, Z, Z)``: the transition mean at ``ref[:, t]``
            and its Jacobian there (:func:`jacobian`), for the steps ``t -> t + 1``.
        ref: ``(B, T, Z)`` linearisation path.
        precision, information: ``(B, T, Z)`` the per-step observation messages ``p_t`` and
            ``i_t = p_t x_t`` (0 where nothing is observed).
        q_var: ``(Z,)`` or ``(B, T - 1, Z)`` transition noise variance of the steps
            ``t -> t + 1``.
    """
    B, T, Z = ref.shape
    lam = ref.new_zeros(B, T, Z, Z)
    eta = ref.new_zeros(B, T, Z)
    if T < 2:
        return lam, eta
    offset = f - (J @ ref[:, :-1].unsqueeze(-1)).squeeze(-1)  # f(m) - J m
    q_var = q_var.expand(B, T - 1, Z)
    eye = torch.eye(Z, dtype=ref.dtype, device=ref.device)
    for t in range(T - 2, -1, -1):
        L = lam[:, t + 1] + torch.diag_embed(precision[:, t + 1])
        e = eta[:, t + 1] + information[:, t + 1]
        A = eye + L * q_var[:, t].unsqueeze(-2)  # I + L Q
        sol = torch.linalg.solve(A, torch.cat([L, e.unsqueeze(-1)], -1))
        M = sol[..., :Z]
        M = 0.5 * (M + M.transpose(-1, -2))
        n = sol[..., Z]
        Jt = J[:, t]
        Jt_T = Jt.transpose(-1, -2)
        new_lam = Jt_T @ M @ Jt
        lam[:, t] = 0.5 * (new_lam + new_lam.transpose(-1, -2))
        eta[:, t] = (Jt_T @ (n - (M @ offset[:, t].unsqueeze(-1)).squeeze(-1)).unsqueeze(-1)
                     ).squeeze(-1)
    return lam, eta


def forward_filter_path(fn: Callable[[Tensor], tuple[Tensor, Tensor]], init_loc: Tensor,
                        init_scale: Tensor, precision: Tensor, information: Tensor,
                        q_var: Tensor, eps: Tensor) -> Tensor:
    """``(B, T, Z)``: the filtered means of an extended Kalman filter.

    ``z_1 ~ N(init_loc, diag(init_scale²))``, ``z_{t+1} = loc(z_t) + N(0, diag(q_var))`` with
    ``fn: z -> (loc, scale)`` linearised at each filtered mean (:func:`jacobian`, steps
    ``eps (Z,)``), and at each step the Gaussian message of the observations in information
    form, ``precision, information (B, T, Z)`` (0 where nothing is observed). Computed in
    float64 (the forecast covariance of a chaotic model spans many orders of magnitude);
    returned in ``precision``'s dtype. For a linear model this is the Kalman filter.

    Args:
        init_loc, init_scale: ``(Z,)`` prior of ``z_1``.
        q_var: ``(Z,)`` transition noise variance.
    """
    B, T, Z = precision.shape
    dtype = precision.dtype

    def step64(z: Tensor) -> tuple[Tensor, Tensor]:
        loc, scale = fn(z.to(dtype))
        return loc.double(), scale.double()

    precision, information = precision.double(), information.double()
    q = torch.diag_embed(q_var.double().expand(B, Z))
    prior_precision = torch.diag_embed(init_scale.double().pow(-2).expand(B, Z))
    prior_information = (init_scale.double().pow(-2) * init_loc.double()).expand(B, Z)
    means: list[Tensor] = []
    mean = cov = prior_information  # set at t = 0, read from t = 1
    for t in range(T):
        if t:
            f, J, _ = jacobian(step64, mean, eps.double())
            forecast_cov = J @ cov @ J.transpose(-1, -2) + q
            prior_precision = torch.linalg.inv(0.5 * (forecast_cov + forecast_cov.mT))
            prior_information = (prior_precision @ f.unsqueeze(-1)).squeeze(-1)
        post = prior_precision + torch.diag_embed(precision[:, t])
        chol = torch.linalg.cholesky(0.5 * (post + post.mT))
        mean = torch.cholesky_solve((prior_information + information[:, t]).unsqueeze(-1),
                                    chol).squeeze(-1)
        cov = torch.cholesky_inverse(chol)
        means.append(mean)
    return torch.stack(means, 1).to(dtype)


__all__ = ["backward_messages", "forward_filter_path", "jacobian"]
