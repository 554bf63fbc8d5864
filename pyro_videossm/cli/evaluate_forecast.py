"""``videossm evaluate forecast.nc --truth data.nc``: score forecast files per lead time
(``--calibration-plot calib.png``: the calibration figure of
:mod:`pyro_videossm.plots.calibration`).

:mod:`pyro_videossm.cli.evaluate` hands files whose ``product`` attribute is ``"forecast"``
to :func:`evaluate_forecasts`; posterior files keep their own path.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pyro_videossm.data.conventions import open_dataset
from pyro_videossm.data.forecast_names import toolkit_forecast_names
from pyro_videossm.errors import InputError


def is_forecast_file(path: str | Path) -> bool:
    """True if ``path`` is a netCDF forecast (``attrs["product"] == "forecast"``)."""
    with open_dataset(path) as ds:
        return ds.attrs.get("product") == "forecast"


def add_forecast_arguments(parser: argparse.ArgumentParser) -> None:
    """The options ``videossm evaluate`` takes for forecast files."""
    g = parser.add_argument_group("forecast files")
    g.add_argument("--variable", help="truth variable (default: truth, else the forecast's "
                                      "source variable)")
    g.add_argument("--thresholds", type=float, nargs="+",
                   help="CSI/FSS thresholds (default 0.5 1 4 for rain in mm/h, else none)")
    g.add_argument("--scales", type=int, nargs="+", default=[1, 4, 16],
                   help="FSS neighbourhood sizes in pixels (default 1 4 16)")
    g.add_argument("--data-range", type=float, help="SSIM data range (default: truth range)")
    g.add_argument("--calibration-plot", dest="figure", type=Path,
                   help="PNG: rank histogram, reliability diagram (at the first threshold, "
                        "default 1) and CRPS by lead time of every forecast file")


def evaluate_forecasts(args: argparse.Namespace) -> int:
    """Print one markdown table per forecast file (a row per lead time)."""
    from pyro_videossm.metrics.fields import score_forecast, scores_table

    paths = list(args.posteriors)
    truth = open_dataset(args.truth)
    if getattr(args, "figure", None) is not None and args.figure.suffix.lower() != ".png":
        raise InputError(f"--calibration-plot {args.figure} must end in .png")
    tables, summaries = [], []
    for path in paths:
        fc = toolkit_forecast_names(open_dataset(path))
        if fc.attrs.get("product") != "forecast":
            raise InputError(f"{path}: not a forecast file; score forecasts and posteriors "
                             "in separate calls")
        scores = score_forecast(fc, truth, variable=getattr(args, "variable", None),
                                thresholds=getattr(args, "thresholds", None),
                                scales=getattr(args, "scales", (1, 4, 16)),
                                data_range=getattr(args, "data_range", None))
        model = fc.attrs.get("model", str(path))
        members = int(fc.sizes["member"])
        head = f"{path}: {model}, {members} member{'s' if members > 1 else ''}"
        if "sample" in fc.dims:
            head += f", {fc.sizes['sample']} samples"
        tables.append(f"{head}\n\n{scores_table(scores)}")
        if getattr(args, "figure", None) is not None:
            from pyro_videossm.metrics.calibration import calibration_summary
            from pyro_videossm.metrics.fields import align_truth

            thresholds = getattr(args, "thresholds", None) or [1.0]
            summaries.append(calibration_summary(
                fc, align_truth(fc, truth, getattr(args, "variable", None)),
                threshold=float(thresholds[0])))
    print("\n\n".join(tables))
    if summaries:
        from pyro_videossm.plots.calibration import plot_calibration
        from pyro_videossm.plots.figure import save_figure

        save_figure(plot_calibration(summaries), args.figure)
        print(f"wrote {args.figure}", file=sys.stderr)
    return 0
