"""What a training recipe is: :class:`Recipe`, its options and the run settings it receives.

A recipe names everything needed to train one kind of model from a data file:

* ``options``: a dataclass of the recipe's settings; each field has a default and
  ``metadata={"help": ...}`` (optionally ``"choices"``, ``"metavar"``, ``"flag"``), so the
  command line (``videossm train NAME``) generates one flag per field;
* ``build(options, data) -> module``: the model builder (``data``: the
  :class:`~pyro_videossm.experiments.windows.WindowData` it trains on);
* ``objective(module, options) -> Objective``: the SVI ELBO or the loss the shared
  :class:`~pyro_videossm.infer.Trainer` minimises;
* ``wrap(module, data, options)``: the trained forecaster or method, with ``save(path, extra)``;
* ``defaults``: the :class:`~pyro_videossm.infer.TrainConfig` fields a run does not set;
* ``train(run, options) -> history``: the whole run (data, model, fit, model file).

Recipes made with :func:`pyro_videossm.cli.train.register_trainer` have no options class:
they add their own ``arguments`` to the parser and ``run(args)`` themselves.
"""

from __future__ import annotations

import dataclasses
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import xarray as xr

from pyro_videossm.errors import InputError


@dataclass
class TrainingRun:
    """The settings every training run shares (``videossm train``'s common options).

    ``epochs``, ``lr``, ``batch_size``: ``None`` keeps the recipe's default.
    """

    data: str | Path | xr.Dataset
    output: str | Path | None = None
    epochs: int | None = None
    lr: float | None = None
    batch_size: int | None = None
    device: str = "cpu"
    seed: int = 0
    checkpoint: str | Path | None = None
    resume: bool = False
    progress: bool = True

    def config(self, **defaults):
        """The :class:`~pyro_videossm.infer.TrainConfig`: ``defaults`` overridden by the run's
        settings that are set."""
        from pyro_videossm.infer import TrainConfig

        return TrainConfig.from_args(self, **defaults)

    @property
    def data_label(self) -> str:
        """The data as recorded in a model file (its path, or ``<dataset>``)."""
        return "<dataset>" if isinstance(self.data, xr.Dataset) else str(self.data)


@dataclass(frozen=True)
class Recipe:
    """Name -> model builder, objective, forecaster/method wrapper, defaults (module doc)."""

    name: str
    help: str
    options: type | None = None
    train: Callable[[TrainingRun, Any], list[dict]] | None = None
    build: Callable[..., Any] | None = None
    objective: Callable[..., Any] | None = None
    wrap: Callable[..., Any] | None = None
    defaults: dict[str, Any] = field(default_factory=dict)
    #: for recipes without an options class: ``arguments(parser)`` and ``run(args) -> status``
    arguments: Callable[[Any], None] | None = None
    run: Callable[[Any], int] | None = None

    def make_options(self, **values) -> Any:
        """The options with ``values`` set (others at their defaults); unknown names raise."""
        if self.options is None:
            raise InputError(f"recipe {self.name!r} has no options class")
        known = {f.name for f in dataclasses.fields(self.options)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise InputError(f"recipe {self.name!r} has no option {unknown[0]!r} "
                             f"(options: {', '.join(sorted(known))})")
        return self.options(**values)

    def fit(self, run: TrainingRun, options: Any = None) -> list[dict]:
        """Train as ``videossm train NAME`` does: writes ``run.output``; returns the history."""
        if self.train is None:
            raise InputError(f"recipe {self.name!r} trains only from the command line")
        options = options if options is not None else self.make_options()
        check_option_ranges(options)
        return self.train(run, options)


#: option names for which 0 is a meaningful value (all other numbers must be > 0)
ZERO_ALLOWED = frozenset({"n_down", "anneal_epochs", "valid_fraction", "min_anneal",
                          "adversary_weight", "dynamic_kl_weight", "transform_threshold",
                          "adversarial_weight", "spectral_weight", "consistency_weight",
                          "rollout_horizon", "translator_l1", "linear_kernel",
                          "sharpen_amount", "texture_budget", "colour_kl"})
#: option names whose values lie in [0, 1] (``valid_fraction`` in [0, 1))
FRACTIONS = frozenset({"valid_fraction", "min_anneal", "lr_decay", "texture_budget"})


def check_option_ranges(options: Any) -> None:
    """Raise a one-line :class:`InputError` for a number of the options dataclass out of range:
    counts, sizes, widths, scales and rates must be > 0 (>= 0 for :data:`ZERO_ALLOWED`), the
    fractions of :data:`FRACTIONS` at most 1 (``valid_fraction`` below 1), quantile levels in
    (0, 1). Tuples (clipping ranges) are not checked."""
    for f in dataclasses.fields(options):
        value = getattr(options, f.name)
        values = value if isinstance(value, list) else [value]
        for v in values:
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                continue
            low_ok = v >= 0 if f.name in ZERO_ALLOWED else v > 0
            high_ok = (v < 1 if f.name == "valid_fraction" else v <= 1
                       if f.name in FRACTIONS else v < 1 if f.name == "quantiles" else True)
            if not (low_ok and high_ok and math.isfinite(v)):
                flag = "--" + f.name.replace("_", "-")
                raise InputError(f"{flag} {v:g} is out of range" + (
                    " (0 to 1)" if f.name in FRACTIONS or f.name == "quantiles" else
                    " (must be >= 0)" if f.name in ZERO_ALLOWED else " (must be > 0)"))


def say(message: str) -> None:
    """Progress messages of a run (stderr, as the command line prints them)."""
    print(message, file=sys.stderr)


def plain_history(history: list[dict]) -> list[dict]:
    """The history with NaN/inf/None losses as ``None`` (JSON-safe, for the model file)."""
    return [{k: (None if v is None or (isinstance(v, float) and not math.isfinite(v)) else v)
             for k, v in h.items()} for h in history]


def fmt_loss(value: float | None, digits: int = 5) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.{digits}g}"
