"""Real radar nowcasting: every field forecaster of the toolkit against persistence on the KNMI
composites of 26 August 2010 (00:00–07:35 UTC, 92 frames every 5 minutes).

Data: the 92 HDF5 composites in ``--data`` (default ``../shared/data/radar/knmi_20100826``
beside the repo) converted to rain rate (mm/h) with the toolkit's converter
(:func:`pyro_videossm.data.radar.load_knmi`): cropped to a ``--box-km`` square around the radar
range's centre (``--center-x/--center-y``, polar stereographic km), coarsened to
``--resolution`` km with the NaN-aware block mean (pixels outside radar range stay NaN and are
masked everywhere), and written to ``OUT/knmi_crop.nc``. Other archives: ``--source
fmi|bom|opera|mch`` with ``--data`` their files, or ``--data`` a netCDF written by ``videossm
convert-radar``; the crop then defaults to the whole grid at its own pixel size, written to
``OUT/SOURCE_crop.nc`` (:func:`~pyro_videossm.experiments.radar_benchmark.radar_field`). The
FSS windows (``--fss-km``, default one pixel and 16 km), the context (30 min), the leads
(60 min) and the leads shown default to what they are in the data's pixel size and time step.

Split: the time axis is cut into contiguous train / valid / test blocks
(:func:`pyro_videossm.data.fields.chronological_split`, ``--split`` fractions); windows of
``--context + --leads`` frames are cut inside each block (stride 1), so no window straddles two
blocks. The scaling (``--normalize``) is fitted on the training block only and shared by all
models.

Models (``--models``): ``persistence`` and the pysteps baselines ``extrapolation``, ``sprog``,
``steps`` (untrained; :mod:`pyro_videossm.forecast.pysteps_nowcasts`, ``--motion`` optical
flow), ``convdmm``, ``convlstm``, ``dmm-flat``
(:mod:`pyro_videossm.experiments.field_recipes`), ``spatrans`` and the sequence baselines
``transformer``, ``lstm``, ``seq2seq``, ``seq2seq-attn``
(:mod:`pyro_videossm.experiments.sequence_recipes`).
Each learned model trains on the same windows with the shared Trainer for the same budget
(``--epochs``, ``--batch-size``, ``--lr``; KL annealing for the DMMs), through the same
functions ``videossm train`` calls, is written as a model file (``OUT/NAME.pt``) and read back
with :func:`pyro_videossm.forecast.load_forecaster` (the path ``videossm forecast`` takes).

Score: every test window gives one forecast (``Forecaster.forecast`` on the context frames,
``--members`` members for the ensemble models), scored per lead time against the radar with
:mod:`pyro_videossm.metrics.fields`, pooled over the test windows: MSE of the ensemble mean
((mm/h)²), CSI at ``--threshold`` mm/h, FSS at that threshold and ``--fss-scales`` pixels, and
the ensemble CRPS. NaN (outside radar range) is left out.

    nice -n 10 python benchmarks/radar_forecast.py --results docs/RESULTS.md \\
        --strip docs/radar_forecast_strip.png      # the published run (strips *_convdmm.png, ...)
    python benchmarks/radar_forecast.py --quick --out /tmp/radar    # end-to-end check (tiny)

    nice -n 10 python benchmarks/radar_forecast.py --models persistence extrapolation sprog \\
        steps convlstm convdmm --section radar-pysteps --calibration docs/radar_calibration.png \\
        --results docs/RESULTS.md          # the pysteps baselines (docs/nowcasting.md)

``--calibration`` draws the ensembles' rank histograms, reliability diagrams and CRPS by lead
(:func:`~pyro_videossm.experiments.radar_benchmark.calibration`).

Writes ``OUT/radar_scores.csv`` (every model, lead and score), ``OUT/radar_summary.json``
(settings, sizes, training histories and seconds) and, with ``--results``, the section between
``<!-- BEGIN radar -->`` and ``<!-- END radar -->`` of that markdown file (appended if absent;
nothing else in the file changes).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pyro_videossm.data.conventions import write_netcdf
from pyro_videossm.data.fields import chronological_split
from pyro_videossm.errors import InputError
from pyro_videossm.experiments.benchmark_sections import radar_section
from pyro_videossm.experiments.field_recipes import FIELD_MODELS
from pyro_videossm.experiments.radar_benchmark import (
    KNMI_PRESET,
    PYSTEPS_MODELS,
    block_windows,
    calibration,
    data_summary,
    fss_pixels,
    pixel_km,
    radar_architectures,
    radar_field,
    reusable_run,
    run_model,
    scores_csv,
    write_strips,
)
from pyro_videossm.experiments.sequence_recipes import SEQUENCE_MODELS

BEGIN, END = "<!-- BEGIN radar -->", "<!-- END radar -->"
ALL_MODELS = ("persistence", *PYSTEPS_MODELS, *FIELD_MODELS, *SEQUENCE_MODELS)
#: the archive formats of --source (kept here so that --help works without pysteps)
RADAR_SOURCE_NAMES = ("knmi", "fmi", "bom", "opera", "mch")
DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "radar" / "knmi_20100826"
#: Settings that do not change what is trained.
_NOT_TRAINING = ("models", "out", "results", "strip", "strip_models", "note", "progress",
                 "reuse_models", "show_leads", "members", "threshold", "fss_scales", "threads",
                 "device", "section", "calibration", "motion", "fss_km", "source")


def write_section(path: Path, body: str, record: dict | None = None,
                  section: str = "radar") -> None:
    """Replace section ``section`` of ``path`` (append it if absent) with the shared writer,
    touching nothing else; with ``record`` also store the run record it regenerates from
    (``benchmarks/results/radar/SECTION.json``)."""
    from pyro_videossm.experiments.results import record_path_for
    from pyro_videossm.experiments.results import write_section as write

    write(path, section, body, record=record,
          record_path=record_path_for(path, f"benchmarks/results/radar/{section}.json"))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, nargs="+", default=[DEFAULT_DATA],
                   help="folder or files of --source composites, or a netCDF file written by "
                        "videossm convert-radar (default: the KNMI day beside the repo)")
    p.add_argument("--source", default="knmi", choices=RADAR_SOURCE_NAMES,
                   help="archive format of --data files (default knmi)")
    p.add_argument("--time-format",
                   help="file-name time pattern (default: the source's, see convert-radar)")
    p.add_argument("--models", nargs="+", default=list(ALL_MODELS), choices=ALL_MODELS)
    p.add_argument("--resolution", type=float,
                   help="pixel size in km (default: 4 for knmi, else the data's pixel)")
    p.add_argument("--box-km", type=float,
                   help="side of the square crop in km (default: 320 for knmi, i.e. 80 x 80 px "
                        "at 4 km; else the whole grid)")
    p.add_argument("--center-x", type=float,
                   help="crop centre x in km (default: 370 for knmi, the centre of the radar "
                        "range; else the grid's centre)")
    p.add_argument("--center-y", type=float,
                   help="crop centre y in km (default: -4080 for knmi; else the grid's centre)")
    p.add_argument("--frames", type=int, help="use only the first FRAMES files")
    p.add_argument("--split", type=float, nargs=3, default=(0.5, 0.2, 0.3),
                   metavar=("TRAIN", "VALID", "TEST"),
                   help="chronological block fractions (default 0.5 0.2 0.3)")
    p.add_argument("--context", type=int,
                   help="context frames (default: 30 min of the data's steps, at least 3: 6 "
                        "at 5 min)")
    p.add_argument("--leads", type=int,
                   help="lead times (default: 60 min of the data's steps: 12 at 5 min)")
    p.add_argument("--normalize", default="minmax", choices=("robust", "minmax", "log", "none"),
                   help="scaling fitted on the training block, shared by all models "
                        "(default minmax: linear, so mean forecasts stay in mm/h)")
    p.add_argument("--epochs", type=int, default=15, help="the same for every model")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--anneal-epochs", type=int, default=3, help="KL annealing (DMMs)")
    p.add_argument("--members", type=int, default=16, help="ensemble members (DMMs)")
    p.add_argument("--hidden", type=int, default=16, help="width unit of every network")
    p.add_argument("--likelihood", default="gaussian", choices=("gaussian", "student_t"))
    p.add_argument("--input-clip", type=float, nargs=2, metavar=("LOW", "HIGH"),
                   help="clamp the encoders' input (model units)")
    p.add_argument("--threshold", type=float, default=1.0, help="CSI/FSS threshold, mm/h")
    p.add_argument("--fss-km", type=float, nargs="+",
                   help="FSS neighbourhoods in km, turned into pixels of the data's grid "
                        "(default: one pixel and 16 km)")
    p.add_argument("--fss-scales", type=int, nargs="+",
                   help="FSS neighbourhoods in pixels (overrides --fss-km)")
    p.add_argument("--show-leads", type=int, nargs="+",
                   help="leads shown in the tables (default: those at 5, 15, 30, 45 and 60 "
                        "min: 1 3 6 9 12 at 5 min)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", type=Path, default=Path("benchmarks/out/radar"))
    p.add_argument("--results", type=Path, help="markdown file to write the section into")
    p.add_argument("--strip", type=Path,
                   help="PNG frame strips: STRIP with _MODEL before the suffix, one per model "
                        "of --strip-models")
    p.add_argument("--strip-models", nargs="+", default=["convdmm", "convlstm"],
                   help="models shown in frame strips (default convdmm convlstm)")
    p.add_argument("--reuse-models", action="store_true",
                   help="forecast with the model files already in OUT (from a run with the same "
                        "training settings) instead of training again")
    p.add_argument("--motion", default="LK", choices=("LK", "darts", "proesmans", "vet"),
                   help="optical flow of the pysteps baselines (default LK)")
    p.add_argument("--calibration", type=Path,
                   help="PNG: rank histograms, reliability diagrams and CRPS by lead of the "
                        "ensemble models (their summaries go into the run summary)")
    p.add_argument("--section", default="radar",
                   help="results section (and record benchmarks/results/radar/SECTION.json) "
                        "to write (default radar)")
    p.add_argument("--title", help="heading of the section (default: the radar heading)")
    p.add_argument("--note", default="", help="line added under the tables")
    p.add_argument("--quick", action="store_true",
                   help="tiny crop, 2 epochs, tiny networks: an end-to-end check, not a result")
    p.add_argument("--progress", action="store_true")
    args = p.parse_args(argv)
    if args.source == "knmi":
        for key, value in KNMI_PRESET.items():
            if getattr(args, key) is None:
                setattr(args, key, value)
    if args.quick:
        if args.source == "knmi":
            args.box_km = 96.0
        args.epochs, args.hidden, args.members = 1, 4, 2
        args.leads, args.context, args.frames = 3, 3, args.frames or 40
        args.show_leads = [1, 3]
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    load0 = os.getloadavg()

    # -- data ---------------------------------------------------------------------------
    if args.source != "knmi" and args.data == [DEFAULT_DATA]:
        raise SystemExit(f"--source {args.source}: give --data")
    center = (None if args.center_x is None and args.center_y is None
              else (args.center_x, args.center_y))
    try:
        ds = radar_field(args.data if len(args.data) > 1 else args.data[0], args.resolution,
                         center, args.box_km, args.frames, source=args.source,
                         time_format=args.time_format)
        px_km = pixel_km(ds)
        if args.fss_scales is None:
            args.fss_scales = fss_pixels(args.fss_km or [px_km, 16.0], px_km)
    except InputError as err:
        raise SystemExit(str(err)) from None
    args.resolution = px_km  # the pixel the models see (the data's own when not given)
    steps_of(args, ds)
    K, L = args.context, args.leads
    data_path = args.out / f"{args.source}_crop.nc"
    write_netcdf(ds, data_path)
    da = ds["rain_rate"]
    blocks = chronological_split(da.sizes["time"], tuple(args.split))
    test_b = blocks["test"]
    inits = list(range(test_b.start + K - 1, test_b.stop - L))
    if not inits:
        raise SystemExit(f"the test block ({test_b.stop - test_b.start} frames) holds no "
                         f"window of {K} + {L} frames: change --split")
    data = block_windows(da, blocks, K, L, args.normalize, units="mm/h")
    t_times = da["time"].values
    summary: dict[str, Any] = {
        "settings": {k: _plain(v) for k, v in vars(args).items()},
        **data_summary(da, blocks, data, len(inits), args.threshold)}
    grid = summary["grid"]
    print(f"data: {summary['frames']} frames {grid[0]}x{grid[1]} at {args.resolution:g} km, "
          f"every {summary['time_step_minutes']:g} min "
          f"({100 * summary['outside_range_fraction']:.1f}% outside radar range, "
          f"{100 * summary['wet_fraction']:.1f}% of pixels >= {args.threshold:g} mm/h); "
          f"windows train {data.n_train}, valid {data.n_valid}, test {len(inits)}; scaling "
          f"{data.scaling.describe()}", flush=True)

    # -- train and forecast ---------------------------------------------------------------
    archs = radar_architectures(args.hidden, tuple(grid), args.likelihood, args.input_clip)
    try:
        previous = reusable_run(args.out / "radar_summary.json", summary["settings"],
                                _NOT_TRAINING) if args.reuse_models else {}
    except InputError as err:
        raise SystemExit(str(err)) from None
    rows, forecasts, reused = {}, {}, []
    for name in args.models:
        rows[name], forecasts[name], entry, was_reused = run_model(
            name, args, data=data, da=da, architectures=archs, test_block=test_b,
            reusable=previous.get("models", {}))
        summary["models"][name] = entry
        reused += [name] if was_reused else []
        r = rows[name]
        print(f"{name}: {entry['parameters']:,} params, {len(entry['history'])} epochs, "
              f"{entry['train_seconds']:.0f} s; MSE lead 1 {r['mse'][0]:.4f} lead {L} "
              f"{r['mse'][-1]:.4f}; CSI lead 1 {r['csi'][0]:.3f} lead {L} {r['csi'][-1]:.3f}",
              flush=True)

    # -- outputs ------------------------------------------------------------------------
    (args.out / "radar_scores.csv").write_text(scores_csv(rows, args.threshold))
    load1 = os.getloadavg()
    total = time.perf_counter() - started
    summary.update(load_average=[load0[0], load1[0]], total_seconds=total)
    if reused:  # keep the training run's wall time and load for the next re-scoring
        summary.update(training_run_seconds=previous.get("training_run_seconds",
                                                         previous.get("total_seconds")),
                       training_run_load=previous.get("training_run_load",
                                                      previous.get("load_average")))
    cal = calibration(forecasts, da, args.threshold, args.calibration)
    if cal:
        summary["calibration"] = cal
        if args.calibration is not None:
            print(f"wrote {args.calibration}", flush=True)
    (args.out / "radar_summary.json").write_text(json.dumps(summary, indent=1, default=str))
    strips = [] if args.strip is None else write_strips(
        forecasts, ds, args.strip_models, args.strip, len(inits) // 2)
    for name, target in strips:
        print(f"wrote {target} ({name}, init {t_times[inits[len(inits) // 2]]})", flush=True)

    shown = list(argv if argv is not None else sys.argv[1:])
    if "--note" in shown:  # the note is printed below the tables, not in the command
        i = shown.index("--note")
        shown[i:i + 2] = ["--note", "…"]
    cmd = ("python benchmarks/radar_forecast.py "
           + " ".join(shlex.quote(a) for a in shown)).strip()
    body = radar_section(
        args, summary=summary, rows=rows, init_times=[str(t_times[i]) for i in inits],
        scaling=data.scaling.describe(), command=cmd,
        strips=[(n, _rel(t, args.results)) for n, t in strips], reused=reused,
        loads=(load0[0], load1[0]), total=total, title=args.title, calibration=cal,
        calibration_figure=(None if args.calibration is None
                            else _rel(args.calibration, args.results)))
    print(body)
    if args.results is not None:
        from pyro_videossm.experiments.records import data_fingerprint, make_record

        write_section(args.results, body, section=args.section, record=make_record(
            "radar", command=cmd, options=summary["settings"],
            data=data_fingerprint([data_path]),
            metrics={k: v for k, v in summary.items() if k not in ("settings",)},
            timings={"total_seconds": total,
                     "train_seconds": {n: m["train_seconds"]
                                       for n, m in summary["models"].items()}}))
        print(f"updated {args.results}", file=sys.stderr)
    return 0


def steps_of(args, ds) -> None:
    """Context, leads and shown leads not given: durations (30 min of context, 60 min of
    leads, tables at 5, 15, 30, 45, 60 min) in the data's time steps."""
    step = float((ds["time"].values[1] - ds["time"].values[0]) / np.timedelta64(1, "m"))
    if args.context is None:
        args.context = max(3, int(round(30.0 / step)))
    if args.leads is None:
        args.leads = max(1, int(round(60.0 / step)))
    if args.show_leads is None:
        args.show_leads = sorted({min(args.leads, max(1, int(round(m / step))))
                                  for m in (5.0, 15.0, 30.0, 45.0, 60.0)})


def _plain(v: Any) -> Any:
    """A setting as JSON: paths as strings, a one-path list as its path."""
    if isinstance(v, list) and v and all(isinstance(e, Path) for e in v):
        return str(v[0]) if len(v) == 1 else [str(e) for e in v]
    return str(v) if isinstance(v, Path) else v


def _rel(target: Path, results: Path | None) -> str:
    if results is None:
        return str(target)
    return os.path.relpath(target.resolve(), results.resolve().parent)


if __name__ == "__main__":
    sys.exit(main())
