"""The run shared by the recipes that train on windows of ``context + leads`` frames.

:func:`train_windowed` cuts the windows with
:func:`~pyro_videossm.experiments.windows.build_windows` (normalisation fitted on the training
part, chronological validation split), builds the recipe's model, fits it with the shared
:class:`~pyro_videossm.infer.Trainer` and the recipe's objective, and writes the wrapped
forecaster's model file with ``extra = {"history", "data", "variable", "leads",
"train_config"}``. :class:`WindowOptions` are the options these recipes share.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from pyro_videossm.experiments.normalization import NORMALIZATIONS
from pyro_videossm.experiments.recipe import Recipe, TrainingRun, fmt_loss, plain_history, say
from pyro_videossm.experiments.windows import WindowData, build_windows


def option(default, help: str, **metadata):
    """A dataclass field with a default (a list default is copied) and its flag's help."""
    metadata["help"] = help
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass
class WindowOptions:
    """Data and schedule options of every windowed recipe."""

    variable: str | None = option(None, "data variable (default: frames, obs, precip, ... or "
                                        "the only one)")
    context: int = option(10, "context frames")
    leads: int = option(10, "forecast steps")
    stride: int = option(1, "steps between training windows of one series")
    valid_fraction: float = option(0.1, "samples (or final time steps of one series) held out "
                                        "for validation")
    normalize: str = option("none", "scaling fitted on the training part: robust (1st-99th "
                                    "percentiles to [0, 1]), minmax, log or none (identity)",
                            choices=NORMALIZATIONS)
    patience: int | None = option(None, "stop after this many epochs without validation "
                                        "improvement")
    lr_decay: float = option(1.0, "learning-rate factor per epoch")


def load_windows(options: WindowOptions, data) -> WindowData:
    """The windows ``options`` describe, cut from ``data`` (path or Dataset)."""
    return build_windows(data, options.context, options.leads, variable=options.variable,
                         stride=options.stride, valid_fraction=options.valid_fraction,
                         normalize=options.normalize)


def train_windowed(recipe: Recipe, run: TrainingRun, options: WindowOptions,
                   check=None) -> list[dict]:
    """The whole run of a windowed recipe (module docstring); ``check(data, options)`` may
    refuse the data before a model is built. Returns the history."""
    from pyro_videossm.infer import Trainer

    torch.manual_seed(run.seed)
    data = load_windows(options, run.data)
    if check is not None:
        check(data, options)
    module = recipe.build(options, data)
    schedule = {"lr_decay": options.lr_decay, "patience": options.patience}
    for key in ("anneal_epochs", "min_anneal"):
        if hasattr(options, key):
            schedule[key] = getattr(options, key)
    config = run.config(**{**recipe.defaults, **schedule})
    announce = (f"{recipe.name}: {sum(p.numel() for p in module.parameters()):,} parameters, "
                f"{data.n_train} training and {data.n_valid} validation windows of "
                f"{options.context}+{options.leads} frames "
                f"{'x'.join(map(str, data.frame_shape))}; scaling {data.scaling.describe()}")
    trainer = Trainer(recipe.objective(module, options), config)
    history = trainer.fit(data.train, data.valid, resume=run.resume, announce=announce)
    model = recipe.wrap(module.cpu(), data, options)
    if run.output is not None:
        model.save(run.output, extra={
            "history": plain_history(history), "data": run.data_label,
            "variable": data.variable, "leads": options.leads,
            "train_config": config.to_dict()})
        last = history[-1] if history else {}
        say(f"wrote {run.output} (epochs {len(history)}, train loss "
            f"{fmt_loss(last.get('train_loss'))}, valid loss "
            f"{fmt_loss(last.get('valid_loss'))})")
    return history
