"""``videossm animate still.nc --driving clip.nc --model m.pt -o anim.nc [--gif anim.gif]``:
animate still images by the optical flow of a driving clip with a trained flow animator
(``videossm train flow-animator``).

The sources are ``VAR(y, x)``, ``VAR(time, y, x)`` or frame ``--source-time`` of each clip of
``VAR(clip, time, y, x)``; the driving clips are ``VAR(clip, time, y, x)`` or one clip
``VAR(time, y, x)`` (``--driving-clip I`` picks one). One driving clip drives every source;
otherwise there must be one per source. Frames of the sources and the driving clips must have
the same size; NaN pixels of a source are filled with its mean.
"""

from __future__ import annotations

from pathlib import Path

from pyro_videossm.cli.common import check_output_path, say
from pyro_videossm.data.conventions import write_netcdf
from pyro_videossm.errors import InputError


def register(sub) -> None:
    p = sub.add_parser("animate", help="animate still images by the optical flow of a driving "
                                       "clip (flow animator)")
    p.add_argument("still", type=Path, help="netCDF with the source image(s)")
    p.add_argument("--driving", type=Path, required=True, help="netCDF with the driving clip(s)")
    p.add_argument("--model", type=Path, required=True,
                   help="model file of videossm train flow-animator")
    p.add_argument("--variable", default="frames", help="image variable of both files "
                                                        "(default frames)")
    p.add_argument("--source-time", type=int, default=0,
                   help="frame of each source clip to animate (default 0)")
    p.add_argument("--driving-clip", type=int, help="use only this driving clip")
    p.add_argument("--flow-method", choices=("dis", "farneback"),
                   help="optical flow of the driving clip (default: the model's)")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p.add_argument("-o", "--output", type=Path, required=True, help="netCDF to write")
    p.add_argument("--gif", type=Path, help="also write the first animation as a GIF")
    p.set_defaults(func=run)


def run(args) -> int:
    from pyro_videossm.experiments.animation_recipe import (
        animate_clips,
        animation_dataset,
        clip_frames,
        still_frames,
        write_gif,
    )

    out = check_output_path(args.output, inputs=(args.still, args.driving, args.model))
    source = still_frames(args.still, args.variable, args.source_time, str(args.still))
    driving = clip_frames(args.driving, args.variable, str(args.driving))
    if args.driving_clip is not None:
        if not -len(driving) <= args.driving_clip < len(driving):
            raise InputError(f"{args.driving}: no clip {args.driving_clip} (it has "
                             f"{len(driving)})")
        driving = driving[args.driving_clip][None]
    frames, flows = animate_clips(args.model, source, driving, flow_method=args.flow_method,
                                  device=args.device)
    ds = animation_dataset(frames, flows, {"source_file": str(args.still),
                                           "driving_file": str(args.driving),
                                           "model_file": str(args.model)})
    write_netcdf(ds, out)
    say(f"wrote {out} ({frames.shape[0]} animations of {frames.shape[1]} frames)")
    if args.gif is not None:
        write_gif(frames[0], args.gif)
        say(f"wrote {args.gif}")
    return 0
