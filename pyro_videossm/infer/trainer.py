"""The one training loop: :class:`Trainer` runs an :class:`~pyro_videossm.infer.Objective`
over mini-batches with KL annealing, validation, early stopping, progress bars, atomic
checkpoints with exact resume, and data-parallel training under ``torchrun`` (torch's
``DistributedDataParallel``, see :mod:`pyro_videossm.infer.distributed`)."""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pyro
import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import Dataset
from tqdm import tqdm

from pyro_videossm.errors import InputError
from pyro_videossm.infer.config import RESUME_FIXED_FIELDS, TrainConfig, annealing_factor
from pyro_videossm.infer.data import BatchSource, ShardedPermutation
from pyro_videossm.infer.distributed import DistContext, wrap_data_parallel
from pyro_videossm.infer.model_file import load_state_checked
from pyro_videossm.infer.objectives import Objective
from pyro_videossm.infer.state import (
    atomic_torch_save,
    checkpoint_to_resume,
    data_fingerprint,
    get_rng_state,
    load_training_checkpoint,
    module_settings,
    set_rng_state,
)

CHECKPOINT_FORMAT = "pyro_videossm.checkpoint"
CHECKPOINT_VERSION = 1

Data = Mapping[str, torch.Tensor] | Dataset


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the message names the step. The checkpoint on disk
    (if any) is the last one written before that step."""


def _floats(values: list[Any]) -> list[float]:
    """Python floats from a mix of numbers and tensors, with one device read."""
    tensors = [v for v in values if isinstance(v, torch.Tensor)]
    if not tensors:
        return [float(v) for v in values]
    read = iter(torch.stack([t.detach().reshape(()).to(torch.float64) for t in tensors])
                .cpu().tolist())
    return [next(read) if isinstance(v, torch.Tensor) else float(v) for v in values]


def _flat(settings: dict, prefix: str = "") -> dict:
    """``{"physics": {"rho": 28}}`` -> ``{"physics.rho": 28}``."""
    out = {}
    for key, value in settings.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


class Trainer:
    """Train ``objective.module`` with the settings of ``config``.

    >>> trainer = Trainer(SVIObjective(dmm, elbo=Trace_ELBO()), TrainConfig(epochs=20))
    >>> history = trainer.fit({"x": x, "mask": mask}, valid_data={"x": xv, "mask": mv})

    See ``docs/TRAINING.md`` for the checkpoint and resume semantics.

    Under ``torchrun`` (``WORLD_SIZE`` > 1) :attr:`data_parallel` is the
    ``DistributedDataParallel`` wrapper the last :meth:`fit` ran its steps through (``None``
    in a single process).
    """

    def __init__(self, objective: Objective, config: TrainConfig | None = None) -> None:
        self.objective = objective
        self.config = config if config is not None else TrainConfig()
        self.history: list[dict] = []
        self.dist = DistContext()
        self.data_parallel: DistributedDataParallel | None = None
        self._wrapped_params: list[torch.Tensor] = []

    # ------------------------------------------------------------------ public

    def fit(self, train_data: Data, valid_data: Data | None = None,
            resume: bool = False, announce: str | None = None) -> list[dict]:
        """Train; return the history, one dict per finished epoch with ``epoch`` (1-based),
        ``train_loss`` (annealed objective per item, or per ``module.normalizer`` unit),
        ``valid_loss`` (un-annealed, ``None`` without validation data), ``anneal`` (factor
        at the epoch's last step), ``lr`` (at the epoch's end) and ``seconds``.

        With ``resume=True`` and an existing ``config.checkpoint_path`` training continues
        from the checkpoint exactly where it stopped (bit for bit on CPU); without a
        checkpoint file it starts afresh. ``announce`` is printed on stderr (main process)
        once the data and any checkpoint have been accepted, just before training starts, so
        that refused input gets its one-line error alone.

        Raises:
            TrainingDiverged: a non-finite loss.
            InputError: bad data, or a checkpoint that does not belong to this run.
        """
        cfg = self.config
        if resume and not cfg.checkpoint_path:
            raise InputError("resume needs a checkpoint path")
        if cfg.checkpoint_path:  # before any training, not at the first checkpoint
            path = Path(cfg.checkpoint_path)
            if path.is_dir():
                raise InputError(f"checkpoint {path} is a directory; give a file name")
            if not path.parent.is_dir():
                raise InputError(f"checkpoint folder {path.parent} does not exist")
        self.dist = DistContext.from_env(cfg.device)
        self.data_parallel, self._wrapped_params = None, []
        try:
            return self._fit(train_data, valid_data, resume, announce)
        finally:
            self.dist.close()

    # ------------------------------------------------------------------ loop

    def _fit(self, train_data: Data, valid_data: Data | None, resume: bool,
             announce: str | None = None) -> list[dict]:
        cfg, obj, dctx = self.config, self.objective, self.dist
        device = dctx.device
        module = obj.module.to(device)
        train = BatchSource(train_data, cfg.batch_size, device, cfg.drop_last, cfg.num_workers,
                            name="training data")
        valid = (None if valid_data is None else
                 BatchSource(valid_data, cfg.batch_size, device, False, cfg.num_workers,
                             name="validation data"))
        self._n_train = train.n
        # what a checkpoint must have been written for to be resumed (see _restore)
        self._fingerprint = ({"data": data_fingerprint(train_data, valid_data),
                              "module": module_settings(module)}
                             if cfg.checkpoint_path else None)
        local_items = math.ceil(train.n / dctx.world)  # ShardedPermutation pads to this
        self.n_batches = n_batches = train.num_batches(local_items)
        obj.setup(cfg, n_batches)

        # counters and running sums (all restored from a checkpoint)
        self.epoch = self.step = self.batch_pos = 0
        self.loss_sum = self.norm_sum = 0.0
        self.epoch_seconds = 0.0
        self.history = []
        self.best: dict | None = None
        self.best_loss = math.inf
        self.bad_epochs = 0
        self.stopped = False
        self.last_checkpoint_step: int | None = None
        self._buffer: list[tuple] = []
        data_gen = torch.Generator().manual_seed(cfg.seed)
        self.epoch_gen_state = data_gen.get_state()

        path = checkpoint_to_resume(cfg.checkpoint_path, resume, announce=dctx.is_main)
        if path is not None:
            self._restore(path, train.n)
        else:
            obj.reset()
            pyro.set_rng_seed(cfg.seed + dctx.rank)  # different noise on every process
        if announce and dctx.is_main:
            tqdm.write(announce, file=sys.stderr)

        show = cfg.progress and dctx.is_main
        epochs_bar = tqdm(total=cfg.epochs, initial=self.epoch, desc="epochs", unit="epoch",
                          disable=not show, dynamic_ncols=True, file=sys.stderr)
        try:
            while self.epoch < cfg.epochs and not self.stopped:
                self._run_epoch(train, valid, data_gen, show, epochs_bar)
        finally:
            epochs_bar.close()
        if cfg.patience is not None and self.best is not None:
            load_state_checked(module, self.best["module"], "best parameters")
            obj.load_extra_params(self.best["extra"])
        return self.history

    def _step(self, batch: dict[str, torch.Tensor], factor: float
              ) -> tuple[Any, list[torch.Tensor]]:
        """Loss and gradients of one batch (all-reduced under ``torchrun``: the forward pass
        goes through DDP, which averages the gradients over processes during the backward
        pass); returns the loss and the parameters to step."""
        obj, dctx = self.objective, self.dist
        if not dctx.active:
            return obj.loss_and_grads(batch, factor)
        if self.data_parallel is None:
            self.data_parallel, self._wrapped_params = wrap_data_parallel(obj, batch, factor,
                                                                          dctx)
        loss, differentiable = self.data_parallel(batch, factor)
        if obj.reduction == "sum":  # DDP averages; the global batch's loss is the sum
            differentiable = differentiable * dctx.world
        differentiable.backward()
        return loss, self._wrapped_params

    def _run_epoch(self, train: BatchSource, valid: BatchSource | None,
                   data_gen: torch.Generator, show: bool, epochs_bar: tqdm) -> None:
        cfg, obj, dctx = self.config, self.objective, self.dist
        n_batches = self.n_batches
        data_gen.set_state(self.epoch_gen_state)
        order = ShardedPermutation(train.n, data_gen, dctx.rank, dctx.world)
        started = time.perf_counter() - self.epoch_seconds
        obj.module.train()
        bar = tqdm(total=n_batches, initial=self.batch_pos, desc=f"epoch {self.epoch + 1}",
                   unit="batch", leave=False, disable=not show, dynamic_ncols=True,
                   file=sys.stderr)
        factor = annealing_factor(cfg, self.epoch, max(0, self.batch_pos - 1), n_batches)
        try:
            for b, batch in enumerate(train.iterate(order, self.batch_pos, self._loader_seed()),
                                      start=self.batch_pos):
                factor = annealing_factor(cfg, self.epoch, b, n_batches)
                try:
                    loss, params = self._step(batch, factor)
                except torch.linalg.LinAlgError as err:  # e.g. a covariance lost definiteness
                    self._diverged(self.step + 1, self.epoch, b,
                                   f"a numerical failure ({str(err).splitlines()[0]})")
                norm = obj.normalizer(batch)
                if not isinstance(loss, torch.Tensor) and not math.isfinite(loss):
                    self._diverged(self.step + 1, self.epoch, b, loss)
                obj.apply(params)
                self.step += 1
                self.batch_pos = b + 1
                self._buffer.append((self.step, self.epoch, b, loss, norm))
                if self.step % cfg.log_every == 0:
                    self._flush(bar)
                    bar.update(self.batch_pos - bar.n)
                if self.step % cfg.checkpoint_every == 0 and self.batch_pos < n_batches:
                    self.epoch_seconds = time.perf_counter() - started
                    self._checkpoint()
        finally:
            bar.close()
        self._flush(None)
        train_loss_sum, train_norm = dctx.sum([self.loss_sum, self.norm_sum])
        train_loss = train_loss_sum / train_norm if train_norm else math.nan
        valid_loss = self._validate(valid)
        record = {"epoch": self.epoch + 1, "train_loss": train_loss, "valid_loss": valid_loss,
                  "anneal": factor, "lr": obj.lr(),
                  "seconds": time.perf_counter() - started}
        self.history.append(record)
        self._early_stopping(valid_loss if valid is not None else train_loss)
        self.epoch += 1
        self.batch_pos = 0
        self.loss_sum = self.norm_sum = 0.0
        self.epoch_seconds = 0.0
        self.epoch_gen_state = data_gen.get_state()
        self._checkpoint()
        epochs_bar.update(1)
        epochs_bar.set_postfix(train=f"{train_loss:.4g}",
                               **({} if valid_loss is None else {"valid": f"{valid_loss:.4g}"}))

    def _loader_seed(self) -> int:
        return (self.config.seed * 1_000_003 + 2 * self.epoch) % (2**63)

    def _flush(self, bar: tqdm | None) -> None:
        """Read buffered losses from the device once, refuse non-finite ones, add them up.

        Under ``torchrun`` the losses are also summed over processes (one small all-reduce,
        at the same steps on every process), so that a non-finite loss on any process stops
        every process at the same step."""
        if not self._buffer:
            return
        entries, self._buffer = self._buffer, []
        values = _floats([v for e in entries for v in e[3:]])
        checks = self.dist.sum(values[0::2])
        interval_loss = interval_norm = 0.0
        for i, (step, epoch, b, *_rest) in enumerate(entries):
            loss, norm, check = values[2 * i], values[2 * i + 1], checks[i]
            if not math.isfinite(check):
                self._diverged(step, epoch, b, check)
            interval_loss += loss
            interval_norm += norm
        self.loss_sum += interval_loss
        self.norm_sum += interval_norm
        if bar is not None and not bar.disable and interval_norm:
            bar.set_postfix(loss=f"{interval_loss / interval_norm:.4g}")

    def _diverged(self, step: int, epoch: int, batch: int, value: float | str) -> None:
        where = f"step {step} (epoch {epoch + 1}, batch {batch + 1})"
        if self.config.checkpoint_path is None:
            kept = "no checkpoint was being written"
        elif self.last_checkpoint_step is None:
            kept = f"no checkpoint was written before it ({self.config.checkpoint_path})"
        else:
            kept = (f"the last good checkpoint {self.config.checkpoint_path} "
                    f"(step {self.last_checkpoint_step}) is kept")
        what = value if isinstance(value, str) else f"loss is {value}"
        raise TrainingDiverged(f"training diverged: {what} at {where}; {kept}") from None

    def _validate(self, valid: BatchSource | None) -> float | None:
        if valid is None:
            return None
        obj, dctx = self.objective, self.dist
        module = obj.module
        was_training = module.training
        module.eval()
        values: list[Any] = []
        try:
            order = ShardedPermutation(valid.n, None, dctx.rank, dctx.world)
            for batch in valid.iterate(order, seed=self._loader_seed() + 1):
                values += [obj.evaluate(batch), obj.normalizer(batch)]
        finally:
            module.train(was_training)
        floats = _floats(values)
        loss_sum, norm = dctx.sum([sum(floats[0::2]), sum(floats[1::2])])
        loss = loss_sum / norm if norm else math.nan
        if not math.isfinite(loss):
            raise TrainingDiverged(f"training diverged: validation loss is {loss} after epoch "
                                   f"{self.epoch + 1} (step {self.step})")
        return loss

    def _early_stopping(self, loss: float) -> None:
        cfg = self.config
        if loss < self.best_loss - cfg.min_delta:
            self.best_loss = loss
            self.bad_epochs = 0
            if cfg.patience is not None:
                self.best = {
                    "epoch": self.epoch + 1,
                    "loss": loss,
                    "module": {k: v.detach().clone()
                               for k, v in self.objective.module.state_dict().items()},
                    "extra": self.objective.extra_params(),
                }
        else:
            self.bad_epochs += 1
            if cfg.patience is not None and self.bad_epochs >= cfg.patience:
                self.stopped = True

    # ------------------------------------------------------------------ checkpoints

    def _checkpoint(self) -> None:
        """Write the checkpoint (rank 0; every rank contributes its RNG state and sums)."""
        cfg, dctx = self.config, self.dist
        if cfg.checkpoint_path is None:
            return
        self._flush(None)
        mine = {"rng": get_rng_state(dctx.device), "loss_sum": self.loss_sum,
                "norm_sum": self.norm_sum}
        per_rank = dctx.gather_objects(mine)
        if dctx.is_main:
            state = {
                "format": CHECKPOINT_FORMAT,
                "version": CHECKPOINT_VERSION,
                "config": cfg.to_dict(),
                "module_class": type(self.objective.module).__name__,
                "n_train": self._n_train,
                "fingerprint": self._fingerprint,
                "world": dctx.world,
                "epoch": self.epoch,
                "step": self.step,
                "batch_pos": self.batch_pos,
                "batches_per_epoch": self.n_batches,
                "epoch_gen_state": self.epoch_gen_state,
                "epoch_seconds": self.epoch_seconds,
                "per_rank": per_rank,
                "module": self.objective.module.state_dict(),
                "objective": self.objective.state_dict(),
                "history": self.history,
                "best": self.best,
                "best_loss": self.best_loss,
                "bad_epochs": self.bad_epochs,
                "stopped": self.stopped,
            }
            atomic_torch_save(state, cfg.checkpoint_path)
        self.last_checkpoint_step = self.step

    def _check_fingerprint(self, path: Path, saved: dict | None) -> None:
        """Refuse a checkpoint of other training data or another model configuration
        (architecture, physics); checkpoints written before fingerprints are not checked."""
        now = self._fingerprint or {}
        if not isinstance(saved, dict):
            return
        if saved.get("data") is not None and saved.get("data") != now.get("data"):
            raise InputError(f"checkpoint {path} was written for other training data (other "
                             "values, windows, scaling or split); resume with the same data "
                             "and options, or start afresh without resuming")
        old, new = saved.get("module"), now.get("module")
        if old is not None and new is not None and old != new:
            old, new = _flat(old), _flat(new)
            key = next(k for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k))
            raise InputError(f"checkpoint {path} was written for another model configuration: "
                             f"{key}={json.dumps(old.get(key))}, this run has "
                             f"{key}={json.dumps(new.get(key))}")

    def _restore(self, path: Path, n_train: int) -> None:
        cfg, obj, dctx = self.config, self.objective, self.dist
        ckpt = load_training_checkpoint(path, CHECKPOINT_FORMAT,
                                        "pyro-videossm training checkpoint", cfg.to_dict(),
                                        RESUME_FIXED_FIELDS, n_train)
        self._check_fingerprint(path, ckpt.get("fingerprint"))
        if ckpt["world"] != dctx.world and ckpt["batch_pos"] != 0:
            raise InputError(f"checkpoint {path} was written mid-epoch by {ckpt['world']} "
                             f"processes; resume it with the same number (now {dctx.world})")
        load_state_checked(obj.module, ckpt["module"], f"checkpoint {path}")
        obj.load_state_dict(ckpt["objective"])
        self.epoch, self.step, self.batch_pos = ckpt["epoch"], ckpt["step"], ckpt["batch_pos"]
        self.epoch_gen_state = ckpt["epoch_gen_state"]
        self.epoch_seconds = ckpt["epoch_seconds"]
        self.history = list(ckpt["history"])
        self.best, self.best_loss = ckpt["best"], ckpt["best_loss"]
        self.bad_epochs, self.stopped = ckpt["bad_epochs"], ckpt["stopped"]
        self.last_checkpoint_step = self.step
        if self.best is not None:
            device = dctx.device
            self.best["module"] = {k: v.to(device) for k, v in self.best["module"].items()}
        if ckpt["world"] == dctx.world:
            mine = ckpt["per_rank"][dctx.rank]
            set_rng_state(mine["rng"])
            self.loss_sum, self.norm_sum = mine["loss_sum"], mine["norm_sum"]
        else:  # different number of processes, at an epoch boundary: reproducible, not exact
            pyro.set_rng_seed(cfg.seed + 7919 * self.step + dctx.rank)
