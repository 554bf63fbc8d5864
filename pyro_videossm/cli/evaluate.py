"""``videossm evaluate posterior.nc --truth obs.nc``: a markdown table of scores.

Besides the scores against the truth, the table shows the model–data consistency each
posterior recorded (:mod:`pyro_videossm.assimilate.consistency`): ``NIS/expected``, the mean
normalised innovation squared over its expected value (about 1 for a consistent filter), and
``ESS``, the median effective sample size (particle filters). Each consistency warning of a
posterior is printed on stderr, one line each.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np

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
        if "time" in post.coords and "time" in truth_ds.coords and not np.array_equal(
                post["time"].values, truth_ds["time"].values):
            raise InputError(f"{path}: its times differ from those of the truth in "
                             f"{args.truth} (first {post['time'].values[0]} vs "
                             f"{truth_ds['time'].values[0]})")
        scores = score_posterior(post, truth_ds["truth"], burn_in=args.burn_in)
        rows.append({"method": post.attrs.get("method", str(path)),
                     "estimate": post.attrs.get("estimate", ""), **scores,
                     **consistency_columns(post.attrs),
                     "ms/cycle": 1e3 * float(post.attrs.get("seconds_per_cycle", float("nan")))})
        for warning in consistency_warning_lines(post.attrs):
            print(f"videossm evaluate: warning: {path}: {warning}", file=sys.stderr)
    print(markdown_table(rows))
    return 0


def consistency_columns(attrs: dict) -> dict:
    """``NIS/expected`` (mean NIS over its expected value) and ``ESS`` (median effective
    sample size; particle filters only, else empty) from a posterior's attributes."""
    nis, expected = _number(attrs.get("nis_mean")), _number(attrs.get("nis_expected"))
    ratio = nis / expected if expected and math.isfinite(expected) else math.nan
    ess = _number(attrs.get("ess_median"))
    return {"NIS/expected": ratio, "ESS": None if math.isnan(ess) else ess}


def consistency_warning_lines(attrs: dict) -> list[str]:
    """The posterior's ``consistency_warnings`` (joined by ``" | "``), one per item."""
    return [w.strip() for w in str(attrs.get("consistency_warnings", "")).split(" | ")
            if w.strip()]


def _number(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan
