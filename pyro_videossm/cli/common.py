"""Small helpers shared by the sub-commands."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from pyro_videossm.errors import InputError

#: Options that name files a command writes. :func:`check_paths` refuses any of them that
#: points at another path option's file (by path, symbolic link or hard link), a folder, or
#: a missing folder, before any work is done.
OUTPUT_OPTIONS: tuple[str, ...] = ("output", "checkpoint", "json", "plot", "save_judge",
                                   "figure", "gif", "mp4", "mux", "table")


def add_progress_flag(parser: argparse.ArgumentParser) -> None:
    """``--progress`` / ``--no-progress``; by default bars show only when stderr is a terminal."""
    parser.add_argument("--progress", dest="progress", action="store_true",
                        default=sys.stderr.isatty(),
                        help="show progress bars (default: only when stderr is a terminal)")
    parser.add_argument("--no-progress", dest="progress", action="store_false",
                        help="hide progress bars")


def add_output(parser: argparse.ArgumentParser, required: bool = True, help: str = "output file"):
    parser.add_argument("-o", "--output", required=required, type=Path, help=help)


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """True if ``a`` and ``b`` name one file: the same path, a symbolic or a hard link."""
    a, b = Path(a), Path(b)
    if a.exists() and b.exists():
        return os.path.samefile(a, b)
    return a.resolve() == b.resolve()


def check_output_path(path: Path, *, inputs: tuple[Path | str | None, ...] = ()) -> Path:
    """Refuse to overwrite an input file, to write onto a folder or into a missing folder."""
    path = Path(path)
    for p in inputs:
        if p is not None and same_file(path, p):
            raise InputError(f"output {path} would overwrite the input file {p}")
    if path.is_dir():
        raise InputError(f"output {path} is a directory; give a file name")
    if path.parent and not path.parent.exists():
        raise InputError(f"output directory {path.parent} does not exist")
    return path


def check_paths(args: argparse.Namespace) -> None:
    """Check every output option of a parsed command against every other path option.

    An output may not be the same file as any other option's path (an input, or another
    output), may not be a folder, and its folder must exist. Called by ``videossm`` before a
    command runs, so bad paths fail before any work and no input is ever overwritten.
    """
    values = {k: v for k, v in vars(args).items()
              if isinstance(v, (str, os.PathLike)) and k not in ("command", "func")}
    paths = {k: v for k, v in values.items() if isinstance(v, os.PathLike) or Path(v).exists()}
    for name in OUTPUT_OPTIONS:
        out = values.get(name)
        if out is None:
            continue
        check_output_path(Path(out), inputs=tuple(v for k, v in paths.items() if k != name))


def check_device(name: str) -> str:
    """``name`` if it is a torch device this machine has (``cpu``, ``cuda``, ``cuda:1``,
    ``mps``), else a one-line :class:`InputError` before any work is done."""
    import torch

    try:
        device = torch.device(name)
    except (RuntimeError, ValueError, TypeError):
        raise InputError(f"--device {name!r} is not a torch device (e.g. cpu, cuda, "
                         "cuda:0)") from None
    if device.type == "cpu":
        return name
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError(f"--device {name}: CUDA is not available on this machine")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise InputError(f"--device {name}: this machine has "
                             f"{torch.cuda.device_count()} CUDA device(s)")
        return name
    if device.type == "mps":
        backend = getattr(torch.backends, "mps", None)
        if backend is None or not backend.is_available():
            raise InputError(f"--device {name}: MPS is not available on this machine")
        return name
    raise InputError(f"--device {name}: only cpu, cuda and mps devices are supported")


def check_arguments(args: argparse.Namespace) -> None:
    """Argument-level checks of every command before it runs: paths (:func:`check_paths`),
    the ``--device`` (:func:`check_device`) and the ``--seed`` (numpy's and Pyro's seeding
    take 0 to 2**32 - 1)."""
    check_paths(args)
    seed = getattr(args, "seed", getattr(args, "option_seed", None))
    if isinstance(seed, int) and not 0 <= seed < 2**32:
        raise InputError(f"--seed must be in [0, 2**32), got {seed}")
    device = getattr(args, "device", getattr(args, "option_device", None))  # simulators' own
    if isinstance(device, str):
        check_device(device)


class OneLineParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line on stderr (exit status 2), pointing to
    ``--help`` instead of printing the usage."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def say(msg: str) -> None:
    print(msg, file=sys.stderr)
