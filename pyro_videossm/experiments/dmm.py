"""Training a DMM for data assimilation from one observation record: the one pipeline behind
``videossm train dmm``, ``assimilation/dmm_experiments.py`` and the demo's model
(:func:`train_demo_model`).

::

    from pyro_videossm.experiments.dmm import HybridDMMOptions, train_hybrid_dmm
    run = train_hybrid_dmm(obs, HybridDMMOptions(epochs=20, window=20), output="model.pt")
    run.dmm, run.history, run.training      # the model, per-epoch losses, what was done

Steps: split off the final ``valid_fraction`` of the record for validation, cut both parts
into windows of ``window`` cycles (training windows every ``stride`` cycles, validation
windows side by side), seed torch with ``seed``, build the DMM (hybrid: known physics, the
record's own system or ``system``, plus a learned correction, :func:`~pyro_videossm.models.
ssm.hybrid.hybrid_dmm`; or neural with ``physics=False``), train it with the toolkit's SVI
loop (:func:`~pyro_videossm.models.ssm.dmm.fit_dmm`) and optionally write the model file.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import xarray as xr

from pyro_videossm.errors import InputError

if TYPE_CHECKING:
    from pyro_videossm.models.ssm.dmm import DMM


@dataclass
class HybridDMMOptions:
    """Options of :func:`train_hybrid_dmm` (the defaults are those of ``videossm train dmm``:
    the tuned Lorenz-63 recipe of docs/RESULTS.md, 10 epochs of 64 windows per step at lr 0.002
    decaying by 0.9 per epoch, 5 RK4 steps per cycle, a 64-unit guide RNN; measured in
    docs/TRAINING.md, "Defaults")."""

    physics: bool = field(default=True, metadata={
        "help": "known physics in the transition (the record's system, or the system given "
                "to train_hybrid_dmm) plus a learned correction; False: a neural DMM"})
    guide: str = field(default="smoothing", metadata={
        "help": "guide: smoothing, filtering or meanfield"})
    window: int = field(default=20, metadata={
        "help": "cycles per training window; the dmm method assimilates in windows of the "
                "same length"})
    stride: int | None = field(default=None, metadata={
        "help": "cycles between training window starts (default window / 5)"})
    valid_fraction: float = field(default=0.0, metadata={
        "help": "final fraction of the record held out for validation"})
    rnn_dim: int = field(default=64, metadata={"help": "units of the guide's RNN"})
    correction_hidden: tuple[int, ...] = field(default=(64, 64), metadata={
        "help": "hidden widths of the learned correction; () for pure physics"})
    physics_substeps: int | None = field(default=5, metadata={
        "help": "RK4 steps per cycle of the known physics, at most the data's own (default "
                "5; 0 or None: the data's integration step, exact but slower)"})
    guide_substeps: int | None = field(default=None, metadata={
        "help": "RK4 steps per cycle in the guide's forecast (default: those of the model)"})
    look_ahead: int = field(default=0, metadata={
        "help": "future observations the guide reads through the linearised physics at each "
                "step (0: off; a nonzero value turns smoother_iterations off)"})
    smoother_iterations: int = field(default=5, metadata={
        "help": "smoothing guide with physics: Gauss-Newton relinearisations of the backward "
                "messages of all later observations (0: off; default 5, the recipe that beats "
                "the iEnKS in docs/LORENZ63_DMM.md; 3: the earlier default)"})
    guide_residual: bool = field(default=True, metadata={
        "help": "the guide's learned residual on each step's mean (False: left out; with a "
                "sharp posterior its first training steps can spoil the guide)"})
    correction_units: str = field(default="climatology", metadata={
        "help": "units of the learned correction's output: climatology, or transition (the "
                "initial transition noise: for physics known to be right, where Adam's first "
                "steps in climatological units bias every forecast and spoil the guide)"})
    transition_scale: float | None = field(default=None, metadata={
        "help": "initial transition noise std (default: from the observation noise, see "
                "hybrid_dmm)"})
    learn_transition_scale: bool = field(default=True, metadata={
        "help": "learn the transition noise (False: keep transition_scale)"})
    learn_obs_noise: bool = field(default=False, metadata={
        "help": "learn the observation noise instead of using obs_noise_std"})
    likelihood: str = field(default="gaussian", metadata={
        "help": "observation errors: gaussian, or student_t (heavy tails: robust to "
                "outliers; scale the observation noise std)"})
    obs_df: float = field(default=4.0, metadata={
        "help": "degrees of freedom of the student_t likelihood"})
    z_dim: int | None = field(default=None, metadata={
        "help": "latent dimension of a neural DMM (default: the observed dimension)"})
    epochs: int = field(default=10, metadata={"help": "training epochs"})
    batch_size: int = field(default=64, metadata={"help": "windows per SVI step"})
    lr: float = field(default=2e-3, metadata={"help": "learning rate (ClippedAdam)"})
    lr_decay: float = field(default=0.9, metadata={"help": "learning-rate factor per epoch"})
    anneal_epochs: int = field(default=0, metadata={"help": "KL annealing epochs"})
    patience: int | None = field(default=None, metadata={
        "help": "early stopping: epochs without validation improvement"})
    compile: bool = field(default=False, metadata={
        "help": "torch.compile the per-step work while training (the returned and saved "
                "model is a plain copy)"})
    seed: int = field(default=0, metadata={"help": "torch seed of initialisation and training"})

    def check(self) -> None:
        """Raise :class:`InputError` (one line) for an option out of range."""
        checks = [
            (self.window >= 2, f"window must be >= 2, got {self.window}"),
            (self.stride is None or self.stride >= 1, f"stride must be >= 1, got {self.stride}"),
            (0 <= self.valid_fraction < 1,
             f"valid_fraction must be in [0, 1), got {self.valid_fraction}"),
            (self.look_ahead >= 0, f"look_ahead must be >= 0, got {self.look_ahead}"),
            (self.smoother_iterations >= 0,
             f"smoother_iterations must be >= 0, got {self.smoother_iterations}"),
            (all(int(h) >= 1 for h in self.correction_hidden),
             f"correction widths must be >= 1, got {tuple(self.correction_hidden)}"),
            (self.rnn_dim >= 1, f"rnn_dim must be >= 1, got {self.rnn_dim}"),
            (self.correction_units in ("climatology", "transition"),
             f"correction_units must be climatology or transition, got "
             f"{self.correction_units!r}"),
            (self.likelihood in ("gaussian", "student_t"),
             f"likelihood must be gaussian or student_t, got {self.likelihood!r}"),
            (self.obs_df > 0, f"obs_df must be > 0, got {self.obs_df}"),
            (self.physics_substeps is None or self.physics_substeps >= 0,
             f"physics_substeps must be >= 0, got {self.physics_substeps}"),
            *((value is None or value >= 1, f"{name} must be >= 1, got {value}")
              for name, value in (("guide_substeps", self.guide_substeps),
                                  ("z_dim", self.z_dim), ("epochs", self.epochs),
                                  ("batch_size", self.batch_size),
                                  ("patience", self.patience))),
            (self.lr > 0, f"lr must be > 0, got {self.lr}"),
            (0 < self.lr_decay <= 1, f"lr_decay must be in (0, 1], got {self.lr_decay}"),
            (self.anneal_epochs >= 0, f"anneal_epochs must be >= 0, got {self.anneal_epochs}"),
        ]
        for ok, message in checks:
            if not ok:
                raise InputError(message)

    def train_stride(self) -> int:
        """Cycles between training window starts."""
        return int(self.stride or max(1, self.window // 5))


@dataclass
class TrainedDMM:
    """What :func:`train_hybrid_dmm` returns: the trained ``dmm``, the per-epoch
    ``history`` and ``training``, a plain record of the run (options, windows, SVI steps,
    wall and CPU seconds, threads, final loss per cycle)."""

    dmm: Any
    history: list[dict]
    training: dict[str, Any]


def split_record(obs: xr.Dataset, valid_fraction: float, window: int
                 ) -> tuple[xr.Dataset, xr.Dataset | None]:
    """The record cut into a training part and the final ``valid_fraction`` (at least one
    window when nonzero; ``None`` when zero)."""
    n = obs.sizes["time"]
    if not 0 <= valid_fraction < 1:
        raise InputError(f"valid_fraction must be in [0, 1), got {valid_fraction}")
    n_valid = int(round(valid_fraction * n))
    if n_valid and n_valid < window:
        n_valid = window
    if n - n_valid < window:
        raise InputError(f"the record has {n} cycles: too short for windows of {window} cycles"
                         + (" plus a validation part" if n_valid else ""))
    train = obs.isel(time=slice(0, n - n_valid))
    valid = obs.isel(time=slice(n - n_valid, n)) if n_valid else None
    return train, valid


def build_dmm(obs: xr.Dataset, options: HybridDMMOptions, system=None):
    """The DMM ``options`` describe, sized for the record ``obs`` (hybrid: ``physics_substeps``
    RK4 steps per cycle, at most the record's own integration steps, see
    :func:`~pyro_videossm.models.ssm.hybrid.hybrid_dmm`; neural: classic combiner, the
    record's mean and std as input standardisation)."""
    from pyro_videossm.models.ssm.dmm import DMM
    from pyro_videossm.models.ssm.hybrid import hybrid_dmm

    if options.physics:
        substeps = options.physics_substeps or None  # 0: the data's own step
        if substeps is not None:  # never finer than the data's integration step
            substeps = min(int(substeps), int(obs.attrs["steps_per_obs"]))
        return hybrid_dmm(obs, system=system, guide=options.guide, rnn_dim=options.rnn_dim,
                          correction_hidden=tuple(int(h) for h in options.correction_hidden),
                          transition_scale=options.transition_scale,
                          learn_transition_scale=options.learn_transition_scale,
                          physics_substeps=substeps,
                          guide_substeps=options.guide_substeps,
                          look_ahead=options.look_ahead,
                          smoother_iterations=options.smoother_iterations,
                          guide_residual=options.guide_residual,
                          correction_units=options.correction_units,
                          learn_obs_noise=options.learn_obs_noise,
                          likelihood=options.likelihood, obs_df=options.obs_df)
    from pyro_videossm.data.observation_settings import complete_observations

    values = obs["obs"].values
    D = values.shape[1]
    loc = np.nan_to_num(np.nanmean(values, 0)).tolist()
    scale = np.nan_to_num(np.nanstd(values, 0), nan=1.0).clip(1e-3).tolist()
    # the initial observation noise (learned): the data's own if given, else a tenth of the spread
    noise = complete_observations(obs, require=False).attrs.get("obs_noise_std")
    noise = 0.1 * np.mean(scale) if noise is None else np.mean(np.atleast_1d(noise))
    return DMM(D, options.z_dim or D, likelihood=options.likelihood, obs_df=options.obs_df,
               obs_scale=float(noise),
               learn_obs_scale=True, emission_dim=64, transition_dim=64,
               rnn_dim=options.rnn_dim, guide=options.guide, combiner="classic",
               x_loc=loc, x_scale=scale)


def _finite(history: list[dict]) -> list[dict]:
    return [{k: (None if v is None or (isinstance(v, float) and not math.isfinite(v)) else v)
             for k, v in h.items()} for h in history]


def train_hybrid_dmm(obs, options: HybridDMMOptions | None = None, *, system=None,
                     device: str = "cpu", checkpoint_path: str | Path | None = None,
                     resume: bool = False, progress: bool = False,
                     output: str | Path | None = None, extra: dict | None = None,
                     log=None, announce: bool = False) -> TrainedDMM:
    """Train a (hybrid-physics) DMM on windows of the observation record ``obs`` (a dataset
    or a file in the :func:`pyro_videossm.data.simulate` layout).

    Args:
        options: :class:`HybridDMMOptions` (default: all defaults).
        system: the known physics, an :class:`~pyro_videossm.dynamics.ODESystem` (default:
            the system named in ``obs``; e.g. ``Lorenz63(rho=24)`` for wrong physics).
        device, checkpoint_path, resume, progress: as in
            :class:`~pyro_videossm.infer.TrainConfig` and ``Trainer.fit``.
        output: write the trained model file there (:func:`~pyro_videossm.models.ssm.
            dmm_file.save_dmm`; extra: ``window``, ``stride``, ``history``,
            ``train_config``, ``training`` and the entries of ``extra``).
        log: ``str -> None`` for one line before training (model size, windows).
        announce: print that line on stderr once the data and any checkpoint are accepted
            (what the command line does: a refused resume is then one line alone).
    """
    from pyro_videossm.data.chaotic import load_observations
    from pyro_videossm.infer import TrainConfig
    from pyro_videossm.models.ssm.dmm import fit_dmm
    from pyro_videossm.models.ssm.dmm_file import dmm_from_config, save_dmm
    from pyro_videossm.models.ssm.hybrid import observation_windows

    options = options if options is not None else HybridDMMOptions()
    options.check()
    obs = load_observations(obs)
    window, stride = int(options.window), options.train_stride()
    train_obs, valid_obs = split_record(obs, options.valid_fraction, window)
    train = observation_windows(train_obs, window, stride)
    valid = None if valid_obs is None else observation_windows(valid_obs, window, window)
    torch.manual_seed(options.seed)
    dmm = build_dmm(obs, options, system)
    if options.compile:
        dmm.compile_steps()
    config = TrainConfig(epochs=options.epochs, batch_size=options.batch_size, lr=options.lr,
                         lr_decay=options.lr_decay, anneal_epochs=options.anneal_epochs,
                         patience=options.patience, device=device, seed=options.seed,
                         checkpoint_path=None if checkpoint_path is None else str(checkpoint_path),
                         progress=progress)
    kind = f"hybrid {dmm.config['physics']['system']}" if options.physics else "neural"
    description = (f"dmm ({kind}, {options.guide} guide): "
                   f"{sum(p.numel() for p in dmm.parameters()):,} parameters, "
                   f"{train['x'].shape[0]} training windows of {window} cycles")
    wall, cpu = time.perf_counter(), time.process_time()
    if log is not None:
        log(description)
    # on stderr once any checkpoint is accepted, so that a refusal is one line alone
    history = fit_dmm(dmm, train, config, valid=valid, resume=resume,
                      announce=description if announce else None)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    if options.compile:  # a plain (uncompiled) copy to return and save
        fresh = dmm_from_config(dmm.config, system=system).to(device)
        fresh.load_state_dict(dmm.state_dict())
        dmm = fresh
    n_windows = int(train["x"].shape[0])
    training = {
        "options": {k: list(v) if isinstance(v, tuple) else v
                    for k, v in dataclasses.asdict(options).items()},
        "train_cycles": int(train_obs.sizes["time"]), "window": window, "stride": stride,
        "windows": n_windows, "epochs": len(history),
        "steps": len(history) * -(-n_windows // options.batch_size),
        "wall_seconds": round(wall, 1), "cpu_seconds": round(cpu, 1),
        "threads": torch.get_num_threads(),
        "final_loss_per_cycle": history[-1]["train_loss"] if history else None,
    }
    if output is not None:
        save_dmm(output, dmm.cpu(), extra={
            "history": _finite(history), "window": window, "stride": stride,
            "train_config": config.to_dict(), "training": training, **(extra or {})})
    return TrainedDMM(dmm, history, training)


__all__ = ["HybridDMMOptions", "TrainedDMM", "build_dmm", "split_record", "train_hybrid_dmm"]


#: the demo's DMM budget: training record, window, epochs (about a minute on 2 CPU cores)
DEMO_TRAINING = {"cycles": 5000, "window": 20, "epochs": 10, "lr": 2e-3, "lr_decay": 0.9,
                 "batch_size": 64, "physics_substeps": 5, "smoother_iterations": 5}


def train_demo_model(path: str | Path, *, seed: int = 1001, epochs: int | None = None,
                     cycles: int | None = None, smoother_iterations: int | None = None,
                     progress: bool = False) -> DMM:
    """Train the demo's hybrid DMM (Lorenz-63 with its true physics) and write it to ``path``.

    The training record is its own simulation of the standard Lorenz-63 setting (``seed``),
    cut into overlapping windows; the settings are :data:`DEMO_TRAINING` (those of the
    ``l63`` experiment in ``assimilation/dmm_experiments.py``; 5 Gauss-Newton iterations in
    the smoothing guide, ``smoother_iterations=3`` gives the earlier demo recipe). Returns the
    trained model.
    """
    from pyro_videossm.data.chaotic import simulate

    settings = dict(DEMO_TRAINING)
    if epochs is not None:
        settings["epochs"] = int(epochs)
    if cycles is not None:
        settings["cycles"] = int(cycles)
    if smoother_iterations is not None:
        settings["smoother_iterations"] = int(smoother_iterations)
    train = simulate("lorenz63", cycles=settings["cycles"], seed=seed)
    window = settings["window"]
    options = HybridDMMOptions(window=window, stride=max(1, window // 5), rnn_dim=64,
                               physics_substeps=settings["physics_substeps"],
                               epochs=settings["epochs"], batch_size=settings["batch_size"],
                               lr=settings["lr"], lr_decay=settings["lr_decay"],
                               smoother_iterations=settings["smoother_iterations"], seed=seed)
    return train_hybrid_dmm(train, options, progress=progress, output=path,
                            extra={"training": {**settings, "seed": seed}}).dmm
