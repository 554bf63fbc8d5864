"""Recipe ``recognizer``: action recognition from a fraction of the labels.

``videossm train recognizer clips.nc --dsvae dsvae.pt --label-fraction 0.01 -o r.pt`` trains
the latent recognizer (:mod:`pyro_videossm.models.video.recognizer`): the DSVAE's encoder,
frozen, gives the posterior means of ``z_{1:T}``; a GRU head learns the ``--label`` (default
``motion``) from a stratified subset of the training clips (``split == 0``;
:func:`~pyro_videossm.data.label_subsets.stratified_subset`, drawn with ``--seed``).
``--supervised`` trains the baseline instead: a CNN+GRU from scratch on the same labelled
clips (same seed, same subset). Both train for ``--steps`` optimiser steps (``--epochs``, when
given, sets epochs over the labelled clips instead). The standardisation of ``z`` uses all
training clips, without their labels. When the file has test clips (``split == 1``) the
accuracy on them is printed and kept in the model file.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import xarray as xr

from pyro_videossm.errors import InputError
from pyro_videossm.experiments.recipe import Recipe, TrainingRun, plain_history, say
from pyro_videossm.experiments.recipes import RECIPES
from pyro_videossm.experiments.windowed import option


@dataclass
class RecognizerOptions:
    dsvae: str | None = option(None, "DSVAE model file (videossm train dsvae) whose frozen "
                                     "encoder gives the latents; not with --supervised",
                               metavar="DSVAE.pt")
    supervised: bool = option(False, "the baseline: a CNN+GRU trained from scratch on the "
                                     "labelled clips")
    label: str = option("motion", "label variable to recognise")
    label_fraction: float = option(1.0, "fraction of the training clips whose label is used, "
                                        "per class (0 < f <= 1)")
    steps: int = option(500, "optimiser steps (the same budget for every fraction and kind)")
    head_hidden: int = option(64, "width of the GRU head")
    feature_dim: int = option(128, "frame-feature size of the CNN (--supervised)")
    conv_channels: int = option(32, "channels of the first convolution (--supervised)")


def class_names(ds: xr.Dataset, label: str, n_classes: int) -> list[str] | None:
    """The ``flag_meanings`` of a label variable, when there is one name per class."""
    names = str(ds[label].attrs.get("flag_meanings", "")).split()
    return names if len(names) == n_classes else None


def labelled_subset(ds: xr.Dataset, label: str, fraction: float, seed: int,
                    where: str = "data") -> tuple[np.ndarray, torch.Tensor, int]:
    """Indices of the labelled clips of ``ds`` (stratified by ``label``), all labels
    ``(N,)`` and the number of classes."""
    from pyro_videossm.data.label_subsets import stratified_subset
    from pyro_videossm.data.sprites import labels_tensor
    from pyro_videossm.evaluation.judge import label_classes

    n_classes = label_classes(ds, [label])[label]
    y = labels_tensor(ds, [label], where, {label: n_classes})[label]
    return stratified_subset(y.numpy(), fraction, seed), y, n_classes


def build_recognizer(options: RecognizerOptions, frame_shape, n_classes: int,
                     names: list[str] | None = None):
    """The untrained recognizer: the latent kind reads ``options.dsvae``."""
    from pyro_videossm.models.video.dsvae import load_dsvae
    from pyro_videossm.models.video.recognizer import Recognizer

    if options.supervised:
        if options.dsvae:
            raise InputError("--supervised trains from scratch: leave out --dsvae")
        return Recognizer(n_classes, frame_shape[0], frame_shape[1], kind="supervised",
                          label=options.label, class_names=names,
                          feature_dim=options.feature_dim,
                          conv_channels=options.conv_channels,
                          head_hidden=options.head_hidden)
    if not options.dsvae:
        raise InputError("the latent recognizer needs --dsvae model.pt (or --supervised)")
    dsvae, _ = load_dsvae(options.dsvae)
    if (dsvae.channels, dsvae.size) != (frame_shape[0], frame_shape[1]):
        raise InputError(f"the DSVAE reads {dsvae.channels}x{dsvae.size}x{dsvae.size} frames, "
                         f"the data has {'x'.join(map(str, frame_shape))}")
    return Recognizer.from_dsvae(dsvae, n_classes, head_hidden=options.head_hidden,
                                 label=options.label, class_names=names)


def train_recognizer_recipe(run: TrainingRun, options: RecognizerOptions) -> list[dict]:
    from pyro_videossm.data.sprites import frames_tensor, select_split
    from pyro_videossm.experiments.video_recipes import open_clips, training_clips
    from pyro_videossm.models.video.recognizer import (
        accuracy,
        save_recognizer,
        standardise_latents,
        train_recognizer,
    )

    if not options.label_fraction <= 1:
        raise InputError(f"--label-fraction {options.label_fraction:g} is out of range "
                         "(0 < f <= 1)")
    ds = open_clips(run.data)
    train = training_clips(run.data)
    x = frames_tensor(train, run.data_label)
    if x.shape[-1] != x.shape[-2]:
        raise InputError(f"{run.data_label}: frames must be square, got "
                         f"{x.shape[-2]}x{x.shape[-1]}")
    idx, y, n_classes = labelled_subset(train, options.label, options.label_fraction,
                                        run.seed, run.data_label)
    torch.manual_seed(run.seed)
    rec = build_recognizer(options, x.shape[2:4], n_classes,
                           class_names(train, options.label, n_classes))
    config = run.config(**RECOGNIZER.defaults)
    if rec.kind == "latent":
        standardise_latents(rec.to(config.device), x)  # all training clips, no labels
    kind = "CNN+GRU (supervised)" if options.supervised else "DSVAE latents + GRU"
    say(f"{kind}: {sum(p.numel() for p in rec.parameters() if p.requires_grad):,} trained "
        f"parameters, {len(idx)} labelled of {x.shape[0]} training clips "
        f"({options.label_fraction:.4g} of the {options.label!r} labels)")
    sel = torch.as_tensor(idx)
    history = train_recognizer(rec, x[sel], y[sel], config,
                               steps=None if run.epochs is not None else options.steps)
    extra = {"history": plain_history(history), "data": run.data_label,
             "dsvae": options.dsvae, "label_fraction": options.label_fraction,
             "labelled_clips": int(len(idx)), "training_clips": int(x.shape[0]),
             "seed": run.seed, "train_config": config.to_dict()}
    test = select_split(ds, "test") if "split" in ds.data_vars else None
    if test is not None and test.sizes["clip"] > 0 and options.label in test.data_vars:
        test = test.load()
        _, y_test, _ = labelled_subset(test, options.label, 1.0, 0, run.data_label)
        acc = accuracy(rec.cpu(), frames_tensor(test, run.data_label), y_test)
        extra["test_accuracy"] = acc
        say(f"{options.label} accuracy on {test.sizes['clip']} test clips: {acc:.2%}")
    if run.output is not None:
        save_recognizer(rec, run.output, extra=extra)
        say(f"wrote {run.output}")
    return history


RECOGNIZER = RECIPES.register(Recipe(
    name="recognizer",
    help="action recognition: GRU on the DSVAE's latents (or --supervised CNN+GRU) from a "
         "fraction of the labels",
    options=RecognizerOptions, train=train_recognizer_recipe,
    defaults={"batch_size": 32, "lr": 1e-3}))
