"""``videossm generate --model m.pt [--action A --content C] -n N -o clips.nc [--gif out.gif |
--mp4 out.mp4]``: clips from a trained video GAN (``videossm train mocogan|cmocogan|dcvgan``).

The netCDF has the format of the training clips (``frames(clip, time, channel, y, x)``, plus
``depth(clip, time, y, x)`` and the action/content labels where the model has them, and
``unseen``: 1 where the pair was not among the training clips), so the judges that score real clips
score generated ones. ``--action``/``--content`` take a value name of the model's label (or
its index); omitted, each clip draws one. ``--gif``/``--mp4`` show the first clips tiled.
"""

from __future__ import annotations

from pathlib import Path

from pyro_videossm.cli.common import say
from pyro_videossm.data.conventions import write_netcdf
from pyro_videossm.errors import InputError


def register(sub) -> None:
    p = sub.add_parser("generate", help="generate clips with a trained video GAN (mocogan, "
                                        "cmocogan, dcvgan)")
    p.add_argument("--model", type=Path, required=True,
                   help="model file of videossm train mocogan|cmocogan|dcvgan")
    p.add_argument("--action", help="action value (name or index) of a cmocogan model")
    p.add_argument("--content", help="content value (name or index) of a cmocogan model")
    p.add_argument("-n", "--clips", type=int, default=16, help="clips to generate (default 16)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p.add_argument("-o", "--output", type=Path, required=True, help="netCDF to write")
    media = p.add_mutually_exclusive_group()
    media.add_argument("--gif", type=Path, help="also write the first clips as an animated GIF")
    media.add_argument("--mp4", type=Path, help="also write the first clips as an MP4 video")
    p.add_argument("--fps", type=float, default=8.0, help="frames per second of the GIF/MP4 "
                                                          "(default 8)")
    p.set_defaults(func=run)


def run(args) -> int:
    from pyro_videossm.experiments.video_gan_recipes import colour_depth_clips, generate_clips
    from pyro_videossm.plots.video_samples import write_clips_gif, write_clips_mp4

    if args.clips < 1:
        raise InputError(f"-n must be >= 1, got {args.clips}")
    if not args.fps > 0:
        raise InputError(f"--fps must be > 0, got {args.fps:g}")
    ds = generate_clips(args.model, args.clips, action=args.action, content=args.content,
                        seed=args.seed, device=args.device)
    write_netcdf(ds, args.output)
    say(f"wrote {args.output} ({ds.sizes['clip']} clips of {ds.sizes['time']} frames)")
    clips = colour_depth_clips(ds.isel(clip=slice(0, 16)))
    if args.gif is not None:
        write_clips_gif(clips, args.gif, fps=args.fps)
        say(f"wrote {args.gif}")
    if args.mp4 is not None:
        write_clips_mp4(clips, args.mp4, fps=args.fps)
        say(f"wrote {args.mp4}")
    return 0
