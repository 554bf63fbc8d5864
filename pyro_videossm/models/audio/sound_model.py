"""Sound from silent video: :class:`VideoToSpectrogram`.

The visual encoder (:class:`~pyro_videossm.models.audio.visual_encoder.VisualEncoder`) maps
face crops ``(N, T, C, S, S)`` to features ``(N, K, hidden)`` at the spectrogram rate
(``K = upsample * T``); a 1×1 convolution maps each to the location of the log-amplitude
spectrogram ``mu (N, K, F)``. The generative model is a Laplace likelihood with a learned
scale per frequency bin ``b_f = softplus(rho_f) + 1e-3``:

    p(y | crops) = prod_{n, k, f : mask[n, k]} Laplace(y[n, k, f]; mu[n, k, f], b_f)
                 = prod (2 b_f)^-1 exp(-|y - mu| / b_f)

so maximum likelihood is a scale-weighted L1 regression whose optimum ``mu`` is the
conditional median. With ``n_classes > 0`` the model also tells the food class from the
clip's mean visual feature and the look of its crops over time
(:func:`~pyro_videossm.models.audio.visual_encoder.clip_appearance`, standardised),
``food ~ Categorical(logits = W [c, a])``, observed when the batch has ``label``, its
log-likelihood weighted by ``food_weight`` times the clip's number of observed spectrogram
values (one label against ~50 000 spectrogram values, unweighted, left the head at chance),
and the class probabilities modulate the features before the output layer
(FiLM: ``h (1 + gamma(p)) + beta(p)``) and add a class spectrum to the location,
``mu += p E`` (``E (n_classes, F)``, started at each class's mean log-spectrum less the mean
of all) and a class-mixed output layer, ``mu[k] += sum_c p_c W_c h[k]`` (``W (n_classes, F,
hidden)``, started at zero), so that the spectrum of the sound, during events too, follows
the food seen. There is no latent
variable: the ``guide`` is empty and the ELBO of
:class:`~pyro_videossm.infer.SVIObjective` is the log-likelihood of the spectrogram (plus the
food label's), maximised over the networks and ``rho`` through the toolkit's trainer.
:meth:`forward` gives ``mu`` (the median, used to make the waveform); :meth:`sample` draws
a spectrogram.

Batch (``dict[str, Tensor]``): ``crops (N, T, C, S, S)`` uint8 or float,
``frame_mask (N, T)`` bool, ``log_spec (N, K, F)``, ``spec_mask (N, K)`` bool and
optionally ``label (N,)`` int64 (the food class).
"""

from __future__ import annotations

import pyro
import pyro.distributions as dist
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pyro_videossm.models.audio.visual_encoder import VisualEncoder, clip_appearance
from pyro_videossm.models.ssm.pyro_names import register_module, unique_pyro_name

#: Side of the pooled crops that the food head sees (:func:`clip_appearance`).
APPEARANCE_SIDE = 8


class VideoToSpectrogram(nn.Module):
    """Module docstring. ``config`` rebuilds it: ``VideoToSpectrogram(**config)``."""

    def __init__(self, n_freq: int = 257, in_channels: int = 3, channels: int = 16,
                 hidden: int = 64, upsample: int = 4, init_scale: float = 1.0,
                 silence: float = -9.2, n_classes: int = 0, food_weight: float = 1.0) -> None:
        super().__init__()
        self.config = {"n_freq": n_freq, "in_channels": in_channels, "channels": channels,
                       "hidden": hidden, "upsample": upsample, "init_scale": init_scale,
                       "silence": silence, "n_classes": n_classes,
                       "food_weight": food_weight}
        self.food_weight = food_weight
        self.encoder = VisualEncoder(in_channels, channels, hidden, upsample)
        self.n_classes = n_classes
        if n_classes:
            n_look = 3 * in_channels * APPEARANCE_SIDE ** 2
            self.register_buffer("look_mean", torch.zeros(n_look))
            self.register_buffer("look_std", torch.ones(n_look))
            self.food_head = nn.Linear(hidden + n_look, n_classes)
            self.film = nn.Linear(n_classes, 2 * hidden)
            nn.init.zeros_(self.film.weight)
            nn.init.zeros_(self.film.bias)
            # the log-spectrum of each class relative to the mean one (set_class_spectra)
            self.class_spectrum = nn.Parameter(torch.zeros(n_classes, n_freq))
            # a class-specific output layer added to the shared one (starts at zero): the
            # spectrum of an event, not only the clip's average, follows the food
            self.class_head = nn.Parameter(torch.zeros(n_classes, n_freq, hidden))
        self.head = nn.Conv1d(hidden, n_freq, 1)
        nn.init.zeros_(self.head.weight)
        nn.init.constant_(self.head.bias, silence)
        # softplus(rho) + 1e-3 = init_scale
        self.scale_raw = nn.Parameter(torch.full((n_freq,), float(
            torch.log(torch.expm1(torch.tensor(max(init_scale - 1e-3, 1e-4)))))))
        self.pyro_name = unique_pyro_name("video_to_spectrogram")

    def set_mean_spectrum(self, spectrum: Tensor, scale: Tensor | None = None) -> None:
        """Start at a constant prediction: the mean log-spectrum ``(F,)`` (of the training
        audio) and, if given, the Laplace scale ``(F,)`` (e.g. the mean absolute deviation
        from it)."""
        with torch.no_grad():
            self.head.bias.copy_(torch.as_tensor(spectrum, dtype=self.head.bias.dtype))
            if scale is not None:
                b = torch.as_tensor(scale, dtype=self.scale_raw.dtype).clamp(min=2e-3) - 1e-3
                self.scale_raw.copy_(b + torch.log(-torch.expm1(-b)))  # softplus^-1

    def set_appearance_statistics(self, crops: Tensor, frame_mask: Tensor | None = None
                                  ) -> None:
        """Standardise the food head's appearance input by the mean and standard deviation
        of the (training) clips' :func:`clip_appearance`."""
        if not self.n_classes:
            return
        with torch.no_grad():
            look = clip_appearance(crops, frame_mask, APPEARANCE_SIDE)
            self.look_mean.copy_(look.mean(0))
            self.look_std.copy_(look.std(0).nan_to_num(1.0).clamp(min=1e-3))

    def set_class_spectra(self, log_spec: Tensor, spec_mask: Tensor, label: Tensor) -> None:
        """Start each class's spectrum at its mean log-spectrum minus the mean of all:
        spectrograms ``(N, K, F)``, valid frames ``(N, K)``, labels ``(N,)``."""
        if not self.n_classes:
            return
        with torch.no_grad():
            overall = log_spec[spec_mask.bool()].mean(0)
            for c in range(self.n_classes):
                rows = log_spec[label == c][spec_mask[label == c].bool()]
                self.class_spectrum[c] = rows.mean(0) - overall if len(rows) else 0.0

    @property
    def scale(self) -> Tensor:
        """The Laplace scale per frequency bin ``(F,)``."""
        return F.softplus(self.scale_raw) + 1e-3

    def predict(self, crops: Tensor, frame_mask: Tensor | None = None
                ) -> tuple[Tensor, Tensor | None]:
        """``(mu (N, K, F), food logits (N, n_classes) or None)``."""
        h, clip = self.encoder.encode(crops, frame_mask)
        logits = None
        if self.n_classes:
            look = (clip_appearance(crops, frame_mask, APPEARANCE_SIDE) - self.look_mean
                    ) / self.look_std
            logits = self.food_head(torch.cat([clip, look], dim=-1))
            gamma, beta = self.film(torch.softmax(logits, -1)).chunk(2, dim=-1)
            h = h * (1 + gamma[:, None]) + beta[:, None]
        mu = self.head(h.transpose(1, 2)).transpose(1, 2)
        if self.n_classes:
            p = torch.softmax(logits, -1)
            mu = mu + (p @ self.class_spectrum)[:, None] + torch.einsum(
                "nkh,nfh->nkf", h, torch.einsum("nc,cfh->nfh", p, self.class_head))
        return mu, logits

    def forward(self, crops: Tensor, frame_mask: Tensor | None = None) -> Tensor:
        """The median log-amplitude spectrogram ``(N, K, F)``."""
        return self.predict(crops, frame_mask)[0]

    def distribution(self, batch: dict[str, Tensor], loc: Tensor | None = None
                     ) -> dist.Distribution:
        """``Laplace(mu, b)`` over ``(N, K, F)``, masked to the valid frames, batch ``(N,)``."""
        loc = self(batch["crops"], batch.get("frame_mask")) if loc is None else loc
        mask = batch.get("spec_mask")
        base = dist.Laplace(loc, self.scale.expand_as(loc))
        if mask is not None:
            base = base.mask(mask.bool()[..., None])
        return base.to_event(2)

    def model(self, batch: dict[str, Tensor], annealing_factor: float = 1.0) -> None:
        register_module(self.pyro_name, self)
        loc, logits = self.predict(batch["crops"], batch.get("frame_mask"))
        d = self.distribution(batch, loc)
        with pyro.plate("clips", batch["crops"].shape[0]):
            pyro.sample("log_spec", d, obs=batch["log_spec"])
            if logits is not None and "label" in batch:
                with pyro.poutine.scale(scale=self.food_label_weight(batch)):
                    pyro.sample("food", dist.Categorical(logits=logits), obs=batch["label"])

    def food_label_weight(self, batch: dict[str, Tensor]) -> Tensor:
        """Weight ``(N,)`` of each clip's food-label log-likelihood: ``food_weight`` times
        the number of the clip's observed spectrogram values, so that with ``food_weight = 1``
        the label counts as much as the clip's spectrogram (unweighted, one label against
        ~50 000 values, it barely trains the food head; module docstring)."""
        y = batch["log_spec"]
        mask = batch.get("spec_mask")
        frames = (torch.full(y.shape[:1], float(y.shape[1]), device=y.device)
                  if mask is None else mask.sum(1).float())
        return self.food_weight * frames * y.shape[-1]

    def guide(self, batch: dict[str, Tensor], annealing_factor: float = 1.0) -> None:
        """No latent variable: nothing to infer (module docstring)."""

    def normalizer(self, batch: dict[str, Tensor]) -> Tensor:
        """Observed values of the batch: the loss is reported per spectrogram value."""
        mask = batch.get("spec_mask")
        n_freq = batch["log_spec"].shape[-1]
        if mask is None:
            return torch.tensor(float(batch["log_spec"][..., 0].numel() * n_freq))
        return mask.sum().float() * n_freq

    @torch.no_grad()
    def sample(self, crops: Tensor, frame_mask: Tensor | None = None) -> Tensor:
        """A draw ``(N, K, F)`` of the Laplace model."""
        loc = self(crops, frame_mask)
        return dist.Laplace(loc, self.scale.expand_as(loc)).sample()
