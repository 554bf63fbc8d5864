"""Convolutional building blocks of deep state-space models on fields (ConvDMM, flat DMM).

Every block works on a batch of frames ``(N, C, H, W)``; sequences are folded into ``N`` by
the caller so that one convolution covers all time steps. The latent grid is the frame grid
downsampled ``n_down`` times by 2 (``h = H / 2**n_down``); :func:`pad_to_multiple` pads frames
whose size is not a multiple of ``2**n_down``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def pad_to_multiple(x: Tensor, multiple: int, value: float = 0.0) -> Tensor:
    """Pad the last two dims of ``x`` (``..., H, W``) at the bottom/right to multiples of
    ``multiple`` with ``value`` (use ``False`` for masks, so padded pixels count as missing)."""
    H, W = x.shape[-2:]
    ph, pw = (-H) % multiple, (-W) % multiple
    if ph == 0 and pw == 0:
        return x
    if x.dtype == torch.bool:
        out = x.new_full((*x.shape[:-2], H + ph, W + pw), bool(value))
        out[..., :H, :W] = x
        return out
    return F.pad(x, (0, pw, 0, ph), value=value)


def _conv(cin: int, cout: int, kernel_size: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel_size, stride=stride, padding=kernel_size // 2)


def level_channels(hidden_channels: int, n_levels: int, min_channels: int = 8) -> list[int]:
    """Channels at each resolution, finest first: ``hidden_channels`` at the coarsest level,
    halved per level towards full resolution, never below ``min_channels`` (nor above
    ``hidden_channels``). Keeps the full-resolution convolutions, the costly ones, thin."""
    return [max(min(min_channels, hidden_channels), hidden_channels >> (n_levels - k))
            for k in range(n_levels + 1)]


class ConvEncoder(nn.Module):
    """Strided convolutional encoder: frames to feature maps on the latent grid.

    ``(N, C_in, H, W)`` -> ``(N, C_out, H / 2**n_down, W / 2**n_down)`` (``H, W`` multiples of
    ``2**n_down``). A 3×3 convolution, then ``n_down`` stride-2 3×3 convolutions doubling the
    channels up to ``hidden_channels`` (:func:`level_channels`), then a 3×3 output convolution,
    with ReLU between.
    """

    def __init__(self, in_channels: int, hidden_channels: int, out_channels: int,
                 n_down: int, kernel_size: int = 3, min_channels: int = 8) -> None:
        super().__init__()
        ch = level_channels(hidden_channels, n_down, min_channels)
        layers: list[nn.Module] = [_conv(in_channels, ch[0], kernel_size), nn.ReLU()]
        for k in range(n_down):
            layers += [_conv(ch[k], ch[k + 1], kernel_size, stride=2), nn.ReLU()]
        layers.append(_conv(ch[-1], out_channels, kernel_size))
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class ConvDecoder(nn.Module):
    """Deconvolutional decoder: latent-grid feature maps to full-resolution frames.

    ``(N, C_in, h, w)`` -> ``(N, C_out, h · 2**n_up, w · 2**n_up)``. A 3×3 convolution to
    ``hidden_channels``, ``n_up`` stride-2 transposed convolutions (kernel 4, exact doubling)
    halving the channels (:func:`level_channels`), a 3×3 output convolution; ReLU between.
    """

    def __init__(self, in_channels: int, hidden_channels: int, out_channels: int,
                 n_up: int, kernel_size: int = 3, min_channels: int = 8) -> None:
        super().__init__()
        ch = level_channels(hidden_channels, n_up, min_channels)[::-1]  # coarsest first
        layers: list[nn.Module] = [_conv(in_channels, ch[0], kernel_size), nn.ReLU()]
        for k in range(n_up):
            layers += [nn.ConvTranspose2d(ch[k], ch[k + 1], 4, stride=2, padding=1), nn.ReLU()]
        layers.append(_conv(ch[-1], out_channels, kernel_size))
        self.net = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z)


class ConvGatedTransition(nn.Module):
    """Gated residual transition ``p(z_t | z_{t-1})`` on feature maps: the DMM's
    GatedTransition (Krishnan et al. 2017) with convolutions in place of linear maps.

    ``z`` ``(N, C, h, w)`` -> ``loc, scale`` ``(N, C, h, w)``::

        gate     = σ(conv(relu(conv(z))))
        proposal = conv(relu(conv(z)))
        loc      = (1 - gate) ⊙ conv1x1(z) + gate ⊙ proposal     (conv1x1 starts as identity)
        scale    = softplus(conv(relu(proposal))) + min_scale
    """

    def __init__(self, channels: int, hidden_channels: int, kernel_size: int = 3,
                 min_scale: float = 1e-3) -> None:
        super().__init__()
        self.hidden_channels = hidden_channels
        self.to_hidden = _conv(channels, 2 * hidden_channels, kernel_size)
        self.gate_out = _conv(hidden_channels, channels, kernel_size)
        self.proposal_out = _conv(hidden_channels, channels, kernel_size)
        self.z_to_loc = nn.Conv2d(channels, channels, 1)
        self.scale_out = _conv(channels, channels, kernel_size)
        self.min_scale = min_scale
        with torch.no_grad():
            nn.init.dirac_(self.z_to_loc.weight)
            self.z_to_loc.bias.zero_()

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        hg, hp = torch.relu(self.to_hidden(z)).split(self.hidden_channels, dim=1)
        gate = torch.sigmoid(self.gate_out(hg))
        proposal = self.proposal_out(hp)
        loc = (1 - gate) * self.z_to_loc(z) + gate * proposal
        scale = F.softplus(self.scale_out(torch.relu(proposal))) + self.min_scale
        return loc, scale


class ConvCombiner(nn.Module):
    """Guide step ``q(z_t | z_{t-1}, x_{t:T})`` on feature maps: combines the previous latent
    with the backward ConvLSTM state ``h_t`` (Pyro's DMM Combiner, convolutional).

    ``z_prev`` ``(N, C, h, w)``, ``h_rnn`` ``(N, C_r, h, w)`` -> ``loc, scale`` ``(N, C, h, w)``::

        hc    = (tanh(conv(z_prev)) + h_rnn) / 2
        loc   = conv(hc)
        scale = softplus(conv(hc)) + min_scale
    """

    def __init__(self, channels: int, rnn_channels: int, kernel_size: int = 3,
                 min_scale: float = 1e-3) -> None:
        super().__init__()
        self.channels = channels
        self.z_to_hidden = _conv(channels, rnn_channels, kernel_size)
        self.hidden_to_loc_scale = _conv(rnn_channels, 2 * channels, kernel_size)
        self.min_scale = min_scale

    def forward(self, z_prev: Tensor, h_rnn: Tensor) -> tuple[Tensor, Tensor]:
        hc = 0.5 * (torch.tanh(self.z_to_hidden(z_prev)) + h_rnn)
        loc, s = self.hidden_to_loc_scale(hc).split(self.channels, dim=1)
        return loc, F.softplus(s) + self.min_scale
