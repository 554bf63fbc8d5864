"""Action recognition: a clip classifier on the DSVAE's dynamic latents, or a CNN+GRU.

Two kinds of :class:`Recognizer`, one head (:class:`SequenceClassifier`, a GRU over per-frame
features and a linear layer on its last state)::

    "latent":      frames (B, T, C, S, S) -> DSVAE encoder (frozen) -> posterior means
                   z_loc (B, T, Z) -> standardised -> GRU -> logits (B, K)
    "supervised":  frames (B, T, C, S, S) -> frame CNN (trained) -> features (B, T, E)
                   -> GRU -> logits (B, K)

The latent recognizer is semi-supervised: the DSVAE is trained on all clips without labels
(``videossm train dsvae``), its frame encoder and dynamic encoder are copied here and frozen
(:meth:`Recognizer.from_dsvae`), the standardisation statistics of ``z`` come from the same
unlabelled clips, and only the head sees labels. The supervised recognizer is the baseline: the
DSVAE's frame-encoder architecture (:class:`~pyro_videossm.models.video.dsvae.FrameEncoder`)
and the same head, trained from scratch on the labelled clips alone.

Budget (:func:`train_recognizer`): both kinds train for the same number of optimiser ``steps``
on mini-batches of labelled clips (epochs over the labelled subset, as many as ``steps``
needs), so that 1 %, 10 % and 100 % of the labels get the same number of updates.
"""

from __future__ import annotations

import math
import os
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pyro_videossm.errors import InputError
from pyro_videossm.models.video.dsvae import (
    DYNAMIC_ENCODERS,
    DisentangledSequentialVAE,
    DynamicEncoder,
    FrameEncoder,
    as_float_frames,
    compact_frames,
)

MODEL_NAME = "recognizer"
KINDS = ("latent", "supervised")


class SequenceClassifier(nn.Module):
    """Per-frame features ``(B, T, D)`` -> logits ``(B, K)``: a GRU (width ``hidden``) and a
    linear layer on its state after the last frame."""

    def __init__(self, in_dim: int, hidden: int, n_classes: int):
        super().__init__()
        self.gru = nn.GRU(in_dim, hidden, batch_first=True)
        self.out = nn.Linear(hidden, n_classes)

    def forward(self, features: Tensor) -> Tensor:
        _, h = self.gru(features)
        return self.out(h[-1])


class Recognizer(nn.Module):
    """Clip classifier ``frames (B, T, C, S, S)`` -> logits ``(B, n_classes)``; see the module
    docstring.

    Args:
        n_classes: classes of the label; label: its variable name (kept for the CLI).
        class_names: optional names of the classes (``flag_meanings``).
        channels, size: frame shape ``C × S × S``.
        kind: ``"latent"`` (frozen DSVAE encoder) or ``"supervised"`` (CNN+GRU).
        feature_dim, conv_channels: the frame encoder's widths.
        dynamic_dim, encoder_hidden_dim, dynamic_encoder: the DSVAE's dynamic encoder
            (``"latent"`` only).
        head_hidden: the GRU's width.
    """

    def __init__(self, n_classes: int, channels: int = 3, size: int = 64, *,
                 kind: str = "latent", label: str = "motion",
                 class_names: list[str] | None = None, feature_dim: int = 128,
                 conv_channels: int = 32, dynamic_dim: int = 8, encoder_hidden_dim: int = 128,
                 dynamic_encoder: str = "frame", head_hidden: int = 64):
        super().__init__()
        if kind not in KINDS:
            raise InputError(f"recognizer kind must be one of {', '.join(KINDS)}, got {kind!r}")
        if dynamic_encoder not in DYNAMIC_ENCODERS:
            raise InputError(f"dynamic_encoder must be one of {', '.join(DYNAMIC_ENCODERS)}")
        for name, v in [("n_classes", n_classes), ("head_hidden", head_hidden),
                        ("feature_dim", feature_dim), ("conv_channels", conv_channels),
                        ("dynamic_dim", dynamic_dim)]:
            if int(v) < 1:
                raise InputError(f"{name} must be >= 1, got {v}")
        names = list(class_names) if class_names is not None else None
        if names is not None and len(names) != n_classes:
            raise InputError(f"{len(names)} class names for {n_classes} classes")
        self._config = dict(
            n_classes=int(n_classes), channels=int(channels), size=int(size), kind=kind,
            label=str(label), class_names=names, feature_dim=int(feature_dim),
            conv_channels=int(conv_channels), dynamic_dim=int(dynamic_dim),
            encoder_hidden_dim=int(encoder_hidden_dim), dynamic_encoder=dynamic_encoder,
            head_hidden=int(head_hidden))
        for k, v in self._config.items():
            setattr(self, k, v)
        self.frame_encoder = FrameEncoder(channels, size, feature_dim, conv_channels)
        if kind == "latent":
            self.dynamic_encoder_net = DynamicEncoder(feature_dim, encoder_hidden_dim,
                                                      dynamic_dim, dynamic_encoder)
            self.register_buffer("z_mean", torch.zeros(dynamic_dim))
            self.register_buffer("z_std", torch.ones(dynamic_dim))
            in_dim = dynamic_dim
        else:
            in_dim = feature_dim
        self.head = SequenceClassifier(in_dim, head_hidden, n_classes)

    def architecture(self) -> dict[str, Any]:
        """Constructor arguments: ``Recognizer(**architecture())`` rebuilds it."""
        return {k: (list(v) if isinstance(v, list) else v) for k, v in self._config.items()}

    @classmethod
    def from_dsvae(cls, dsvae: DisentangledSequentialVAE, n_classes: int, *,
                   head_hidden: int = 64, label: str = "motion",
                   class_names: list[str] | None = None) -> Recognizer:
        """A latent recognizer with the DSVAE's frame and dynamic encoders (copied, frozen)."""
        a = dsvae.architecture()
        rec = cls(n_classes, a["channels"], a["size"], kind="latent", label=label,
                  class_names=class_names, feature_dim=a["feature_dim"],
                  conv_channels=a["conv_channels"], dynamic_dim=a["dynamic_dim"],
                  encoder_hidden_dim=a["hidden_dim"], dynamic_encoder=a["dynamic_encoder"],
                  head_hidden=head_hidden)
        rec.frame_encoder.load_state_dict(dsvae.encoder.state_dict())
        rec.dynamic_encoder_net.load_state_dict(dsvae.dynamic_encoder_net.state_dict())
        rec.freeze_encoder()
        return rec

    def freeze_encoder(self) -> None:
        """Stop gradients to the DSVAE's encoders (``"latent"``): only the head trains."""
        if self.kind == "latent":
            for p in [*self.frame_encoder.parameters(), *self.dynamic_encoder_net.parameters()]:
                p.requires_grad_(False)

    def check_frames(self, frames: Tensor) -> Tensor:
        shape = (self.channels, self.size, self.size)
        if frames.dim() != 5 or tuple(frames.shape[2:]) != shape or frames.shape[1] < 1:
            raise InputError(f"the recognizer expects frames (B, T, {', '.join(map(str, shape))})"
                             f", got {tuple(frames.shape)}")
        return as_float_frames(frames)

    def latents(self, frames: Tensor) -> Tensor:
        """Posterior means of the dynamic latents, unstandardised: ``(B, T, Z)`` (latent kind)."""
        if self.kind != "latent":
            raise InputError("a supervised recognizer has no DSVAE latents")
        z_loc, _ = self.dynamic_encoder_net(self.frame_encoder(self.check_frames(frames)))
        return z_loc

    def features(self, frames: Tensor) -> Tensor:
        """What the head reads: standardised ``z_loc (B, T, Z)`` or CNN features
        ``(B, T, E)``."""
        if self.kind == "latent":
            return (self.latents(frames) - self.z_mean) / self.z_std
        return self.frame_encoder(self.check_frames(frames))

    def forward(self, frames: Tensor) -> Tensor:
        return self.head(self.features(frames))

    @torch.no_grad()
    def batched(self, fn, frames: Tensor, batch_size: int = 256) -> Tensor:
        """``fn`` (a method of this module) on ``frames (N, ...)`` in batches, no gradients,
        eval mode; the result on the CPU."""
        was = self.training
        self.eval()
        device = next(self.parameters()).device
        out = [fn(frames[s:s + batch_size].to(device)).cpu()
               for s in range(0, frames.shape[0], batch_size)]
        self.train(was)
        return torch.cat(out) if out else torch.zeros(0)

    def predict_proba(self, frames: Tensor, batch_size: int = 256) -> Tensor:
        """Class probabilities ``(N, K)`` of clips ``(N, T, C, S, S)``."""
        return torch.softmax(self.batched(self, frames, batch_size), dim=-1)


def _head_loss(head: SequenceClassifier, batch: dict[str, Tensor]) -> Tensor:
    return F.cross_entropy(head(batch["features"]), batch["label"])


def _recognizer_loss(rec: Recognizer, batch: dict[str, Tensor]) -> Tensor:
    return F.cross_entropy(rec(batch["frames"]), batch["label"])


def epochs_for_steps(steps: int, n_labelled: int, batch_size: int) -> int:
    """Epochs over ``n_labelled`` clips (batches of ``batch_size``) that give at least
    ``steps`` optimiser steps."""
    per_epoch = math.ceil(n_labelled / max(1, min(batch_size, n_labelled)))
    return max(1, math.ceil(steps / per_epoch))


def standardise_latents(rec: Recognizer, frames: Tensor, batch_size: int = 256) -> None:
    """Set ``z_mean``/``z_std`` of a latent recognizer from the latents of ``frames``
    (unlabelled clips ``(N, T, C, S, S)``; every frame of every clip counts)."""
    set_standardisation(rec, rec.batched(rec.latents, frames, batch_size))


@torch.no_grad()
def set_standardisation(rec: Recognizer, z: Tensor) -> None:
    """``z_mean``/``z_std`` from latents ``z (N, T, Z)`` already computed
    (:meth:`Recognizer.latents`)."""
    flat = z.reshape(-1, z.shape[-1]).to(rec.z_mean)
    rec.z_mean.copy_(flat.mean(0))
    rec.z_std.copy_(flat.std(0).clamp_min(1e-6))


def train_recognizer(rec: Recognizer, frames: Tensor, labels: Tensor, config, *,
                     steps: int | None = None) -> list[dict]:
    """Train ``rec`` on labelled clips ``frames (N, T, C, S, S)``, ``labels (N,)`` with the
    shared :class:`~pyro_videossm.infer.Trainer` (cross-entropy,
    :class:`~pyro_videossm.infer.LossObjective`).

    Latent kind: the (frozen) encoder's standardised latents are computed once and only the
    head trains; standardise first (:func:`standardise_latents`, on unlabelled clips).
    Supervised kind: the whole network trains on the frames. With ``steps`` the number of
    epochs is :func:`epochs_for_steps` (``config.epochs`` otherwise). Returns the history.
    """
    from dataclasses import replace

    from pyro_videossm.infer import LossObjective, Trainer

    labels = torch.as_tensor(labels).long()
    if labels.dim() != 1 or labels.shape[0] != frames.shape[0] or labels.numel() == 0:
        raise InputError(f"need one label per clip: {tuple(labels.shape)} labels for "
                         f"{frames.shape[0]} clips")
    if int(labels.min()) < 0 or int(labels.max()) >= rec.n_classes:
        raise InputError(f"labels out of range 0..{rec.n_classes - 1}")
    rec.check_frames(frames[:1])
    if steps is not None:
        config = replace(config, epochs=epochs_for_steps(steps, labels.numel(),
                                                         config.batch_size))
    torch.manual_seed(config.seed)
    if rec.kind == "latent":
        rec.freeze_encoder()
        rec.to(config.device)
        data = {"features": rec.batched(rec.features, frames), "label": labels}
        history = Trainer(LossObjective(rec.head, _head_loss), config).fit(data)
    else:
        data = {"frames": compact_frames(frames), "label": labels}
        history = Trainer(LossObjective(rec, _recognizer_loss), config).fit(data)
    rec.eval()
    return history


def accuracy(rec: Recognizer, frames: Tensor, labels: Tensor, batch_size: int = 256) -> float:
    """Fraction of clips whose most probable class is their label."""
    pred = rec.predict_proba(frames, batch_size).argmax(-1)
    return float((pred == torch.as_tensor(labels).long()).float().mean())


def save_recognizer(rec: Recognizer, path: str | os.PathLike,
                    extra: dict | None = None) -> None:
    """Write the model file (name ``recognizer``) atomically."""
    from pyro_videossm.infer import save_model_file

    save_model_file(path, name=MODEL_NAME, config=rec.architecture(),
                    state_dict=rec.state_dict(), extra=extra)


def load_recognizer(path: str | os.PathLike, device: str = "cpu") -> tuple[Recognizer, dict]:
    """Read a file of :func:`save_recognizer` (``weights_only`` load); one-line
    :class:`InputError` for a missing/corrupt file or a model of another kind."""
    from pyro_videossm.infer.model_file import load_model_file, rebuild_module

    obj = load_model_file(path, expected_name=MODEL_NAME)
    rec = rebuild_module(Recognizer, obj, f"model file {path}")
    rec.freeze_encoder()
    return rec.to(device).eval(), obj["extra"]
