"""``videossm train MODEL data.nc -o model.pt``: train a recipe of
:data:`pyro_videossm.experiments.recipes.RECIPES` and write the model file.

Each recipe's flags are generated from its options dataclass (one ``--kebab-case`` flag per
field, with the field's default and ``metadata["help"]``); the options every run shares are
:func:`add_common_training_arguments`. Command-line-only trainers plug in with
:func:`register_trainer`; modules listed in :data:`TRAINER_MODULES` are imported when the parser
is built.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pyro_videossm.cli.common import add_progress_flag, check_output_path
from pyro_videossm.experiments.recipe import Recipe, TrainingRun
from pyro_videossm.experiments.recipes import RECIPES

#: modules that call :func:`register_trainer` (imported when the parser is built)
TRAINER_MODULES: tuple[str, ...] = ("pyro_videossm.cli.train_dmm",)


def register_trainer(
    name: str,
    help: str,
    arguments: Callable[[argparse.ArgumentParser], None],
    run: Callable[[argparse.Namespace], int],
) -> None:
    """Add ``videossm train NAME``: ``arguments`` adds its options, ``run`` trains and saves."""
    RECIPES.register(Recipe(name=name, help=help, arguments=arguments, run=run))


def add_common_training_arguments(parser: argparse.ArgumentParser) -> None:
    """Options every trainer shares (data file, output, epochs, device, seed, checkpoints)."""
    parser.add_argument("data", type=Path, help="training data (netCDF)")
    parser.add_argument("-o", "--output", type=Path, required=True, help="model file to write")
    parser.add_argument("--epochs", type=int, help="training epochs")
    parser.add_argument("--lr", type=float, help="learning rate")
    parser.add_argument("--batch-size", type=int, help="mini-batch size")
    parser.add_argument("--device", default="cpu", help="torch device (default cpu)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--checkpoint", type=Path,
                        help="checkpoint file, written during training and resumed from")
    parser.add_argument("--resume", action="store_true", help="resume from --checkpoint")
    add_progress_flag(parser)


# -- flags from an options dataclass ----------------------------------------------------------
def _flag_type(hint: Any) -> tuple[type, Any]:
    """``(element type, nargs)`` of a type hint: ``int``, ``float | None``, ``list[int]``
    (nargs ``+``), ``tuple[float, float]`` (nargs 2)."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    origin = typing.get_origin(hint)
    if origin is list:
        return typing.get_args(hint)[0], "+"
    if origin is tuple:
        args = typing.get_args(hint)
        return args[0], len(args)
    return hint, None


def _default_text(default: Any) -> str:
    if isinstance(default, (list, tuple)):
        return " ".join(map(str, default))
    return f"{default:g}" if isinstance(default, float) else str(default)


def add_option_arguments(parser: argparse.ArgumentParser, options: type) -> None:
    """One flag per field of the dataclass ``options`` (``--field-name``)."""
    hints = typing.get_type_hints(options)
    for f in dataclasses.fields(options):
        meta = dict(f.metadata)
        flag = meta.pop("flag", "--" + f.name.replace("_", "-"))
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING \
            else f.default
        help_ = meta.pop("help", "")
        if default is not None and default is not False:
            help_ += f" (default {_default_text(default)})"
        if hints[f.name] is bool:
            parser.add_argument(flag, dest=f.name, action="store_true", help=help_)
            continue
        kind, nargs = _flag_type(hints[f.name])
        parser.add_argument(flag, dest=f.name, type=kind, nargs=nargs, default=default,
                            help=help_, **meta)


def options_from_args(options: type, args: argparse.Namespace) -> Any:
    """The dataclass ``options`` filled from the parsed flags."""
    hints = typing.get_type_hints(options)
    values = {}
    for f in dataclasses.fields(options):
        value = getattr(args, f.name)
        if value is not None and _flag_type(hints[f.name])[1] not in (None, "+"):
            value = tuple(value)
        values[f.name] = value
    return options(**values)


def training_run(args: argparse.Namespace) -> TrainingRun:
    return TrainingRun(data=args.data, output=args.output, epochs=args.epochs, lr=args.lr,
                       batch_size=args.batch_size, device=args.device, seed=args.seed,
                       checkpoint=args.checkpoint, resume=args.resume, progress=args.progress)


# -- the sub-command ----------------------------------------------------------------------------
def register(sub) -> None:
    for module in TRAINER_MODULES:
        importlib.import_module(module)
    parser = sub.add_parser("train", help="train a model and write it to a file")
    models = parser.add_subparsers(dest="model_name", metavar="MODEL", required=True)
    for name, recipe in RECIPES.items():
        p = models.add_parser(name, help=recipe.help)
        add_common_training_arguments(p)
        if recipe.options is not None:
            add_option_arguments(p, recipe.options)
        elif recipe.arguments is not None:
            recipe.arguments(p)
        p.set_defaults(func=_checked(recipe))


def _checked(recipe: Recipe):
    def run(args) -> int:
        check_output_path(args.output, inputs=(args.data,))
        if recipe.options is None:
            return recipe.run(args)
        recipe.fit(training_run(args), options_from_args(recipe.options, args))
        return 0

    return run
