"""``videossm plot posterior.nc --truth obs.nc -o fig.png``."""

from __future__ import annotations

from pathlib import Path

from pyro_videossm.cli.common import check_output_path, say
from pyro_videossm.data.chaotic import load_observations
from pyro_videossm.data.conventions import open_dataset, require_variable
from pyro_videossm.errors import InputError


def register(sub) -> None:
    p = sub.add_parser("plot", help="plot a posterior against truth and observations (PNG)")
    p.add_argument("posterior", type=Path, help="posterior netCDF")
    p.add_argument("--truth", type=Path, help="netCDF with truth and obs")
    p.add_argument("-o", "--output", type=Path, required=True, help="PNG file to write")
    p.add_argument("--components", nargs="+", help="components to show (default: first 6)")
    p.add_argument("--last", type=int, default=200,
                   help="show only the last N cycles (default 200; 0 for all)")
    p.set_defaults(func=run)


def run(args) -> int:
    from pyro_videossm.plots import plot_posterior, save_figure

    out = check_output_path(args.output, inputs=(args.posterior,))
    if args.last < 0:
        raise InputError(f"--last must be >= 0 (0: all cycles), got {args.last}")
    if out.suffix.lower() != ".png":
        raise InputError(f"output {out} must end in .png")
    post = open_dataset(args.posterior)
    if post.attrs.get("product") == "forecast":
        raise InputError(f"{args.posterior} is a forecast: draw its frame strip with "
                         "'videossm plot-forecast'")
    for name in ("mean", "quantiles"):
        require_variable(post, name, ("time", "component") if name == "mean"
                         else ("quantile", "time", "component"), str(args.posterior))
    truth = load_observations(args.truth, require_truth=True) if args.truth else None
    comps = args.components
    if comps:
        missing = [c for c in comps if c not in list(post["component"].values)]
        if missing:
            raise InputError(f"unknown component(s) {missing}")
    sl = slice(-args.last, None) if args.last > 0 else None
    fig = plot_posterior(post, truth, components=comps, time_slice=sl)
    save_figure(fig, out)
    say(f"wrote {out}")
    return 0
