"""Sequence baselines for frame forecasting, behind the same Forecaster interface.

Each frame ``(H, W)`` is flattened to one vector of ``H·W`` values: these models see no
spatial structure beyond what a dense layer learns.

* :class:`FlatTransformer` (``"transformer"``): the encoder–decoder of
  :class:`~pyro_videossm.models.SpatioTemporalTransformer` with one
  patch per frame (each frame is one token; attention across steps only).
* :class:`LSTMForecaster` (``"lstm"``): one LSTM reads the context frames and goes on, feeding
  its own (median) forecast back as the next input.
* :class:`Seq2Seq` (``"seq2seq"``): an encoder LSTM reads the context; a decoder LSTM started
  from its final state unrolls the forecast, fed with the last context frame and then its own
  forecasts.
* :class:`Seq2SeqAttention` (``"seq2seq-attn"``): :class:`Seq2Seq` whose decoder attends
  (scaled dot product, Luong style) to all encoder outputs at every step.

The LSTM decoders are trained free-running (fed their own forecasts, as when forecasting), so
training and forecasting do the same computation. The ConvLSTM encoder–forecaster lives in
:mod:`pyro_videossm.models.forecasters.convlstm`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from pyro_videossm.data.scaling import FieldScaling
from pyro_videossm.errors import InputError
from pyro_videossm.forecast.base import register_forecaster
from pyro_videossm.models.forecasters.frame_forecaster import FrameForecaster
from pyro_videossm.models.forecasters.spatiotemporal_transformer import SpatioTemporalTransformer


@register_forecaster
class FlatTransformer(SpatioTemporalTransformer):
    """Transformer on flattened frames: one token per frame (``H·W -> d_model``), learnable
    temporal embedding, encoder–decoder with causal decoder. Options as the parent's, without
    ``patch``/``spatial_attention``."""

    name = "transformer"

    def __init__(self, frame_shape: Sequence[int] | None = None, context_length: int = 10,
                 leads: int = 10,
                 quantiles: Sequence[float] | None = None,
                 scaling: FieldScaling | dict | None = None, d_model: int = 128,
                 heads: int = 4, encoder_layers: int = 2, decoder_layers: int = 2,
                 mlp_ratio: float = 4.0, decoder: str = "direct") -> None:
        super().__init__(frame_shape, context_length, leads, quantiles, scaling,
                         patch=tuple(int(s) for s in frame_shape or (1, 1)), d_model=d_model,
                         heads=heads,
                         encoder_layers=encoder_layers, decoder_layers=decoder_layers,
                         mlp_ratio=mlp_ratio, decoder=decoder, spatial_attention=False)


class _FrameLSTM(FrameForecaster):
    """Shared parts: the constructor (the options of every LSTM baseline), frame encoder
    ``(…, H·W) -> (…, d_model)`` (linear + GELU), output head ``(…, hidden) -> (…, Q·H·W)``;
    subclasses add their LSTMs in :meth:`_build_recurrent`."""

    def __init__(self, frame_shape: Sequence[int] | None = None, context_length: int = 10,
                 leads: int = 10,
                 quantiles: Sequence[float] | None = None,
                 scaling: FieldScaling | dict | None = None, d_model: int = 256,
                 hidden: int = 512, layers: int = 2) -> None:
        super().__init__(frame_shape, context_length, leads, quantiles, scaling)
        for k, v in (("d_model", d_model), ("hidden", hidden), ("layers", layers)):
            if int(v) < 1:
                raise InputError(f"{k} must be >= 1, got {v}")
        self.d_model, self.hidden, self.layers = int(d_model), int(hidden), int(layers)
        h, w = self.frame_shape
        self.frame_in = nn.Sequential(nn.Linear(h * w, self.d_model), nn.GELU())
        self.frame_out = nn.Linear(self.hidden, self.n_outputs * h * w)
        nn.init.normal_(self.frame_out.weight, std=0.02)  # start near a blank frame
        nn.init.zeros_(self.frame_out.bias)
        self._build_recurrent()

    def _build_recurrent(self) -> None:
        """Subclasses add their recurrent layers here (after the shared encoder and head)."""

    def _flat(self, frames: Tensor) -> Tensor:
        return frames.reshape(*frames.shape[:-2], -1)

    def _frames(self, out: Tensor) -> Tensor:
        """Head output ``(B, L, Q·H·W)`` -> ``(B, L, Q, H, W)``."""
        b, l, _ = out.shape
        return out.view(b, l, self.n_outputs, *self.frame_shape)

    def _point(self, raw_step: Tensor) -> Tensor:
        """Raw output of one step ``(B, 1, Q·H·W)`` -> the frame fed back ``(B, 1, H·W)``:
        the (non-crossing) median, or the point forecast."""
        q = self.head(self._frames(raw_step))  # (B, 1, Q, H, W)
        if self.quantiles is None:
            return self._flat(q[:, :, 0])
        med = min(range(len(self.quantiles)), key=lambda k: abs(self.quantiles[k] - 0.5))
        return self._flat(q[:, :, med])


@register_forecaster
class LSTMForecaster(_FrameLSTM):
    """One LSTM over the context frames that continues into the forecast.

    The output after context frame ``T_ctx`` is the first forecast; each forecast (its median)
    is the next input. Shapes: ``(B, T_ctx, H, W)`` -> ``(B, leads, Q, H, W)``.
    """

    name = "lstm"

    def _build_recurrent(self) -> None:
        self.lstm = nn.LSTM(self.d_model, self.hidden, self.layers, batch_first=True)

    def forward_frames(self, context: Tensor, leads: int, target: Tensor | None = None
                       ) -> Tensor:
        out, state = self.lstm(self.frame_in(self._flat(context)))
        raw = [self.frame_out(out[:, -1:])]
        for _ in range(leads - 1):
            out, state = self.lstm(self.frame_in(self._point(raw[-1])), state)
            raw.append(self.frame_out(out))
        return self._frames(torch.cat(raw, dim=1))


@register_forecaster
class Seq2Seq(_FrameLSTM):
    """Encoder LSTM over the context; decoder LSTM from the encoder's final state, reading the
    last context frame, then its own (median) forecasts.

    Shapes: ``(B, T_ctx, H, W)`` -> ``(B, leads, Q, H, W)``.
    """

    name = "seq2seq"

    def _build_recurrent(self) -> None:
        self.encoder = nn.LSTM(self.d_model, self.hidden, self.layers, batch_first=True)
        self.decoder = nn.LSTM(self.d_model, self.hidden, self.layers, batch_first=True)

    def _step_output(self, dec_out: Tensor, enc_out: Tensor) -> Tensor:
        """Decoder output ``(B, 1, hidden)`` -> head input. Plain seq2seq: itself."""
        return dec_out

    def forward_frames(self, context: Tensor, leads: int, target: Tensor | None = None
                       ) -> Tensor:
        x = self._flat(context)
        enc_out, state = self.encoder(self.frame_in(x))
        inp = x[:, -1:]
        raw = []
        for _ in range(leads):
            dec_out, state = self.decoder(self.frame_in(inp), state)
            raw.append(self.frame_out(self._step_output(dec_out, enc_out)))
            inp = self._point(raw[-1])
        return self._frames(torch.cat(raw, dim=1))


@register_forecaster
class Seq2SeqAttention(Seq2Seq):
    """:class:`Seq2Seq` with attention: at each step the decoder output (query) attends to
    all encoder outputs (keys and values, scaled dot product); ``tanh(W [h; context])`` feeds
    the output head. Shapes as :class:`Seq2Seq`."""

    name = "seq2seq-attn"

    def _build_recurrent(self) -> None:
        super()._build_recurrent()
        self.query = nn.Linear(self.hidden, self.hidden, bias=False)
        self.combine = nn.Linear(2 * self.hidden, self.hidden)

    def _step_output(self, dec_out: Tensor, enc_out: Tensor) -> Tensor:
        ctx = F.scaled_dot_product_attention(self.query(dec_out), enc_out, enc_out)
        return torch.tanh(self.combine(torch.cat([dec_out, ctx], dim=-1)))
