"""Advection-aware convolutional DMM for precipitation nowcasting (and other moving fields).

Latent fields ``z_t`` ``(C, H, W)`` live on the frame grid; channel 0 is the observed field in
a transformed space (:class:`~pyro_videossm.nn.rain_transform.RainTransform`: ``log`` for rain,
as pysteps' dB transform, or ``none``), the other channels are hidden fields carried along::

    flow  = mean OpenCV optical flow of the context (transformed frames), one per sequence,
            held constant over the window ("motion": "optical_flow"; "none": no motion)
    z_0   = learned constant per channel
    z_t   ~ N(advect(z_{t-1}, flow) + bounded conv correction, learned scale)
    T(x_t) ~ N(z_t[0], σ)  or  StudentT(ν, z_t[0], σ)   at observed pixels only

``advect`` is one semi-Lagrangian step (:func:`~pyro_videossm.nn.advection.semi_lagrangian_step`,
backward ``grid_sample`` warp); the correction handles growth and decay
(:class:`~pyro_videossm.nn.advection_blocks.AdvectionTransition`). With a zero correction the
transition is pure extrapolation of the last state by the context's flow, the standard
nowcasting baseline.

Guide (smoothing, as the ConvDMM's): a strided encoder and a backward ConvLSTM summarise
``x_{t:T}`` on a coarse grid, upsampled to the frame grid; each step advects ``z_{t-1}`` and
nudges it towards the observation with a learned gain
(:class:`~pyro_videossm.nn.advection_blocks.AdvectionCombiner`). One Pyro site ``z`` of event
shape ``(T, C, H, W)`` as in :class:`~pyro_videossm.models.ssm.conv_dmm.FieldDMM`.

Training flow: the windows' first ``flow_frames`` frames (the frames a forecast from that point
would see last); forecast flow: the context's last ``flow_frames`` frames. A batch may carry
its own ``flow`` ``(B, 2, H, W)`` (pixels per step), which then wins.

Forecast (:meth:`AdvectionConvDMM.forecast`): ``members`` guide draws at the end of the
context, rolled forward with the transition's noise (the ensemble), emitted as
``inverse_transform(z[0])`` and clamped to ``[0, cap_factor · max(context)]`` (``log``) or
``[-cap, cap]`` with ``cap = cap_factor · max|context|`` (``none``), per sequence, in model
units (:func:`~pyro_videossm.nn.rain_transform.cap_forecast`). With a scaling that maps 0 to 0
(``minmax``/``robust`` of a rain rate with dry pixels, ``none``) the cap holds in physical
units too. An all-dry context forecasts zeros.
"""

from __future__ import annotations

from typing import Any

import pyro
import torch
import torch.nn.functional as F
from pyro import poutine
from torch import Tensor, nn

from pyro_videossm.errors import InputError
from pyro_videossm.forecast.base import register_forecaster
from pyro_videossm.models.ssm.conv_dmm import (
    FieldDMM,
    FieldDMMForecaster,
    MarkovChainGuide,
    MarkovChainPrior,
    sample_markov_chain,
)
from pyro_videossm.models.ssm.pyro_names import register_module
from pyro_videossm.models.ssm.rollout_loss import free_running_log_likelihood, rollout_starts
from pyro_videossm.nn.advection import INTERPOLATIONS, context_motion
from pyro_videossm.nn.advection_blocks import AdvectionCombiner, AdvectionTransition
from pyro_videossm.nn.conv_blocks import ConvEncoder, pad_to_multiple
from pyro_videossm.nn.convlstm import ConvLSTM
from pyro_videossm.nn.rain_transform import RainTransform, cap_forecast, context_cap

MOTIONS = ("optical_flow", "none")


class ConditionedChainPrior(MarkovChainPrior):
    """:class:`MarkovChainPrior` whose transition also takes a per-sequence condition
    ``cond`` ``(B, *K)`` (here the flow): ``transition(z (N, *E), cond (N, *K))``."""

    def __init__(self, transition, z0: Tensor, num_steps: int, cond: Tensor,
                 validate_args=None) -> None:
        self.cond = cond
        super().__init__(transition, z0, num_steps, validate_args)

    def _cond(self, n_rep: int) -> Tensor:
        return self.cond.repeat(n_rep, *([1] * (self.cond.dim() - 1))) if n_rep > 1 \
            else self.cond

    def _step(self, z_prev, t, n_rep):
        return self.transition(z_prev, self._cond(n_rep))

    def _locs_scales(self, z_prev, n_rep):
        N, T = z_prev.shape[:2]
        cond = self._cond(n_rep).repeat_interleave(T, dim=0)
        loc, scale = self.transition(z_prev.reshape(N * T, *z_prev.shape[2:]), cond)
        return loc.reshape(z_prev.shape), scale.reshape(z_prev.shape)


class AdvectionConvDMM(FieldDMM):
    """Advection-aware ConvDMM (module doc).

    Args:
        latent_channels: ``C`` (channel 0 is the field, the rest hidden fields).
        hidden_channels: channels inside the transition's correction and the guide's step.
        rnn_channels: channels of the guide's backward ConvLSTM (coarse grid).
        encoder_channels: channels inside the guide's frame encoder.
        n_down: stride-2 downsamplings of the guide's encoder (the latents stay full size).
        kernel_size: convolution kernel size (odd).
        motion: ``optical_flow`` (OpenCV flow of the context) or ``none``.
        flow_method: OpenCV method (``dis`` or ``farneback``).
        flow_frames: frames the flow is estimated from (>= 2).
        transform: ``log`` (rain rates) or ``none``.
        transform_offset, transform_threshold: ``c`` and the rain threshold (model units).
        cap_factor: forecasts are clamped to this many times the context's maximum
            (``None``: no cap).
        max_change: largest change per step of the learned correction (transformed units).
        init_scale: initial noise scale of the transition and the guide.
        interpolation: of the semi-Lagrangian step, ``bilinear`` or ``bicubic`` (less blur).
        likelihood, obs_scale, df, init_obs_scale, input_clip: as for the ConvDMM.
        rollout_horizon: with ``> 0``, training adds ``rollout_weight`` times the
            free-running log-likelihood of the transition mean over this many steps from
            every ``rollout_stride``-th guide latent
            (:mod:`~pyro_videossm.models.ssm.rollout_loss`): the prior learns to forecast
            many steps ahead, not only one. ``0`` (default): the plain ELBO.
    """

    pyro_name = "advection_conv_dmm"

    def __init__(self, latent_channels: int = 4, hidden_channels: int = 16,
                 rnn_channels: int = 16, encoder_channels: int = 16, n_down: int = 2,
                 kernel_size: int = 3, motion: str = "optical_flow", flow_method: str = "dis",
                 flow_frames: int = 3, transform: str = "log", transform_offset: float = 0.01,
                 transform_threshold: float = 0.0, cap_factor: float | None = 2.0,
                 max_change: float = 0.5, init_scale: float = 0.05,
                 interpolation: str = "bicubic", likelihood: str = "gaussian",
                 obs_scale: float | None = None, df: float = 4.0, init_obs_scale: float = 0.1,
                 input_clip: tuple[float, float] | None = None, rollout_horizon: int = 0,
                 rollout_weight: float = 1.0, rollout_stride: int = 10,
                 linear_kernel: int = 0) -> None:
        super().__init__(likelihood, obs_scale, df, init_obs_scale, input_clip)
        for key, v in (("latent_channels", latent_channels), ("hidden_channels", hidden_channels),
                       ("rnn_channels", rnn_channels), ("encoder_channels", encoder_channels)):
            if v < 1:
                raise InputError(f"{key} must be >= 1, got {v}")
        if n_down < 0:
            raise InputError(f"n_down must be >= 0, got {n_down}")
        if motion not in MOTIONS:
            raise InputError(f"motion must be one of {', '.join(MOTIONS)}, got {motion!r}")
        if flow_frames < 2:
            raise InputError(f"flow_frames must be >= 2, got {flow_frames}")
        if cap_factor is not None and not cap_factor > 0:
            raise InputError(f"cap_factor must be > 0 (or None: no cap), got {cap_factor}")
        if not max_change > 0 or not init_scale > 1e-3:
            raise InputError(f"max_change must be > 0 and init_scale > 0.001, got "
                             f"{max_change} and {init_scale}")
        if interpolation not in INTERPOLATIONS:
            raise InputError(f"interpolation must be one of {', '.join(INTERPOLATIONS)}, got "
                             f"{interpolation!r}")
        if linear_kernel < 0 or (linear_kernel and linear_kernel % 2 == 0):
            raise InputError(f"linear_kernel must be 0 (none) or an odd size >= 1, got "
                             f"{linear_kernel}")
        if rollout_horizon < 0 or rollout_stride < 1 or not rollout_weight > 0:
            raise InputError(f"rollout_horizon must be >= 0, rollout_stride >= 1 and "
                             f"rollout_weight > 0, got {rollout_horizon}, {rollout_stride} "
                             f"and {rollout_weight}")
        self.rain = RainTransform(transform, transform_offset, transform_threshold)
        self.config = dict(
            latent_channels=latent_channels, hidden_channels=hidden_channels,
            rnn_channels=rnn_channels, encoder_channels=encoder_channels, n_down=n_down,
            kernel_size=kernel_size, motion=motion, flow_method=flow_method,
            flow_frames=flow_frames, transform=transform,
            transform_offset=float(transform_offset),
            transform_threshold=float(transform_threshold),
            cap_factor=None if cap_factor is None else float(cap_factor),
            max_change=float(max_change), init_scale=float(init_scale),
            interpolation=interpolation, likelihood=likelihood,
            obs_scale=obs_scale, df=float(df), init_obs_scale=init_obs_scale,
            input_clip=None if self.input_clip is None else list(self.input_clip),
            rollout_horizon=int(rollout_horizon), rollout_weight=float(rollout_weight),
            rollout_stride=int(rollout_stride), linear_kernel=int(linear_kernel))
        self.multiple = 2**n_down
        self.latent_channels = latent_channels
        self.trans = AdvectionTransition(latent_channels, hidden_channels, kernel_size,
                                         max_change, init_scale,
                                         interpolation=interpolation,
                                         linear_kernel=linear_kernel)
        self.encoder = ConvEncoder(2, encoder_channels, encoder_channels, n_down, kernel_size)
        self.rnn = ConvLSTM(encoder_channels, [rnn_channels], kernel_size, reverse=True)
        self.combiner = AdvectionCombiner(latent_channels, rnn_channels, hidden_channels,
                                          kernel_size, init_scale,
                                          interpolation=interpolation)
        self.z_0 = nn.Parameter(torch.zeros(latent_channels, 1, 1))
        self.z_q_0 = nn.Parameter(torch.zeros(latent_channels, 1, 1))

    def architecture(self) -> dict[str, Any]:
        return dict(self.config)

    def _latent_event_dim(self) -> int:
        return 3

    def initial_latents(self, batch, height, width):
        shape = (batch, self.latent_channels, height, width)
        return self.z_0.expand(shape), self.z_q_0.expand(shape)

    # -- networks -------------------------------------------------------------------------
    def encode(self, x: Tensor, mask: Tensor) -> Tensor:
        """Padded frames and mask ``(B, T, H, W)`` (model units) -> summaries
        ``(B, T, 2 + R, H, W)``: the transformed frame, the mask and the upsampled backward
        ConvLSTM state."""
        B, T, H, W = x.shape
        m = mask.to(x.dtype)
        y = self.rain.forward(self.encoder_input(x)) * m
        e = self.encoder(torch.stack([y, m], dim=2).reshape(B * T, 2, H, W))
        h, _ = self.rnn(e.reshape(B, T, *e.shape[1:]))
        up = F.interpolate(h.reshape(B * T, *h.shape[2:]), size=(H, W), mode="bilinear",
                           align_corners=False)
        return torch.cat([y.reshape(B * T, 1, H, W), m.reshape(B * T, 1, H, W), up],
                         dim=1).reshape(B, T, -1, H, W)

    def transition(self, z: Tensor, flow: Tensor) -> tuple[Tensor, Tensor]:
        return self.trans(z, flow)

    def combine(self, z_prev: Tensor, h: Tensor) -> tuple[Tensor, Tensor]:
        """``h`` = the step's summary with the flow as its last 2 channels."""
        return self.combiner(z_prev, h[:, :-2], h[:, -2:])

    def emit(self, z: Tensor) -> Tensor:
        return z[:, 0]

    # -- motion -----------------------------------------------------------------------------
    def motion_of(self, frames: Tensor, mask: Tensor, last: bool) -> Tensor:
        """Flow ``(B, 2, H, W)`` of frames ``(B, T, H, W)`` (model units, unpadded): from the
        last ``flow_frames`` (``last``) or the first ones; zeros for ``motion="none"``."""
        B, T, H, W = frames.shape
        if self.config["motion"] == "none":
            return frames.new_zeros(B, 2, H, W)
        k = self.config["flow_frames"]
        y = self.rain.forward(frames) * mask.to(frames.dtype)
        if self.rain.kind == "none":  # put the frames into [0, 1] for the 8-bit flow
            lo = y.flatten(1).amin(1).reshape(B, 1, 1, 1)
            hi = y.flatten(1).amax(1).reshape(B, 1, 1, 1)
            y = (y - lo) / (hi - lo).clamp(min=1e-12)
        return context_motion(y[:, -k:] if last else y[:, :k], k, self.config["flow_method"])

    def _batch_flow(self, batch: dict[str, Tensor], x: Tensor | None, mask: Tensor) -> Tensor:
        """The batch's ``flow`` if it has one, else the flow of its first frames (zeros
        without frames), padded like the frames."""
        flow = batch.get("flow")
        if flow is None and x is None:
            flow = mask.new_zeros(mask.shape[0], 2, *mask.shape[-2:], dtype=torch.float)
        elif flow is None:
            flow = self.motion_of(x, mask, last=False)
        elif flow.dim() != 4 or flow.shape[1] != 2 or flow.shape[-2:] != mask.shape[-2:]:
            raise InputError(f"batch 'flow' must be (B, 2, H, W) = (B, 2, "
                             f"{mask.shape[-2]}, {mask.shape[-1]}), got {tuple(flow.shape)}")
        return pad_to_multiple(flow.to(torch.get_default_dtype() if x is None else x.dtype),
                               self.multiple)

    # -- Pyro ---------------------------------------------------------------------------
    def model(self, batch: dict[str, Tensor], annealing_factor: float = 1.0) -> Tensor:
        """``p(x, z)``: site ``z`` (``B, T, C, H, W``) and site ``x``: the transformed frames
        ``(B, T, H, W)`` at observed pixels (drawn when ``batch`` has no ``x``)."""
        x, mask = batch.get("x"), batch.get("mask")
        if mask is None:
            raise InputError("a batch needs 'mask' (B, T, H, W), and 'x' unless the frames "
                             "are to be drawn")
        mask = mask.bool()
        xs = None if x is None else x * mask
        xp, _ = self._pad(torch.zeros(mask.shape) if xs is None else xs, mask)
        B, T, H, W = xp.shape
        H0, W0 = mask.shape[-2:]
        flow = self._batch_flow(batch, xs, mask)
        register_module(self.pyro_name, self)
        z0, _ = self.initial_latents(B, H, W)
        y = None if xs is None else self.rain.forward(xs)
        with pyro.plate("sequences", B):
            with poutine.scale(scale=annealing_factor):
                z = pyro.sample("z", ConditionedChainPrior(self.transition, z0, T, flow))
            loc = self.emit_frames(z)[..., :H0, :W0]
            pyro.sample("x", self.observation_dist(loc).mask(mask).to_event(3), obs=y)
            if y is not None and self.config["rollout_horizon"] > 0 and z.dim() == 5:
                pyro.factor("rollout", self.config["rollout_weight"]
                            * self.rollout_log_likelihood(z, y, mask, flow))
        return z

    def rollout_log_likelihood(self, z: Tensor, y: Tensor, mask: Tensor,
                               flow: Tensor) -> Tensor:
        """Free-running log-likelihood ``(B,)`` of the transition mean from the guide's
        latents ``z`` ``(B, T, C, H, W)`` (padded grid) against the transformed frames ``y``
        ``(B, T, H0, W0)``: ``rollout_horizon`` steps from every ``rollout_stride``-th step
        (:mod:`~pyro_videossm.models.ssm.rollout_loss`)."""
        S = len(rollout_starts(z.shape[1], self.config["rollout_stride"]))
        cond = flow.repeat_interleave(max(S, 1), dim=0)
        return free_running_log_likelihood(
            lambda m: self.transition(m, cond)[0], self.emit,
            lambda loc, value: self.observation_dist(loc).log_prob(value), z, y, mask,
            horizon=self.config["rollout_horizon"], stride=self.config["rollout_stride"])

    def guide(self, batch: dict[str, Tensor], annealing_factor: float = 1.0) -> Tensor:
        """``q(z | x)``: backward ConvLSTM summaries, sequential advect-and-update steps."""
        x, mask = batch["x"], batch["mask"].bool()
        xp, mp = self._pad(x, mask)
        B, T, H, W = xp.shape
        flow = self._batch_flow(batch, x * mask, mask)
        register_module(self.pyro_name, self)
        _, zq0 = self.initial_latents(B, H, W)
        h = self._with_flow(self.encode(xp, mp), flow)
        with pyro.plate("sequences", B):
            with poutine.scale(scale=annealing_factor):
                z = pyro.sample("z", MarkovChainGuide(self.combine, zq0, h))
        return z

    @staticmethod
    def _with_flow(h: Tensor, flow: Tensor) -> Tensor:
        return torch.cat([h, flow.unsqueeze(1).expand(-1, h.shape[1], -1, -1, -1)], dim=2)

    # -- forecasting ----------------------------------------------------------------------
    @torch.no_grad()
    def forecast(self, context: Tensor, mask: Tensor, leads: int, members: int = 1, *,
                 generator: torch.Generator | None = None, noise: bool = True) -> Tensor:
        """``context``, ``mask`` ``(B, T_ctx, H, W)`` (model units) -> ``(B, leads, members, H,
        W)``: inverse-transformed, capped emission means of ``members`` draws (module doc).
        ``noise=False``: the mean path instead (guide and transition means, no draws; every
        member is the same)."""
        chain = sample_markov_chain if noise else mean_markov_chain
        xp, mp = self._pad(context, mask)
        B, _, H0, W0 = context.shape
        _, T, H, W = xp.shape
        if self.config["motion"] != "none" and T < 2:
            raise InputError(f"the optical flow needs at least 2 context frames, got {T}")
        mask = mask.bool()
        flow = pad_to_multiple(self.motion_of(context * mask, mask, last=True), self.multiple)
        h = self._with_flow(self.encode(xp, mp), flow).repeat_interleave(members, dim=0)
        flow = flow.repeat_interleave(members, dim=0)
        _, zq0 = self.initial_latents(B * members, H, W)
        z_ctx, _ = chain(lambda z, t: self.combine(z, h[:, t]), zq0, T, generator=generator)
        z_fut, _ = chain(lambda z, t: self.transition(z, flow), z_ctx[:, -1], leads,
                         generator=generator)
        frames = self.rain.inverse(self.emit_frames(z_fut))  # (B·M, L, H, W)
        frames = frames.reshape(B, members, leads, H, W).transpose(1, 2)[..., :H0, :W0]
        if self.config["cap_factor"] is not None:
            cap = context_cap(context, mask, self.config["cap_factor"])
            frames = cap_forecast(frames, cap, self.rain.non_negative)
        return frames.contiguous()


def mean_markov_chain(step, z0: Tensor, num_steps: int, *,
                      generator: torch.Generator | None = None) -> tuple[Tensor, None]:
    """The mean path ``z_t = loc(z_{t-1})`` of :func:`sample_markov_chain`'s chain: ``z0``
    ``(N, *E)`` -> ``(N, num_steps, *E)`` (no draws, no density; ``generator`` unused)."""
    z, zs = z0, []
    for t in range(num_steps):
        z = step(z, t)[0]
        zs.append(z)
    return torch.stack(zs, dim=1), None


@register_forecaster
class AdvectionConvDMMForecaster(FieldDMMForecaster):
    """Forecaster around a trained :class:`AdvectionConvDMM`."""

    name = "advection-convdmm"
    module_class = AdvectionConvDMM

    def check_context_length(self, frames: int) -> None:
        """The context's optical flow needs 2 frames (one-line InputError)."""
        if self.module.config["motion"] != "none" and frames < 2:
            raise InputError(f"the optical flow needs at least 2 context frames, got {frames}")


__all__ = ["AdvectionConvDMM", "AdvectionConvDMMForecaster", "ConditionedChainPrior"]
