"""The ``videossm`` command: one sub-command module per verb.

Each module in :data:`COMMAND_MODULES` defines ``register(subparsers)`` which adds its
sub-command and sets ``func`` (called with the parsed ``args``; returns an exit status).
Bad input raises :class:`~pyro_videossm.errors.InputError`; ``main`` prints it as one line
and exits with status 2, as argparse does for bad options. A
:class:`~pyro_videossm.errors.DataWarning` (e.g. innovations that contradict the dynamics) is
printed as one line, ``videossm COMMAND: warning: ...``, on stderr.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings

from tqdm import tqdm

from pyro_videossm import __version__
from pyro_videossm.cli.common import OneLineParser, check_arguments
from pyro_videossm.errors import DataWarning, InputError
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
    "pyro_videossm.cli.convert_radar",
    "pyro_videossm.cli.evaluate_generation",
    "pyro_videossm.cli.recognize",
    "pyro_videossm.cli.sonify",
    "pyro_videossm.cli.generate",
)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
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
    # no tqdm monitor thread: a garbage collection it triggers may close a netCDF file (HDF5 is
    # not thread-safe) while the main thread opens another, which can crash the process
    tqdm.monitor_interval = 0
    if tqdm.monitor is not None:  # one started earlier in this process (in-process calls)
        tqdm.monitor.exit()
        tqdm.monitor = None
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        check_arguments(args)
        return run_command(args)
    except InputError as err:
        print(f"videossm {args.command}: error: {err}", file=sys.stderr)
        return 2
    except TrainingDiverged as err:
        print(f"videossm {args.command}: training stopped: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"videossm {args.command}: interrupted", file=sys.stderr)
        return 130


def run_command(args: argparse.Namespace) -> int:
    """Run the parsed command; its warnings are printed when it ends (:func:`print_warnings`)."""
    caught: list[warnings.WarningMessage] = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", DataWarning)
            return int(args.func(args) or 0)
    finally:
        print_warnings(args.command, caught)


def print_warnings(command: str, caught: list[warnings.WarningMessage]) -> None:
    """Data warnings as one line each on stderr; any other warning as Python shows it."""
    seen: set[str] = set()
    for w in caught:
        if issubclass(w.category, DataWarning):
            line = " ".join(str(w.message).split())
            if line not in seen:
                seen.add(line)
                print(f"videossm {command}: warning: {line}", file=sys.stderr)
        else:
            warnings.showwarning(w.message, w.category, w.filename, w.lineno, w.file, w.line)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
