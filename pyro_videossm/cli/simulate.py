"""``videossm simulate KIND -o out.nc``: simulated data sets written as netCDF.

Kinds register with :func:`register_simulator`; modules listed in :data:`SIMULATOR_MODULES`
are imported when the parser is built; each calls :func:`register_simulator`.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable

import xarray as xr

from pyro_videossm.cli.common import add_output, add_progress_flag, check_output_path, say
from pyro_videossm.data.conventions import write_netcdf

#: kind -> (help, add_arguments(parser), build(args) -> Dataset)
SIMULATORS: dict[str, tuple[str, Callable, Callable]] = {}

SIMULATOR_MODULES: tuple[str, ...] = (
    "pyro_videossm.cli.simulate_chaotic",
    "pyro_videossm.cli.simulate_fields",
    "pyro_videossm.cli.simulate_digits",
    "pyro_videossm.cli.simulate_sprites",
)


def register_simulator(
    name: str,
    help: str,
    arguments: Callable[[argparse.ArgumentParser], None],
    build: Callable[[argparse.Namespace], xr.Dataset],
) -> None:
    """Add ``videossm simulate NAME``: ``arguments`` adds its options, ``build`` makes the data."""
    SIMULATORS[name] = (help, arguments, build)


def register(sub) -> None:
    for module in SIMULATOR_MODULES:
        importlib.import_module(module)
    parser = sub.add_parser("simulate", help="simulate a data set and write it as netCDF")
    kinds = parser.add_subparsers(dest="kind", metavar="KIND", required=True)
    for name, (help_, add_arguments, build) in SIMULATORS.items():
        p = kinds.add_parser(name, help=help_)
        add_output(p)
        add_progress_flag(p)
        add_arguments(p)
        p.set_defaults(func=_run, build=build)


def _run(args) -> int:
    out = check_output_path(args.output)
    ds = args.build(args)
    write_netcdf(ds, out)
    say(f"wrote {out} ({', '.join(f'{k}={v}' for k, v in ds.sizes.items())})")
    return 0
