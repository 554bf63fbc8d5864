"""The moving-digits comparison's models on real radar: persistence, the LSTM, the flat
Transformer, the ConvLSTM and the Spatiotemporal Transformer (point and 10/50/90 % quantiles)
trained with early stopping on the KNMI composites and scored on the radar's own test block.

The same models and the same per-model budget rule as the moving-digits CPU configuration
(``benchmarks/moving_digits.py``, docs/spatrans.md): every learned model gets the same batch,
learning rate, epoch cap (``--epochs``) and early stopping (``--patience`` epochs without a
lower validation loss; the best epoch's parameters are scored), no wall-clock cap. The digits
rule (batch 16, lr 0.002, at most 25 epochs, patience 3: 34 optimiser steps per epoch on 540
training clips) counts epochs; the radar day has 29 training windows, so the defaults keep
its optimiser steps instead: batch 4 (8 steps per epoch), patience 14 (about 110 steps), at
most 120 epochs (about 960 steps). ``--batch-size 16 --epochs 25 --patience 3`` is the digits
rule's numbers literally. The architectures are the digits CPU configuration's
(:data:`~pyro_videossm.experiments.radar_comparison.DIGITS_CPU_SET`, 32 × 32 frames;
``--set MODEL.KEY=VALUE`` overrides one). Seeds (``--seeds``) change initialisation and batch
order; the data are the same. ``blank`` (zero rain) and ``extrapolation`` (pysteps) are
untrained references, run once.

Data (:mod:`pyro_videossm.experiments.radar_benchmark`, as ``benchmarks/radar_forecast.py``):
the KNMI day in ``--data`` converted to rain rate (mm/h), cropped to a ``--box-km`` square
around the radar range's centre and coarsened to ``--resolution`` km (default 256 km at 8 km:
32 × 32 pixels); the time axis cut into contiguous train / valid / test blocks
(``--split``, default 0.5 0.2 0.3); windows of ``--context + --leads`` frames (30 + 60 min)
inside each block; the scaling (``--normalize``) fitted on the training block only. Early
stopping reads the validation block; the test block is scored once per run.

Scores (:func:`~pyro_videossm.experiments.forecast_benchmark.pooled_window_scores`, the radar
benchmark's): every test window forecast from its context, pooled per lead time: MSE
((mm/h)², NaN left out), CSI at ``--threshold`` mm/h and FSS at that threshold over
``--fss-km`` (pixels of the grid); for ``spatrans-q`` the coverage (ICP) and mean width (MIL)
of the 10-90 % interval, over all pixels and over wet pixels (truth >= threshold). The
point forecast of ``spatrans-q`` is its median. Table: mean ± standard error over seeds.

    nice -n 10 python benchmarks/radar_comparison.py --models persistence blank extrapolation \
        lstm transformer convlstm spatrans spatrans-q --seeds 0 1 2 3 4 \
        --curves docs/radar_comparison_curves.png                  # the published run
    python benchmarks/radar_comparison.py --quick --no-write --runs /tmp/rc   # end-to-end check

Every finished (model, seed) run is one JSON file under ``--runs`` (default
``benchmarks/results/radar_comparison``), named by a fingerprint of its settings: a stopped
benchmark resumes, and ``--table-only`` rebuilds the section (``--section``, default
``radar-comparison`` of ``--results`` docs/RESULTS.md, with its run record) from the stored
runs.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch

from pyro_videossm.data.fields import chronological_split
from pyro_videossm.errors import InputError
from pyro_videossm.experiments.clip_benchmark import architectures, clip_score_table
from pyro_videossm.experiments.radar_benchmark import (
    KNMI_PRESET,
    block_windows,
    fss_pixels,
    pixel_km,
    radar_field,
)
from pyro_videossm.experiments.radar_comparison import (
    DEFAULT_MODELS,
    DIGITS_CPU_SET,
    MODELS,
    UNTRAINED,
    after_digits_section,
    comparison_columns,
    comparison_section,
    override,
    run_radar_model,
    run_settings,
)
from pyro_videossm.experiments.run_cache import RunCache

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "radar" / "knmi_20100826"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, nargs="+", default=[DEFAULT_DATA],
                   help="folder or files of KNMI composites, or a convert-radar netCDF "
                        "(default: the KNMI day beside the repo)")
    p.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS), choices=MODELS)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--resolution", type=float, default=8.0, help="pixel km (default 8)")
    p.add_argument("--box-km", type=float, default=256.0,
                   help="side of the square crop in km (default 256: 32 x 32 px at 8 km)")
    p.add_argument("--center-x", type=float, default=KNMI_PRESET["center_x"])
    p.add_argument("--center-y", type=float, default=KNMI_PRESET["center_y"])
    p.add_argument("--frames", type=int, help="use only the first FRAMES files")
    p.add_argument("--split", type=float, nargs=3, default=(0.5, 0.2, 0.3),
                   metavar=("TRAIN", "VALID", "TEST"))
    p.add_argument("--context", type=int, help="context frames (default 30 min)")
    p.add_argument("--leads", type=int, help="lead times (default 60 min)")
    p.add_argument("--normalize", default="minmax", choices=("minmax", "log", "robust"))
    p.add_argument("--epochs", type=int, default=120,
                   help="epoch cap (default 120: about the digits rule's 850 steps at batch 4)")
    p.add_argument("--patience", type=int, default=14,
                   help="early-stopping patience in epochs (default 14: about the digits "
                        "rule's 100 steps at batch 4)")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--lr", type=float, default=0.002)
    p.add_argument("--set", nargs="+", action="extend", default=[], metavar="MODEL.KEY=VALUE",
                   help="override an architecture setting (after the digits CPU "
                        "configuration's), e.g. spatrans.d_model=128")
    p.add_argument("--threshold", type=float, default=1.0, help="CSI/FSS threshold, mm/h")
    p.add_argument("--fss-km", type=float, nargs="+", default=[16.0],
                   help="FSS neighbourhood in km (default 16)")
    p.add_argument("--show-minutes", type=float, nargs="+", default=[30.0, 45.0, 60.0],
                   help="lead times in the table, minutes (default 30 45 60)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--runs", default="benchmarks/results/radar_comparison")
    p.add_argument("--results", default="docs/RESULTS.md")
    p.add_argument("--section", default="radar-comparison")
    p.add_argument("--curves", help="PNG of the validation loss per epoch of every run")
    p.add_argument("--no-write", action="store_true", help="print the section only")
    p.add_argument("--table-only", action="store_true", help="train nothing")
    p.add_argument("--quick", action="store_true",
                   help="tiny networks, 2 epochs, 3 + 3 frames: an end-to-end check")
    p.add_argument("--progress", action="store_true")
    args = p.parse_args(argv)
    if args.quick:
        args.epochs, args.context, args.leads = min(args.epochs, 2), 3, 3
        args.show_minutes, args.seeds = [5.0, 15.0], args.seeds[:1]
    torch.set_num_threads(args.threads)
    try:
        arch = architectures(args.quick, () if args.quick else DIGITS_CPU_SET)
        for item in args.set:
            arch = override(arch, item)
        ds = radar_field(args.data if len(args.data) > 1 else args.data[0], args.resolution,
                         (args.center_x, args.center_y), args.box_km, args.frames)
    except InputError as err:
        p.error(str(err))
    args.resolution = pixel_km(ds)
    args.fss_scales = fss_pixels(args.fss_km, args.resolution)
    da = ds["rain_rate"]
    times = da["time"].values
    step = float((times[1] - times[0]) / np.timedelta64(1, "m"))
    args.context = args.context or max(3, int(round(30.0 / step)))
    args.leads = args.leads or max(1, int(round(60.0 / step)))
    args.show_leads = [min(args.leads, max(1, int(round(m / step))))
                       for m in args.show_minutes]
    blocks = chronological_split(da.sizes["time"], tuple(args.split))
    test_b = blocks["test"]
    n_test = len(range(test_b.start + args.context, test_b.stop - args.leads + 1))
    if n_test < 1:
        p.error(f"the test block holds no window of {args.context} + {args.leads} frames")
    load0 = os.getloadavg()[0]
    cache = RunCache(args.runs)
    paths = {(seed, name): cache.path(f"{name}_seed{seed}", run_settings(name, arch, args))
             for seed in args.seeds for name in args.models
             if not (name in UNTRAINED and seed != args.seeds[0])}
    missing = [key for key, path in paths.items() if not path.exists()]
    data = block_windows(da, blocks, args.context, args.leads, args.normalize, units="mm/h")
    if missing and not args.table_only:
        for seed, name in missing:
            path = paths[seed, name]
            if path.exists():  # finished meanwhile by another process sharing --runs
                continue
            t0 = time.perf_counter()
            r = run_radar_model(name, seed, arch, data, da, test_block=test_b, args=args)
            r["wall_s"] = time.perf_counter() - t0
            r["load_average"] = os.getloadavg()[0]
            cache.save(path, r)
            print(f"seed {seed} {name}: MSE {r['mse']:.4f} "
                  + " ".join(f"CSI{m:g} {r[f'csi_{m:g}']:.3f}" for m in args.show_minutes)
                  + (f" ICP {r['icp']:.3f}" if "icp" in r else "")
                  + (f" best epoch {r['best_epoch']} of {r['epochs']} converged "
                     f"{r['converged']}" if "converged" in r else "")
                  + f" ({r['wall_s']:.0f} s)", file=sys.stderr, flush=True)
    rows = [cache.load(path) for path in paths.values() if path.exists()]
    words = [w for w in (argv if argv is not None else sys.argv[1:])
             if w not in ("--table-only", "--no-write")]
    cmd = ("python benchmarks/radar_comparison.py "
           + " ".join(shlex.quote(w) for w in words)).strip()
    summary = {
        "grid": [da.sizes["y"], da.sizes["x"]], "frames": da.sizes["time"], "step": step,
        "day": str(times[0])[:10],
        "blocks": " / ".join(f"{str(times[b.start])[11:16]}–{str(times[b.stop - 1])[11:16]}"
                             for b in blocks.values()),
        "windows": {"train": data.n_train, "valid": data.n_valid, "test": n_test},
        "scaling": data.scaling.describe(),
        "arch": {m: arch.get(m.removesuffix("-q"), {}) for m in args.models}}
    if args.curves and rows and not args.no_write:
        from pyro_videossm.plots.learning_curves import plot_learning_curves

        plot_learning_curves(rows, args.models, args.curves)
    body = comparison_section(
        args, clip_score_table(rows, args.models, comparison_columns(args)), rows, summary,
        cmd, [load0, os.getloadavg()[0]] + [r.get("load_average", 0.0) for r in rows],
        [f"{n} seed {s}" for (s, n), path in paths.items() if not path.exists()])
    print(body)
    if not args.no_write:
        from pyro_videossm.experiments.records import make_record
        from pyro_videossm.experiments.results import record_path_for, write_section

        options = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
        options["data"] = [str(d) for d in args.data]
        write_section(args.results, args.section, body, record=make_record(
            "radar_comparison", command=cmd, options=options,
            metrics={"rows": rows, "summary": summary}, derived_from=str(args.runs)),
            where=after_digits_section, record_path=record_path_for(
                args.results, f"benchmarks/results/radar_comparison_section/{args.section}.json"))
        print(f"updated {args.results}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
