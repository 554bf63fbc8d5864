"""Guides of the deep Markov model: ``q(z_{1:T} | x)`` as Pyro guides that compose with a
:class:`~pyro_videossm.models.ssm.dmm.DMMModel`.

::

    SmoothingGuide   q(z_t | z_{t-1}, x_{t:T})  backward RNN + combiner ("DKS")
    FilteringGuide   q(z_t | z_{t-1}, x_{1:t})  forward RNN + combiner
    SmootherGuide    a SmoothingGuide whose steps also take the message of all later
                     observations through the model's transition linearised along the
                     guide's own mean path (Gauss–Newton; full-covariance steps)
    MeanFieldGuide   q(z_t | x_{1:T})           bidirectional RNN, no z_{t-1} (baseline)

Each guide is an ``nn.Module`` owning its networks (``encoder``: an
:class:`~pyro_videossm.nn.dmm_blocks.ObservationEncoder`; ``combiner``: the per-step head)
and calling ``forward(batch, annealing_factor)`` samples the one site ``"z"`` (event
``(T, Z)``) as a :class:`~pyro_videossm.models.ssm.markov_gaussian.MarkovGaussian`. A guide
reads the model it approximates (its transition for the Kalman-style combiner's forecasts,
its observation noise for the observation's own message, its batch checks), so it is
attached to one: :meth:`DMMGuide.attach` (done by
:class:`~pyro_videossm.models.ssm.dmm.DMM`). The model is referenced, not owned: its
parameters stay the model's.

Combiners (``combiner=``): ``"classic"`` (examples/dmm.py), ``"gain"`` (precision-weighted
product with the model's forecast; :class:`~pyro_videossm.nn.dmm_blocks.GainCombiner`) or an
``nn.Module`` with the combiner protocol of :mod:`pyro_videossm.nn.dmm_blocks`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pyro
import pyro.distributions as dist
import torch
from pyro import poutine
from torch import Tensor, nn

from pyro_videossm.errors import InputError
from pyro_videossm.models.ssm.markov_gaussian import BatchedFn, MarkovGaussian, StepFn
from pyro_videossm.models.ssm.pyro_names import register_module, unique_pyro_name
from pyro_videossm.nn.dmm_blocks import (
    Combiner,
    GainCombiner,
    MeanFieldHead,
    ObservationEncoder,
)

if TYPE_CHECKING:
    from pyro_videossm.models.ssm.dmm import DMMBatch, DMMModel

GUIDES = ("smoothing", "filtering", "meanfield")
COMBINERS = ("classic", "gain")


class DMMGuide(nn.Module):
    """Base of the DMM guides: an RNN over the observations and a per-step combiner.

    Args:
        encoder: ``x, mask (B, T, X), lengths -> h (B, T, H)``.
        combiner: the per-step head (``prepare``, ``step``, ``batched``,
            ``loop_constants``; see :mod:`pyro_videossm.nn.dmm_blocks`).
        name: name of its parameters in Pyro's param store (default: unique per instance).
    """

    #: ``"smoothing"``, ``"filtering"`` or ``"meanfield"``
    kind: str = ""
    #: direction of the encoder's RNN
    direction: str = ""

    def __init__(self, encoder: nn.Module, combiner: nn.Module, *, name: str | None = None):
        super().__init__()
        self.encoder = encoder
        self.combiner = combiner
        self.pyro_name = name or unique_pyro_name("dmm_guide")
        #: use the one-site-per-time-step reference implementation
        self.per_step = False
        object.__setattr__(self, "_model", None)

    # ------------------------------------------------------------------ the model
    def attach(self, model: DMMModel) -> DMMGuide:
        """Approximate the posterior of ``model`` (referenced, not registered as a child)."""
        needs_obs = getattr(self.combiner, "obs_message", False)
        if needs_obs and (model.z_dim != model.x_dim
                          or not hasattr(model.likelihood, "log_scale")):
            raise InputError("obs_message needs a Gaussian likelihood observing the state "
                             "(z_dim == x_dim)")
        object.__setattr__(self, "_model", model)
        return self

    @property
    def model(self) -> DMMModel:
        """The model this guide is attached to."""
        if self._model is None:
            raise InputError("this guide is not attached to a model (guide.attach(model), or "
                             "compose both in a DMM)")
        return self._model

    def _proposal(self):
        transition = self.model.transition
        return getattr(transition, "proposal", transition)

    # ------------------------------------------------------------------ per-step functions
    def guide_context(self, data: DMMBatch) -> Tensor:
        """RNN over the observations and the combiner's precomputation: ``(B, T, C)``."""
        x = data.x if data.x is not None else data.obs_mask.float()
        # robust inference: the learned parts read the pseudo-observations, the observation's
        # own message keeps x with its variance divided by the IRLS weight
        seen = x if data.x_pseudo is None else data.x_pseudo
        h = self.encoder(seen, data.obs_mask, data.lengths)
        if getattr(self.combiner, "obs_message", False):
            return self.combiner.prepare(h, x, data.obs_mask,
                                         self.model.likelihood.log_scale.exp(),
                                         obs_weight=data.obs_weight, centre=seen)
        return self.combiner.prepare(h)

    def guide_step_fn(self, ctx: Tensor, factor: Tensor | None = None,
                      linearised: tuple[Tensor, Tensor, Tensor, Tensor] | None = None
                      ) -> tuple[StepFn, BatchedFn]:
        """The guide's one-step and all-steps functions for a context from
        :meth:`guide_context` (``factor``, ``linearised``: see :meth:`guide_mean_path`;
        the all-steps function ignores ``linearised``)."""
        combiner = self.combiner
        ctx_steps = ctx.unbind(1)
        consts = combiner.loop_constants()
        if factor is not None:
            consts["factor"] = factor
        needs_prior = combiner.needs_prior
        look_ahead = getattr(combiner, "look_ahead", False)
        init = self.model.initial() if needs_prior else None
        proposal = self._proposal() if needs_prior else None

        def ahead(m, steps):
            return self.linearised_forecast(m, proposal, steps)

        def with_ahead(prior):
            return prior + (ahead,) if look_ahead else prior

        if linearised is not None:
            f_lin, J_lin, s_lin, ref = linearised

            def forecast(z_prev, t):
                dz = (z_prev - ref[:, t - 1]).unsqueeze(-1)
                return f_lin[:, t - 1] + (J_lin[:, t - 1] @ dz).squeeze(-1), s_lin[:, t - 1]
        else:
            def forecast(z_prev, t):
                return proposal(z_prev)

        def step(z_prev, t):
            prior = (with_ahead(init if t == 0 else forecast(z_prev, t)) if needs_prior
                     else None)
            return combiner.step(z_prev, ctx_steps[t], prior, **consts)

        def batched(z):
            prior = None
            if needs_prior:
                loc, scale = proposal(z[..., :-1, :])
                lead = z.shape[:-2] + (1, z.shape[-1])
                prior = with_ahead((torch.cat([init[0].expand(lead), loc], -2),
                                    torch.cat([init[1].expand(lead), scale], -2)))
            return combiner.batched(z, ctx, prior)

        return step, batched

    def guide_mean_path(self, ctx: Tensor, factor: Tensor | None = None,
                        linearised: tuple[Tensor, Tensor, Tensor, Tensor] | None = None
                        ) -> Tensor:
        """``(B, T, Z)``: the guide's steps chained on their own means (no sampling);
        ``factor`` replaces the combiner's forecast precision factor ``c``; ``linearised =
        (f, J, scale, ref)`` (:func:`~pyro_videossm.nn.linearised_smoother.jacobian` along
        ``ref[:, :-1]``) replaces the transition by its linearisation along ``ref``,
        ``f_t + J_t (z - ref_t)`` (Gauss–Newton: no transition call in the loop)."""
        step, _ = self.guide_step_fn(ctx, factor=factor, linearised=linearised)
        z, path = None, []
        for t in range(ctx.shape[1]):
            z = step(z, t)[0]
            path.append(z)
        return torch.stack(path, -2)

    def linearised_forecast(self, m: Tensor, proposal, steps: int = 1
                            ) -> list[tuple[Tensor, Tensor, Tensor]]:
        """For ``k = 1..steps``: ``Φ^k(m)``, its Jacobian ``J_k (..., Z, Z)``
        (``J[i, j] = ∂Φ^k_i / ∂m_j``, finite differences of 1% of the state's scale, all
        ``Z + 1`` points moved in one batched forecast) and the forecast noise scale, for the
        guide's look-ahead messages."""
        Z = m.shape[-1]
        scale = getattr(self.combiner, "z_scale", None)
        eps = 0.01 * (scale if scale is not None else torch.ones(Z, device=m.device))
        points = torch.cat([m.unsqueeze(-2), m.unsqueeze(-2) + torch.diag_embed(eps)], -2)
        out = []
        for _ in range(steps):
            points, q = proposal(points)  # (..., Z + 1, Z)
            phi = points[..., 0, :]
            jac = ((points[..., 1:, :] - phi.unsqueeze(-2)) / eps.unsqueeze(-1)).transpose(-1, -2)
            out.append((phi, jac, q[..., 0, :]))
        return out

    def posterior_chain(self, data: DMMBatch) -> MarkovGaussian:
        """``q(z_{1:T} | x)`` as one :class:`MarkovGaussian`."""
        ctx = self.guide_context(data)
        step, batched = self.guide_step_fn(ctx)
        path = None
        if hasattr(self.combiner, "sample_path"):  # the classic combiner: one fused loop
            def path(eps):
                return self.combiner.sample_path(ctx, eps, data.lengths)
        return MarkovGaussian(step, batched, torch.Size((data.B,)), data.T, self.model.z_dim,
                              time_mask=data.time_mask, dtype=ctx.dtype, device=ctx.device,
                              path=path)

    # ------------------------------------------------------------------ the Pyro guide
    def register(self) -> None:
        """Register the guide's networks and the model's (its forecasts) with Pyro."""
        register_module(self.model.pyro_name, self.model)
        register_module(self.pyro_name, self)

    def forward(self, batch: dict[str, Tensor], annealing_factor: float = 1.0) -> Tensor:
        """``q(z | x)``: one site ``"z"`` drawn sequentially (``z_1 .. z_T`` with
        ``per_step``)."""
        self.register()
        data = self.model.unpack(batch)
        if self.per_step:
            return self._forward_per_step(data, annealing_factor)
        q = self.posterior_chain(data)
        with pyro.plate("sequences", data.B, dim=-1):
            with poutine.scale(scale=annealing_factor):
                return pyro.sample("z", q)

    def _forward_per_step(self, data: DMMBatch, annealing_factor: float) -> Tensor:
        B, Z = data.B, self.model.z_dim
        x = data.x if data.x is not None else data.obs_mask.float()
        if isinstance(self.combiner, Combiner):
            # the reference as written in examples/dmm.py: the combiner on z_{t-1} and h_t
            h = self.encoder(x, data.obs_mask, data.lengths)

            def step(z_prev, t):
                return self.combiner(self.combiner.z_q_0 if z_prev is None else z_prev, h[:, t])
        else:
            step, _ = self.guide_step_fn(self.guide_context(data))
        z_prev, zs = None, []
        with pyro.plate("sequences", B, dim=-1):
            for t in pyro.markov(range(data.T)):
                loc, scale = step(z_prev, t)
                if scale.dim() > loc.dim():  # precision Cholesky factor (smoother messages)
                    z_dist = dist.MultivariateNormal(
                        loc.expand(B, Z), precision_matrix=scale @ scale.transpose(-1, -2))
                else:
                    z_dist = dist.Normal(loc.expand(B, Z), scale.expand(B, Z)).to_event(1)
                if data.time_mask is not None:
                    z_dist = z_dist.mask(data.time_mask[:, t])
                with poutine.scale(scale=annealing_factor):
                    z_prev = pyro.sample(f"z_{t + 1}", z_dist)
                zs.append(z_prev)
        return torch.stack(zs, -2)

    @torch.no_grad()
    def sample_posterior(self, batch: dict[str, Tensor], num_samples: int,
                         generator: torch.Generator | None = None) -> Tensor:
        """``num_samples`` guide draws ``(S, B, T, Z)`` in one batched pass (RNN run once)."""
        chain = self.posterior_chain(self.model.unpack(batch))
        chain.generator = generator
        return chain.rsample(torch.Size((int(num_samples),)))


def _encoder(x_dim: int, direction: str, rnn_dim: int, rnn_type: str, rnn_layers: int,
             rnn_dropout: float, mask_input: bool, x_loc, x_scale) -> ObservationEncoder:
    if rnn_type not in ("gru", "rnn"):
        raise InputError(f"rnn_type must be 'gru' or 'rnn', got {rnn_type!r}")
    return ObservationEncoder(x_dim, rnn_dim, direction, rnn_type=rnn_type,
                              mask_input=mask_input, num_layers=rnn_layers,
                              dropout=rnn_dropout, x_loc=x_loc, x_scale=x_scale)


class _CombinerGuide(DMMGuide):
    """A guide with a structured combiner ``q(z_t | z_{t-1}, h_t)`` (see the subclasses).

    Args:
        x_dim, z_dim: observed and latent dimensions.
        rnn_dim, rnn_type, rnn_layers, rnn_dropout: the RNN (``"gru"`` or ReLU ``"rnn"``).
        mask_input: feed the observation mask to the RNN (needed when data can be missing).
        x_loc, x_scale: standardisation of the RNN inputs (``(X,)``).
        combiner: ``"classic"``, ``"gain"`` or a combiner module.
        z_loc, z_scale: ``(Z,)`` units of the gain combiner's message and residual.
        obs_message: gain combiner, state observed directly: the observation's own Gaussian
            message enters each step (see ``GainCombiner``).
        look_ahead: with ``obs_message``, also the next ``look_ahead`` observations through
            the model's transition linearised at the guide's estimate.
        observed: gain combiner: the components the observations can cover (indices or a
            ``(Z,)`` bool mask; default all): the learned message of the others starts silent.
        residual: gain combiner: with its learned residual ``r`` (default; see
            ``GainCombiner``).
        name: Pyro name (default: unique per instance).
    """

    def __init__(self, x_dim: int, z_dim: int, *, rnn_dim: int = 600, rnn_type: str = "gru",
                 rnn_layers: int = 1, rnn_dropout: float = 0.0, mask_input: bool = True,
                 x_loc=None, x_scale=None, combiner: str | nn.Module = "classic",
                 z_loc=None, z_scale=None, obs_message: bool = False, look_ahead: int = 0,
                 smoother_iterations: int = 0, observed=None, residual: bool = True,
                 name: str | None = None):
        encoder = _encoder(x_dim, self.direction, rnn_dim, rnn_type, rnn_layers, rnn_dropout,
                           mask_input, x_loc, x_scale)
        if isinstance(combiner, str):
            if combiner not in COMBINERS:
                raise InputError(f"combiner must be 'classic' or 'gain', got {combiner!r}")
            if (look_ahead or obs_message or smoother_iterations) and combiner != "gain":
                raise InputError("obs_message, look_ahead and smoother iterations need "
                                 "combiner='gain'")
            if combiner == "gain":
                combiner = GainCombiner(z_dim, encoder.out_dim, z_loc, z_scale,
                                        obs_message=obs_message, look_ahead=look_ahead,
                                        smoother_iterations=smoother_iterations,
                                        observed=observed, residual=residual)
            else:
                combiner = Combiner(z_dim, encoder.out_dim)
        super().__init__(encoder, combiner, name=name)


class SmoothingGuide(_CombinerGuide):
    """``q(z_t | z_{t-1}, x_{t:T})``: backward RNN and a combiner (Krishnan et al.'s "DKS");
    options: see :class:`_CombinerGuide`."""

    kind = "smoothing"
    direction = "backward"


class FilteringGuide(_CombinerGuide):
    """``q(z_t | z_{t-1}, x_{1:t})``: forward RNN and a combiner (each draw uses the past
    only); options: see :class:`_CombinerGuide`."""

    kind = "filtering"
    direction = "forward"


class SmootherGuide(SmoothingGuide):
    """The Gauss–Newton smoother guide: a :class:`SmoothingGuide` with the gain combiner and
    the observation's own message, whose steps also take the backward messages of all later
    observations of the sequence (:mod:`~pyro_videossm.nn.linearised_smoother`), with the
    model's transition linearised along the guide's own mean path and relinearised
    ``iterations`` times (:meth:`smoother_messages`). Its steps are full-covariance
    Gaussians; for a linear-Gaussian model it is the exact posterior.

    Args:
        x_dim: observed (= latent) dimension: the state is observed directly.
        iterations: relinearisations (>= 1).
        others: as :class:`SmoothingGuide` (the combiner is the gain combiner).
    """

    def __init__(self, x_dim: int, *, iterations: int = 3, rnn_dim: int = 600,
                 rnn_type: str = "gru", rnn_layers: int = 1, rnn_dropout: float = 0.0,
                 mask_input: bool = True, x_loc=None, x_scale=None, z_loc=None, z_scale=None,
                 observed=None, residual: bool = True, name: str | None = None):
        if int(iterations) < 1:
            raise InputError(f"smoother iterations must be >= 1, got {iterations}")
        super().__init__(x_dim, x_dim, rnn_dim=rnn_dim, rnn_type=rnn_type,
                         rnn_layers=rnn_layers, rnn_dropout=rnn_dropout,
                         mask_input=mask_input, x_loc=x_loc, x_scale=x_scale, combiner="gain",
                         z_loc=z_loc, z_scale=z_scale, obs_message=True,
                         smoother_iterations=int(iterations), observed=observed,
                         residual=residual, name=name)

    def guide_context(self, data: DMMBatch) -> Tensor:
        return self.smoother_messages(super().guide_context(data), data)

    def smoother_messages(self, ctx: Tensor, data: DMMBatch) -> Tensor:
        """``ctx`` with the backward messages of all later observations appended
        (:meth:`GainCombiner.with_messages`), for ``smoother_iterations = K``.

        Gauss–Newton on the guide's own mean path: the path starts at the observations
        where every component is observed; otherwise at the observations where observed and
        elsewhere at the extended Kalman filter's means (:meth:`first_path`: the guide's
        mean without backward messages would run the unobserved components freely, far from
        the truth, and Gauss–Newton from there does not recover); then ``K``
        times: the backward messages along the path
        (:func:`~pyro_videossm.nn.linearised_smoother.backward_messages`: the transition
        mean ``proposal`` linearised there, its noise ``s^2 / c``, the per-step messages of
        ``ctx``), and the guide's mean path with them (each step's ``loc`` fed to the next).
        The transition noise is annealed over the iterations, geometrically from the mean
        observation noise variance (if larger) to ``s^2 / c`` at the last one: a nearly
        deterministic model linearised along a poor first path would not converge, a noisy
        one does, and each iteration starts from a better path. The messages are constants
        of the guide (not differentiated through); padded steps of ragged sequences carry no
        observation and so send none.
        """
        from pyro_videossm.nn.linearised_smoother import backward_messages, jacobian

        combiner = self.combiner
        proposal = self._proposal()
        with torch.no_grad():
            base = ctx.detach()
            precision, information = combiner.observation_messages(base)
            factor = combiner.log_prior_precision_factor.exp()
            eps = 1e-3 * combiner.z_scale
            seen = data.x if data.x_pseudo is None else data.x_pseudo
            obs_var = self.model.likelihood.log_scale.exp().pow(2).mean()
            if seen is not None and bool(data.obs_mask.all()):
                path = seen  # every component observed: start at the observations
            else:
                path = self.first_path(base, precision, information, factor, obs_var, eps)
                if seen is not None:
                    path = torch.where(data.obs_mask, seen, path)
            K = combiner.smoother_iterations
            for k in range(K):
                # the steps t -> t + 1 linearised along the path, in one transition call
                f, J, scale = jacobian(proposal, path[:, :-1], eps)
                q_var = scale**2 / factor
                w = 1.0 if K == 1 else k / (K - 1)
                rho = (obs_var / q_var.mean()).clamp_min(1.0) ** (w - 1.0)  # <= 1, 1 at the end
                lam, eta = backward_messages(f, J, path, precision, information, q_var / rho)
                if k < K - 1:  # the path the next iteration linearises along
                    full = combiner.with_messages(base, lam, eta)
                    path = self.guide_mean_path(full, factor=factor * rho,
                                                linearised=(f, J, scale, path))
        return combiner.with_messages(ctx, lam, eta)

    def first_path(self, base: Tensor, precision: Tensor, information: Tensor, factor: Tensor,
                   obs_var: Tensor, eps: Tensor) -> Tensor:
        """``(B, T, Z)``: the first Gauss–Newton path when some components are not observed:
        the extended Kalman filter of the model (:func:`~pyro_videossm.nn.linearised_smoother.
        forward_filter_path`) with the per-step messages of ``base`` and the transition noise
        of the first iteration (at least the mean observation noise variance), which carries
        what the observed components say about the unobserved ones. Where it fails (a
        non-finite mean), the guide's mean path without backward messages."""
        from pyro_videossm.nn.linearised_smoother import forward_filter_path

        combiner, model = self.combiner, self.model
        init_loc, init_scale = model.initial()
        q_var = (model.transition.log_scale.exp() ** 2 / factor).clamp_min(obs_var)
        try:
            path = forward_filter_path(self._proposal(), init_loc, init_scale, precision,
                                       information, q_var, eps)
        except torch.linalg.LinAlgError:
            path = None
        if path is None or not bool(torch.isfinite(path).all()):
            fallback = self.guide_mean_path(combiner.with_messages(base))
            path = fallback if path is None else torch.where(torch.isfinite(path), path,
                                                             fallback)
        return path


class MeanFieldGuide(DMMGuide):
    """``q(z_t | x_{1:T})``: a bidirectional RNN and a head per step, no ``z_{t-1}`` (a
    baseline for the structured guides). Options as :class:`SmoothingGuide` (no combiner)."""

    kind = "meanfield"
    direction = "both"

    def __init__(self, x_dim: int, z_dim: int, *, rnn_dim: int = 600, rnn_type: str = "gru",
                 rnn_layers: int = 1, rnn_dropout: float = 0.0, mask_input: bool = True,
                 x_loc=None, x_scale=None, z_loc=None, z_scale=None, name: str | None = None):
        encoder = _encoder(x_dim, self.direction, rnn_dim, rnn_type, rnn_layers, rnn_dropout,
                           mask_input, x_loc, x_scale)
        super().__init__(encoder, MeanFieldHead(z_dim, encoder.out_dim, z_loc, z_scale),
                         name=name)


def build_guide(kind: str, x_dim: int, z_dim: int, *, combiner: str = "classic",
                obs_message: bool = False, look_ahead: int = 0, smoother_iterations: int = 0,
                **options: Any) -> DMMGuide:
    """The guide a DMM configuration names: ``kind`` (``"smoothing"``, ``"filtering"``,
    ``"meanfield"``) with the combiner options (``smoother_iterations > 0``: the
    :class:`SmootherGuide`); ``options`` go to the guide's constructor."""
    if kind not in GUIDES:
        raise InputError(f"guide must be one of {', '.join(GUIDES)}, got {kind!r}")
    if combiner not in COMBINERS:
        raise InputError(f"combiner must be 'classic' or 'gain', got {combiner!r}")
    if look_ahead and not (obs_message and combiner == "gain" and kind != "meanfield"):
        raise InputError("look_ahead needs combiner='gain' with obs_message=True")
    if smoother_iterations < 0:
        raise InputError(f"smoother_iterations must be >= 0, got {smoother_iterations}")
    if smoother_iterations and not (obs_message and combiner == "gain"
                                    and kind == "smoothing"):
        raise InputError("smoother_iterations needs the smoothing guide with "
                         "combiner='gain' and obs_message=True")
    if smoother_iterations and look_ahead:
        raise InputError("use either look_ahead or smoother_iterations, not both")
    if kind == "meanfield":
        options.pop("observed", None)  # no combiner
        options.pop("residual", None)
        return MeanFieldGuide(x_dim, z_dim, **options)
    if smoother_iterations:
        if z_dim != x_dim:
            raise InputError("obs_message needs a Gaussian likelihood observing the state "
                             "(z_dim == x_dim)")
        return SmootherGuide(x_dim, iterations=smoother_iterations, **options)
    cls = SmoothingGuide if kind == "smoothing" else FilteringGuide
    return cls(x_dim, z_dim, combiner=combiner, obs_message=obs_message and combiner == "gain",
               look_ahead=look_ahead, **options)


__all__ = ["COMBINERS", "GUIDES", "DMMGuide", "FilteringGuide", "MeanFieldGuide",
           "SmootherGuide", "SmoothingGuide", "build_guide"]
