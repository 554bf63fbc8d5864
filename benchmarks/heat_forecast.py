"""Heat-diffusion forecasting: ConvDMM vs ConvLSTM (plain and clamped-target MSE) vs flat DMM
vs persistence.

Data: heat diffusion from hot disks with Cauchy process and observation noise
(:func:`pyro_videossm.data.heat.simulate_heat`) simulated at the research spacing ``dx = 0.1``
(``--sim-grid`` points on a plate of side ``0.1 · sim_grid``, ``D = 4``, 3 FTCS steps per frame)
and block-averaged ``--coarsen`` times (96 → 32 by default). Training sequences (seed 1) and
held-out test sequences (seed 2) are independent simulations. Every model is trained on the
noisy ``obs`` of windows of ``context + leads`` frames with the same number of epochs, batch
size, learning rate and data (equal-epoch budget; the training seconds are reported too),
through the same code as ``videossm train`` (:mod:`pyro_videossm.experiments.field_recipes`).

Score: MSE of the (ensemble-mean) forecast against the **noise-free** truth of the test
sequences, per lead time, in squared temperature units. The forecast starts after the first
``context`` frames of each test sequence.

CPU (the default sizes; measured under shared load, one thread: data 84 s, training 688 s
ConvDMM, 389 s ConvLSTM, 276 s ConvLSTM with clamped targets, 182 s flat DMM)::

    nice -n 10 python benchmarks/heat_forecast.py --results docs/RESULTS.md

GPU sizes (48×48, more data; an option, not run yet: no GPU was available)::

    python benchmarks/heat_forecast.py --device cuda --sim-grid 96 --coarsen 2 \\
        --train-samples 2048 --epochs 100 --batch-size 32 --hidden-channels 64

Writes ``OUT/heat_mse.csv`` (MSE per model and lead), ``OUT/heat_summary.json`` (settings,
training seconds, histories) and, with ``--results``, the table between the
``<!-- BEGIN heat -->`` / ``<!-- END heat -->`` markers of that markdown file.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch

from pyro_videossm.experiments.benchmark_sections import heat_section
from pyro_videossm.experiments.forecast_benchmark import (
    per_lead_csv,
)
from pyro_videossm.experiments.heat_benchmark import heat_architectures, heat_data, run_model
from pyro_videossm.experiments.windows import build_windows

MODELS = ("convdmm", "convlstm", "convlstm-clip", "dmm-flat", "persistence",
          "advection-convdmm", "advection-convdmm-rollout",
          "advection-convdmm-stencil", "advection-convdmm-stencil-rollout")
BEGIN, END = "<!-- BEGIN heat -->", "<!-- END heat -->"


def write_results(path: Path, block: str, append: bool = False,
                  record: dict | None = None, section: str = "heat") -> None:
    """Replace the heat section of ``path`` (append it if absent), or with ``append`` add
    ``block`` after what is there, with the shared writer; with ``record`` also store the run
    record (one per table: ``heat.json``, then ``heat_1.json``, ... for appended tables;
    ``SECTION.json``, ``SECTION_1.json``, ... for another ``section``)."""
    from pyro_videossm.experiments.results import (
        record_path_for,
        section_body,
        write_section,
    )

    part = 0
    if append and path.exists():
        old = section_body(path.read_text(), section)
        part = 0 if old is None or not old.strip() else len(old.strip().split("\n\n### "))
    name = section if part == 0 else f"{section}_{part}"
    folder = record_path_for(path, f"benchmarks/results/heat/{section}.json").parent
    if record is not None and part == 0:  # a new first table: the appended ones are gone
        for stale in folder.glob(f"{section}_*.json"):
            stale.unlink()
    write_section(path, section, block, append=append, record=record, part=part,
                  record_path=record_path_for(path, f"benchmarks/results/heat/{name}.json"))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    p.add_argument("--sim-grid", type=int, default=96, help="simulation grid (dx = 0.1)")
    p.add_argument("--coarsen", type=int, default=3, help="block-average factor (96/3 = 32)")
    p.add_argument("--train-samples", type=int, default=256)
    p.add_argument("--test-samples", type=int, default=64)
    p.add_argument("--context", type=int, default=10)
    p.add_argument("--leads", type=int, default=20)
    p.add_argument("--epochs", type=int, default=40, help="the same for every model")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--anneal-epochs", type=int, default=5, help="KL annealing (DMMs)")
    p.add_argument("--members", type=int, default=16, help="ensemble members (DMMs)")
    p.add_argument("--hidden-channels", type=int, default=32)
    p.add_argument("--latent-channels", type=int, default=8)
    p.add_argument("--latent-dim", type=int, default=32)
    p.add_argument("--likelihood", default="student_t", choices=("gaussian", "student_t"))
    p.add_argument("--df", type=float, default=2.0)
    p.add_argument("--rollout-horizon", type=int, default=20,
                   help="free-running steps of advection-convdmm-rollout's training term")
    p.add_argument("--rollout-weight", type=float, default=1.0,
                   help="weight of that term (the published runs: 1)")
    p.add_argument("--input-clip", type=float, nargs=2, default=(-0.5, 1.5),
                   help="encoder input clamp, model units, all models (default -0.5 1.5)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("out/heat"))
    p.add_argument("--results", type=Path, help="markdown file to write the table into")
    p.add_argument("--append", action="store_true",
                   help="add the table after the heat block's content instead of replacing it")
    p.add_argument("--title", default="Heat diffusion: forecast MSE against the noise-free truth")
    p.add_argument("--note", default="", help="line added under the table (e.g. the load)")
    p.add_argument("--section", default="heat",
                   help="name of the section written into --results (default heat)")
    p.add_argument("--progress", action="store_true")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    K, L = args.context, args.leads

    t0 = time.perf_counter()
    train_ds = heat_data(args.train_samples, K + L, 1, args.sim_grid, args.coarsen, "cpu")
    test_ds = heat_data(args.test_samples, K + L, 2, args.sim_grid, args.coarsen, "cpu")
    grid = train_ds.sizes["y"], train_ds.sizes["x"]
    print(f"data: {args.train_samples} + {args.test_samples} sequences of {K}+{L} frames "
          f"{grid[0]}x{grid[1]} ({time.perf_counter() - t0:.1f} s)", flush=True)
    context = test_ds["obs"].isel(time=slice(0, K))
    truth = np.asarray(test_ds["truth"].isel(time=slice(K, K + L)).values, dtype=np.float64)

    data = build_windows(train_ds, K, L, variable="obs", valid_fraction=0.1,
                         normalize="robust")
    archs = heat_architectures(args.hidden_channels, latent_channels=args.latent_channels,
                               latent_dim=args.latent_dim, likelihood=args.likelihood,
                               df=args.df, input_clip=args.input_clip,
                               rollout_horizon=args.rollout_horizon,
                               rollout_weight=args.rollout_weight)
    rows, summary = {}, {"settings": vars(args) | {"out": str(args.out),
                                                   "results": str(args.results)},
                         "scaling": data.scaling.to_dict(), "models": {}}
    for name in args.models:
        rows[name], summary["models"][name] = run_model(
            name, args, data=data, architectures=archs, context=context, truth=truth)
        seconds = summary["models"][name]["train_seconds"]
        print(f"{name}: trained {seconds:.0f} s; MSE lead 1 {rows[name][0]:.4g}, "
              f"leads 15-20 {rows[name][14:20].mean() if L >= 20 else float('nan'):.4g}",
              flush=True)

    (args.out / "heat_mse.csv").write_text(per_lead_csv(rows))
    (args.out / "heat_summary.json").write_text(json.dumps(summary, indent=1, default=str))

    cmd = "python " + " ".join(shlex.quote(a) for a in [sys.argv[0], *(argv or sys.argv[1:])])
    block = heat_section(args, rows=rows, models=summary["models"], grid=grid,
                         n_train=data.n_train, command=cmd)
    print(block)
    if args.results:
        from pyro_videossm.experiments.records import make_record

        record = make_record(
            "heat", command=cmd, options=summary["settings"],
            data={"simulated": "heat_data(train seed 1, test seed 2)"},
            metrics={"mse_per_lead": {n: list(map(float, r)) for n, r in rows.items()},
                     "models": summary["models"]},
            timings={n: m.get("train_seconds") for n, m in summary["models"].items()})
        write_results(args.results, block, append=args.append, section=args.section,
                      record=record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
