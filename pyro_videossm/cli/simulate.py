"""``videossm simulate KIND -o out.nc``: any simulator of
:data:`~pyro_videossm.data.simulators.SIMULATORS` (every system included), written as netCDF.

Each simulator carries its options; this module only turns them into sub-commands.
``videossm simulate chaotic --system module:Class`` simulates a system that is not registered.
"""

from __future__ import annotations

import argparse

from pyro_videossm.cli.common import add_output, add_progress_flag, check_output_path, say
from pyro_videossm.data.conventions import write_netcdf
from pyro_videossm.data.simulators import SIMULATORS
from pyro_videossm.errors import InputError


def register(sub) -> None:
    parser = sub.add_parser("simulate", help="simulate a data set and write it as netCDF")
    kinds = parser.add_subparsers(dest="kind", metavar="KIND", required=True)
    for name in SIMULATORS.names():
        try:
            simulator = SIMULATORS.get(name)
        except InputError as err:  # a broken plug-in fails when used, not every command
            # no option prefix: whatever follows is accepted, and the error reported
            p = kinds.add_parser(name, help=f"(cannot be loaded: {err})", prefix_chars="\0",
                                 add_help=False)
            p.add_argument("rest", nargs="*", help=argparse.SUPPRESS)
            p.set_defaults(func=_broken, error=str(err))
            continue
        p = kinds.add_parser(name, help=simulator.help)
        add_output(p)
        add_progress_flag(p)
        simulator.add_arguments(p)
        p.set_defaults(func=_run, simulator=simulator)


def _run(args) -> int:
    out = check_output_path(args.output)
    ds = args.simulator(**args.simulator.keywords(args))
    write_netcdf(ds, out)
    say(f"wrote {out} ({', '.join(f'{k}={v}' for k, v in ds.sizes.items())})")
    return 0


def _broken(args) -> int:
    raise InputError(args.error)
