"""The judge: a classifier of real clips that scores generated ones.

:class:`Judge` is a frame encoder (the DSVAE's
:class:`~pyro_videossm.models.video.dsvae.FrameEncoder`
architecture, separate weights) followed by a bidirectional LSTM over the frame features and
one linear head per label (``motion`` and each static factor for the sprites). Optional
*frame heads* (``frame_labels``, content labels such as a colour or a shape) classify every
frame from its encoder features alone, which is what content stability over a clip is measured
with; the encoder features (per frame) and the LSTM summary (per clip) are the feature spaces
of the judge's Fréchet distances (:mod:`pyro_videossm.evaluation.frechet`). It is trained
on real training clips with the shared :class:`~pyro_videossm.infer.Trainer` (summed
cross-entropies, :class:`~pyro_videossm.infer.LossObjective`) and must reach
:data:`MIN_MOTION_ACCURACY` on real test clips before its verdicts on generated clips are
trusted (:func:`check_trusted` raises :class:`UntrustedJudgeError` otherwise).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
import xarray as xr
from torch import Tensor, nn

from pyro_videossm.data.sprites import frames_tensor, labels_tensor
from pyro_videossm.errors import InputError
from pyro_videossm.infer import (
    LossObjective,
    TrainConfig,
    Trainer,
    load_model_file,
    save_model_file,
)
from pyro_videossm.infer.model_file import rebuild_module
from pyro_videossm.models.video.dsvae import FrameEncoder, as_float_frames, compact_frames

#: Motion accuracy on real test clips a judge needs before its verdicts count.
MIN_MOTION_ACCURACY = 0.99


class UntrustedJudgeError(InputError):
    """The judge classifies real test clips too poorly for its verdicts on generated clips to
    mean anything (one-line message with the accuracy reached)."""


def label_classes(ds: xr.Dataset, names: list[str] | None = None) -> dict[str, int]:
    """Number of classes of each integer label variable on ``clip`` (from CF ``flag_values``,
    else from the largest value). ``names`` defaults to every such variable except ``split``
    and ``character``."""
    out = {}
    for name, var in ds.data_vars.items():
        if names is not None and name not in names:
            continue
        if names is None and name in ("split", "character"):
            continue
        if tuple(var.dims) != ("clip",) or not np.issubdtype(var.dtype, np.integer):
            continue
        flags = var.attrs.get("flag_values")
        out[str(name)] = (len(np.atleast_1d(flags)) if flags is not None
                          else int(np.asarray(var.values).max()) + 1)
    if names is not None:
        missing = [n for n in names if n not in out]
        if missing:
            raise InputError(f"missing integer label variable(s) {missing} on 'clip'")
    return out


class Judge(nn.Module):
    """Clip classifier: ``frames (B, T, C, S, S)`` -> ``{label: logits (B, K_label)}``.

    Args:
        labels: ``{name: number of classes}`` (order kept), e.g. ``{"motion": 9, "skin": 6}``.
        channels, size: frame shape.
        feature_dim, hidden_dim, conv_channels: network widths.
        frame_labels: labels (among ``labels``) also predicted from every single frame
            (content labels, constant over a clip); none by default.
    """

    def __init__(self, labels: Mapping[str, int], channels: int = 3, size: int = 64, *,
                 feature_dim: int = 128, hidden_dim: int = 128, conv_channels: int = 32,
                 frame_labels: Sequence[str] = ()):
        super().__init__()
        if not labels:
            raise InputError("the judge needs at least one label")
        self.labels = {str(k): int(v) for k, v in labels.items()}
        self.frame_labels = [str(k) for k in frame_labels]
        unknown = [k for k in self.frame_labels if k not in self.labels]
        if unknown:
            raise InputError(f"frame label {unknown[0]!r} is not one of the judge's labels "
                             f"({', '.join(self.labels)})")
        self._config = dict(labels=dict(self.labels), channels=int(channels), size=int(size),
                            feature_dim=int(feature_dim), hidden_dim=int(hidden_dim),
                            conv_channels=int(conv_channels))
        if self.frame_labels:  # judges without frame heads keep their old configuration
            self._config["frame_labels"] = list(self.frame_labels)
        self.channels, self.size = int(channels), int(size)
        self.encoder = FrameEncoder(channels, size, feature_dim, conv_channels)
        self.lstm = nn.LSTM(feature_dim, hidden_dim, batch_first=True, bidirectional=True)
        self.heads = nn.ModuleDict({k: nn.Linear(2 * hidden_dim, v)
                                    for k, v in self.labels.items()})
        if self.frame_labels:
            self.frame_heads = nn.ModuleDict({k: nn.Linear(feature_dim, self.labels[k])
                                              for k in self.frame_labels})

    def architecture(self) -> dict[str, Any]:
        """Constructor arguments: ``Judge(**architecture())`` rebuilds it."""
        return {k: (dict(v) if isinstance(v, dict) else v) for k, v in self._config.items()}

    def features(self, frames: Tensor) -> tuple[Tensor, Tensor]:
        """Frame features ``(B, T, feature_dim)`` (the encoder's) and clip features
        ``(B, 2 hidden_dim)`` (the LSTM summary the clip heads read) of ``frames (B, T, C,
        S, S)``."""
        x = as_float_frames(frames)
        if x.dim() != 5 or tuple(x.shape[2:]) != (self.channels, self.size, self.size):
            raise InputError(f"the judge expects frames (B, T, {self.channels}, {self.size}, "
                             f"{self.size}), got {tuple(x.shape)}")
        e = self.encoder(x)
        h, _ = self.lstm(e)
        # forward state at the last frame, backward state at the first frame
        H = h.shape[-1] // 2
        return e, torch.cat([h[:, -1, :H], h[:, 0, H:]], dim=-1)

    def outputs(self, frames: Tensor) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """Clip logits ``{label: (B, K)}`` and frame logits ``{frame label: (B, T, K)}``."""
        e, summary = self.features(frames)
        clip = {k: head(summary) for k, head in self.heads.items()}
        frame = ({k: head(e) for k, head in self.frame_heads.items()}
                 if self.frame_labels else {})
        return clip, frame

    def forward(self, frames: Tensor) -> dict[str, Tensor]:
        _, summary = self.features(frames)
        return {k: head(summary) for k, head in self.heads.items()}

    @torch.no_grad()
    def predict_proba(self, frames: Tensor, batch_size: int = 256) -> dict[str, Tensor]:
        """Class probabilities ``{label: (N, K)}`` for clips ``(N, T, C, S, S)``, in batches."""
        was = self.training
        self.eval()
        device = next(self.parameters()).device
        out: dict[str, list[Tensor]] = {k: [] for k in self.labels}
        for s in range(0, frames.shape[0], batch_size):
            logits = self(frames[s:s + batch_size].to(device))
            for k, v in logits.items():
                out[k].append(torch.softmax(v, -1).cpu())
        self.train(was)
        return {k: torch.cat(v) if v else torch.zeros(0, self.labels[k]) for k, v in out.items()}


    @torch.no_grad()
    def predict_frames_proba(self, frames: Tensor, batch_size: int = 256) -> dict[str, Tensor]:
        """Per-frame class probabilities ``{frame label: (N, T, K)}`` of the frame heads."""
        if not self.frame_labels:
            raise InputError("the judge has no frame heads (train it with frame labels, e.g. "
                             "videossm train video-judge)")
        was = self.training
        self.eval()
        device = next(self.parameters()).device
        out: dict[str, list[Tensor]] = {k: [] for k in self.frame_labels}
        for s in range(0, frames.shape[0], batch_size):
            _, logits = self.outputs(frames[s:s + batch_size].to(device))
            for k, v in logits.items():
                out[k].append(torch.softmax(v, -1).cpu())
        self.train(was)
        return {k: torch.cat(v) for k, v in out.items()}


def judge_loss(judge: Judge, batch: dict[str, Tensor]) -> Tensor:
    """Sum over labels of the mean cross-entropy (a :class:`LossObjective` loss), frame heads
    included (each frame labelled with its clip's label)."""
    if not judge.frame_labels:
        logits = judge(batch["frames"])
        return sum(F.cross_entropy(v, batch[k]) for k, v in logits.items())
    clip, frame = judge.outputs(batch["frames"])
    loss = sum(F.cross_entropy(v, batch[k]) for k, v in clip.items())
    for k, v in frame.items():
        target = batch[k][:, None].expand(v.shape[:2])
        loss = loss + F.cross_entropy(v.flatten(0, 1), target.flatten())
    return loss


def train_judge(ds: xr.Dataset, labels: list[str] | None = None, *, epochs: int = 5,
                batch_size: int = 32, lr: float = 1e-3, feature_dim: int = 128,
                hidden_dim: int = 128, conv_channels: int = 32, device: str = "cpu",
                seed: int = 0, progress: bool = False, frame_labels: Sequence[str] = ()
                ) -> tuple[Judge, list[dict]]:
    """Train a :class:`Judge` on the clips of ``ds`` (all of them: pass training clips).

    ``labels`` defaults to every integer label on ``clip`` except ``split``/``character``;
    ``frame_labels`` (among them) get frame heads too.
    Returns the judge and the trainer's history.
    """
    classes = label_classes(ds, labels)
    if not classes:
        raise InputError("no integer label variables on 'clip' to train a judge on")
    x = frames_tensor(ds, "judge training data")
    y = labels_tensor(ds, list(classes), "judge training data", classes)
    torch.manual_seed(seed)
    judge = Judge(classes, x.shape[2], x.shape[3], feature_dim=feature_dim,
                  hidden_dim=hidden_dim, conv_channels=conv_channels,
                  frame_labels=frame_labels)
    if x.shape[3] != x.shape[4]:
        raise InputError(f"frames must be square, got {x.shape[3]}x{x.shape[4]}")
    data = {"frames": compact_frames(x), **y}
    config = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, device=device, seed=seed,
                         progress=progress)
    history = Trainer(LossObjective(judge, judge_loss), config).fit(data)
    judge.eval()
    return judge, history


def judge_accuracy(judge: Judge, ds: xr.Dataset, batch_size: int = 256) -> dict[str, float]:
    """Accuracy of each of the judge's labels on the clips of ``ds`` (labels required)."""
    x = frames_tensor(ds, "judge test data", channels=judge.channels, size=judge.size)
    y = labels_tensor(ds, list(judge.labels), "judge test data", judge.labels)
    probs = judge.predict_proba(x, batch_size)
    return {k: float((probs[k].argmax(-1) == y[k]).float().mean()) for k in judge.labels}


def check_trusted(accuracy: Mapping[str, float], label: str = "motion",
                  minimum: float = MIN_MOTION_ACCURACY) -> None:
    """Raise :class:`UntrustedJudgeError` unless ``accuracy[label] >= minimum``."""
    if label not in accuracy:
        raise UntrustedJudgeError(f"the judge has no {label!r} head, so it cannot be trusted "
                                  f"to score {label}")
    if not accuracy[label] >= minimum:
        raise UntrustedJudgeError(
            f"the judge reaches only {accuracy[label]:.2%} {label} accuracy on real test clips "
            f"(needs >= {minimum:.0%}); train it longer before trusting its verdicts")


def save_judge(judge: Judge, path: str | os.PathLike, extra: dict | None = None) -> None:
    """Write the judge as a model file (name ``judge``), atomically."""
    save_model_file(path, name="judge", config=judge.architecture(),
                    state_dict=judge.state_dict(), extra=extra)


def load_judge(path: str | os.PathLike, device: str = "cpu") -> tuple[Judge, dict]:
    """Read a judge written by :func:`save_judge`; returns the judge and its ``extra``."""
    obj = load_model_file(path, expected_name="judge")
    judge = rebuild_module(Judge, obj, f"judge file {path}")
    return judge.to(device).eval(), obj["extra"]
