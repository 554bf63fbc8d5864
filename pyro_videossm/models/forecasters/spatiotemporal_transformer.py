"""Spatiotemporal Transformer: an encoder–decoder over frame patches, attending within and
across time steps.

Frames ``(B, T, H, W)`` are cut into ``ph × pw`` patches (``N = (H/ph)(W/pw)`` per frame), each
projected linearly to ``d_model`` and given a learnable spatial embedding (one per patch
position) and a learnable temporal embedding (one per step, shared by encoder and decoder:
context steps ``0..T_ctx-1``, target steps ``T_ctx..T_ctx+L-1``). Every layer
(:class:`SpatioTemporalBlock`, pre-LayerNorm residuals, GELU MLP) has two attentions, both
``torch.nn.functional.scaled_dot_product_attention``:

* *spatial*: the ``N`` patches of one step attend to each other;
* *across steps*: the patches of one step (queries) attend to the patches of the **other**
  steps (keys/values). In the encoder these are the other context steps. In the decoder they
  are all encoder outputs (the context) and the decoder's own **earlier** steps — the causal
  mask — in one attention call.

The decoder reads, at target step ``t``, the previous frame: the last context frame for
``t = 0`` and the target frame ``t - 1`` after that (``decoder="autoregressive"``: teacher
forcing while training, its own median forecast fed back when forecasting). With
``decoder="direct"`` every decoder step reads the last context frame and all leads come out of
one pass (the same computation in training and forecasting). The output projection maps each
decoder token to ``ph·pw·Q`` values, recombined into frames (``Q`` = 1 for point forecasts,
the number of quantile levels otherwise; see
:mod:`pyro_videossm.models.forecasters.frame_forecaster`).

Attention cost per layer: ``T N²`` (spatial) plus ``(T N)²`` (across steps); see
``benchmarks/attention_cost.py``.
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

DECODERS = ("direct", "autoregressive")


def _pair(p: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(p, int):
        return (p, p)
    p = tuple(int(v) for v in p)
    if len(p) != 2:
        raise InputError(f"patch must be an int or (ph, pw), got {p}")
    return p  # type: ignore[return-value]


def patchify(x: Tensor, ph: int, pw: int) -> Tensor:
    """``(B, T, C, H, W)`` or ``(B, T, H, W)`` -> ``(B, T, N, C·ph·pw)``, patches row-major."""
    if x.dim() == 4:
        x = x.unsqueeze(2)
    b, t, c, h, w = x.shape
    if h % ph or w % pw:
        raise InputError(f"patch size {ph}x{pw} does not divide the frame size {h}x{w}")
    x = x.reshape(b, t, c, h // ph, ph, w // pw, pw)
    return x.permute(0, 1, 3, 5, 2, 4, 6).reshape(b, t, (h // ph) * (w // pw), c * ph * pw)


def unpatchify(tokens: Tensor, ph: int, pw: int, h: int, w: int) -> Tensor:
    """``(B, T, N, C·ph·pw)`` -> ``(B, T, C, H, W)``; the inverse of :func:`patchify`."""
    b, t, n, f = tokens.shape
    gh, gw = h // ph, w // pw
    if n != gh * gw or f % (ph * pw):
        raise ValueError(f"{n} tokens of {f} values do not make {h}x{w} frames of "
                         f"{ph}x{pw} patches")
    c = f // (ph * pw)
    x = tokens.reshape(b, t, gh, gw, c, ph, pw).permute(0, 1, 4, 2, 5, 3, 6)
    return x.reshape(b, t, c, h, w)


class Attention(nn.Module):
    """Multi-head attention: queries ``x (B, Nq, d)``, keys/values ``kv (B, Nk, d)``, bool
    ``mask (Nq, Nk)`` (True = may attend) -> ``(B, Nq, d)``. Uses PyTorch's fused SDPA."""

    def __init__(self, d_model: int, heads: int) -> None:
        super().__init__()
        if d_model % heads:
            raise InputError(f"d_model {d_model} is not divisible by heads {heads}")
        self.heads = heads
        self.q = nn.Linear(d_model, d_model)
        self.kv = nn.Linear(d_model, 2 * d_model)
        self.out = nn.Linear(d_model, d_model)

    def forward(self, x: Tensor, kv: Tensor, mask: Tensor | None = None) -> Tensor:
        b, nq, d = x.shape
        nk = kv.shape[1]
        h = self.heads
        q = self.q(x).view(b, nq, h, d // h).transpose(1, 2)
        k, v = self.kv(kv).view(b, nk, 2, h, d // h).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.out(y.transpose(1, 2).reshape(b, nq, d))


class SpatioTemporalBlock(nn.Module):
    """One pre-LayerNorm layer on tokens ``(B, T, N, d)``: spatial attention within each
    step, attention across steps, GELU MLP; each added back residually.

    ``forward(x, step_mask, memory=None)``: ``step_mask (T·N, K)`` bool over the keys of the
    cross-step attention, which are ``memory (B, M, d)`` (if given) followed by the ``T·N``
    tokens of ``x``; ``K = M + T·N``.
    """

    def __init__(self, d_model: int, heads: int, mlp_ratio: float = 4.0,
                 spatial: bool = True) -> None:
        super().__init__()
        self.spatial = spatial
        if spatial:
            self.norm_s = nn.LayerNorm(d_model)
            self.attn_s = Attention(d_model, heads)
        self.norm_t = nn.LayerNorm(d_model)
        self.attn_t = Attention(d_model, heads)
        self.norm_m = nn.LayerNorm(d_model)
        hidden = int(mlp_ratio * d_model)
        self.mlp = nn.Sequential(nn.Linear(d_model, hidden), nn.GELU(),
                                 nn.Linear(hidden, d_model))

    def forward(self, x: Tensor, step_mask: Tensor, memory: Tensor | None = None) -> Tensor:
        b, t, n, d = x.shape
        if self.spatial and n > 1:
            h = self.norm_s(x).reshape(b * t, n, d)
            x = x + self.attn_s(h, h).view(b, t, n, d)
        h = self.norm_t(x).reshape(b, t * n, d)
        kv = h if memory is None else torch.cat([memory, h], dim=1)
        x = x + self.attn_t(h, kv, step_mask).view(b, t, n, d)
        return x + self.mlp(self.norm_m(x))


def encoder_mask(t: int, n: int, device=None) -> Tensor:
    """``(T·N, T·N)``: a token attends to the tokens of the other steps (all, if ``T = 1``)."""
    s = torch.arange(t, device=device).repeat_interleave(n)
    if t == 1:
        return torch.ones(n, n, dtype=torch.bool, device=device)
    return s[:, None] != s[None, :]


def decoder_mask(t: int, n: int, m: int, device=None) -> Tensor:
    """``(T·N, M + T·N)``: all ``M`` memory tokens, and decoder tokens of earlier steps."""
    s = torch.arange(t, device=device).repeat_interleave(n)
    mem = torch.ones(t * n, m, dtype=torch.bool, device=device)
    return torch.cat([mem, s[None, :] < s[:, None]], dim=1)


@register_forecaster
class SpatioTemporalTransformer(FrameForecaster):
    """Encoder–decoder Transformer on frame patches (see the module doc).

    Args:
        frame_shape, context_length, leads, quantiles, scaling: see :class:`FrameForecaster`.
        patch: patch size ``p`` or ``(ph, pw)``; must divide the frame size.
        d_model: token width.
        heads: attention heads.
        encoder_layers, decoder_layers: number of :class:`SpatioTemporalBlock` layers.
        mlp_ratio: MLP hidden width / ``d_model``.
        decoder: ``"direct"`` (all leads in one pass) or ``"autoregressive"``.
        spatial_attention: False drops the within-step attention (used with one patch per
            frame, where it would be a no-op).

    Shapes: ``forward_frames(context (B, T_ctx, H, W), leads, target=None)`` ->
    ``(B, leads, Q, H, W)``.
    """

    name = "spatrans"

    def __init__(self, frame_shape: Sequence[int] | None = None, context_length: int = 10,
                 leads: int = 10,
                 quantiles: Sequence[float] | None = None,
                 scaling: FieldScaling | dict | None = None, patch: int | Sequence[int] = 8,
                 d_model: int = 64, heads: int = 4, encoder_layers: int = 2,
                 decoder_layers: int = 2, mlp_ratio: float = 4.0, decoder: str = "direct",
                 spatial_attention: bool = True) -> None:
        super().__init__(frame_shape, context_length, leads, quantiles, scaling)
        ph, pw = _pair(patch)
        h, w = self.frame_shape
        if ph < 1 or pw < 1 or h % ph or w % pw:
            raise InputError(f"patch size {ph}x{pw} does not divide the frame size {h}x{w}")
        if decoder not in DECODERS:
            raise InputError(f"decoder must be one of {DECODERS}, got {decoder!r}")
        for k, v in (("d_model", d_model), ("heads", heads), ("encoder_layers", encoder_layers),
                     ("decoder_layers", decoder_layers)):
            if int(v) < 1:
                raise InputError(f"{k} must be >= 1, got {v}")
        self.patch = (ph, pw) if isinstance(patch, (tuple, list)) else int(patch)
        self.d_model, self.heads = int(d_model), int(heads)
        self.encoder_layers, self.decoder_layers = int(encoder_layers), int(decoder_layers)
        self.mlp_ratio, self.decoder = float(mlp_ratio), decoder
        self.spatial_attention = bool(spatial_attention)
        self._ph, self._pw = ph, pw
        self.n_patches = (h // ph) * (w // pw)

        d = self.d_model
        self.embed = nn.Linear(ph * pw, d)
        self.pos_space = nn.Parameter(0.02 * torch.randn(self.n_patches, d))
        self.pos_time = nn.Parameter(0.02 * torch.randn(self.context_length + self.leads, d))
        self.encoder = nn.ModuleList(
            SpatioTemporalBlock(d, self.heads, self.mlp_ratio, self.spatial_attention)
            for _ in range(self.encoder_layers))
        self.decoder_blocks = nn.ModuleList(
            SpatioTemporalBlock(d, self.heads, self.mlp_ratio, self.spatial_attention)
            for _ in range(self.decoder_layers))
        self.norm_enc = nn.LayerNorm(d)
        self.norm_out = nn.LayerNorm(d)
        self.out = nn.Linear(d, ph * pw * self.n_outputs)
        # Small initial outputs: forecasts start near a blank frame, not at +-0.5.
        nn.init.normal_(self.out.weight, std=0.02)
        nn.init.zeros_(self.out.bias)

    # -- pieces ---------------------------------------------------------------------------
    def tokens(self, frames: Tensor, first_step: int) -> Tensor:
        """Frames ``(B, T, H, W)`` at steps ``first_step..`` -> tokens ``(B, T, N, d)``."""
        t = frames.shape[1]
        x = self.embed(patchify(frames, self._ph, self._pw))
        return x + self.pos_space + self.pos_time[first_step:first_step + t, None, :]

    def encode(self, context: Tensor) -> Tensor:
        """Context ``(B, T_ctx, H, W)`` -> memory ``(B, T_ctx·N, d)``."""
        x = self.tokens(context, 0)
        b, t, n, d = x.shape
        mask = encoder_mask(t, n, x.device)
        for block in self.encoder:
            x = block(x, mask)
        return self.norm_enc(x.reshape(b, t * n, d))

    def decode(self, memory: Tensor, inputs: Tensor) -> Tensor:
        """Decoder input frames ``(B, L, H, W)`` (step ``t`` reads frame ``t``) and memory
        -> raw output ``(B, L, Q, H, W)``; step ``t`` depends only on inputs ``0..t``."""
        x = self.tokens(inputs, self.context_length)
        b, t, n, d = x.shape
        mask = decoder_mask(t, n, memory.shape[1], x.device)
        for block in self.decoder_blocks:
            x = block(x, mask, memory)
        y = self.out(self.norm_out(x))
        return unpatchify(y, self._ph, self._pw, *self.frame_shape)

    def forward_frames(self, context: Tensor, leads: int, target: Tensor | None = None
                       ) -> Tensor:
        memory = self.encode(context)
        last = context[:, -1:]
        if self.decoder == "direct":
            return self.decode(memory, last.expand(-1, leads, -1, -1))
        if target is not None and self.training:  # teacher forcing
            return self.decode(memory, torch.cat([last, target[:, :leads - 1]], dim=1))
        inputs = last
        for k in range(leads):  # feed back the median (or point) forecast
            raw = self.decode(memory, inputs)
            if k == leads - 1:
                return raw
            nxt = self.head(raw[:, -1:])[:, :, self._median_channel()]
            inputs = torch.cat([inputs, nxt], dim=1)
        raise AssertionError("unreachable")

    def _median_channel(self) -> int:
        if self.quantiles is None:
            return 0
        return min(range(len(self.quantiles)), key=lambda k: abs(self.quantiles[k] - 0.5))
