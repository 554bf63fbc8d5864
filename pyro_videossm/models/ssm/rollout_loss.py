"""Free-running (multi-step) likelihood of a field DMM's transition mean: a training term that
teaches the prior to forecast many steps ahead, not only one.

The ELBO scores the transition one step at a time on the guide's (filtered, smoothed) latents:
nothing in it penalises errors that a forecast accumulates when the prior runs free for many
steps. This term does (an observation-space form of latent overshooting, as a rollout loss on
the generative model's mean path)::

    starts  s = 0, stride, 2·stride, ... < T - 1
    m_s     = z_s                                   the guide's draw at s
    m_{s+k} = loc(m_{s+k-1})                         transition mean, no noise, k = 1..horizon
    term    = (1 / #starts) Σ_s Σ_{k: s+k < T} log p(y_{s+k} | emit(m_{s+k}))   at observed pixels

``log p`` is the model's own observation density (Gaussian or Student-t), so heavy-tailed noise
is handled as in the ELBO. The model adds ``weight · term`` to its log joint with
``pyro.factor`` (gradients reach the transition, the emitter and, through ``z_s``, the guide).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor


def rollout_starts(num_steps: int, stride: int) -> list[int]:
    """Start indices ``0, stride, ... < num_steps - 1`` (at least one step left to predict)."""
    return list(range(0, max(num_steps - 1, 0), stride))


def free_running_log_likelihood(
    step: Callable[[Tensor], Tensor],
    emit: Callable[[Tensor], Tensor],
    log_density: Callable[[Tensor, Tensor], Tensor],
    z: Tensor, y: Tensor, mask: Tensor, *, horizon: int, stride: int,
) -> Tensor:
    """The module-doc term per sequence.

    Args:
        step: transition mean ``(N, *E)`` -> ``(N, *E)``; it is called on ``N = B · S``
            latents ordered sequence-major (``b · S + s``).
        emit: latents ``(N, *E)`` -> frames ``(N, H', W')`` (``H' >= H``, ``W' >= W``: padding
            is cropped).
        log_density: ``(loc, value)`` ``(B, S, H, W)`` -> pixel-wise log density.
        z: the guide's latents ``(B, T, *E)``.
        y: observations ``(B, T, H, W)`` (in the space the likelihood scores).
        mask: ``(B, T, H, W)``, True where observed.
        horizon: free-running steps from each start (>= 1).
        stride: distance between starts (>= 1).

    Returns ``(B,)``.
    """
    B, T = z.shape[:2]
    H, W = y.shape[-2:]
    starts = rollout_starts(T, stride)
    if not starts:
        return z.new_zeros(B)
    S = len(starts)
    index = torch.tensor(starts, device=z.device)
    m = z[:, index].reshape(B * S, *z.shape[2:])
    total = z.new_zeros(B)
    for k in range(1, horizon + 1):
        t = index + k
        valid = t < T
        if not bool(valid.any()):
            break
        m = step(m)
        frames = emit(m)[..., :H, :W].reshape(B, S, H, W)
        tt = t.clamp(max=T - 1)
        keep = mask[:, tt].bool() & valid.view(1, S, 1, 1)
        lp = log_density(frames, y[:, tt])
        total = total + torch.where(keep, lp, torch.zeros_like(lp)).sum((1, 2, 3))
    return total / S


__all__ = ["free_running_log_likelihood", "rollout_starts"]
