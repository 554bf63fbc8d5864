"""ConvLSTM encoder–forecaster (Shi et al. 2015; downsampling between layers as in Shi et al.
2017), a deterministic field-forecasting baseline.

Encoder, for ``L`` layers (``l = 0..L-1``), on all context frames::

    f^0_t  = stride-2 conv([x_t · m_t, m_t])                     (H/2)
    e^l_t  = ConvLSTM_l(f^l_t)              -> final state s^l   (H/2^(l+1))
    f^l+1_t = stride-2 conv(e^l_t)

Forecaster, from the top layer down, for the ``leads`` future steps::

    g^{L-1}_k = ConvLSTM'_{L-1}(no input; starts from s^{L-1})
    g^l_k     = ConvLSTM'_l(deconv(g^{l+1}_k); starts from s^l)
    y_k       = conv(deconv(g^0_k))                                (H)

Every per-frame convolution runs on all time steps at once, and each ConvLSTM layer computes
its input gates for the whole sequence in one convolution; only the recurrent convolutions
loop over time. Trained with a masked mean squared error on the ``leads`` frames after the
context (:func:`masked_mse_loss`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from pyro_videossm.errors import InputError
from pyro_videossm.forecast.base import register_forecaster
from pyro_videossm.forecast.module_forecaster import ModuleForecaster
from pyro_videossm.nn.conv_blocks import pad_to_multiple
from pyro_videossm.nn.convlstm import ConvLSTM, ConvLSTMCell, State


class ConvLSTMEncoderForecaster(nn.Module):
    """Multi-layer ConvLSTM encoder–forecaster with stride-2 convolutions between layers.

    Args:
        hidden_channels: ConvLSTM channels per layer, finest first (layer ``l`` runs at
            ``H / 2**(l+1)``).
        stem_channels: channels of the first (stride-2) convolution and the output head.
        kernel_size: kernel size of all convolutions (odd).
        input_clip: ``(low, high)``: clamp the context values the encoder sees (model units).

    Shapes: :meth:`forward` takes ``context``, ``mask`` ``(B, T, H, W)`` and returns
    ``(B, leads, H, W)``. Frames whose size is not a multiple of ``2**len(hidden_channels)``
    are padded (padding is masked) and the output is cropped back.
    """

    def __init__(self, hidden_channels: Sequence[int] = (32, 32), stem_channels: int = 16,
                 kernel_size: int = 3, input_clip: tuple[float, float] | None = None) -> None:
        super().__init__()
        hidden_channels = [int(c) for c in hidden_channels]
        if not hidden_channels or min(hidden_channels) < 1 or stem_channels < 1:
            raise InputError("ConvLSTM: need at least one layer and channel counts >= 1")
        if input_clip is not None:
            lo, hi = (float(v) for v in input_clip)
            if not lo < hi:
                raise InputError(f"input_clip must be (low, high), low < high: {input_clip}")
            input_clip = (lo, hi)
        self.input_clip = input_clip
        self.config = dict(hidden_channels=hidden_channels, stem_channels=stem_channels,
                           kernel_size=kernel_size,
                           input_clip=None if input_clip is None else list(input_clip))
        self.multiple = 2 ** len(hidden_channels)
        pad = kernel_size // 2
        chans = [stem_channels, *hidden_channels]
        n = len(hidden_channels)
        # encoder: stem + (ConvLSTM, downsampling conv) per layer
        self.stem = nn.Sequential(
            nn.Conv2d(2, stem_channels, kernel_size, stride=2, padding=pad), nn.LeakyReLU(0.2))
        self.down = nn.ModuleList(
            nn.Sequential(nn.Conv2d(chans[l], chans[l], kernel_size, stride=2, padding=pad),
                          nn.LeakyReLU(0.2))
            for l in range(1, n))
        self.enc = nn.ModuleList(ConvLSTM(chans[l], [chans[l + 1]], kernel_size) for l in range(n))
        # forecaster: top cell without input, lower cells fed by the upsampled layer above
        self.fc_top = ConvLSTMCell(0, hidden_channels[-1], kernel_size)
        self.fc = nn.ModuleList(
            ConvLSTM(hidden_channels[l], [hidden_channels[l]], kernel_size) for l in range(n - 1))
        self.up = nn.ModuleList(
            nn.Sequential(nn.ConvTranspose2d(hidden_channels[l + 1], hidden_channels[l], 4,
                                             stride=2, padding=1), nn.LeakyReLU(0.2))
            for l in range(n - 1))
        self.head = nn.Sequential(
            nn.ConvTranspose2d(hidden_channels[0], stem_channels, 4, stride=2, padding=1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(stem_channels, 1, kernel_size, padding=pad),
        )

    def architecture(self) -> dict[str, Any]:
        """Constructor arguments: ``ConvLSTMEncoderForecaster(**architecture())`` rebuilds it."""
        return dict(self.config)

    @staticmethod
    def _frames(module: nn.Module, seq: Tensor) -> Tensor:
        """Apply a per-frame ``module`` to ``(B, T, C, H, W)`` in one call."""
        B, T = seq.shape[:2]
        out = module(seq.reshape(B * T, *seq.shape[2:]))
        return out.reshape(B, T, *out.shape[1:])

    def encode(self, context: Tensor, mask: Tensor) -> list[State]:
        """``(B, T, H, W)`` padded frames and mask -> final ``(h, c)`` of every layer."""
        if self.input_clip is not None:
            context = context.clamp(*self.input_clip)
        x = torch.stack([context * mask, mask.to(context.dtype)], dim=2)
        seq = self._frames(self.stem, x)
        states = []
        for l, rnn in enumerate(self.enc):
            if l > 0:
                seq = self._frames(self.down[l - 1], seq)
            seq, (s,) = rnn(seq)
            states.append(s)
        return states

    def decode(self, states: list[State], leads: int) -> Tensor:
        """Encoder states -> ``(B, leads, H, W)`` forecast frames (padded grid)."""
        s = states[-1]
        outs = []
        for _ in range(leads):
            s = self.fc_top(None, s)
            outs.append(s[0])
        seq = torch.stack(outs, dim=1)
        for l in range(len(self.fc) - 1, -1, -1):
            seq, _ = self.fc[l](self._frames(self.up[l], seq), [states[l]])
        return self._frames(self.head, seq)[:, :, 0]

    def forward(self, context: Tensor, mask: Tensor, leads: int) -> Tensor:
        if context.dim() != 4 or context.shape != mask.shape:
            raise InputError(f"expected context and mask of shape (B, T, H, W), got "
                             f"{tuple(context.shape)} and {tuple(mask.shape)}")
        H, W = context.shape[-2:]
        mask = mask.bool()
        x = pad_to_multiple(context * mask, self.multiple)
        m = pad_to_multiple(mask, self.multiple, value=False)
        return self.decode(self.encode(x, m), leads)[..., :H, :W]


def masked_mse_loss(module: ConvLSTMEncoderForecaster, batch: dict[str, Tensor],
                    context_length: int,
                    target_clip: tuple[float, float] | None = None) -> Tensor:
    """Mean squared error over the observed pixels of the frames after the first
    ``context_length`` (batch ``x``, ``mask`` ``(B, T, H, W)``, ``T > context_length``).
    ``target_clip = (low, high)`` clamps the targets first (a crude guard against
    heavy-tailed noise; ``None``: plain MSE)."""
    x, mask = batch["x"], batch["mask"].bool()
    leads = x.shape[1] - context_length
    if leads < 1:
        raise InputError(f"training windows of {x.shape[1]} steps leave no lead after a "
                         f"context of {context_length}")
    pred = module(x[:, :context_length], mask[:, :context_length], leads)
    target, m = x[:, context_length:], mask[:, context_length:].to(x.dtype)
    if target_clip is not None:
        target = target.clamp(*target_clip)
    return ((pred - target) ** 2 * m).sum() / m.sum().clamp(min=1.0)


class MSELoss:
    """``loss_fn(module, batch)`` for :class:`~pyro_videossm.infer.LossObjective`: masked MSE
    of the forecast of the window's last frames from its first ``context_length`` (targets
    clamped to ``target_clip`` if given)."""

    def __init__(self, context_length: int,
                 target_clip: tuple[float, float] | None = None) -> None:
        self.context_length = int(context_length)
        self.target_clip = None if target_clip is None else tuple(map(float, target_clip))

    def __call__(self, module: ConvLSTMEncoderForecaster, batch: dict[str, Tensor]) -> Tensor:
        return masked_mse_loss(module, batch, self.context_length, self.target_clip)


@register_forecaster
class ConvLSTMForecaster(ModuleForecaster):
    """Deterministic forecaster around a trained :class:`ConvLSTMEncoderForecaster`
    (member dimension of size 1)."""

    name = "convlstm"
    deterministic = True
    module_class = ConvLSTMEncoderForecaster

    @torch.no_grad()
    def predict(self, context: Tensor, mask: Tensor, leads: int, members: int = 1, *,
                generator: torch.Generator | None = None) -> Tensor:
        """``(B, T, H, W)`` -> ``(B, leads, 1, H, W)`` (model units)."""
        return self.module(context, mask, leads).unsqueeze(2)
