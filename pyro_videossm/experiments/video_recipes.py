"""Recipes ``dsvae`` and ``judge``: models of video clips ``frames(clip, time, channel, y, x)``.

* ``dsvae``: the disentangled sequential VAE (:mod:`pyro_videossm.models.video.dsvae`), with
  ``adversarial`` the motion classifier on the static latent (trained against the encoder), on
  the training clips of a video file (clips with ``split == 0`` when the file has a ``split``
  variable), whole clips as windows (no validation), SVI with the mean-field ELBO.
* ``judge``: the clip classifier of :mod:`pyro_videossm.evaluation.judge` on the training clips,
  one head per label (default: ``motion`` and the sprites' static factors), checked on the test
  clips when the file has some.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import xarray as xr

from pyro_videossm.data.sprites import STATIC_FACTORS, labels_tensor, select_split
from pyro_videossm.errors import InputError
from pyro_videossm.experiments.recipe import Recipe, TrainingRun, plain_history, say
from pyro_videossm.experiments.recipes import RECIPES
from pyro_videossm.experiments.windowed import option
from pyro_videossm.experiments.windows import build_windows

#: Labels the judge learns by default (the sprites' motion and static factors).
DEFAULT_JUDGE_LABELS = ("motion", *STATIC_FACTORS)


def open_clips(data) -> xr.Dataset:
    """The video Dataset of a path (or the Dataset itself)."""
    from pyro_videossm.data.conventions import open_dataset

    return data if isinstance(data, xr.Dataset) else open_dataset(data)


def training_clips(data) -> xr.Dataset:
    """The clips with ``split == 0`` (all clips without a ``split`` variable), loaded."""
    train = select_split(open_clips(data), "train")
    if train.sizes.get("clip", 0) == 0:
        raise InputError(f"{data if not isinstance(data, xr.Dataset) else 'data'}: no training "
                         "clips (split == 0)")
    return train.load()


@dataclass
class DSVAEOptions:
    adversarial: bool = option(False, "add the motion classifier on the static latent, "
                                      "trained against the encoder")
    static_dim: int = option(32, "size of f")
    dynamic_dim: int = option(8, "size of each z_t")
    hidden_dim: int = option(128, "LSTM/MLP width")
    feature_dim: int = option(128, "frame-feature size")
    conv_channels: int = option(32, "channels of the first convolution")
    likelihood: str = option("bernoulli", "pixel likelihood", choices=("bernoulli", "normal"))
    pixel_scale: float = option(0.1, "std of the normal likelihood")
    dynamic_encoder: str = option("frame", "q(z_t | x_t) per frame or a causal LSTM",
                                  choices=("frame", "rnn"))
    adversary_weight: float = option(30.0, "weight of the adversary's loss")
    adversary_mode: str = option("minmax", "encoder vs classifier: confusion loss (minmax) or "
                                           "gradient reversal (grl)", choices=("minmax", "grl"))
    dynamic_kl_weight: float = option(1.0, "weight beta_z of the KL of z (1: the ELBO)")
    motion_label: str = option("motion", "label variable the adversary predicts")
    anneal_epochs: int = option(0, "epochs of linear KL annealing")


def build_dsvae(options: DSVAEOptions, frame_shape, n_motion_classes: int = 9):
    """The untrained DSVAE for frames ``(channel, S, S)``."""
    from pyro_videossm.models.video.dsvae import DisentangledSequentialVAE

    return DisentangledSequentialVAE(
        frame_shape[0], frame_shape[1], static_dim=options.static_dim,
        dynamic_dim=options.dynamic_dim, feature_dim=options.feature_dim,
        hidden_dim=options.hidden_dim, conv_channels=options.conv_channels,
        likelihood=options.likelihood, pixel_scale=options.pixel_scale,
        dynamic_encoder=options.dynamic_encoder, adversarial=options.adversarial,
        n_motion_classes=n_motion_classes, adversary_weight=options.adversary_weight,
        dynamic_kl_weight=options.dynamic_kl_weight, adversary_mode=options.adversary_mode)


def _dsvae_objective(module, options):
    from pyro.infer import TraceMeanField_ELBO

    from pyro_videossm.infer import SVIObjective

    return SVIObjective(module, elbo=TraceMeanField_ELBO())


def train_dsvae_recipe(run: TrainingRun, options: DSVAEOptions) -> list[dict]:
    from pyro_videossm.models.video.dsvae import save_dsvae, train_dsvae

    ds = training_clips(run.data)
    data = build_windows(ds, ds.sizes["time"], variable="frames", valid_fraction=0.0,
                         normalize="none", kind="video")
    x = data.train["x"]
    if x.shape[-1] != x.shape[-2]:
        raise InputError(f"{run.data_label}: frames must be square, got "
                         f"{x.shape[-2]}x{x.shape[-1]}")
    motion, n_classes = None, 9
    if options.adversarial:
        from pyro_videossm.evaluation.judge import label_classes

        label = options.motion_label
        n_classes = label_classes(ds, [label])[label]
        motion = labels_tensor(ds, [label], run.data_label, {label: n_classes})[label]
    torch.manual_seed(run.seed)
    model = build_dsvae(options, x.shape[2:4], n_classes)
    config = run.config(**DSVAE.defaults, anneal_epochs=options.anneal_epochs)
    kind = "DSVAE + adversarial classifier" if options.adversarial else "DSVAE"
    say(f"{kind}: {sum(p.numel() for p in model.parameters()):,} parameters, "
        f"{x.shape[0]} training clips of {x.shape[1]} frames {x.shape[3]}x{x.shape[4]}")
    history = train_dsvae(model, x, motion, config, resume=run.resume)
    if run.output is not None:
        save_dsvae(model, run.output, extra={
            "history": plain_history(history), "data": run.data_label,
            "motion_label": options.motion_label, "train_config": config.to_dict()})
        last = history[-1]["train_loss"] if history else math.nan
        say(f"wrote {run.output} ({len(history)} epochs, loss per frame {last:.2f})")
    return history


@dataclass
class JudgeOptions:
    labels: str = option(",".join(DEFAULT_JUDGE_LABELS),
                         "comma-separated label variables, one head each")
    conv_channels: int = option(32, "channels of the first convolution")
    hidden_dim: int = option(128, "LSTM width")


def train_judge_recipe(run: TrainingRun, options: JudgeOptions) -> list[dict]:
    from pyro_videossm.evaluation.judge import judge_accuracy, save_judge, train_judge

    ds = open_clips(run.data)
    train = training_clips(run.data)
    labels = [s for s in options.labels.split(",") if s]
    config = run.config(**JUDGE.defaults)
    judge, history = train_judge(train, labels, epochs=config.epochs,
                                 batch_size=config.batch_size, lr=config.lr,
                                 conv_channels=options.conv_channels,
                                 hidden_dim=options.hidden_dim, device=config.device,
                                 seed=config.seed, progress=config.progress)
    extra = {"history": plain_history(history), "data": run.data_label}
    test = select_split(ds, "test") if "split" in ds.data_vars else None
    if test is not None and test.sizes["clip"] > 0:
        acc = judge_accuracy(judge.cpu(), test.load())
        extra["test_accuracy"] = acc
        say("judge accuracy on the test clips: "
            + ", ".join(f"{k} {v:.2%}" for k, v in acc.items()))
    if run.output is not None:
        save_judge(judge, run.output, extra=extra)
        say(f"wrote {run.output}")
    return history


DSVAE = RECIPES.register(Recipe(
    name="dsvae", help="disentangled sequential VAE (static f, dynamic z_t) on video clips",
    options=DSVAEOptions, train=train_dsvae_recipe,
    build=lambda options, data: build_dsvae(options, data.frame_shape[1:]),
    objective=_dsvae_objective, wrap=lambda module, data, options: module,
    defaults={"epochs": 20, "batch_size": 32, "lr": 1e-3}))
JUDGE = RECIPES.register(Recipe(
    name="judge", help="clip classifier (motion + static factors) that scores generated clips",
    options=JudgeOptions, train=train_judge_recipe,
    defaults={"epochs": 4, "batch_size": 32, "lr": 1e-3}))
