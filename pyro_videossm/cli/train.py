"""``videossm train MODEL data.nc -o model.pt``: train a model with the toolkit's SVI loop.

Models register with :func:`register_trainer`; modules listed in :data:`TRAINER_MODULES`
are imported when the parser is built (add yours there).
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from pathlib import Path

from pyro_videossm.cli.common import add_progress_flag, check_output_path

#: name -> (help, add_arguments(parser), run(args) -> exit status)
TRAINERS: dict[str, tuple[str, Callable, Callable]] = {}

TRAINER_MODULES: tuple[str, ...] = ("pyro_videossm.cli.train_sequence",
                                     "pyro_videossm.cli.train_fields",
                                     "pyro_videossm.cli.train_dsvae",
                                     "pyro_videossm.cli.train_dmm")


def register_trainer(
    name: str,
    help: str,
    arguments: Callable[[argparse.ArgumentParser], None],
    run: Callable[[argparse.Namespace], int],
) -> None:
    """Add ``videossm train NAME``: ``arguments`` adds its options, ``run`` trains and saves."""
    TRAINERS[name] = (help, arguments, run)


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


def register(sub) -> None:
    for module in TRAINER_MODULES:
        importlib.import_module(module)
    parser = sub.add_parser("train", help="train a model and write it to a file")
    models = parser.add_subparsers(dest="model_name", metavar="MODEL", required=True)
    for name, (help_, arguments, run) in TRAINERS.items():
        p = models.add_parser(name, help=help_)
        add_common_training_arguments(p)
        arguments(p)
        p.set_defaults(func=_checked(run))


def _checked(run):
    def wrapper(args) -> int:
        check_output_path(args.output, inputs=(args.data,))
        return run(args)

    return wrapper
