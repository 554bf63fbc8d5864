"""Vanilla deep Markov model on flattened frames: the baseline ConvDMM is measured against.

Same model, guide, masks, annealing and forecast as :class:`~pyro_videossm.models.ssm.conv_dmm.
ConvDMM` (shared in :class:`~pyro_videossm.models.ssm.conv_dmm.FieldDMM`), but the latent ``z_t`` is
one vector of ``latent_dim`` numbers for the whole frame::

    z_t ~ N(GatedTransition(z_{t-1}))                                  (vector, Krishnan et al.)
    x_t ~ N(deconv(reshape(Linear(z_t))), σ)                            at observed pixels
    guide: e_t = Linear(flatten(ConvEncoder([x_t · m_t, m_t]))),  h_t = backward GRU(e_{t:T}),
           z_t ~ N(Combiner(z_{t-1}, h_t))

The flattening ties the model to one grid size (``grid``). The vector blocks
(``GatedTransition``, ``Combiner``) are the vector DMM's, from :mod:`pyro_videossm.nn.dmm_blocks`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from pyro_videossm.errors import InputError
from pyro_videossm.forecast.base import register_forecaster
from pyro_videossm.models.ssm.conv_dmm import FieldDMM, FieldDMMForecaster
from pyro_videossm.nn.conv_blocks import ConvDecoder, ConvEncoder
from pyro_videossm.nn.dmm_blocks import Combiner, GatedTransition


class DMMFlat(FieldDMM):
    """DMM with a vector latent per frame (see the module doc).

    Args:
        grid: ``(H, W)`` of the frames it models (padded up to multiples of ``2**n_down``).
        latent_dim: size ``Z`` of ``z_t``.
        hidden_dim: hidden units of the transition.
        rnn_dim: hidden units of the guide's backward GRU.
        conv_channels: channels of the frame encoder and the emitter's decoder.
        n_down: stride-2 downsamplings in the encoder (upsamplings in the emitter).
        likelihood, obs_scale, df, init_obs_scale, input_clip: as in :class:`ConvDMM`.
    """

    pyro_name = "dmm_flat"

    def __init__(self, grid: Sequence[int] = (32, 32), latent_dim: int = 32,
                 hidden_dim: int = 64, rnn_dim: int = 64, conv_channels: int = 16,
                 n_down: int = 2, likelihood: str = "gaussian", obs_scale: float | None = None,
                 df: float = 4.0, init_obs_scale: float = 0.1,
                 input_clip: tuple[float, float] | None = None) -> None:
        super().__init__(likelihood, obs_scale, df, init_obs_scale, input_clip)
        grid = [int(g) for g in grid]
        if len(grid) != 2 or min(grid) < 1:
            raise InputError(f"grid must be (H, W) with positive sizes, got {grid}")
        for key, v in (("latent_dim", latent_dim), ("hidden_dim", hidden_dim),
                       ("rnn_dim", rnn_dim), ("conv_channels", conv_channels)):
            if v < 1:
                raise InputError(f"{key} must be >= 1, got {v}")
        self.config = dict(grid=grid, latent_dim=latent_dim, hidden_dim=hidden_dim,
                           rnn_dim=rnn_dim, conv_channels=conv_channels, n_down=n_down,
                           likelihood=likelihood, obs_scale=obs_scale, df=float(df),
                           init_obs_scale=init_obs_scale,
                           input_clip=None if self.input_clip is None else list(self.input_clip))
        self.multiple = 2**n_down
        self.grid = tuple(grid)
        self.padded = tuple(-(-g // self.multiple) * self.multiple for g in grid)
        self.coarse = (self.padded[0] // self.multiple, self.padded[1] // self.multiple)
        n_coarse = conv_channels * self.coarse[0] * self.coarse[1]
        self.latent_dim = latent_dim
        self.conv_channels = conv_channels
        self.trans = GatedTransition(latent_dim, hidden_dim)
        self.emitter_in = nn.Linear(latent_dim, n_coarse)
        self.emitter = ConvDecoder(conv_channels, conv_channels, 1, n_down)
        self.encoder = ConvEncoder(2, conv_channels, conv_channels, n_down)
        self.encoder_out = nn.Linear(n_coarse, rnn_dim)
        self.rnn = nn.GRU(rnn_dim, rnn_dim, batch_first=True)
        self.combiner = Combiner(latent_dim, rnn_dim)  # holds the guide's z_q_0
        self.z_0 = nn.Parameter(torch.zeros(latent_dim))

    def architecture(self) -> dict[str, Any]:
        return dict(self.config)

    def _latent_event_dim(self) -> int:
        return 1

    def initial_latents(self, batch, height, width):
        if (height, width) != self.padded:
            raise InputError(f"dmm-flat was built for {self.grid[0]}×{self.grid[1]} frames; "
                             f"got frames padded to {height}×{width}")
        shape = (batch, self.latent_dim)
        return self.z_0.expand(shape), self.combiner.z_q_0.expand(shape)

    def encode(self, x, mask):
        B, T, H, W = x.shape
        if (H, W) != self.padded:
            raise InputError(f"dmm-flat was built for {self.grid[0]}×{self.grid[1]} frames")
        frames = torch.stack([x, mask.to(x.dtype)], dim=2).reshape(B * T, 2, H, W)
        e = torch.relu(self.encoder_out(self.encoder(frames).flatten(1))).reshape(B, T, -1)
        h, _ = self.rnn(e.flip(1))
        return h.flip(1)

    def transition(self, z):
        return self.trans(z)

    def combine(self, z_prev, h):
        return self.combiner(z_prev, h)

    def emit(self, z):
        f = torch.relu(self.emitter_in(z)).reshape(-1, self.conv_channels, *self.coarse)
        return self.emitter(f)[:, 0]


@register_forecaster
class DMMFlatForecaster(FieldDMMForecaster):
    """Forecaster around a trained :class:`DMMFlat`."""

    name = "dmm-flat"
    module_class = DMMFlat
