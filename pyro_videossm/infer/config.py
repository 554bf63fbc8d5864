"""Training settings (:class:`TrainConfig`) and the schedules derived from them."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from pyro_videossm.errors import InputError


@dataclass
class TrainConfig:
    """Settings of :class:`~pyro_videossm.infer.Trainer`; every field is plain python.

    Optimiser: Pyro's ``ClippedAdam`` with ``lr``, ``betas``, ``clip_norm`` (element-wise
    gradient clamp) and a per-step decay ``lrd = lr_decay ** (1 / batches_per_epoch)``, so
    ``lr_decay`` is the factor the learning rate is multiplied by over one epoch.

    KL annealing: the factor passed as ``annealing_factor`` rises linearly per step from
    ``min_anneal`` to 1 over the first ``anneal_epochs`` epochs (``0``: always 1); see
    :func:`annealing_factor`.

    Early stopping: with ``patience`` set, training stops after ``patience`` epochs without an
    improvement of the validation loss (training loss when no validation data are given) by
    more than ``min_delta``, and the best parameters are restored at the end.

    Checkpoints: with ``checkpoint_path`` set, a checkpoint is written every
    ``checkpoint_every`` optimiser steps and at every epoch end (rank 0 only).

    ``batch_size`` is per process under ``torchrun``: a step uses the global batch of
    ``world * batch_size`` items (see ``docs/TRAINING.md``). ``log_every`` is how often (in
    steps) losses are read from the device to update the progress bar and check for NaN.
    """

    epochs: int = 10
    batch_size: int = 32
    lr: float = 1e-3
    lr_decay: float = 1.0
    betas: tuple[float, float] = (0.96, 0.999)
    clip_norm: float = 10.0
    anneal_epochs: int = 0
    min_anneal: float = 0.2
    patience: int | None = None
    min_delta: float = 0.0
    checkpoint_path: str | None = None
    checkpoint_every: int = 100
    device: str = "cpu"
    seed: int = 0
    progress: bool = True
    log_every: int = 10
    drop_last: bool = False
    num_workers: int = 0

    def __post_init__(self) -> None:
        try:
            self._check()
        except TypeError as e:
            raise InputError(f"training option of the wrong type ({e})") from None

    def _check(self) -> None:
        self.betas = tuple(float(b) for b in self.betas)
        if self.checkpoint_path is not None:
            self.checkpoint_path = str(self.checkpoint_path)
        checks = [
            (self.epochs >= 1, f"epochs must be >= 1, got {self.epochs}"),
            (self.batch_size >= 1, "batch_size must be >= 1"),
            (self.lr > 0 and math.isfinite(self.lr), "lr must be positive"),
            (0 < self.lr_decay <= 1, "lr_decay must be in (0, 1]"),
            (len(self.betas) == 2 and all(0 <= b < 1 for b in self.betas),
             "betas must be two numbers in [0, 1)"),
            (self.clip_norm > 0, "clip_norm must be positive"),
            (self.anneal_epochs >= 0, "anneal_epochs must be >= 0"),
            (0 <= self.min_anneal <= 1, "min_anneal must be in [0, 1]"),
            (self.patience is None or self.patience >= 1, "patience must be >= 1 or None"),
            (self.checkpoint_every >= 1, "checkpoint_every must be >= 1"),
            (self.log_every >= 1, "log_every must be >= 1"),
            (self.num_workers >= 0, "num_workers must be >= 0"),
        ]
        for ok, message in checks:
            if not ok:
                raise InputError(f"training option: {message}")

    @classmethod
    def from_args(cls, args, **defaults) -> TrainConfig:
        """Settings from ``videossm train``'s common options (``--epochs``, ``--lr``,
        ``--batch-size``, ``--device``, ``--seed``, ``--checkpoint``, ``--no-progress``) on top
        of a model's ``defaults`` (any field); options left unset keep the default."""
        options = dict(defaults)
        for field_name, arg in (("epochs", "epochs"), ("lr", "lr"), ("batch_size", "batch_size"),
                                ("device", "device"), ("seed", "seed"),
                                ("checkpoint_path", "checkpoint"), ("progress", "progress")):
            value = getattr(args, arg, None)
            if value is not None:
                options[field_name] = value
        return cls(**options)

    def to_dict(self) -> dict:
        """Plain-python copy (lists for tuples), suitable for checkpoints and model files."""
        out = dataclasses.asdict(self)
        out["betas"] = list(self.betas)
        return out

    def lrd(self, batches_per_epoch: int) -> float:
        """Per-step learning-rate decay of ``ClippedAdam``."""
        return float(self.lr_decay ** (1.0 / max(1, batches_per_epoch)))


#: Fields that must agree between a checkpoint and the run resuming it (others may change).
RESUME_FIXED_FIELDS = (
    "batch_size", "lr", "lr_decay", "betas", "clip_norm", "anneal_epochs", "min_anneal",
    "seed", "drop_last",
)


def annealing_factor(config: TrainConfig, epoch: int, batch: int, batches_per_epoch: int) -> float:
    """KL annealing factor for mini-batch ``batch`` (0-based) of epoch ``epoch`` (0-based).

    Linear in the global step as in Pyro's ``examples/dmm.py``::

        min_anneal + (1 - min_anneal) * (epoch * N + batch + 1) / (anneal_epochs * N)

    for ``epoch < anneal_epochs``, and 1 afterwards (and always 1 when ``anneal_epochs == 0``).
    The last step of epoch ``anneal_epochs - 1`` reaches exactly 1.
    """
    if config.anneal_epochs <= 0 or epoch >= config.anneal_epochs:
        return 1.0
    n = max(1, batches_per_epoch)
    progress = (epoch * n + batch + 1) / (config.anneal_epochs * n)
    return float(min(1.0, config.min_anneal + (1.0 - config.min_anneal) * progress))
