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


def say(msg: str) -> None:
    print(msg, file=sys.stderr)
