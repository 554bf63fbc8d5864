"""Small helpers shared by the sub-commands."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pyro_videossm.errors import InputError


def add_progress_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-progress", dest="progress", action="store_false",
                        help="hide progress bars")


def add_output(parser: argparse.ArgumentParser, required: bool = True, help: str = "output file"):
    parser.add_argument("-o", "--output", required=required, type=Path, help=help)


def check_output_path(path: Path, *, inputs: tuple[Path, ...] = ()) -> Path:
    """Refuse to overwrite an input file or write into a missing directory."""
    path = Path(path)
    for p in inputs:
        if Path(p).exists() and path.exists() and path.resolve() == Path(p).resolve():
            raise InputError(f"output {path} would overwrite the input file")
    if path.parent and not path.parent.exists():
        raise InputError(f"output directory {path.parent} does not exist")
    return path


def say(msg: str) -> None:
    print(msg, file=sys.stderr)
