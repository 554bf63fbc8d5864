"""Convolutional deep Markov model (ConvDMM) for spatiotemporal fields, and the machinery it
shares with the flat DMM (:mod:`pyro_videossm.models.ssm.dmm_flat`).

Generative model for a sequence of frames ``x_{1:T}`` (``H × W``)::

    z_0   = learned feature map (C × h × w; h = H / 2**n_down)
    z_t   ~ N(loc, scale),  (loc, scale) = ConvGatedTransition(z_{t-1})
    x_t   ~ N(emitter(z_t), σ)  or  StudentT(ν, emitter(z_t), σ)   at observed pixels only

Guide (amortised, structured as Pyro's DMM)::

    e_t   = ConvEncoder([x_t · m_t, m_t])            strided convs, per frame (all t at once)
    h_t   = backward ConvLSTM(e_{t:T})
    z_t   ~ N(ConvCombiner(z_{t-1}, h_t))             sequential: t = 1..T

Speed: the latent sequence is **one** sample site ``z`` of event shape ``(T, C, h, w)``. Its
model distribution (:class:`MarkovChainPrior`) evaluates the transition for all time steps in
one batched call on the guide's draw (teacher forcing), and the emitter runs on all frames at
once; only the guide's sampling (:class:`MarkovChainGuide`) loops over time. KL annealing
scales both ``z`` sites by ``annealing_factor`` (``poutine.scale``). Missing pixels and frames
are masked out of the likelihood and enter the encoder as zeros with a mask channel.

Forecast (:meth:`FieldDMM.forecast`): draw ``z`` at the end of the context from the guide
(at the last context step the guide's smoothing distribution is the filtering distribution),
``members`` times in one batch, roll the transition forward ``leads`` steps with noise, and
emit the means. The ensemble mean is the point forecast.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pyro
import pyro.distributions as dist
import torch
import torch.nn.functional as F
from pyro import poutine
from pyro.distributions import TorchDistribution, constraints
from torch import Tensor, nn

from pyro_videossm.errors import InputError
from pyro_videossm.forecast.base import register_forecaster
from pyro_videossm.forecast.module_forecaster import ModuleForecaster
from pyro_videossm.models.ssm.pyro_names import register_module
from pyro_videossm.nn.conv_blocks import (
    ConvCombiner,
    ConvDecoder,
    ConvEncoder,
    ConvGatedTransition,
    pad_to_multiple,
)
from pyro_videossm.nn.convlstm import ConvLSTM

StepFn = Callable[[Tensor, int], tuple[Tensor, Tensor]]

LIKELIHOODS = ("gaussian", "student_t")


def check_input_clip(input_clip) -> tuple[float, float] | None:
    """``None`` or a ``(low, high)`` pair with ``low < high`` (as a tuple of floats)."""
    if input_clip is None:
        return None
    lo, hi = (float(v) for v in input_clip)
    if not lo < hi:
        raise InputError(f"input_clip must be (low, high) with low < high, got {input_clip}")
    return lo, hi


# -- Markov chains of Gaussian latents: one sample site for the whole sequence ---------------
def sample_markov_chain(step: StepFn, z0: Tensor, num_steps: int, *,
                        generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """Reparameterised draw of ``z_t = loc_t + scale_t · ε_t``, ``(loc_t, scale_t) =
    step(z_{t-1}, t)`` for ``t = 0..num_steps-1``.

    ``z0`` ``(N, *E)`` -> ``z`` ``(N, num_steps, *E)`` and its log density ``(N,)``.
    """
    z, zs = z0, []
    log_prob = z0.new_zeros(z0.shape[0])
    event_dims = tuple(range(1, z0.dim()))
    for t in range(num_steps):
        loc, scale = step(z, t)
        eps = torch.randn(loc.shape, generator=generator, device=loc.device, dtype=loc.dtype)
        z = loc + scale * eps
        log_prob = log_prob + (-0.5 * eps**2 - scale.log() - 0.5 * math.log(2 * math.pi)).sum(
            event_dims)
        zs.append(z)
    return torch.stack(zs, dim=1), log_prob


def _fold(value: Tensor, event_dim: int) -> tuple[Tensor, torch.Size]:
    """``(*S, B, T, *E)`` -> ``(prod(S)·B, T, *E)`` and the leading shape ``(*S, B)``."""
    lead = value.shape[: value.dim() - event_dim]
    return value.reshape(-1, *value.shape[value.dim() - event_dim:]), lead


class _MarkovChain(TorchDistribution):
    """Base of the two chain distributions: batch ``(B,)``, event ``(T, *E)``."""

    arg_constraints: dict = {}
    support = constraints.real
    has_rsample = True

    def __init__(self, z0: Tensor, num_steps: int, validate_args=None) -> None:
        self.z0 = z0
        self.num_steps = num_steps
        super().__init__(z0.shape[:1], (num_steps, *z0.shape[1:]), validate_args=validate_args)
        self._cache: tuple[Tensor, Tensor] | None = None

    def expand(self, batch_shape, _instance=None):
        if torch.Size(batch_shape) == self.batch_shape:
            return self
        return super().expand(batch_shape, _instance)

    def _step(self, z_prev: Tensor, t: int, n_rep: int) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    def _locs_scales(self, z_prev: Tensor, n_rep: int) -> tuple[Tensor, Tensor]:
        """All steps at once: ``z_prev`` ``(N, T, *E)`` -> loc, scale ``(N, T, *E)``."""
        raise NotImplementedError

    def rsample(self, sample_shape=()):
        sample_shape = torch.Size(sample_shape)
        n = int(sample_shape.numel())
        z0 = self.z0.repeat(n, *([1] * (self.z0.dim() - 1)))
        z, log_prob = sample_markov_chain(lambda z, t: self._step(z, t, n), z0, self.num_steps)
        z = z.reshape(*sample_shape, *self.batch_shape, *self.event_shape)
        self._cache = (z, log_prob.reshape(*sample_shape, *self.batch_shape))
        return z

    def log_prob(self, value: Tensor) -> Tensor:
        if self._cache is not None and value is self._cache[0]:
            return self._cache[1]
        flat, lead = _fold(value, len(self.event_shape))
        n_rep = flat.shape[0] // self.z0.shape[0]
        z0 = self.z0.repeat(n_rep, *([1] * (self.z0.dim() - 1)))
        z_prev = torch.cat([z0.unsqueeze(1), flat[:, :-1]], dim=1)
        loc, scale = self._locs_scales(z_prev, n_rep)
        lp = dist.Normal(loc, scale).log_prob(flat)
        return lp.reshape(*lead, -1).sum(-1)


class MarkovChainPrior(_MarkovChain):
    """``p(z_{1:T}) = Π_t N(z_t; transition(z_{t-1}))`` with fixed ``z_0``.

    Args:
        transition: ``(N, *E)`` -> ``(loc, scale)`` ``(N, *E)``.
        z0: ``(B, *E)``.
        num_steps: ``T``.

    ``log_prob(z)`` (``z`` ``(*S, B, T, *E)``) applies the transition to all ``z_{t-1}`` in one
    call; ``rsample`` rolls forward step by step.
    """

    def __init__(self, transition: Callable[[Tensor], tuple[Tensor, Tensor]], z0: Tensor,
                 num_steps: int, validate_args=None) -> None:
        self.transition = transition
        super().__init__(z0, num_steps, validate_args)

    def _step(self, z_prev, t, n_rep):
        return self.transition(z_prev)

    def _locs_scales(self, z_prev, n_rep):
        N, T = z_prev.shape[:2]
        loc, scale = self.transition(z_prev.reshape(N * T, *z_prev.shape[2:]))
        return loc.reshape(z_prev.shape), scale.reshape(z_prev.shape)


class MarkovChainGuide(_MarkovChain):
    """``q(z_{1:T} | x) = Π_t N(z_t; combiner(z_{t-1}, h_t))`` with fixed ``z_0``.

    Args:
        combiner: ``(z_prev (N, *E), h (N, *F))`` -> ``(loc, scale)`` ``(N, *E)``.
        z0: ``(B, *E)``.
        h: ``(B, T, *F)`` summaries of the data (backward RNN states).

    ``rsample`` is sequential (each step needs the previous draw) and caches the density of
    its draw, so the ELBO does not evaluate it again; ``log_prob`` of any other value applies
    the combiner to all steps at once.
    """

    def __init__(self, combiner: Callable[[Tensor, Tensor], tuple[Tensor, Tensor]],
                 z0: Tensor, h: Tensor, validate_args=None) -> None:
        self.combiner = combiner
        self.h = h
        self._h_steps: tuple[Tensor, ...] | None = None
        super().__init__(z0, h.shape[1], validate_args)

    def _h(self, n_rep: int) -> Tensor:
        return self.h.repeat(n_rep, *([1] * (self.h.dim() - 1))) if n_rep > 1 else self.h

    def rsample(self, sample_shape=()):
        # per-step summaries via unbind (its backward is one stack, not T zero-fills)
        n = int(torch.Size(sample_shape).numel())
        self._h_steps = self._h(n).unbind(1)
        try:
            return super().rsample(sample_shape)
        finally:
            self._h_steps = None

    def _step(self, z_prev, t, n_rep):
        return self.combiner(z_prev, self._h_steps[t])

    def _locs_scales(self, z_prev, n_rep):
        N, T = z_prev.shape[:2]
        h = self._h(n_rep)
        loc, scale = self.combiner(z_prev.reshape(N * T, *z_prev.shape[2:]),
                                   h.reshape(N * T, *h.shape[2:]))
        return loc.reshape(z_prev.shape), scale.reshape(z_prev.shape)


# -- the shared DMM-on-frames logic ------------------------------------------------------------
class FieldDMM(nn.Module):
    """DMM on frames ``(B, T, H, W)``: Pyro ``model``/``guide`` and the forecast roll-out.

    Subclasses define the networks: :meth:`transition`, :meth:`combine`, :meth:`emit`,
    :meth:`encode` and :meth:`initial_latents`, and set ``multiple`` (frames are padded to
    multiples of it; padded pixels are masked out). Batches are dicts with ``x`` (``B, T, H,
    W``, 0 where missing) and ``mask`` (bool, same shape).
    """

    #: frames are padded to multiples of this (2**n_down)
    multiple: int = 1
    #: name of the Pyro module (parameter-store prefix)
    pyro_name: str = "field_dmm"

    def __init__(self, likelihood: str = "gaussian", obs_scale: float | None = None,
                 df: float = 4.0, init_obs_scale: float = 0.1,
                 input_clip: tuple[float, float] | None = None) -> None:
        super().__init__()
        self.input_clip = check_input_clip(input_clip)
        if likelihood not in LIKELIHOODS:
            raise InputError(f"likelihood must be one of {', '.join(LIKELIHOODS)}, "
                             f"got {likelihood!r}")
        if obs_scale is not None and not obs_scale > 0:
            raise InputError(f"obs_scale must be > 0 (or None: learned), got {obs_scale}")
        if not df > 0:
            raise InputError(f"df must be > 0, got {df}")
        self.likelihood = likelihood
        self.df = float(df)
        scale0 = float(obs_scale if obs_scale is not None else init_obs_scale)
        # softplus^{-1}(scale0): the learned scale is softplus(raw)
        raw = torch.tensor(scale0 + math.log(-math.expm1(-scale0)))
        if obs_scale is None:
            self.raw_obs_scale = nn.Parameter(raw)
        else:
            self.register_buffer("raw_obs_scale", raw)

    # -- networks (subclasses) ------------------------------------------------------------
    def encode(self, x: Tensor, mask: Tensor) -> Tensor:
        """``(B, T, H, W)`` frames and mask (padded) -> ``(B, T, *F)`` backward summaries."""
        raise NotImplementedError

    def transition(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """``(N, *E)`` -> loc, scale ``(N, *E)`` of ``p(z_t | z_{t-1})``."""
        raise NotImplementedError

    def combine(self, z_prev: Tensor, h: Tensor) -> tuple[Tensor, Tensor]:
        """``(N, *E)``, ``(N, *F)`` -> loc, scale ``(N, *E)`` of ``q(z_t | z_{t-1}, h_t)``."""
        raise NotImplementedError

    def emit(self, z: Tensor) -> Tensor:
        """``(N, *E)`` -> emission location ``(N, H, W)`` (padded grid)."""
        raise NotImplementedError

    def initial_latents(self, batch: int, height: int, width: int) -> tuple[Tensor, Tensor]:
        """``(z_0 of the model, z_0 of the guide)``, each ``(batch, *E)``, for a padded grid."""
        raise NotImplementedError

    # -- helpers --------------------------------------------------------------------------
    @property
    def obs_scale(self) -> Tensor:
        """Scale ``σ`` of the observation noise (scalar tensor)."""
        return F.softplus(self.raw_obs_scale)

    def observation_dist(self, loc: Tensor) -> dist.Distribution:
        """Pixel-wise noise around the emitted ``loc`` (any shape)."""
        if self.likelihood == "student_t":
            return dist.StudentT(loc.new_tensor(self.df), loc, self.obs_scale)
        return dist.Normal(loc, self.obs_scale)

    def encoder_input(self, x: Tensor) -> Tensor:
        """The frames as the guide's encoder sees them: clamped to ``input_clip`` if set
        (outliers of heavy-tailed noise then cannot saturate it; the likelihood still sees
        the raw values)."""
        return x if self.input_clip is None else x.clamp(*self.input_clip)

    def _pad(self, x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        if x.dim() != 4 or x.shape != mask.shape:
            raise InputError(f"expected frames and mask of shape (B, T, H, W), got "
                             f"{tuple(x.shape)} and {tuple(mask.shape)}")
        mask = mask.bool()
        return (pad_to_multiple(x * mask, self.multiple),
                pad_to_multiple(mask, self.multiple, value=False))

    def emit_frames(self, z: Tensor) -> Tensor:
        """``(*S, T, *E)`` latents -> ``(*S, T, H, W)`` emission locations (one batched call)."""
        ev = z.dim() - self._latent_event_dim()
        lead = z.shape[:ev]
        frames = self.emit(z.reshape(-1, *z.shape[ev:]))
        return frames.reshape(*lead, *frames.shape[-2:])

    def _latent_event_dim(self) -> int:
        raise NotImplementedError

    def normalizer(self, batch: dict[str, Tensor]) -> float:
        """Frames per batch: the training loss is reported per frame."""
        return float(batch["x"].shape[0] * batch["x"].shape[1])

    # -- Pyro ---------------------------------------------------------------------------
    def model(self, batch: dict[str, Tensor], annealing_factor: float = 1.0) -> Tensor:
        """``p(x, z)``: one site ``z`` (``B, T, *E``) and one site ``x`` (``B, T, H, W``).

        Without ``batch["x"]`` (only ``mask``, all True for a full prior predictive) the
        frames are drawn: ``Predictive(m.model, num_samples=S)({"mask": mask})``."""
        x, mask = batch.get("x"), batch.get("mask")
        if mask is None:
            raise InputError("a batch needs 'mask' (B, T, H, W), and 'x' unless the frames "
                             "are to be drawn")
        if x is None:
            mask = mask.bool()
            _, padded = self._pad(mask.to(torch.get_default_dtype()), mask)
        else:
            x, mask = x * mask, mask.bool()
            _, padded = self._pad(x, mask)
        B, T, H, W = padded.shape
        H0, W0 = mask.shape[-2:]
        register_module(self.pyro_name, self)
        z0, _ = self.initial_latents(B, H, W)
        with pyro.plate("sequences", B):
            with poutine.scale(scale=annealing_factor):
                z = pyro.sample("z", MarkovChainPrior(self.transition, z0, T))
            loc = self.emit_frames(z)[..., :H0, :W0]  # padding: never observed
            pyro.sample("x", self.observation_dist(loc).mask(mask).to_event(3), obs=x)
        return z

    def guide(self, batch: dict[str, Tensor], annealing_factor: float = 1.0) -> Tensor:
        """``q(z | x)``: backward ConvLSTM over the encoded frames, sequential combiner."""
        x, mask = self._pad(batch["x"], batch["mask"])
        B, T, H, W = x.shape
        register_module(self.pyro_name, self)
        _, zq0 = self.initial_latents(B, H, W)
        h = self.encode(self.encoder_input(x) * mask, mask)
        with pyro.plate("sequences", B):
            with poutine.scale(scale=annealing_factor):
                z = pyro.sample("z", MarkovChainGuide(self.combine, zq0, h))
        return z

    # -- forecasting ----------------------------------------------------------------------
    @torch.no_grad()
    def forecast(self, context: Tensor, mask: Tensor, leads: int, members: int = 1, *,
                 generator: torch.Generator | None = None) -> Tensor:
        """Ensemble forecast of the emission means.

        ``context``, ``mask`` ``(B, T_ctx, H, W)`` -> ``(B, leads, members, H, W)``: each member
        draws ``z_{1:T_ctx}`` from the guide, then ``z_{T_ctx+1..T_ctx+leads}`` from the
        transition, and emits their means.
        """
        x, m = self._pad(context, mask)
        B, _, H0, W0 = context.shape
        _, T, H, W = x.shape
        h = self.encode(self.encoder_input(x) * m, m)  # (B, T, *F)
        h = h.repeat_interleave(members, dim=0)
        _, zq0 = self.initial_latents(B * members, H, W)
        z_ctx, _ = sample_markov_chain(lambda z, t: self.combine(z, h[:, t]), zq0, T,
                                       generator=generator)
        z_fut, _ = sample_markov_chain(lambda z, t: self.transition(z), z_ctx[:, -1], leads,
                                       generator=generator)
        frames = self.emit_frames(z_fut)  # (B·M, L, H, W)
        frames = frames.reshape(B, members, leads, H, W).transpose(1, 2)
        return frames[..., :H0, :W0].contiguous()

    def architecture(self) -> dict[str, Any]:
        """Constructor arguments (plain values): ``type(self)(**architecture())`` rebuilds it."""
        raise NotImplementedError


class ConvDMM(FieldDMM):
    """Convolutional DMM: latents are ``C × h × w`` feature maps on the grid downsampled
    ``n_down`` times by 2 (see the module doc for the model and guide).

    Args:
        latent_channels: ``C``.
        hidden_channels: channels inside the transition and the emitter.
        rnn_channels: channels of the guide's backward ConvLSTM.
        encoder_channels: channels inside the guide's frame encoder.
        n_down: stride-2 downsamplings between frames and latents.
        kernel_size: convolution kernel size (odd).
        likelihood: ``gaussian`` or ``student_t`` (heavy-tailed noise).
        obs_scale: fixed noise scale σ (model units), or ``None`` to learn it.
        df: degrees of freedom ν of the Student-t likelihood.
        init_obs_scale: initial σ when learned.
        input_clip: ``(low, high)``: clamp the frames the guide's encoder sees (model units).
    """

    pyro_name = "conv_dmm"

    def __init__(self, latent_channels: int = 8, hidden_channels: int = 32,
                 rnn_channels: int = 32, encoder_channels: int = 32, n_down: int = 2,
                 kernel_size: int = 3, likelihood: str = "gaussian",
                 obs_scale: float | None = None, df: float = 4.0,
                 init_obs_scale: float = 0.1,
                 input_clip: tuple[float, float] | None = None) -> None:
        super().__init__(likelihood, obs_scale, df, init_obs_scale, input_clip)
        for key, v in (("latent_channels", latent_channels), ("hidden_channels", hidden_channels),
                       ("rnn_channels", rnn_channels), ("encoder_channels", encoder_channels)):
            if v < 1:
                raise InputError(f"{key} must be >= 1, got {v}")
        if n_down < 0:
            raise InputError(f"n_down must be >= 0, got {n_down}")
        self.config = dict(
            latent_channels=latent_channels, hidden_channels=hidden_channels,
            rnn_channels=rnn_channels, encoder_channels=encoder_channels, n_down=n_down,
            kernel_size=kernel_size, likelihood=likelihood, obs_scale=obs_scale, df=float(df),
            init_obs_scale=init_obs_scale,
            input_clip=None if self.input_clip is None else list(self.input_clip),
        )
        self.multiple = 2**n_down
        self.latent_channels = latent_channels
        self.trans = ConvGatedTransition(latent_channels, hidden_channels, kernel_size)
        self.emitter = ConvDecoder(latent_channels, hidden_channels, 1, n_down, kernel_size)
        self.encoder = ConvEncoder(2, encoder_channels, encoder_channels, n_down, kernel_size)
        self.rnn = ConvLSTM(encoder_channels, [rnn_channels], kernel_size, reverse=True)
        self.combiner = ConvCombiner(latent_channels, rnn_channels, kernel_size)
        self.z_0 = nn.Parameter(torch.zeros(latent_channels, 1, 1))
        self.z_q_0 = nn.Parameter(torch.zeros(latent_channels, 1, 1))

    def architecture(self) -> dict[str, Any]:
        return dict(self.config)

    def _latent_event_dim(self) -> int:
        return 3

    def initial_latents(self, batch, height, width):
        shape = (batch, self.latent_channels, height // self.multiple, width // self.multiple)
        return self.z_0.expand(shape), self.z_q_0.expand(shape)

    def encode(self, x, mask):
        B, T, H, W = x.shape
        frames = torch.stack([x, mask.to(x.dtype)], dim=2).reshape(B * T, 2, H, W)
        e = self.encoder(frames)
        h, _ = self.rnn(e.reshape(B, T, *e.shape[1:]))
        return h

    def transition(self, z):
        return self.trans(z)

    def combine(self, z_prev, h):
        return self.combiner(z_prev, h)

    def emit(self, z):
        return self.emitter(z)[:, 0]


class FieldDMMForecaster(ModuleForecaster):
    """Ensemble forecaster around a trained :class:`FieldDMM` (``members`` draws; their mean
    is the point forecast). Subclasses set ``name`` and ``module_class``."""

    deterministic = False

    @torch.no_grad()
    def predict(self, context: Tensor, mask: Tensor, leads: int, members: int = 1, *,
                generator: torch.Generator | None = None) -> Tensor:
        """``(B, T, H, W)`` -> ``(B, leads, members, H, W)`` (model units)."""
        return self.module.forecast(context, mask, leads, members, generator=generator)


@register_forecaster
class ConvDMMForecaster(FieldDMMForecaster):
    """Forecaster around a trained :class:`ConvDMM`."""

    name = "convdmm"
    module_class = ConvDMM
