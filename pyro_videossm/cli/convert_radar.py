"""``videossm convert-radar``: radar composites of any archive pysteps reads -> one CF netCDF.

    videossm convert-radar --source knmi|fmi|bom|opera|mch FILES_OR_FOLDERS... -o radar.nc \
        [--resolution KM] [--crop-x LOW HIGH] [--crop-y LOW HIGH] [--min-valid F] \
        [--time-format PATTERN]

Output: ``rain_rate(time, y, x)`` in mm/h (CF ``rainfall_rate``), ``x``/``y`` in km
(projection coordinates), the grid mapping from the importer's projection
(:func:`pyro_videossm.data.radar_importers.load_radar`). Needs the ``[nowcast]`` extra.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from pyro_videossm.cli.common import add_progress_flag, check_output_path, say
from pyro_videossm.data.conventions import write_netcdf
from pyro_videossm.errors import InputError

#: the --source choices (kept here so that the parser builds without pysteps)
SOURCES = ("knmi", "fmi", "bom", "opera", "mch")


def register(sub) -> None:
    p = sub.add_parser("convert-radar", help="convert radar composites (pysteps importers) to "
                                             "a CF rain-rate netCDF")
    p.add_argument("inputs", nargs="+", type=Path, help="radar files, or folders of them")
    p.add_argument("--source", required=True, choices=SOURCES,
                   help="archive format (pysteps importer): " + ", ".join(SOURCES))
    p.add_argument("-o", "--output", type=Path, required=True, help="netCDF file to write")
    p.add_argument("--resolution", type=float,
                   help="coarsen to this pixel size in km (a whole multiple of the pixel)")
    p.add_argument("--crop-x", type=float, nargs=2, metavar=("LOW", "HIGH"),
                   help="keep pixel centres with x in [LOW, HIGH] km")
    p.add_argument("--crop-y", type=float, nargs=2, metavar=("LOW", "HIGH"),
                   help="keep pixel centres with y in [LOW, HIGH] km")
    p.add_argument("--min-valid", type=float, default=0.0,
                   help="coarse pixels with a smaller valid fraction become NaN (default 0)")
    p.add_argument("--time-format",
                   help="file-name time pattern (strftime codes, ? and *; default: the "
                        "source's pysteps fn_pattern)")
    add_progress_flag(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pyro_videossm.data.radar_importers import load_radar, radar_files

    files = radar_files(args.inputs)
    out = check_output_path(args.output, inputs=tuple(files))
    if out.suffix not in (".nc", ".nc4"):
        raise InputError(f"output {out} must end in .nc")
    if not 0.0 <= args.min_valid <= 1.0:
        raise InputError(f"--min-valid must be in [0, 1], got {args.min_valid}")
    if args.resolution is not None and not args.resolution > 0:
        raise InputError(f"--resolution must be > 0, got {args.resolution}")
    ds = load_radar(files, args.source, resolution_km=args.resolution, crop_x=args.crop_x,
                    crop_y=args.crop_y, min_valid=args.min_valid, time_format=args.time_format,
                    progress=args.progress)
    write_netcdf(ds, out)
    say(f"wrote {out} ({', '.join(f'{k}={v}' for k, v in ds.sizes.items())})")
    return 0
