"""Adversarial training: :class:`GANTrainer` runs a :class:`GANObjective` with two optimisers.

A :class:`GANObjective` names a generator and a discriminator and gives the two losses; the
trainer is generic (any generator of anything the discriminator scores):

* ``discriminator_loss(batch) -> (loss, logs)``: the critic's loss on real and generated
  items (the generated ones detached);
* ``generator_loss(batch) -> (loss, logs)``: the adversarial loss of the generated items plus
  whatever reconstruction terms the subclass adds (:meth:`GANObjective.extra_generator_loss`);
* ``evaluate(generator, batch) -> float``: a validation score (lower is better), computed with
  the EMA generator.

Subclasses implement ``generate(generator, batch)`` and ``real(batch)``; the adversarial loss
is ``hinge`` (``D: relu(1 - D(real)) + relu(1 + D(fake))``, ``G: -D(fake)``) or
``nonsaturating`` (``D: softplus(-D(real)) + softplus(D(fake))``, ``G: softplus(-D(fake))``).

One step: ``d_steps`` discriminator updates, then one generator update, then the EMA
generator ``ema = decay * ema + (1 - decay) * generator`` (buffers copied). Optimisers: Adam
with ``betas`` for both (``lr_generator``, ``lr_discriminator``).

Checkpoints (``checkpoint_path``) are written atomically at every epoch end and every
``checkpoint_every`` steps; they hold both networks, the EMA generator, both optimisers, the
random-number generators and the data order, so ``fit(..., resume=True)`` continues bit for
bit on CPU (tested: 2 epochs == 1 epoch + resume 1 epoch). Progress bars show only when
``progress`` is set (by default when stderr is a terminal).
"""

from __future__ import annotations

import copy
import dataclasses
import math
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm import tqdm

from pyro_videossm.errors import InputError
from pyro_videossm.infer.data import BatchSource, ShardedPermutation
from pyro_videossm.infer.state import (
    atomic_torch_save,
    checkpoint_to_resume,
    get_rng_state,
    load_training_checkpoint,
    set_rng_state,
)
from pyro_videossm.infer.trainer import TrainingDiverged

GAN_CHECKPOINT_FORMAT = "pyro_videossm.gan_checkpoint"
GAN_LOSSES = ("hinge", "nonsaturating")


@dataclass
class GANConfig:
    """Settings of :class:`GANTrainer` (plain python)."""

    epochs: int = 10
    batch_size: int = 16
    lr_generator: float = 2e-4
    lr_discriminator: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    d_steps: int = 1
    ema_decay: float = 0.99
    checkpoint_path: str | None = None
    checkpoint_every: int = 100
    device: str = "cpu"
    seed: int = 0
    progress: bool = dataclasses.field(default_factory=lambda: sys.stderr.isatty())
    drop_last: bool = False

    def __post_init__(self) -> None:
        self.betas = tuple(float(b) for b in self.betas)
        if self.checkpoint_path is not None:
            self.checkpoint_path = str(self.checkpoint_path)
        checks = [
            (self.epochs >= 1, "epochs must be >= 1"),
            (self.batch_size >= 1, "batch_size must be >= 1"),
            (self.lr_generator > 0 and self.lr_discriminator > 0, "learning rates must be > 0"),
            (len(self.betas) == 2 and all(0 <= b < 1 for b in self.betas),
             "betas must be two numbers in [0, 1)"),
            (self.d_steps >= 1, "d_steps must be >= 1"),
            (0 <= self.ema_decay < 1, "ema_decay must be in [0, 1)"),
            (self.checkpoint_every >= 1, "checkpoint_every must be >= 1"),
        ]
        for ok, message in checks:
            if not ok:
                raise InputError(f"GAN training option: {message}")

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        out["betas"] = list(self.betas)
        return out


#: Fields that must agree between a checkpoint and the run resuming it.
GAN_RESUME_FIXED = ("batch_size", "lr_generator", "lr_discriminator", "betas", "d_steps",
                    "ema_decay", "seed", "drop_last")


def discriminator_adversarial_loss(real_scores: Tensor, fake_scores: Tensor,
                                   kind: str = "hinge") -> Tensor:
    """The critic's loss (module doc), averaged over items."""
    if kind == "hinge":
        return F.relu(1.0 - real_scores).mean() + F.relu(1.0 + fake_scores).mean()
    if kind == "nonsaturating":
        return F.softplus(-real_scores).mean() + F.softplus(fake_scores).mean()
    raise InputError(f"unknown GAN loss {kind!r} (known: {', '.join(GAN_LOSSES)})")


def generator_adversarial_loss(fake_scores: Tensor, kind: str = "hinge") -> Tensor:
    """The generator's adversarial loss (module doc), averaged over items."""
    if kind == "hinge":
        return -fake_scores.mean()
    if kind == "nonsaturating":
        return F.softplus(-fake_scores).mean()
    raise InputError(f"unknown GAN loss {kind!r} (known: {', '.join(GAN_LOSSES)})")


class GANObjective:
    """Generator, discriminator and the two losses (module doc).

    :param generator: the generator network.
    :param discriminator: the critic; ``discriminator(x)`` gives one score per item.
    :param loss: ``hinge`` or ``nonsaturating``.
    :param adversarial_weight: weight of the generator's adversarial term (0: no critic
        gradient reaches the generator; the discriminator is still trained).
    """

    def __init__(self, generator: nn.Module, discriminator: nn.Module, loss: str = "hinge",
                 adversarial_weight: float = 1.0) -> None:
        if loss not in GAN_LOSSES:
            raise InputError(f"unknown GAN loss {loss!r} (known: {', '.join(GAN_LOSSES)})")
        self.generator = generator
        self.discriminator = discriminator
        self.loss = loss
        self.adversarial_weight = float(adversarial_weight)

    # -- to implement ------------------------------------------------------------------
    def generate(self, generator: nn.Module, batch: Mapping[str, Tensor]) -> Tensor:
        """The generated items of a batch (what the discriminator scores)."""
        raise NotImplementedError

    def real(self, batch: Mapping[str, Tensor]) -> Tensor:
        """The real items of a batch."""
        raise NotImplementedError

    def extra_generator_loss(self, fake: Tensor, batch: Mapping[str, Tensor]
                             ) -> tuple[Tensor, dict[str, Tensor]]:
        """Terms added to the generator's loss (default none)."""
        return fake.new_zeros(()), {}

    def evaluate(self, generator: nn.Module, batch: Mapping[str, Tensor]) -> Tensor:
        """Validation score of a batch (lower is better; default: mean absolute error of the
        generated items against the real ones)."""
        return (self.generate(generator, batch) - self.real(batch)).abs().mean()

    # -- the two losses ----------------------------------------------------------------
    def discriminator_loss(self, batch: Mapping[str, Tensor]
                           ) -> tuple[Tensor, dict[str, Tensor]]:
        with torch.no_grad():
            fake = self.generate(self.generator, batch)
        real_scores = self.discriminator(self.real(batch))
        fake_scores = self.discriminator(fake)
        loss = discriminator_adversarial_loss(real_scores, fake_scores, self.loss)
        return loss, {"d_real": real_scores.mean().detach(),
                      "d_fake": fake_scores.mean().detach()}

    def generator_loss(self, batch: Mapping[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        fake = self.generate(self.generator, batch)
        extra, logs = self.extra_generator_loss(fake, batch)
        if self.adversarial_weight > 0:
            adv = generator_adversarial_loss(self.discriminator(fake), self.loss)
        else:
            adv = fake.new_zeros(())
        logs = {**logs, "g_adv": adv.detach()}
        return extra + self.adversarial_weight * adv, logs


class GANTrainer:
    """Train a :class:`GANObjective` (module doc).

    >>> trainer = GANTrainer(objective, GANConfig(epochs=5))
    >>> history = trainer.fit({"source": s, "flows": f, "target": y})
    >>> trainer.ema_generator   # the averaged generator, for sampling
    """

    def __init__(self, objective: GANObjective, config: GANConfig | None = None) -> None:
        self.objective = objective
        self.config = config if config is not None else GANConfig()
        self.device = torch.device(self.config.device)
        objective.generator.to(self.device)
        objective.discriminator.to(self.device)
        self.ema_generator = copy.deepcopy(objective.generator).requires_grad_(False)
        self.history: list[dict] = []

    def _optimisers(self) -> tuple[torch.optim.Optimizer, torch.optim.Optimizer]:
        cfg = self.config
        return (torch.optim.Adam(self.objective.generator.parameters(), lr=cfg.lr_generator,
                                 betas=cfg.betas),
                torch.optim.Adam(self.objective.discriminator.parameters(),
                                 lr=cfg.lr_discriminator, betas=cfg.betas))

    @torch.no_grad()
    def _update_ema(self) -> None:
        decay = self.config.ema_decay
        gen = self.objective.generator
        for e, p in zip(self.ema_generator.parameters(), gen.parameters()):
            e.mul_(decay).add_(p.detach(), alpha=1.0 - decay)
        for e, b in zip(self.ema_generator.buffers(), gen.buffers()):
            e.copy_(b)

    # ------------------------------------------------------------------ public
    def fit(self, train_data: Mapping[str, Tensor], valid_data: Mapping[str, Tensor] | None
            = None, resume: bool = False) -> list[dict]:
        """Train; return the history, one dict per epoch: ``epoch``, ``g_loss``, ``d_loss``,
        the mean of every logged term, ``valid`` (EMA generator; ``None`` without validation
        data) and ``seconds``.

        Raises:
            TrainingDiverged: a non-finite loss.
            InputError: bad data, or a checkpoint that does not belong to this run.
        """
        cfg, obj = self.config, self.objective
        if resume and not cfg.checkpoint_path:
            raise InputError("resume needs a checkpoint path")
        train = BatchSource(train_data, cfg.batch_size, self.device, cfg.drop_last,
                            name="training data")
        valid = (None if valid_data is None else
                 BatchSource(valid_data, cfg.batch_size, self.device, False,
                             name="validation data"))
        self.n_train = train.n
        n_batches = train.num_batches(train.n)
        self.opt_g, self.opt_d = self._optimisers()
        self.epoch = self.step = self.batch_pos = 0
        self.sums: dict[str, float] = {}
        self.count = 0
        self.epoch_seconds = 0.0
        self.history = []
        data_gen = torch.Generator().manual_seed(cfg.seed)
        self.epoch_gen_state = data_gen.get_state()
        path = checkpoint_to_resume(cfg.checkpoint_path, resume)
        if path is not None:
            self._restore(path, train.n)
        else:
            torch.manual_seed(cfg.seed)
            self.ema_generator.load_state_dict(obj.generator.state_dict())
        bar = tqdm(total=cfg.epochs, initial=self.epoch, desc="epochs", unit="epoch",
                   disable=not cfg.progress, dynamic_ncols=True, file=sys.stderr)
        try:
            while self.epoch < cfg.epochs:
                self._run_epoch(train, valid, data_gen, n_batches)
                bar.update(1)
                last = self.history[-1]
                bar.set_postfix(g=f"{last['g_loss']:.4g}", d=f"{last['d_loss']:.4g}")
        finally:
            bar.close()
        return self.history

    # ------------------------------------------------------------------ loop
    def _run_epoch(self, train: BatchSource, valid: BatchSource | None,
                   data_gen: torch.Generator, n_batches: int) -> None:
        cfg, obj = self.config, self.objective
        data_gen.set_state(self.epoch_gen_state)
        order = ShardedPermutation(train.n, data_gen)
        started = time.perf_counter() - self.epoch_seconds
        obj.generator.train()
        obj.discriminator.train()
        bar = tqdm(total=n_batches, initial=self.batch_pos, desc=f"epoch {self.epoch + 1}",
                   unit="batch", leave=False, disable=not cfg.progress, dynamic_ncols=True,
                   file=sys.stderr)
        try:
            seed = (cfg.seed * 1_000_003 + 2 * self.epoch) % (2**63)
            for b, batch in enumerate(train.iterate(order, self.batch_pos, seed),
                                      start=self.batch_pos):
                logs = self._step(batch)
                self.step += 1
                self.batch_pos = b + 1
                self.count += 1
                for k, v in logs.items():
                    self.sums[k] = self.sums.get(k, 0.0) + v
                bar.update(1)
                if self.step % cfg.checkpoint_every == 0 and self.batch_pos < n_batches:
                    self.epoch_seconds = time.perf_counter() - started
                    self._checkpoint()
        finally:
            bar.close()
        record = {"epoch": self.epoch + 1,
                  **{k: v / max(self.count, 1) for k, v in self.sums.items()},
                  "valid": self._validate(valid),
                  "seconds": time.perf_counter() - started}
        self.history.append(record)
        self.epoch += 1
        self.batch_pos = 0
        self.sums, self.count = {}, 0
        self.epoch_seconds = 0.0
        self.epoch_gen_state = data_gen.get_state()
        self._checkpoint()

    def _step(self, batch: Mapping[str, Tensor]) -> dict[str, float]:
        obj = self.objective
        logs: dict[str, Tensor] = {}
        obj.discriminator.requires_grad_(True)
        for _ in range(self.config.d_steps):
            self.opt_d.zero_grad(set_to_none=True)
            d_loss, d_logs = obj.discriminator_loss(batch)
            d_loss.backward()
            self.opt_d.step()
        obj.discriminator.requires_grad_(False)  # no critic gradients during the G step
        self.opt_g.zero_grad(set_to_none=True)
        g_loss, g_logs = obj.generator_loss(batch)
        g_loss.backward()
        self.opt_g.step()
        obj.discriminator.requires_grad_(True)
        self._update_ema()
        logs = {"g_loss": g_loss.detach(), "d_loss": d_loss.detach(), **d_logs, **g_logs}
        values = dict(zip(logs, torch.stack([v.reshape(()).double() for v in logs.values()])
                          .tolist()))
        if not (math.isfinite(values["g_loss"]) and math.isfinite(values["d_loss"])):
            raise TrainingDiverged(f"GAN training diverged at step {self.step + 1} (epoch "
                                   f"{self.epoch + 1}): generator loss {values['g_loss']}, "
                                   f"discriminator loss {values['d_loss']}")
        return values

    @torch.no_grad()
    def _validate(self, valid: BatchSource | None) -> float | None:
        if valid is None:
            return None
        gen = self.ema_generator
        gen.eval()
        total, n = 0.0, 0
        for batch in valid.iterate(ShardedPermutation(valid.n, None)):
            items = next(iter(batch.values())).shape[0]
            total += float(self.objective.evaluate(gen, batch)) * items
            n += items
        return total / max(n, 1)

    # ------------------------------------------------------------------ checkpoints
    def _checkpoint(self) -> None:
        cfg, obj = self.config, self.objective
        if cfg.checkpoint_path is None:
            return
        atomic_torch_save({
            "format": GAN_CHECKPOINT_FORMAT, "config": cfg.to_dict(), "n_train": self.n_train,
            "epoch": self.epoch, "step": self.step, "batch_pos": self.batch_pos,
            "epoch_gen_state": self.epoch_gen_state, "epoch_seconds": self.epoch_seconds,
            "sums": dict(self.sums), "count": self.count, "history": self.history,
            "rng": get_rng_state(self.device),
            "generator": obj.generator.state_dict(),
            "discriminator": obj.discriminator.state_dict(),
            "ema_generator": self.ema_generator.state_dict(),
            "opt_generator": self.opt_g.state_dict(),
            "opt_discriminator": self.opt_d.state_dict(),
        }, cfg.checkpoint_path)

    def _restore(self, path: Path, n_train: int) -> None:
        cfg, obj = self.config, self.objective
        ckpt = load_training_checkpoint(path, GAN_CHECKPOINT_FORMAT,
                                        "pyro-videossm GAN training checkpoint", cfg.to_dict(),
                                        GAN_RESUME_FIXED, n_train)
        try:
            obj.generator.load_state_dict(ckpt["generator"])
            obj.discriminator.load_state_dict(ckpt["discriminator"])
            self.ema_generator.load_state_dict(ckpt["ema_generator"])
        except RuntimeError as err:
            first = str(err).strip().splitlines()[0]
            raise InputError(f"checkpoint {path} does not fit these networks ({first})") from None
        self.opt_g.load_state_dict(ckpt["opt_generator"])
        self.opt_d.load_state_dict(ckpt["opt_discriminator"])
        self.epoch, self.step, self.batch_pos = ckpt["epoch"], ckpt["step"], ckpt["batch_pos"]
        self.epoch_gen_state = ckpt["epoch_gen_state"]
        self.epoch_seconds = ckpt["epoch_seconds"]
        self.sums, self.count = dict(ckpt["sums"]), ckpt["count"]
        self.history = list(ckpt["history"])
        set_rng_state(ckpt["rng"])
