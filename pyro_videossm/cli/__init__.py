"""The ``videossm`` command: one sub-command module per verb.

Each module in :data:`COMMAND_MODULES` defines ``register(subparsers)`` which adds its
sub-command and sets ``func`` (called with the parsed ``args``; returns an exit status).
Bad input raises :class:`~pyro_videossm.errors.InputError`; ``main`` prints it as one line
and exits with status 2, as argparse does for bad options.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from pyro_videossm import __version__
from pyro_videossm.cli.common import check_paths
from pyro_videossm.errors import InputError
from pyro_videossm.infer.trainer import TrainingDiverged

COMMAND_MODULES: tuple[str, ...] = (
    "pyro_videossm.cli.simulate",
    "pyro_videossm.cli.assimilate",
    "pyro_videossm.cli.evaluate",
    "pyro_videossm.cli.plot",
    "pyro_videossm.cli.train",
    "pyro_videossm.cli.demo",
    "pyro_videossm.cli.forecast",
    "pyro_videossm.cli.disentangle",
    "pyro_videossm.cli.animate",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="videossm",
        description="Deep state-space models on Pyro: data assimilation, fields and video.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMAND_MODULES:
        importlib.import_module(module).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    import matplotlib

    matplotlib.use("Agg")  # the command line draws to files; the library never picks a backend
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        check_paths(args)
        return int(args.func(args) or 0)
    except InputError as err:
        print(f"videossm {args.command}: error: {err}", file=sys.stderr)
        return 2
    except TrainingDiverged as err:
        print(f"videossm {args.command}: training stopped: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"videossm {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
