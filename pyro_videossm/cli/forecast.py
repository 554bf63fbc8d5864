"""``videossm forecast`` and ``videossm plot-forecast``: field forecasts from a context window.

    videossm forecast data.nc --model persistence|model.pt --context K --leads L \
        [--members M] [--sample I ...] [--init-index J] [--variable obs] -o forecast.nc \
        [--plot strip.png]
    videossm plot-forecast forecast.nc --truth data.nc -o strip.png [--sample I | --all-samples]

The context is the ``K`` frames ending at time index ``J`` (default: the latest ``J`` whose
``L`` lead times are still in the file, so the forecast can be scored; else the last time).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from pyro_videossm.cli.common import add_progress_flag, check_output_path, say
from pyro_videossm.data.conventions import open_dataset, write_netcdf
from pyro_videossm.data.forecast_names import toolkit_forecast_names
from pyro_videossm.errors import InputError

#: ensemble size of ``videossm forecast`` for stochastic forecasters when --members is not given
DEFAULT_MEMBERS = 16


def register(sub) -> None:
    p = sub.add_parser("forecast", help="forecast a 2D field from a context window (netCDF)")
    p.add_argument("data", type=Path, help="netCDF with variable(time, y, x) or "
                                           "(sample, time, y, x)")
    p.add_argument("--model", required=True,
                   help="a model file (.pt) or a forecaster name (e.g. persistence)")
    p.add_argument("--context", type=int, required=True, help="context frames K")
    p.add_argument("--leads", type=int, required=True, help="lead times L to forecast")
    p.add_argument("--members", type=int,
                   help="ensemble members (default: 16 for ensemble forecasters such as "
                        "convdmm, 1 for deterministic ones)")
    p.add_argument("--variable", help="field variable (default: obs, precip, rain_rate, ...)")
    p.add_argument("--sample", type=int, nargs="+", help="sample index/indices (default all)")
    p.add_argument("--init-index", type=int,
                   help="time index of the initial time (last context frame; negative counts "
                        "from the end)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--device", default="cpu", help="torch device for model files")
    p.add_argument("--batch-size", type=int, help="samples per model call (default all)")
    p.add_argument("--plot", type=Path, help="also write a PNG frame strip (first sample)")
    p.add_argument("-o", "--output", type=Path, required=True, help="forecast netCDF to write")
    add_progress_flag(p)
    p.set_defaults(func=run_forecast)

    q = sub.add_parser("plot-forecast", help="PNG frame strip: truth, members, error")
    q.add_argument("forecast", type=Path, help="forecast netCDF (videossm forecast)")
    q.add_argument("--truth", type=Path, help="netCDF with the verifying data")
    q.add_argument("--variable", help="truth variable (default: truth, else the forecast's)")
    q.add_argument("--sample", type=int, default=0, help="sample to show (default 0)")
    q.add_argument("--all-samples", action="store_true",
                   help="one PNG per sample: OUTPUT_sampleI.png")
    q.add_argument("--members", type=int, default=3, help="members to show (default 3)")
    q.add_argument("--max-leads", type=int, default=8, help="lead-time columns (default 8)")
    q.add_argument("-o", "--output", type=Path, required=True, help="PNG file to write")
    q.set_defaults(func=run_plot)


def _forecaster(model: str, device: str):
    from pyro_videossm.forecast import available_forecasters, get_forecaster, load_forecaster

    path = Path(model)
    if path.suffix in (".pt", ".pth") or path.exists():
        if not path.is_file():
            raise InputError(f"model file {path} not found")
        return load_forecaster(path, device=device)
    if model in available_forecasters():
        return get_forecaster(model)
    raise InputError(f"--model {model!r} is neither a model file nor a forecaster "
                     f"({', '.join(available_forecasters())})")


def select_context(ds, *, context: int, leads: int, variable: str | None = None,
                   samples: list[int] | None = None, init_index: int | None = None):
    """``(context DataArray, init index)`` for the CLI's options (checks them)."""
    from pyro_videossm.forecast.base import select_field

    da = select_field(ds, variable)
    if context < 1 or leads < 1:
        raise InputError(f"--context and --leads must be >= 1, got {context}, {leads}")
    n = da.sizes["time"]
    if init_index is None:
        init_index = n - 1 - leads if n - 1 - leads >= context - 1 else n - 1
    elif init_index < 0:
        init_index += n
    if not 0 <= init_index < n:
        raise InputError(f"--init-index {init_index} is outside the {n} time steps")
    if init_index - context + 1 < 0:
        raise InputError(f"--context {context} needs {context} frames up to time index "
                         f"{init_index}; only {init_index + 1} exist")
    da = da.isel(time=slice(init_index - context + 1, init_index + 1))
    if samples is not None:
        if da.ndim != 4:
            raise InputError(f"--sample given but {da.name!r} has no sample dim")
        lead_dim = da.dims[0]
        bad = [i for i in samples if not 0 <= i < da.sizes[lead_dim]]
        if bad:
            raise InputError(f"--sample {bad[0]} out of range (0..{da.sizes[lead_dim] - 1})")
        da = da.isel({lead_dim: list(samples)})
    return da, init_index


def run_forecast(args: argparse.Namespace) -> int:
    out = check_output_path(args.output, inputs=(args.data,))
    if out.suffix not in (".nc", ".nc4"):
        raise InputError(f"output {out} must end in .nc")
    if args.plot is not None:
        check_output_path(args.plot)
        if args.plot.suffix.lower() != ".png":
            raise InputError(f"--plot {args.plot} must end in .png")
    for flag, value in (("--members", args.members), ("--batch-size", args.batch_size)):
        if value is not None and value < 1:
            raise InputError(f"{flag} must be >= 1, got {value}")
    forecaster = _forecaster(args.model, args.device)
    members = args.members or (1 if forecaster.deterministic else DEFAULT_MEMBERS)
    with open_dataset(args.data) as ds:
        ctx, j = select_context(ds, context=args.context, leads=args.leads,
                                variable=args.variable, samples=args.sample,
                                init_index=args.init_index)
        ctx = ctx.load()
        fc = forecaster.forecast(ctx, args.leads, members, seed=args.seed,
                                 batch_size=args.batch_size)
        fc.attrs.update({"source_file": str(args.data), "init_index": int(j)})
        if args.plot is not None:
            from pyro_videossm.plots.fields import plot_forecast_strip
            from pyro_videossm.plots.figure import save_figure

            has_truth = "valid_time" not in fc.coords or set(
                fc["valid_time"].values) <= set(ds["time"].values)
            fig = plot_forecast_strip(fc, ds if has_truth else None, variable=_truth_var(ds))
    write_netcdf(fc, out)
    say(f"wrote {out} ({', '.join(f'{k}={v}' for k, v in fc.sizes.items())})")
    if args.plot is not None:
        save_figure(fig, args.plot)
        say(f"wrote {args.plot}")
    return 0


def _truth_var(ds) -> str | None:
    return "truth" if "truth" in ds.data_vars else None


def run_plot(args: argparse.Namespace) -> int:
    from pyro_videossm.plots.fields import plot_forecast_strip
    from pyro_videossm.plots.figure import save_figure

    out = check_output_path(args.output, inputs=(args.forecast,))
    if out.suffix.lower() != ".png":
        raise InputError(f"output {out} must end in .png")
    for flag, value in (("--members", args.members), ("--max-leads", args.max_leads)):
        if value < 1:
            raise InputError(f"{flag} must be >= 1, got {value}")
    fc = toolkit_forecast_names(open_dataset(args.forecast))
    if fc.attrs.get("product") != "forecast" or "forecast" not in fc:
        raise InputError(f"{args.forecast}: not a forecast file (videossm forecast)")
    truth = open_dataset(args.truth) if args.truth else None
    n = fc["forecast"].sizes[fc["forecast"].dims[0]] if fc["forecast"].ndim == 5 else 1
    samples = range(n) if args.all_samples else [args.sample]
    figs = []
    for s in samples:
        fig = plot_forecast_strip(fc, truth, sample=s, members=args.members,
                                  max_leads=args.max_leads, variable=args.variable)
        path = out.with_name(f"{out.stem}_sample{s}{out.suffix}") if args.all_samples else out
        figs.append((fig, path))
    for fig, path in figs:
        save_figure(fig, path)
        say(f"wrote {path}")
    return 0
