"""Neural blocks of the deep Markov model (Krishnan et al. 2017; Pyro's ``examples/dmm.py``).

Shapes: ``B`` sequences, ``T`` time steps, ``X`` observed components, ``Z`` latent components,
``H`` RNN units. Every block accepts any leading batch shape ``(...)``.

Model side: :class:`GatedTransition` (``p(z_t | z_{t-1})``), :class:`Emitter` (parameters of
``p(x_t | z_t)``), :class:`InitialState` (``p(z_1)``). Guide side: :class:`ObservationEncoder`
(RNN over the observations), and a combiner that turns ``z_{t-1}`` and the RNN state into
``q(z_t | ...)``: :class:`Combiner` (the classic one), :class:`GainCombiner` (a
precision-weighted product of the model's forecast and a Gaussian message from the RNN, used
by the hybrid-physics DMM) or :class:`MeanFieldHead` (no dependence on ``z_{t-1}``).

Combiners share a small protocol so that the guide's sequential loop does minimal work:
``prepare(h) -> ctx`` runs once on all time steps (linear maps of the RNN states),
``step(z_prev, ctx_t, prior_t) -> (loc, scale)`` runs once per time step, and
``batched(z, ctx, prior) -> (loc, scale)`` evaluates all steps at once from a given
sequence ``z`` (used to score a sequence that the guide did not draw).
"""

from __future__ import annotations

import math

import pyro.distributions as dist
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pyro_videossm.nn.recurrent_scans import combiner_scan, length_order, relu_rnn_scan

Prior = tuple[Tensor, Tensor]


class GatedTransition(nn.Module):
    """``p(z_t | z_{t-1}) = N(loc, scale)``, gated between a linear and a nonlinear proposal.

    ``z_prev (..., Z) -> loc (..., Z), scale (..., Z)``. The linear part starts as the
    identity, so an untrained model is a random walk.
    """

    def __init__(self, z_dim: int, transition_dim: int):
        super().__init__()
        self.lin_gate_z_to_hidden = nn.Linear(z_dim, transition_dim)
        self.lin_gate_hidden_to_z = nn.Linear(transition_dim, z_dim)
        self.lin_proposed_mean_z_to_hidden = nn.Linear(z_dim, transition_dim)
        self.lin_proposed_mean_hidden_to_z = nn.Linear(transition_dim, z_dim)
        self.lin_sig = nn.Linear(z_dim, z_dim)
        self.lin_z_to_loc = nn.Linear(z_dim, z_dim)
        with torch.no_grad():
            self.lin_z_to_loc.weight.copy_(torch.eye(z_dim))
            self.lin_z_to_loc.bias.zero_()

    def forward(self, z_prev: Tensor) -> Prior:
        gate = torch.sigmoid(self.lin_gate_hidden_to_z(F.relu(self.lin_gate_z_to_hidden(z_prev))))
        proposed_mean = self.lin_proposed_mean_hidden_to_z(
            F.relu(self.lin_proposed_mean_z_to_hidden(z_prev)))
        loc = (1 - gate) * self.lin_z_to_loc(z_prev) + gate * proposed_mean
        scale = F.softplus(self.lin_sig(F.relu(proposed_mean)))
        return loc, scale

    def proposal(self, z_prev: Tensor) -> Prior:
        """The forecast a :class:`GainCombiner` combines with (here: the transition itself)."""
        return self(z_prev)


class Emitter(nn.Module):
    """Parameter of ``p(x_t | z_t)`` (logits for Bernoulli, mean for Gaussian).

    ``z (..., Z) -> (..., X)``: two hidden ReLU layers of ``emission_dim`` units.
    """

    def __init__(self, x_dim: int, z_dim: int, emission_dim: int):
        super().__init__()
        self.lin_z_to_hidden = nn.Linear(z_dim, emission_dim)
        self.lin_hidden_to_hidden = nn.Linear(emission_dim, emission_dim)
        self.lin_hidden_to_input = nn.Linear(emission_dim, x_dim)

    def forward(self, z: Tensor) -> Tensor:
        h1 = F.relu(self.lin_z_to_hidden(z))
        h2 = F.relu(self.lin_hidden_to_hidden(h1))
        return self.lin_hidden_to_input(h2)


class InitialState(nn.Module):
    """``p(z_1) = N(loc, scale)``, shape ``() -> loc (Z,), scale (Z,)``; learned or fixed."""

    def __init__(self, z_dim: int, loc: Tensor | None = None, scale: Tensor | None = None,
                 learn: bool = True):
        super().__init__()
        loc = torch.zeros(z_dim) if loc is None else torch.as_tensor(loc, dtype=torch.float32)
        scale = torch.ones(z_dim) if scale is None else torch.as_tensor(scale,
                                                                        dtype=torch.float32)
        raw = scale.log()
        if learn:
            self.loc = nn.Parameter(loc.clone())
            self.log_scale = nn.Parameter(raw.clone())
        else:
            self.register_buffer("loc", loc.clone())
            self.register_buffer("log_scale", raw.clone())

    def forward(self) -> Prior:
        return self.loc, self.log_scale.exp()


class ObservationEncoder(nn.Module):
    """RNN summary of the observations for the guide: ``x, mask (B, T, X), lengths (B,)
    -> h (B, T, H)`` (``2H`` for ``direction="both"``).

    ``direction``: ``"backward"`` (``h_t`` summarises ``x_{t:T}``, smoothing), ``"forward"``
    (``x_{1:t}``, filtering) or ``"both"`` (the two concatenated, mean-field guide). Inputs are
    standardised with ``x_loc``/``x_scale``; missing entries enter as 0, and with
    ``mask_input`` the mask is appended as extra input features. Ragged sequences: each
    sequence is reversed within its own length for the backward pass, so padding never
    reaches the valid steps.
    """

    def __init__(self, x_dim: int, rnn_dim: int, direction: str = "backward",
                 rnn_type: str = "gru", mask_input: bool = True, num_layers: int = 1,
                 dropout: float = 0.0, x_loc: Tensor | None = None,
                 x_scale: Tensor | None = None):
        super().__init__()
        if direction not in ("backward", "forward", "both"):
            raise ValueError(f"direction must be backward, forward or both, got {direction!r}")
        if rnn_type not in ("gru", "rnn"):
            raise ValueError(f"rnn_type must be 'gru' or 'rnn', got {rnn_type!r}")
        self.direction = direction
        self.mask_input = bool(mask_input)
        self.register_buffer("x_loc", torch.zeros(x_dim) if x_loc is None
                             else torch.as_tensor(x_loc, dtype=torch.float32).clone())
        self.register_buffer("x_scale", torch.ones(x_dim) if x_scale is None
                             else torch.as_tensor(x_scale, dtype=torch.float32).clone())
        in_dim = x_dim * (2 if mask_input else 1)
        dirs = {"forward": ["fwd"], "backward": ["bwd"], "both": ["fwd", "bwd"]}[direction]

        def make_rnn():
            if rnn_type == "gru":
                return nn.GRU(in_dim, rnn_dim, num_layers=num_layers, batch_first=True,
                              dropout=dropout if num_layers > 1 else 0.0)
            return nn.RNN(in_dim, rnn_dim, nonlinearity="relu", num_layers=num_layers,
                          batch_first=True, dropout=dropout if num_layers > 1 else 0.0)

        self.rnns = nn.ModuleDict({d: make_rnn() for d in dirs})
        self.h_0 = nn.ParameterDict({d: nn.Parameter(torch.zeros(num_layers, 1, rnn_dim))
                                     for d in dirs})
        self.out_dim = rnn_dim * len(dirs)

    def features(self, x: Tensor, mask: Tensor) -> Tensor:
        """Standardised inputs, 0 where missing, with the mask appended: ``(B, T, 2X)``."""
        u = torch.where(mask, (x - self.x_loc) / self.x_scale, torch.zeros_like(x))
        return torch.cat([u, mask.to(u.dtype)], -1) if self.mask_input else u

    def forward(self, x: Tensor, mask: Tensor, lengths: Tensor | None = None) -> Tensor:
        u = self.features(x, mask)
        B, T, _ = u.shape
        outs = []
        for d, rnn in self.rnns.items():
            h_0 = self.h_0[d].expand(-1, B, -1).contiguous()
            if d == "fwd" and not self.uses_scan(rnn, u):
                outs.append(rnn(u, h_0)[0])  # padding follows the valid steps: never reaches them
                continue
            # time index of each row's RNN step: reversed within its length going backward
            idx = (torch.arange(T, device=u.device).expand(B, T) if d == "fwd"
                   else reverse_index(lengths, B, T, u.device))
            if self.uses_scan(rnn, u):
                outs.append(self._scan(rnn, u, h_0, lengths, idx))
            else:
                rev = u.gather(1, idx.unsqueeze(-1).expand_as(u))
                h = rnn(rev, h_0)[0]
                outs.append(h.gather(1, idx.unsqueeze(-1).expand_as(h)))
        return outs[0] if len(outs) == 1 else torch.cat(outs, -1)

    @staticmethod
    def _scan(rnn: nn.RNN, u: Tensor, h_0: Tensor, lengths: Tensor | None, idx: Tensor
              ) -> Tensor:
        """The RNN as :func:`relu_rnn_scan`: ``u (B, T, F)``, step ``s`` of row ``b`` reads
        ``u[b, idx[b, s]]`` and its output goes back there (``idx`` is its own inverse).

        The rows run sorted by length, time-major, so that padded steps are skipped; one
        gather takes the inputs there, one takes the outputs back (padding: 0).
        """
        B, T, _ = u.shape
        full = torch.full((B,), T, device=u.device)
        order, counts = length_order(full if lengths is None else lengths.to(u.device), T)
        source = order * T + idx[order].t()  # (T, B): flat (row, time) of each scan input
        pre = F.linear(u.reshape(B * T, -1)[source.reshape(-1)].reshape(T, B, -1),
                       rnn.weight_ih_l0, rnn.bias_ih_l0 + rnn.bias_hh_l0)
        out = relu_rnn_scan(pre, h_0[0, order], rnn.weight_hh_l0, counts)
        target = idx * B + order.argsort().unsqueeze(-1)  # (B, T): flat (time, row) of out
        return out.reshape(T * B, -1)[target.reshape(-1)].reshape(B, T, -1)

    @staticmethod
    def uses_scan(rnn: nn.RNNBase, u: Tensor) -> bool:
        """Whether the RNN runs as the hand-written scan: on CPU, for one ReLU layer, eagerly.

        The scan (:func:`relu_rnn_scan`) skips padded steps and forms the weight gradients in
        one product (epoch times before and after: docs/RESULTS.md). Elsewhere
        (cuDNN, GRUs, stacked RNNs, ``torch.jit`` tracing): ``torch.nn`` itself.
        """
        return (isinstance(rnn, nn.RNN) and rnn.nonlinearity == "relu" and rnn.num_layers == 1
                and rnn.bias and u.device.type == "cpu" and not torch.jit.is_tracing())


def reverse_index(lengths: Tensor | None, B: int, T: int, device) -> Tensor:
    """Time index ``(B, T)`` reversing each sequence within its length (padding stays put).

    The map is its own inverse: gathering twice restores the order.
    """
    t = torch.arange(T, device=device).expand(B, T)
    if lengths is None:
        return t.flip(-1)
    rev = lengths.to(device).unsqueeze(-1) - 1 - t
    return torch.where(rev >= 0, rev, t)


class Combiner(nn.Module):
    """The classic DMM combiner: ``q(z_t | z_{t-1}, h_t) = N(loc, scale)`` with
    ``h = (tanh(W z_{t-1} + b) + h_t) / 2``, ``loc = W_loc h``, ``scale = softplus(W_s h)``.

    Shapes: ``z_prev (..., Z)``, ``h (..., H)`` -> ``loc, scale (..., Z)``. For ``t = 1``
    ``z_{t-1}`` is the learned ``z_q_0``. The RNN half of the linear maps is precomputed for
    all time steps in :meth:`prepare`.
    """

    needs_prior = False

    def __init__(self, z_dim: int, rnn_dim: int):
        super().__init__()
        self.lin_z_to_hidden = nn.Linear(z_dim, rnn_dim)
        self.lin_hidden_to_loc = nn.Linear(rnn_dim, z_dim)
        self.lin_hidden_to_scale = nn.Linear(rnn_dim, z_dim)
        self.z_q_0 = nn.Parameter(torch.zeros(z_dim))

    def _out_weight(self) -> Tensor:
        return 0.5 * torch.cat([self.lin_hidden_to_loc.weight, self.lin_hidden_to_scale.weight])

    def prepare(self, h: Tensor) -> Tensor:
        """``h (B, T, H) -> ctx (B, T, 2Z)``: the RNN's share of loc and pre-softplus scale."""
        bias = torch.cat([self.lin_hidden_to_loc.bias, self.lin_hidden_to_scale.bias])
        return F.linear(h, self._out_weight(), bias)

    def step(self, z_prev: Tensor | None, ctx_t: Tensor, prior_t: Prior | None = None,
             weight: Tensor | None = None) -> Prior:
        if z_prev is None:
            z_prev = self.z_q_0
        w = self._out_weight() if weight is None else weight
        u = F.linear(torch.tanh(self.lin_z_to_hidden(z_prev)), w) + ctx_t
        loc, s = u.chunk(2, -1)
        return loc, F.softplus(s)

    def loop_constants(self) -> dict:
        """Tensors the guide's loop reuses at every step (computed once per guide call)."""
        return {"weight": self._out_weight()}

    def sample_path(self, ctx: Tensor, eps: Tensor, lengths: Tensor | None = None
                    ) -> tuple[Tensor, Tensor, Tensor]:
        """The guide's whole sequential draw ``z_t = loc_t + scale_t eps_t`` in one call.

        ``ctx (B, T, 2Z)`` from :meth:`prepare`, standard normal ``eps (*S, B, T, Z)``,
        optional ``lengths (B,)`` -> ``z, loc, scale``, each ``(*S, B, T, Z)``: the same
        numbers as chaining :meth:`step` at every valid step. When gradients are recorded it
        runs :func:`~pyro_videossm.nn.recurrent_scans.combiner_scan` (hand-written backward;
        with ``lengths`` the steps at or after a sequence's length are skipped and hold
        ``z = loc = 0``, ``scale = softplus(0)``); without, a plain loop of two ``addmm``
        and one ``addcmul`` per step on 2-D tensors, which keeps no per-step activations
        (posterior sampling of many draws; also under ``torch.jit`` tracing, which cannot
        record the scan).
        """
        lead, (T, Z) = eps.shape[:-2], eps.shape[-2:]
        n = lead.numel()
        ctx = ctx.expand(lead + ctx.shape[-2:]).reshape(n, T, 2 * Z)
        eps = eps.reshape(n, T, Z)
        z0 = self.z_q_0.expand(n, Z)
        w1, b1 = self.lin_z_to_hidden.weight, self.lin_z_to_hidden.bias
        if torch.is_grad_enabled() and not torch.jit.is_tracing():
            if lengths is None:
                order, counts = torch.arange(n, device=eps.device), None
            else:  # rows sorted by length, time-major: the running rows are a prefix
                order, counts = length_order(lengths.to(eps.device).expand(lead).reshape(n), T)
            out = combiner_scan(ctx.transpose(0, 1).index_select(1, order),
                                eps.transpose(0, 1).index_select(1, order), z0, w1, b1,
                                self._out_weight(), counts)
            inverse = order.argsort()
            return tuple(v.index_select(1, inverse).transpose(0, 1).reshape(lead + (T, Z))
                         for v in out)
        w1, w_out = w1.t(), self._out_weight().t()
        z, zs, locs, scales = z0, [], [], []
        for ctx_t, e_t in zip(ctx.unbind(1), eps.unbind(1)):
            u = torch.addmm(ctx_t, torch.tanh(torch.addmm(b1, z, w1)), w_out)
            loc, s = u.chunk(2, -1)
            scale = F.softplus(s)
            z = torch.addcmul(loc, scale, e_t)
            zs.append(z)
            locs.append(loc)
            scales.append(scale)
        return tuple(torch.stack(v, 1).reshape(lead + (T, Z)) for v in (zs, locs, scales))

    def batched(self, z: Tensor, ctx: Tensor, prior: Prior | None = None) -> Prior:
        """All steps at once for a given sequence ``z (..., T, Z)``: ``loc, scale (..., T, Z)``."""
        z_0 = self.z_q_0.expand(z.shape[:-2] + (1, z.shape[-1]))
        return self.step(torch.cat([z_0, z[..., :-1, :]], -2), ctx)

    def forward(self, z_prev: Tensor, h: Tensor) -> Prior:
        """The combiner as written in ``examples/dmm.py``; ``z_prev (..., Z), h (..., H)``."""
        h_combined = 0.5 * (torch.tanh(self.lin_z_to_hidden(z_prev)) + h)
        return self.lin_hidden_to_loc(h_combined), F.softplus(self.lin_hidden_to_scale(h_combined))


def observed_mask(observed: Tensor | list[int] | None, dim: int) -> Tensor:
    """``(dim,)`` bool: ``observed`` as a mask (a bool mask, or component indices; None: all)."""
    if observed is None:
        return torch.ones(dim, dtype=torch.bool)
    observed = torch.as_tensor(observed)
    if observed.dtype == torch.bool:
        if observed.shape != (dim,):
            raise ValueError(f"observed mask has shape {tuple(observed.shape)}, expected ({dim},)")
        return observed.cpu()
    mask = torch.zeros(dim, dtype=torch.bool)
    mask[observed.long().cpu()] = True
    return mask


class GainCombiner(nn.Module):
    """Kalman-style combiner: the model's forecast corrected by a message from the RNN.

    ``f, s_f = prior_t`` is the model's forecast from ``z_{t-1}`` (for ``t = 1`` the model's
    ``p(z_1)``) and ``N(b_t, 1 / p_t)`` a Gaussian message about ``z_t`` read from the RNN
    state ``h_t`` (smoothing guide: what ``x_{t:T}`` say about ``z_t``). ``q(z_t | ...)`` is
    ``N(loc, scale)`` with::

        loc   = (c f / s_f^2 + p b) / (c / s_f^2 + p)  +  r(f, h_t)
        scale = a(h_t) (c / s_f^2 + p)^(-1/2)

    i.e. the diagonal product ``N(f, s_f^2 / c) N(b, 1 / p)`` (``loc = f + K (b - f)``) with a
    learned guide-side precision factor ``c``, a learned residual ``r`` (an MLP of the forecast
    and the RNN state whose output starts at 0: flow-dependent corrections the diagonal gain
    cannot make) and a learned factor ``a`` on the spread (initially ``a0``).

    With ``look_ahead = K > 0`` the next ``K`` observations enter too, through the physics
    linearised at the estimate ``m`` made without them: ``x_{t+k} ≈ Φ^k(m) + J_k (z_t - m)``
    with noise ``k q^2 + R^2`` adds ``J_k^T W_k J_k`` to the precision (a full matrix:
    flow-dependent, it sharpens the unstable directions); ``prior_t`` then also holds a function
    ``(m, K) -> [(Φ^k(m), J_k, q)]`` (see ``DMMGuide.linearised_forecast``; the linearisation
    point is not differentiated through), ``loc`` solves the ``Z × Z`` system and ``scale`` is the
    root of the diagonal of its inverse (times ``a``).

    With ``smoother_iterations = K > 0`` (a smoothing guide, with ``obs_message``) all later
    observations of the sequence enter instead, through the backward messages ``Λ_t, η_t`` of
    :mod:`pyro_videossm.nn.linearised_smoother` (the transition linearised along the guide's
    own mean path, relinearised ``K`` times: see ``SmootherGuide.smoother_messages``;
    appended to the context by :meth:`with_messages`). Then ``q(z_t | z_{t-1}, x_{t:T})`` is
    the full-covariance Gaussian with precision ``P = diag(c / s_f^2 + p) + Λ_t`` and mean
    ``P^{-1} (c f / s_f^2 + p b + η_t) + r``: the exact smoothing conditional of a linear-Gaussian
    model (``c = 1``, ``r = 0``, no RNN message), returned as ``(loc, U)`` with ``U`` the
    lower Cholesky factor of the precision scaled by ``1 / a`` row-wise (covariance
    ``diag(a) P^{-1} diag(a)``; ``a`` starts at 1).

    With ``obs_message`` (state observed directly, ``Z = X``), the message also holds the
    observation itself, ``N(x_t, R)`` where observed, in information form
    (``p = m / R^2 + p_h``, ``p b = m x / R^2 + p_h b_h``, ``b_h`` centred on ``x_t``): an
    untrained guide is then a nudging filter, and the RNN learns what the other (future)
    observations add.

    ``observed`` (``(Z,)`` bool, or the indices; default all) names the components the
    observations can cover. With ``obs_message``, the learned message of a component never
    observed starts with (almost) no precision: the default start, ``N(z_loc, 10 R^2)`` at
    every step, would be a pseudo-observation of the climatological mean repeated every cycle,
    which pulls an unobserved component towards its mean (and, summed over a window by the
    smoother messages, outweighs what the dynamics say about it).

    ``residual=False`` leaves ``r`` out (its parameters stay, unused): the residual is in
    units of ``z_scale`` (the climatology), so that Adam's first steps, each of about the
    learning rate on every weight whatever its gradient, move a sharp posterior's mean by a
    good part of its spread (Lorenz-96 observing every 2nd component, the Gauss–Newton guide:
    one step at lr 0.002 on the residual's weights took the guide's RMSE from 0.20 to 0.45).

    Shapes: ``h (B, T, H) -> ctx (B, T, 3Z + R)``; ``prior_t`` two ``(..., Z)`` tensors.
    ``z_loc``/``z_scale`` (``(Z,)``) set the units of ``b``, ``p`` and ``r``.
    """

    needs_prior = True
    #: initial bias of the learned message's precision (softplus) for observed components
    #: and for components never observed (precision about 1e-4 / R^2: no message)
    PRECISION_BIAS, UNOBSERVED_PRECISION_BIAS = -2.25, -9.0

    def __init__(self, z_dim: int, rnn_dim: int, z_loc: Tensor | None = None,
                 z_scale: Tensor | None = None, hidden_dim: int | None = None,
                 residual_dim: int = 32, obs_message: bool = False, look_ahead: int = 0,
                 smoother_iterations: int = 0, a0: float | None = None,
                 observed: Tensor | list[int] | None = None, residual: bool = True):
        super().__init__()
        self.residual = bool(residual)
        hidden_dim = hidden_dim or rnn_dim
        self.z_dim, self.residual_dim = z_dim, residual_dim
        self.obs_message = bool(obs_message)
        self.look_ahead = int(look_ahead)
        self.smoother_iterations = int(smoother_iterations)
        if (look_ahead or smoother_iterations) and not obs_message:
            raise ValueError("look_ahead and smoother_iterations need obs_message (the state "
                             "observed directly)")
        if look_ahead and smoother_iterations:
            raise ValueError("use either look_ahead or smoother_iterations, not both")
        if a0 is None:
            a0 = 1.0 if smoother_iterations else 0.3
        self.hidden = nn.Sequential(nn.Linear(rnn_dim, hidden_dim), nn.Tanh())
        self.lin_loc = nn.Linear(hidden_dim, z_dim)
        self.lin_precision = nn.Linear(hidden_dim, z_dim)
        self.lin_scale = nn.Linear(hidden_dim, z_dim)
        self.lin_residual_h = nn.Linear(hidden_dim, residual_dim)
        self.lin_residual_f = nn.Linear(z_dim, residual_dim, bias=False)
        self.lin_residual_out = nn.Linear(residual_dim, z_dim)
        for lin in (self.lin_scale, self.lin_residual_out) + (
                (self.lin_loc,) if obs_message else ()):
            nn.init.zeros_(lin.weight)
            nn.init.zeros_(lin.bias)
        if obs_message:  # the learned message starts weak next to the observation's own
            nn.init.constant_(self.lin_precision.bias, self.PRECISION_BIAS)
            unobserved = ~observed_mask(observed, z_dim)
            with torch.no_grad():  # and silent where nothing is ever observed
                self.lin_precision.bias[unobserved] = self.UNOBSERVED_PRECISION_BIAS
        self.log_prior_precision_factor = nn.Parameter(torch.zeros(z_dim))
        self.log_a = nn.Parameter(torch.full((z_dim,), math.log(a0)))
        self.register_buffer("z_loc", torch.zeros(z_dim) if z_loc is None
                             else torch.as_tensor(z_loc, dtype=torch.float32).clone())
        self.register_buffer("z_scale", torch.ones(z_dim) if z_scale is None
                             else torch.as_tensor(z_scale, dtype=torch.float32).clone())

    def prepare(self, h: Tensor, x: Tensor | None = None, obs_mask: Tensor | None = None,
                obs_scale: Tensor | None = None, obs_weight: Tensor | None = None,
                centre: Tensor | None = None) -> Tensor:
        """``h (B, T, H) -> ctx (B, T, 3Z + R)``: the message in information form (``p b``,
        ``p``), the spread's log-factor and the RNN's share of the residual's hidden layer;
        with ``obs_message`` also ``x, obs_mask (B, T, Z)`` and ``obs_scale (Z,)``, and for
        robust inference ``obs_weight (B, T, Z)`` (the observation's variance is
        ``obs_scale^2 / obs_weight``) and ``centre (B, T, Z)`` (where the learned message
        is centred instead of ``x``: the pseudo-observations)."""
        g = self.hidden(h)
        if self.obs_message:
            p_obs = obs_mask.to(g.dtype) / obs_scale**2
            if obs_weight is not None:
                p_obs = p_obs * obs_weight
            p_ref = obs_scale.pow(-2).mean()
            base = torch.where(obs_mask, x if centre is None else centre, self.z_loc)
        else:
            p_ref = self.z_scale.pow(-2)
            base = self.z_loc
        b = base + self.z_scale * self.lin_loc(g)
        p = F.softplus(self.lin_precision(g)) * p_ref
        pb = p * b
        if self.obs_message:
            p = p + p_obs
            pb = pb + p_obs * x
        log_s = self.log_a + self.lin_scale(g)
        parts = [pb, p, log_s, self.lin_residual_h(g)]
        for k in range(1, self.look_ahead + 1):  # observation t + k, its precision (0 at the end)
            parts += [F.pad((p_obs * x)[:, k:], (0, 0, 0, k)), F.pad(p_obs[:, k:], (0, 0, 0, k))]
        return torch.cat(parts, -1)

    def loop_constants(self) -> dict:
        return {"factor": self.log_prior_precision_factor.exp()}

    def observation_messages(self, ctx: Tensor) -> tuple[Tensor, Tensor]:
        """``(p, p b)`` ``(..., Z)``: the per-step message of :meth:`prepare`'s context."""
        Z = self.z_dim
        return ctx[..., Z:2 * Z], ctx[..., :Z]

    def with_messages(self, ctx: Tensor, lam: Tensor | None = None,
                      eta: Tensor | None = None) -> Tensor:
        """:meth:`prepare`'s context ``(B, T, C)`` with the backward messages ``Λ (B, T, Z, Z)``
        and ``η (B, T, Z)`` appended (zeros when not given)."""
        B, T, Z = ctx.shape[0], ctx.shape[1], self.z_dim
        if lam is None:
            return torch.cat([ctx, ctx.new_zeros(B, T, Z * Z + Z)], -1)
        return torch.cat([ctx, lam.flatten(-2), eta], -1)

    def step(self, z_prev: Tensor | None, ctx_t: Tensor, prior_t: tuple,
             factor: Tensor | None = None) -> Prior:
        f, s_f = prior_t[0], prior_t[1]
        c = self.log_prior_precision_factor.exp() if factor is None else factor
        Z = self.z_dim
        sizes = [Z] * 3 + [self.residual_dim] + [Z, Z] * self.look_ahead
        if self.smoother_iterations:
            sizes += [Z * Z, Z]
        pb, p, log_s, r_h, *ahead = ctx_t.split(sizes, -1)
        prior_precision = c / s_f**2
        precision = prior_precision + p
        if self.residual:
            u = self.lin_residual_f((f - self.z_loc) / self.z_scale) + r_h
            residual = self.z_scale * self.lin_residual_out(torch.tanh(u))
        else:
            residual = torch.zeros((), dtype=f.dtype, device=f.device)
        if self.smoother_iterations:
            lam = ahead[0].unflatten(-1, (Z, Z))
            lam = torch.diag_embed(precision) + lam
            chol = torch.linalg.cholesky(lam)
            eta = prior_precision * f + pb + ahead[1]
            loc = torch.cholesky_solve(eta.unsqueeze(-1), chol).squeeze(-1) + residual
            return loc, chol * (-log_s).exp().unsqueeze(-1)
        if not self.look_ahead:
            loc = (prior_precision * f + pb) / precision + residual
            return loc, log_s.exp() * precision.rsqrt()
        # x_{t+k} = Φ^k(z_t) + noise, linearised at m (the estimate without them): Gaussian
        # messages with precision J_k^T W_k J_k (W_k = 1 / (k q^2 + R^2) where observed),
        # solved jointly with the rest. The linearisation point is not differentiated through.
        m = (prior_precision * f + pb) / precision
        md = m.detach()
        lam = torch.diag_embed(precision)
        eta = precision * m
        for k, (phi, jac, q) in enumerate(prior_t[2](md, self.look_ahead)):
            pxn, pn = ahead[2 * k], ahead[2 * k + 1]
            w = pn / (1 + pn * (k + 1) * q**2)
            innovation = torch.where(pn > 0, pxn / pn.clamp_min(1e-30) - phi, 0.0)
            y = innovation + (jac @ md.unsqueeze(-1)).squeeze(-1)
            jw = jac.transpose(-1, -2) * w.unsqueeze(-2)  # J^T W
            lam = lam + jw @ jac
            eta = eta + (jw @ y.unsqueeze(-1)).squeeze(-1)
        chol = torch.linalg.cholesky(lam)
        loc = torch.cholesky_solve(eta.unsqueeze(-1), chol).squeeze(-1) + residual
        var = torch.cholesky_inverse(chol).diagonal(dim1=-2, dim2=-1)
        return loc, log_s.exp() * var.sqrt()

    def batched(self, z: Tensor, ctx: Tensor, prior: tuple) -> Prior:
        """All steps at once; ``prior`` holds the forecasts ``(..., T, Z)`` from ``z``."""
        return self.step(None, ctx, prior)


class MeanFieldHead(nn.Module):
    """Mean-field guide ``q(z_t | x_{1:T}) = N(loc_t, scale_t)``: ``h (..., H) -> loc, scale
    (..., Z)``, no dependence on ``z_{t-1}`` (a baseline for the structured guides)."""

    needs_prior = False

    def __init__(self, z_dim: int, rnn_dim: int, z_loc: Tensor | None = None,
                 z_scale: Tensor | None = None):
        super().__init__()
        self.hidden = nn.Sequential(nn.Linear(rnn_dim, rnn_dim), nn.Tanh())
        self.lin_loc = nn.Linear(rnn_dim, z_dim)
        self.lin_scale = nn.Linear(rnn_dim, z_dim)
        self.register_buffer("z_loc", torch.zeros(z_dim) if z_loc is None
                             else torch.as_tensor(z_loc, dtype=torch.float32).clone())
        self.register_buffer("z_scale", torch.ones(z_dim) if z_scale is None
                             else torch.as_tensor(z_scale, dtype=torch.float32).clone())

    def prepare(self, h: Tensor) -> Tensor:
        g = self.hidden(h)
        loc = self.z_loc + self.z_scale * self.lin_loc(g)
        scale = self.z_scale * F.softplus(self.lin_scale(g) - 2.0)
        return torch.cat([loc, scale], -1)

    def loop_constants(self) -> dict:
        return {}

    def step(self, z_prev: Tensor | None, ctx_t: Tensor, prior_t: Prior | None = None) -> Prior:
        loc, scale = ctx_t.chunk(2, -1)
        return loc, scale

    def batched(self, z: Tensor, ctx: Tensor, prior: Prior | None = None) -> Prior:
        return self.step(None, ctx)


class GaussianLikelihood(nn.Module):
    """``p(x | loc) = N(loc, scale)``: ``loc (..., X) -> Normal``; ``scale (X,)`` fixed or
    learned."""

    def __init__(self, x_dim: int, scale: float | Tensor = 1.0, learn_scale: bool = True):
        super().__init__()
        raw = torch.as_tensor(scale, dtype=torch.float32).expand(x_dim).clone().log()
        if learn_scale:
            self.log_scale = nn.Parameter(raw)
        else:
            self.register_buffer("log_scale", raw)

    def forward(self, loc: Tensor) -> dist.Normal:
        return dist.Normal(loc, self.log_scale.exp().expand_as(loc), validate_args=False)


class StudentTLikelihood(GaussianLikelihood):
    """``p(x | loc) = StudentT(df, loc, scale)``: heavy-tailed observation errors, so that a
    gross outlier costs a logarithmic, not a quadratic, penalty. ``scale (X,)`` fixed or
    learned as in :class:`GaussianLikelihood` (guides that send Gaussian observation messages
    use it as their noise scale: the ELBO stays exact, only the proposal is Gaussian)."""

    def __init__(self, x_dim: int, scale: float | Tensor = 1.0, learn_scale: bool = True,
                 df: float = 4.0):
        super().__init__(x_dim, scale, learn_scale)
        self.df = float(df)

    def forward(self, loc: Tensor) -> dist.StudentT:
        return dist.StudentT(self.df, loc, self.log_scale.exp().expand_as(loc),
                             validate_args=False)


class BernoulliLikelihood(nn.Module):
    """``p(x | logits) = Bernoulli(sigmoid(logits))``: ``logits (..., X) -> Bernoulli``."""

    def forward(self, logits: Tensor) -> dist.Bernoulli:
        return dist.Bernoulli(logits=logits, validate_args=False)


class MLP(nn.Sequential):
    """``(..., in_dim) -> (..., out_dim)`` with ``len(hidden)`` SiLU layers; ``zero_output``
    initialises the last layer to 0 (the network starts as the zero function)."""

    def __init__(self, in_dim: int, hidden: tuple[int, ...], out_dim: int,
                 zero_output: bool = False):
        layers: list[nn.Module] = []
        d = in_dim
        for width in hidden:
            layers += [nn.Linear(d, width), nn.SiLU()]
            d = width
        last = nn.Linear(d, out_dim)
        if zero_output:
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)
        layers.append(last)
        super().__init__(*layers)
