#!/usr/bin/env python
"""Convert KNMI radar composites (HDF5, ``RAD_NL25_RAP_5min_*.h5``) to one CF netCDF file.

    python data_scripts/knmi_to_netcdf.py ../shared/data/radar/knmi_20100826 -o knmi.nc \
        [--resolution 4] [--crop-x 100 600] [--crop-y -4300 -3800] [--min-valid 0.5]

Output: ``rain_rate(time, y, x)`` in mm/h (NaN outside radar range), ``x``/``y`` in km
(polar stereographic projection coordinates), ``time`` every 5 minutes. Bad input gives one
line on stderr, exit status 2 and no output file.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pyro_videossm.data.conventions import write_netcdf
from pyro_videossm.data.radar import load_knmi
from pyro_videossm.errors import InputError


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="knmi_to_netcdf", description=__doc__.split("\n\n")[0])
    p.add_argument("inputs", nargs="+", type=Path, help="a folder of composites, or files")
    p.add_argument("-o", "--output", type=Path, required=True, help="netCDF file to write")
    p.add_argument("--resolution", type=float, help="coarsen to this pixel size in km (e.g. 4)")
    p.add_argument("--crop-x", type=float, nargs=2, metavar=("LOW", "HIGH"),
                   help="keep x in [LOW, HIGH] km")
    p.add_argument("--crop-y", type=float, nargs=2, metavar=("LOW", "HIGH"),
                   help="keep y in [LOW, HIGH] km (y is negative: km south of the pole)")
    p.add_argument("--min-valid", type=float, default=0.0,
                   help="coarse pixels with a smaller valid fraction become NaN (default 0)")
    p.add_argument("--no-progress", dest="progress", action="store_false")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.output.suffix not in (".nc", ".nc4"):
            raise InputError(f"output {args.output} must end in .nc")
        if not args.output.parent.exists():
            raise InputError(f"output directory {args.output.parent} does not exist")
        if not 0.0 <= args.min_valid <= 1.0:
            raise InputError(f"--min-valid must be in [0, 1], got {args.min_valid}")
        source = args.inputs[0] if len(args.inputs) == 1 else args.inputs
        ds = load_knmi(source, resolution_km=args.resolution, crop_x=args.crop_x,
                       crop_y=args.crop_y, min_valid=args.min_valid, progress=args.progress)
        write_netcdf(ds, args.output)
    except InputError as err:
        print(f"knmi_to_netcdf: error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {args.output} ({', '.join(f'{k}={v}' for k, v in ds.sizes.items())})",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
