"""Disentangled sequential VAE (DSVAE; Li & Mandt 2018), optionally with an adversarial
motion classifier on the static latent.

Generative model for a clip ``x_{1:T}`` (frames ``C × S × S``)::

    f     ~ N(0, I)                                   static latent, one per clip  (F,)
    z_t   ~ N(loc_t, scale_t),  (loc_t, scale_t) = LSTM(z_{<t})    dynamic latents (T, Z)
    x_t   ~ Bernoulli(σ(decoder(f, z_t)))  or  N(σ(decoder(f, z_t)), pixel_scale)

Guide (amortised)::

    e_t   = frame encoder(x_t)                         all frames at once (T, E)
    f     ~ N(static encoder(e_{1:T}))                  bidirectional LSTM over the clip
    z_t   ~ N(dynamic encoder(e_{≤t}))                  per frame (``"frame"``) or a causal LSTM
                                                        (``"rnn"``); no dependence on z_{<t}

Speed: ``f`` and ``z`` are one sample site each per clip (``z`` has event shape ``(T, Z)``).
The guide's ``q(z | x)`` is a diagonal Normal over all frames, drawn in one call; the model's
recurrent prior (:class:`RecurrentGaussianPrior`) scores the guide's draw for all steps in one
LSTM call (teacher forcing) and the decoder runs on all frames at once. Only sampling from the
prior (generation, the disentanglement protocol) loops over time.

Weight of the dynamic KL (``dynamic_kl_weight`` = ``β_z``, default 1 = the ELBO): both ``z``
sites are scaled by ``β_z`` (with the annealing factor), so the objective is
``E[log p(x | f, z)] - KL(f) - β_z KL(z)``. Because the learned prior can predict a constant
component of ``z_t`` from ``z_{t-1}``, static content costs about the same in ``z`` as in
``f``; ``β_z > 1`` makes ``z`` the dearer place for it. It also makes clip-constant *motion*
content (action, direction) cheaper in ``f``, which is what the adversary forbids.

Adversarial option (``adversarial=True``): a small MLP (:class:`MotionClassifier`) predicts
the motion label from the static latent ``f`` drawn by the guide, and is trained *against*
the encoder; its loss enters the model as ``pyro.factor("adversary", -weight · loss)`` so the
shared SVI loop trains everything in one optimiser step. Two ways to play the min-max game
(``adversary_mode``):

* ``"minmax"`` (default): the classifier minimises its cross-entropy on ``f`` with the
  encoder's gradient stopped (``f.detach()``), and the encoder minimises the cross-entropy of
  the (frozen) classifier's prediction against the *uniform* distribution (``f`` should leave
  the classifier at chance; Tzeng et al. 2015). ``loss = CE(c(sg f), y) + CE(U, c_sg(f)) -
  ln K``, so the second term is 0 at chance.
* ``"grl"``: gradient reversal (Ganin & Lempitsky 2015): ``loss = CE(c(GRL(f)), y)``; the
  layer (:func:`grad_reverse`) is the identity forward and multiplies gradients by ``-λ``
  backward, so the classifier minimises the cross-entropy and the encoder maximises it.
  Measured here: once the classifier is confident its cross-entropy saturates, the reversed
  gradient vanishes and ``f`` keeps the motion (a probe read the motion from ``f`` at 100 %),
  which is why ``"minmax"`` is the default.

The reported training loss is ``-ELBO + weight · loss`` (per frame). Batches without a
``motion`` entry (generation, evaluation) skip the factor.

Batches are dicts with ``frames`` ``(B, T, C, S, S)`` in [0, 1] (float, or uint8 read as
``value / 255``) and, for the adversary, ``motion`` ``(B,)`` int64.
"""

from __future__ import annotations

import math
from typing import Any

import pyro
import pyro.distributions as dist
import torch
import torch.nn.functional as F
from pyro import poutine
from pyro.distributions import TorchDistribution, constraints
from torch import Tensor, nn

from pyro_videossm.errors import InputError

LIKELIHOODS = ("bernoulli", "normal")
DYNAMIC_ENCODERS = ("frame", "rnn")
ADVERSARY_MODES = ("minmax", "grl")
MIN_SCALE = 1e-3


def _n_down(size: int) -> int:
    """Halvings from ``size`` to the 4 × 4 bottleneck (``size`` must be 4 · 2**k, k ≥ 1)."""
    k = round(math.log2(size / 4)) if size >= 8 else -1
    if k < 1 or 4 * 2**k != size:
        raise InputError(f"frame size must be 4 * 2**k (8, 16, 32, 64, ...), got {size}")
    return k


def mlp(in_dim: int, hidden: tuple[int, ...], out_dim: int) -> nn.Sequential:
    """``(..., in_dim) -> (..., out_dim)`` with a SiLU after each hidden layer."""
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [nn.Linear(in_dim, width), nn.SiLU()]
        in_dim = width
    return nn.Sequential(*layers, nn.Linear(in_dim, out_dim))


def as_float_frames(x: Tensor) -> Tensor:
    """uint8 frames (0..255) -> float in [0, 1]; float frames are returned as they are."""
    return x.float().div_(255.0) if x.dtype == torch.uint8 else x


# -- networks ----------------------------------------------------------------------------------
def _widths(size: int, conv_channels: int) -> list[int]:
    """Channels at each resolution from ``S`` down to 4: ``c, 2c, 4c, ...`` (capped at 8c)."""
    return [conv_channels * min(2**i, 8) for i in range(_n_down(size))]


class FrameEncoder(nn.Module):
    """Frames to feature vectors: ``(..., C, S, S)`` -> ``(..., E)``.

    ``log2(S / 4)`` stride-2 4×4 convolutions (channels ``c, 2c, 4c, ...``, SiLU) down to a
    ``4 × 4`` map, then a linear layer (DCGAN-style: no full-resolution convolution, which
    keeps CPU training cheap). Leading dims (batch, time) are folded into one conv batch.
    """

    def __init__(self, channels: int, size: int, feature_dim: int, conv_channels: int):
        super().__init__()
        widths = _widths(size, conv_channels)
        layers: list[nn.Module] = []
        cin = channels
        for w in widths:
            layers += [nn.Conv2d(cin, w, 4, stride=2, padding=1), nn.SiLU()]
            cin = w
        self.conv = nn.Sequential(*layers)
        self.out = nn.Linear(cin * 16, feature_dim)

    def forward(self, x: Tensor) -> Tensor:
        lead = x.shape[:-3]
        h = self.conv(x.reshape(-1, *x.shape[-3:]))
        return F.silu(self.out(h.flatten(1))).reshape(*lead, -1)


class FrameDecoder(nn.Module):
    """Latent codes to pixel logits: ``(..., D)`` -> ``(..., C, S, S)``.

    A linear layer to a ``4 × 4`` map, then stride-2 4×4 transposed convolutions (the
    encoder's widths in reverse), the last one straight to ``C`` channels at ``S × S``.
    """

    def __init__(self, in_dim: int, channels: int, size: int, conv_channels: int):
        super().__init__()
        widths = _widths(size, conv_channels)[::-1]
        self.first = widths[0]
        self.inp = nn.Linear(in_dim, widths[0] * 16)
        layers: list[nn.Module] = []
        for i, w in enumerate(widths):
            last = i == len(widths) - 1
            cout = channels if last else widths[i + 1]
            layers.append(nn.ConvTranspose2d(w, cout, 4, stride=2, padding=1))
            if not last:
                layers.append(nn.SiLU())
        self.conv = nn.Sequential(*layers)

    def forward(self, h: Tensor) -> Tensor:
        lead = h.shape[:-1]
        m = F.silu(self.inp(h.reshape(-1, h.shape[-1]))).reshape(-1, self.first, 4, 4)
        out = self.conv(m)
        return out.reshape(*lead, *out.shape[1:])


def _loc_scale(params: Tensor) -> tuple[Tensor, Tensor]:
    loc, raw = params.chunk(2, dim=-1)
    return loc, F.softplus(raw) + MIN_SCALE


class StaticEncoder(nn.Module):
    """``q(f | x_{1:T})``: bidirectional LSTM over frame features ``(B, T, E)`` ->
    ``loc, scale (B, F)`` from the last forward and the first backward state."""

    def __init__(self, feature_dim: int, hidden_dim: int, static_dim: int):
        super().__init__()
        self.lstm = nn.LSTM(feature_dim, hidden_dim, batch_first=True, bidirectional=True)
        self.head = nn.Linear(2 * hidden_dim, 2 * static_dim)

    def forward(self, e: Tensor) -> tuple[Tensor, Tensor]:
        _, (h_n, _) = self.lstm(e)  # h_n (2, B, H): forward at T, backward at 1
        return _loc_scale(self.head(torch.cat([h_n[0], h_n[1]], dim=-1)))


class DynamicEncoder(nn.Module):
    """``q(z_t | ·)`` for all frames at once: ``(B, T, E)`` -> ``loc, scale (B, T, Z)``.

    ``kind="frame"``: an MLP on each frame's features (``q(z_t | x_t)``, the factorised
    DSVAE posterior); ``kind="rnn"``: a causal LSTM (``q(z_t | x_{≤t})``).
    """

    def __init__(self, feature_dim: int, hidden_dim: int, dynamic_dim: int, kind: str):
        super().__init__()
        self.kind = kind
        if kind == "rnn":
            self.lstm = nn.LSTM(feature_dim, hidden_dim, batch_first=True)
            self.head = nn.Linear(hidden_dim, 2 * dynamic_dim)
        else:
            self.head = mlp(feature_dim, (hidden_dim,), 2 * dynamic_dim)

    def forward(self, e: Tensor) -> tuple[Tensor, Tensor]:
        if self.kind == "rnn":
            e, _ = self.lstm(e)
        return _loc_scale(self.head(e))


class RecurrentPrior(nn.Module):
    """Parameters of ``p(z_t | z_{<t})``: an LSTM over ``(0, z_1, ..., z_{t-1})``.

    :meth:`forward`: previous latents ``(N, T, Z)`` (first row zero) -> ``loc, scale (N, T, Z)``
    for all steps in one call. :meth:`step`: one step with an explicit LSTM state.
    """

    def __init__(self, dynamic_dim: int, hidden_dim: int):
        super().__init__()
        self.dynamic_dim = dynamic_dim
        self.lstm = nn.LSTM(dynamic_dim, hidden_dim, batch_first=True)
        self.head = nn.Linear(hidden_dim, 2 * dynamic_dim)

    def forward(self, z_prev: Tensor) -> tuple[Tensor, Tensor]:
        h, _ = self.lstm(z_prev)
        return _loc_scale(self.head(h))

    def step(self, z_prev: Tensor, state=None) -> tuple[Tensor, Tensor, Any]:
        """``z_prev (N, Z)`` and LSTM state -> ``loc, scale (N, Z)`` and the new state."""
        h, state = self.lstm(z_prev.unsqueeze(1), state)
        loc, scale = _loc_scale(self.head(h[:, 0]))
        return loc, scale, state


class RecurrentGaussianPrior(TorchDistribution):
    """``p(z_{1:T}) = Π_t N(z_t; RecurrentPrior(z_{<t}))``: batch ``(B,)``, event ``(T, Z)``.

    ``log_prob(z)`` (``z`` ``(*S, B, T, Z)``) runs the LSTM once over the shifted sequence
    (all steps in one call); ``rsample`` draws step by step.
    """

    arg_constraints: dict = {}
    support = constraints.independent(constraints.real, 2)
    has_rsample = True

    def __init__(self, prior: RecurrentPrior, batch_size: int, num_steps: int,
                 device=None, dtype=torch.float32, validate_args=None):
        self.prior, self.num_steps = prior, num_steps
        self.device, self.dtype = device, dtype
        super().__init__(torch.Size([batch_size]), torch.Size([num_steps, prior.dynamic_dim]),
                         validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        batch_shape = torch.Size(batch_shape)
        if batch_shape == self.batch_shape:
            return self
        if len(batch_shape) != 1:
            raise NotImplementedError("RecurrentGaussianPrior supports one batch dimension")
        return RecurrentGaussianPrior(self.prior, batch_shape[0], self.num_steps, self.device,
                                      self.dtype)

    def rsample(self, sample_shape=()) -> Tensor:
        sample_shape = torch.Size(sample_shape)
        n = sample_shape.numel() * self.batch_shape.numel()
        z = torch.zeros(n, self.prior.dynamic_dim, device=self.device, dtype=self.dtype)
        state, zs = None, []
        for _ in range(self.num_steps):
            loc, scale, state = self.prior.step(z, state)
            z = loc + scale * torch.randn_like(loc)
            zs.append(z)
        return torch.stack(zs, dim=1).reshape(*sample_shape, *self.batch_shape,
                                              *self.event_shape)

    def log_prob(self, value: Tensor) -> Tensor:
        lead = value.shape[:-2]
        flat = value.reshape(-1, *value.shape[-2:])
        z_prev = torch.cat([torch.zeros_like(flat[:, :1]), flat[:, :-1]], dim=1)
        loc, scale = self.prior(z_prev)
        return dist.Normal(loc, scale).log_prob(flat).sum((-2, -1)).reshape(lead)


class GradReverse(torch.autograd.Function):
    """Identity forward; gradient times ``-lambda`` backward."""

    @staticmethod
    def forward(ctx, x: Tensor, lam: float) -> Tensor:
        ctx.lam = lam
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: Tensor):
        return -ctx.lam * grad, None


def grad_reverse(x: Tensor, lam: float = 1.0) -> Tensor:
    """Gradient-reversal layer (Ganin & Lempitsky 2015)."""
    return GradReverse.apply(x, lam)


class MotionClassifier(nn.Module):
    """Adversary: ``f (..., F)`` -> motion logits ``(..., K)`` (two hidden SiLU layers)."""

    def __init__(self, static_dim: int, hidden_dim: int, n_classes: int):
        super().__init__()
        self.net = mlp(static_dim, (hidden_dim, hidden_dim), n_classes)

    def forward(self, f: Tensor) -> Tensor:
        return self.net(f)


# -- the model ---------------------------------------------------------------------------------
class DisentangledSequentialVAE(nn.Module):
    """DSVAE with Pyro ``model``/``guide``; see the module docstring.

    Args:
        channels, size: frame shape ``C × S × S`` (``S`` = 8, 16, 32, 64, ...).
        static_dim, dynamic_dim: sizes of ``f`` and of each ``z_t``.
        feature_dim: frame-feature size; hidden_dim: LSTM/MLP width; conv_channels: conv width.
        likelihood: ``"bernoulli"`` (cross-entropy of the pixel intensities; the standard
            choice for images in [0, 1], not a normalised density for grey values) or
            ``"normal"`` (``N(mean, pixel_scale²)`` per pixel).
        dynamic_encoder: ``"frame"`` (``q(z_t | x_t)``) or ``"rnn"`` (``q(z_t | x_{≤t})``).
        adversarial: add the motion classifier on ``f``, trained against the encoder.
        adversary_mode: ``"minmax"`` (confusion loss for the encoder) or ``"grl"`` (gradient
            reversal); see the module docstring.
        n_motion_classes: classes of the ``motion`` label the adversary predicts.
        adversary_weight: weight of its loss against the per-clip ELBO (thousands of nats for
            a 32 x 32 clip): on sprites, 1 left the motion readable from ``f`` (a probe: 100 %),
            30 removed it (dynamics-kept motion accuracy 99.8 % after 6 epochs);
            grl_lambda: gradient-reversal factor (``"grl"`` mode).
        dynamic_kl_weight: ``β_z``, weight of the KL term of ``z`` (1: the plain ELBO). Above
            1, information that is constant over a clip is cheaper in ``f`` (paid once, at
            weight 1) than in ``z``; see the module docstring.
    """

    pyro_name = "dsvae"

    def __init__(self, channels: int = 3, size: int = 64, *, static_dim: int = 32,
                 dynamic_dim: int = 8, feature_dim: int = 128, hidden_dim: int = 128,
                 conv_channels: int = 32, likelihood: str = "bernoulli",
                 pixel_scale: float = 0.1, dynamic_encoder: str = "frame",
                 adversarial: bool = False, n_motion_classes: int = 9,
                 adversary_hidden: int = 64, adversary_weight: float = 30.0,
                 grl_lambda: float = 1.0, dynamic_kl_weight: float = 1.0,
                 adversary_mode: str = "minmax"):
        super().__init__()
        if likelihood not in LIKELIHOODS:
            raise InputError(f"likelihood must be one of {', '.join(LIKELIHOODS)}, "
                             f"got {likelihood!r}")
        if dynamic_encoder not in DYNAMIC_ENCODERS:
            raise InputError(f"dynamic_encoder must be one of {', '.join(DYNAMIC_ENCODERS)}, "
                             f"got {dynamic_encoder!r}")
        for name, v in [("channels", channels), ("static_dim", static_dim),
                        ("dynamic_dim", dynamic_dim), ("feature_dim", feature_dim),
                        ("hidden_dim", hidden_dim), ("conv_channels", conv_channels),
                        ("n_motion_classes", n_motion_classes),
                        ("adversary_hidden", adversary_hidden)]:
            if int(v) < 1:
                raise InputError(f"{name} must be >= 1, got {v}")
        if not pixel_scale > 0 or adversary_weight < 0 or grl_lambda < 0:
            raise InputError("pixel_scale must be > 0, adversary_weight and grl_lambda >= 0")
        if adversary_mode not in ADVERSARY_MODES:
            raise InputError(f"adversary_mode must be one of {', '.join(ADVERSARY_MODES)}, "
                             f"got {adversary_mode!r}")
        if not dynamic_kl_weight > 0:
            raise InputError(f"dynamic_kl_weight must be > 0, got {dynamic_kl_weight}")
        _n_down(size)
        self._config = dict(
            channels=int(channels), size=int(size), static_dim=int(static_dim),
            dynamic_dim=int(dynamic_dim), feature_dim=int(feature_dim),
            hidden_dim=int(hidden_dim), conv_channels=int(conv_channels),
            likelihood=likelihood, pixel_scale=float(pixel_scale),
            dynamic_encoder=dynamic_encoder, adversarial=bool(adversarial),
            n_motion_classes=int(n_motion_classes), adversary_hidden=int(adversary_hidden),
            adversary_weight=float(adversary_weight), grl_lambda=float(grl_lambda),
            dynamic_kl_weight=float(dynamic_kl_weight), adversary_mode=adversary_mode)
        for k, v in self._config.items():
            setattr(self, k, v)
        self.encoder = FrameEncoder(channels, size, feature_dim, conv_channels)
        self.static_encoder = StaticEncoder(feature_dim, hidden_dim, static_dim)
        self.dynamic_encoder_net = DynamicEncoder(feature_dim, hidden_dim, dynamic_dim,
                                                  dynamic_encoder)
        self.prior = RecurrentPrior(dynamic_dim, hidden_dim)
        self.decoder = FrameDecoder(static_dim + dynamic_dim, channels, size, conv_channels)
        self.adversary = (MotionClassifier(static_dim, adversary_hidden, n_motion_classes)
                          if adversarial else None)

    def architecture(self) -> dict[str, Any]:
        """Constructor arguments (plain values): ``type(self)(**architecture())`` rebuilds it."""
        return dict(self._config)

    # -- pieces ----------------------------------------------------------------------------
    def _device(self) -> torch.device:
        return next(self.parameters()).device

    def check_frames(self, x: Tensor) -> Tensor:
        """Validate ``(B, T, C, S, S)`` frames for this model; returns float frames."""
        shape = (self.channels, self.size, self.size)
        if x.dim() != 5 or tuple(x.shape[2:]) != shape or x.shape[1] < 1:
            raise InputError(f"expected frames of shape (B, T, {', '.join(map(str, shape))}), "
                             f"got {tuple(x.shape)}")
        return as_float_frames(x)

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Posterior parameters: frames ``(B, T, C, S, S)`` -> ``f_loc, f_scale (B, F)``,
        ``z_loc, z_scale (B, T, Z)``."""
        e = self.encoder(self.check_frames(x))
        f_loc, f_scale = self.static_encoder(e)
        z_loc, z_scale = self.dynamic_encoder_net(e)
        return f_loc, f_scale, z_loc, z_scale

    def decode_logits(self, f: Tensor, z: Tensor) -> Tensor:
        """``f (..., F)`` and ``z (..., T, Z)`` -> pixel logits ``(..., T, C, S, S)``."""
        f = f.unsqueeze(-2).expand(*z.shape[:-1], f.shape[-1])
        return self.decoder(torch.cat([f, z], dim=-1))

    def decode(self, f: Tensor, z: Tensor) -> Tensor:
        """Mean frames in [0, 1]: ``f (..., F)``, ``z (..., T, Z)`` -> ``(..., T, C, S, S)``."""
        return torch.sigmoid(self.decode_logits(f, z))

    def likelihood_dist(self, logits: Tensor) -> dist.Distribution:
        """Per-pixel observation distribution (batch shape = ``logits.shape``)."""
        if self.likelihood == "bernoulli":
            return dist.Bernoulli(logits=logits, validate_args=False)
        return dist.Normal(torch.sigmoid(logits), self.pixel_scale)

    def prior_z(self, batch_size: int, num_steps: int) -> RecurrentGaussianPrior:
        """The recurrent prior over ``z_{1:T}`` for ``batch_size`` clips."""
        return RecurrentGaussianPrior(self.prior, batch_size, num_steps, device=self._device())

    @torch.no_grad()
    def sample_static(self, n: int) -> Tensor:
        """``n`` draws of ``f`` from its prior ``N(0, I)``: ``(n, F)``."""
        return torch.randn(n, self.static_dim, device=self._device())

    @torch.no_grad()
    def sample_dynamics(self, n: int, num_steps: int) -> Tensor:
        """``n`` draws of ``z_{1:T}`` from the recurrent prior: ``(n, T, Z)``."""
        return self.prior_z(n, num_steps).sample()

    @torch.no_grad()
    def generate(self, n: int, num_steps: int) -> Tensor:
        """``n`` clips from the priors: mean frames ``(n, T, C, S, S)``."""
        return self.decode(self.sample_static(n), self.sample_dynamics(n, num_steps))

    def normalizer(self, batch: dict[str, Tensor]) -> float:
        """Frames per batch: the training loss is reported per frame."""
        x = batch["frames"]
        return float(x.shape[0] * x.shape[1])

    def adversary_loss(self, f: Tensor, motion: Tensor) -> Tensor:
        """The adversary's loss ``(B,)`` on static latents ``f (B, F)`` (see the module
        docstring): ``"grl"``: ``CE(c(GRL(f)), y)``; ``"minmax"``: ``CE(c(sg f), y) +
        CE(uniform, c_frozen(f)) - ln K``."""
        if self.adversary_mode == "grl":
            logits = self.adversary(grad_reverse(f, self.grl_lambda))
            return F.cross_entropy(logits, motion, reduction="none")
        classifier = F.cross_entropy(self.adversary(f.detach()), motion, reduction="none")
        frozen = {k: v.detach() for k, v in self.adversary.named_parameters()}
        logits = torch.func.functional_call(self.adversary, frozen, (f,))
        confusion = -F.log_softmax(logits, dim=-1).mean(-1) - math.log(logits.shape[-1])
        return classifier + confusion

    # -- Pyro ------------------------------------------------------------------------------
    def model(self, batch: dict[str, Tensor], annealing_factor: float = 1.0) -> Tensor:
        """``p(x, f, z)``: sites ``f`` ``(B, F)``, ``z`` ``(B, T, Z)``, ``x`` ``(B, T, C, S, S)``
        (and the factor ``adversary`` with ``adversarial=True`` and labels in the batch)."""
        pyro.module(self.pyro_name, self)
        x = self.check_frames(batch["frames"])
        B, T = x.shape[:2]
        zeros = x.new_zeros(B, self.static_dim)
        with pyro.plate("clips", B):
            with poutine.scale(scale=annealing_factor):
                f = pyro.sample("f", dist.Normal(zeros, 1.0).to_event(1))
            with poutine.scale(scale=annealing_factor * self.dynamic_kl_weight):
                z = pyro.sample("z", self.prior_z(B, T))
            logits = self.decode_logits(f, z)
            pyro.sample("x", self.likelihood_dist(logits).to_event(4), obs=x)
            if self.adversary is not None and "motion" in batch:
                pyro.factor("adversary",
                            -self.adversary_weight * self.adversary_loss(f, batch["motion"]))
        return z

    def guide(self, batch: dict[str, Tensor], annealing_factor: float = 1.0) -> Tensor:
        """``q(f, z | x) = q(f | x_{1:T}) Π_t q(z_t | ·)``: sites ``f`` and ``z``."""
        pyro.module(self.pyro_name, self)
        f_loc, f_scale, z_loc, z_scale = self.encode(batch["frames"])
        with pyro.plate("clips", f_loc.shape[0]):
            with poutine.scale(scale=annealing_factor):
                pyro.sample("f", dist.Normal(f_loc, f_scale).to_event(1))
            with poutine.scale(scale=annealing_factor * self.dynamic_kl_weight):
                z = pyro.sample("z", dist.Normal(z_loc, z_scale).to_event(2))
        return z


def swap(model: DisentangledSequentialVAE, static_from: Tensor, dynamics_from: Tensor, *,
         pairwise: bool = False) -> Tensor:
    """Decode the static latent of one clip with the dynamic latents of another (posterior
    means).

    ``static_from (A, T, C, S, S)``, ``dynamics_from (B, T, C, S, S)`` -> mean frames
    ``(A, T, C, S, S)`` (``A == B``: clip ``i`` of ``static_from`` with the motion of clip
    ``i`` of ``dynamics_from``) or, with ``pairwise=True``, ``(A, B, T, C, S, S)`` (every
    character with every motion: row ``a`` keeps the character of ``static_from[a]``, column
    ``b`` the motion of ``dynamics_from[b]``).
    """
    with torch.no_grad():
        f, _, _, _ = model.encode(static_from)
        _, _, z, _ = model.encode(dynamics_from)
        if pairwise:
            A, B = f.shape[0], z.shape[0]
            return model.decode(f[:, None].expand(A, B, f.shape[-1]),
                                z[None].expand(A, *z.shape))
        if f.shape[0] != z.shape[0]:
            raise InputError(f"swap needs as many static as dynamic clips (got {f.shape[0]} and "
                             f"{z.shape[0]}); use pairwise=True for all pairs")
        return model.decode(f, z)


# -- training and files ------------------------------------------------------------------------
MODEL_NAME = "dsvae"


def compact_frames(x: Tensor) -> Tensor:
    """Frames in [0, 1] as uint8 counts (4x less memory; models read them back as
    ``value / 255``) when they are 8-bit levels up to float rounding, else unchanged."""
    q = torch.round(x * 255)
    if x.numel() and float((q / 255 - x).abs().max()) <= 1e-5:
        return q.to(torch.uint8)
    return x


def training_batch(frames: Tensor, motion: Tensor | None = None) -> dict[str, Tensor]:
    """The dict the model trains on: :func:`compact_frames` and optional ``motion`` labels."""
    data = {"frames": compact_frames(frames)}
    if motion is not None:
        data["motion"] = motion.long()
    return data


def train_dsvae(model: DisentangledSequentialVAE, frames: Tensor, motion: Tensor | None = None,
                config=None, *, valid: dict[str, Tensor] | None = None,
                resume: bool = False) -> list[dict]:
    """Train ``model`` on clips ``frames (N, T, C, S, S)`` in [0, 1] with the shared
    :class:`~pyro_videossm.infer.Trainer` (:class:`~pyro_videossm.infer.SVIObjective`,
    ``TraceMeanField_ELBO``: closed-form KL for ``f``, Monte Carlo for ``z``). ``motion``
    ``(N,)`` labels are required with ``adversarial=True``. Returns the history."""
    from pyro.infer import TraceMeanField_ELBO

    from pyro_videossm.infer import SVIObjective, TrainConfig, Trainer

    if model.adversarial and motion is None:
        raise InputError("the adversarial DSVAE needs motion labels to train")
    model.check_frames(frames[:1])
    config = config if config is not None else TrainConfig()
    data = training_batch(frames, motion if model.adversarial else None)
    objective = SVIObjective(model, elbo=TraceMeanField_ELBO())
    return Trainer(objective, config).fit(data, valid_data=valid, resume=resume)


def save_dsvae(model: DisentangledSequentialVAE, path, extra: dict | None = None) -> None:
    """Write the model file (name ``dsvae``) atomically."""
    from pyro_videossm.infer import save_model_file

    save_model_file(path, name=MODEL_NAME, config=model.architecture(),
                    state_dict=model.state_dict(), extra=extra)


def load_dsvae(path, device: str = "cpu") -> tuple[DisentangledSequentialVAE, dict]:
    """Read a model file written by :func:`save_dsvae`; one-line :class:`InputError` for a
    missing/corrupt file or a model of another architecture. Returns the model and ``extra``."""
    from pyro_videossm.infer.model_file import load_model_file, rebuild_module

    obj = load_model_file(path, expected_name=MODEL_NAME)
    model = rebuild_module(DisentangledSequentialVAE, obj, f"model file {path}")
    return model.to(device).eval(), obj["extra"]
