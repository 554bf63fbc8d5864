"""Transition and guide step of the advection-aware ConvDMM
(:mod:`pyro_videossm.models.ssm.advection_conv_dmm`): latent fields ``(N, C, H, W)`` on the
frame grid, moved by a flow ``(N, 2, H, W)`` (pixels per step) with
:func:`~pyro_videossm.nn.advection.semi_lagrangian_step`, then corrected.

:class:`AdvectionTransition`, ``p(z_t | z_{t-1})``::

    a     = advect(z_{t-1}, flow)
    loc   = a + L(a) + max_change · tanh(conv(relu(conv(a))))  growth / decay, bounded per step
    scale = softplus(conv(relu(conv(a))) + b) + min_scale     learned noise

``L`` is an optional learned *linear* stencil (a ``linear_kernel`` × ``linear_kernel``
convolution over the channels, with a bias; zero padding): the form of a linear physics step
such as diffusion (``u + D Δu``) plus a constant drift, which the bounded non-linear correction
can only approximate, so that its per-step bias does not accumulate over long roll-outs.
``linear_kernel = 0`` (default) leaves it out.

The output convolutions (and ``L``) start at zero: an untrained transition is pure advection
with noise ``init_scale``.

:class:`AdvectionCombiner`, ``q(z_t | z_{t-1}, x_{t:T})``: the advected previous latent,
nudged towards the observation like a Kalman update with a learned gain, plus a learned
correction from the backward summary ``s_t``::

    a     = advect(z_{t-1}, flow)
    d     = (y_t - a[0]) · m_t                   innovation of the observed field (channel 0)
    f     = relu(conv([a, d, m_t, s_t]))
    loc   = a + σ(conv(f)) · d + conv(f)         gain starts near 0.88 on channel 0, 0.02 else
    scale = softplus(conv(f) + b) + min_scale
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pyro_videossm.nn.advection import semi_lagrangian_step


def _conv(cin: int, cout: int, kernel_size: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel_size, padding=kernel_size // 2)


def _inverse_softplus(y: float) -> float:
    return y + math.log(-math.expm1(-y))


def _zero_(conv: nn.Conv2d, bias: float | Tensor = 0.0) -> nn.Conv2d:
    with torch.no_grad():
        conv.weight.zero_()
        conv.bias.copy_(torch.as_tensor(bias, dtype=conv.bias.dtype).expand_as(conv.bias))
    return conv


class AdvectionTransition(nn.Module):
    """``(z (N, C, H, W), flow (N, 2, H, W))`` -> ``loc, scale`` ``(N, C, H, W)`` (module doc).
    """

    def __init__(self, channels: int, hidden_channels: int, kernel_size: int = 3,
                 max_change: float = 0.5, init_scale: float = 0.05,
                 min_scale: float = 1e-3, interpolation: str = "bilinear",
                 linear_kernel: int = 0) -> None:
        super().__init__()
        self.interpolation = interpolation
        self.hidden_channels = hidden_channels
        self.linear = _zero_(_conv(channels, channels, linear_kernel)) if linear_kernel else None
        self.max_change = float(max_change)
        self.min_scale = min_scale
        self.to_hidden = _conv(channels, 2 * hidden_channels, kernel_size)
        self.change_out = _zero_(_conv(hidden_channels, channels, kernel_size))
        self.scale_out = _zero_(_conv(hidden_channels, channels, kernel_size),
                                _inverse_softplus(init_scale - min_scale))

    def forward(self, z: Tensor, flow: Tensor) -> tuple[Tensor, Tensor]:
        a = semi_lagrangian_step(z, flow, self.interpolation)
        hc, hs = torch.relu(self.to_hidden(a)).split(self.hidden_channels, dim=1)
        loc = a + self.max_change * torch.tanh(self.change_out(hc))
        if self.linear is not None:
            loc = loc + self.linear(a)
        return loc, F.softplus(self.scale_out(hs)) + self.min_scale


class AdvectionCombiner(nn.Module):
    """``(z_prev (N, C, H, W), summary (N, 2 + S, H, W), flow (N, 2, H, W))`` -> ``loc, scale``
    ``(N, C, H, W)``; ``summary`` = ``[y_t · m_t, m_t, s_t]`` (module doc)."""

    def __init__(self, channels: int, summary_channels: int, hidden_channels: int,
                 kernel_size: int = 3, init_scale: float = 0.05,
                 min_scale: float = 1e-3, interpolation: str = "bilinear") -> None:
        super().__init__()
        self.interpolation = interpolation
        self.min_scale = min_scale
        self.to_hidden = _conv(channels + 2 + summary_channels, hidden_channels, kernel_size)
        gain0 = torch.full((channels,), -4.0)
        gain0[0] = 2.0
        self.gain_out = _zero_(_conv(hidden_channels, channels, kernel_size), gain0)
        self.delta_out = _zero_(_conv(hidden_channels, channels, kernel_size))
        self.scale_out = _zero_(_conv(hidden_channels, channels, kernel_size),
                                _inverse_softplus(init_scale - min_scale))

    def forward(self, z_prev: Tensor, summary: Tensor, flow: Tensor) -> tuple[Tensor, Tensor]:
        a = semi_lagrangian_step(z_prev, flow, self.interpolation)
        y, m, s = summary[:, :1], summary[:, 1:2], summary[:, 2:]
        d = (y - a[:, :1]) * m
        f = torch.relu(self.to_hidden(torch.cat([a, d, m, s], dim=1)))
        loc = a + torch.sigmoid(self.gain_out(f)) * d + self.delta_out(f)
        return loc, F.softplus(self.scale_out(f)) + self.min_scale


__all__ = ["AdvectionCombiner", "AdvectionTransition"]
