"""``videossm evaluate posterior.nc --truth obs.nc``: a markdown table of scores."""

from __future__ import annotations

from pathlib import Path

from pyro_videossm.cli.evaluate_forecast import (
    add_forecast_arguments,
    evaluate_forecasts,
    is_forecast_file,
)
from pyro_videossm.data.chaotic import load_observations
from pyro_videossm.data.conventions import open_dataset, require_variable
from pyro_videossm.errors import InputError
from pyro_videossm.metrics.posterior import markdown_table, score_posterior


def register(sub) -> None:
    p = sub.add_parser("evaluate", help="score posteriors against the truth (markdown table)")
    p.add_argument("posteriors", type=Path, nargs="+", help="posterior netCDF file(s)")
    p.add_argument("--truth", type=Path, required=True, help="netCDF with truth(time, component)")
    p.add_argument("--burn-in", type=int, default=100,
                   help="cycles excluded from time averages (default 100)")
    add_forecast_arguments(p)  # forecast files (attrs product="forecast") are scored per lead
    p.set_defaults(func=run)


def run(args) -> int:
    if any(is_forecast_file(p) for p in args.posteriors):
        return evaluate_forecasts(args)
    truth_ds = load_observations(args.truth, require_truth=True)
    rows = []
    for path in args.posteriors:
        post = open_dataset(path)
        for name in ("mean", "std"):
            require_variable(post, name, ("time", "component"), str(path))
        if post.sizes["time"] != truth_ds.sizes["time"]:
            raise InputError(f"{path}: {post.sizes['time']} times but the truth has "
                             f"{truth_ds.sizes['time']}")
        scores = score_posterior(post, truth_ds["truth"], burn_in=args.burn_in)
        rows.append({"method": post.attrs.get("method", str(path)),
                     "estimate": post.attrs.get("estimate", ""), **scores,
                     "ms/cycle": 1e3 * float(post.attrs.get("seconds_per_cycle", float("nan")))})
    print(markdown_table(rows))
    return 0
