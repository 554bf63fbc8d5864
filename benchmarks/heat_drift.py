"""Why does a trained heat ConvDMM drift at long leads? Scores saved advection ConvDMMs of
``benchmarks/heat_forecast.py`` on its test sequences two ways, per lead, against the
noise-free truth::

    python benchmarks/heat_drift.py --model advection-convdmm=/tmp/heat40_s0/advection-convdmm.pt \\
        --results docs/advection_convdmm.md --section heat-drift

* **ensemble**: the mean of ``--members`` draws (guide draws at the end of the context, the
  transition rolled forward with its noise): the benchmark's forecast;
* **mean path**: no draws (guide and transition means,
  ``AdvectionConvDMM.forecast(..., noise=False)``).

Besides the MSE, the spatial mean and the peak (maximum over the plate) of the forecast
against the truth's, averaged over the test sequences, show a drift of the level (warming) or
of the peak (too little diffusion). Nothing is trained.
"""

from __future__ import annotations

import argparse
import functools
import shlex
import sys
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from pyro_videossm.experiments.forecast_benchmark import per_lead_scores  # noqa: E402
from pyro_videossm.experiments.heat_benchmark import heat_data  # noqa: E402

LEADS_SHOWN = (1, 5, 10, 15, 20)


def scores(forecast, truth: np.ndarray) -> dict[str, list[float]]:
    """MSE per lead of the ensemble mean, and its spatial mean and peak per lead (means over
    the sequences)."""
    mean = forecast["forecast"].mean("member").values  # (S, L, H, W)
    return {"mse": per_lead_scores(forecast, truth).tolist(),
            "level": mean.mean(axis=(0, 2, 3)).tolist(),
            "peak": mean.max(axis=(2, 3)).mean(0).tolist()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", nargs="+", required=True, metavar="NAME=PATH",
                   help="saved advection ConvDMM forecasters (heat_forecast.py's OUT/NAME.pt)")
    p.add_argument("--sim-grid", type=int, default=96)
    p.add_argument("--coarsen", type=int, default=3)
    p.add_argument("--test-samples", type=int, default=64)
    p.add_argument("--context", type=int, default=10)
    p.add_argument("--leads", type=int, default=20)
    p.add_argument("--members", type=int, default=16)
    p.add_argument("--seed", type=int, default=0, help="forecast seed (as heat_forecast.py)")
    p.add_argument("--batch-size", type=int, default=16, help="sequences per forecast call "
                   "(as heat_forecast.py: the same draws)")
    p.add_argument("--results", type=Path)
    p.add_argument("--section", default="heat-drift")
    p.add_argument("--title", default="Heat: drift of the ConvDMM's forecast with lead time")
    p.add_argument("--note", default="")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    from pyro_videossm.forecast import load_forecaster

    K, L = args.context, args.leads
    test = heat_data(args.test_samples, K + L, 2, args.sim_grid, args.coarsen)
    context = test["obs"].isel(time=slice(0, K))
    truth = np.asarray(test["truth"].isel(time=slice(K, K + L)).values, dtype=np.float64)
    results = {"truth": {"level": truth.mean(axis=(0, 2, 3)).tolist(),
                         "peak": truth.max(axis=(2, 3)).mean(0).tolist()}}
    for spec in args.model:
        name, _, path = spec.partition("=")
        fc = load_forecaster(path)
        results[f"{name}, ensemble of {args.members}"] = scores(
            fc.forecast(context, L, args.members, seed=args.seed, batch_size=args.batch_size),
            truth)
        fc.module.forecast = functools.partial(fc.module.forecast, noise=False)
        results[f"{name}, mean path"] = scores(
            fc.forecast(context, L, 1, seed=args.seed, batch_size=args.batch_size), truth)

    idx = [k - 1 for k in LEADS_SHOWN if k <= L]
    head = "| forecast | " + " | ".join(f"MSE lead {k}" for k in LEADS_SHOWN if k <= L)
    lines = [head + " | MSE mean 15–20 | mean level lead 1 / 20 | peak lead 1 / 20 |",
             "|---|" + "---:|" * (len(idx) + 3)]
    tr = results["truth"]
    lines.append("| truth | " + " | ".join("–" for _ in idx)
                 + f" | – | {tr['level'][0]:.1f} / {tr['level'][-1]:.1f} | "
                 f"{tr['peak'][0]:.1f} / {tr['peak'][-1]:.1f} |")
    for name, r in results.items():
        if name == "truth":
            continue
        mse = np.asarray(r["mse"])
        lines.append(f"| {name} | " + " | ".join(f"{mse[i]:.4g}" for i in idx)
                     + f" | {mse[14:20].mean():.4g} | {r['level'][0]:.1f} / "
                     f"{r['level'][-1]:.1f} | {r['peak'][0]:.1f} / {r['peak'][-1]:.1f} |")
    cmd = "python " + " ".join(shlex.quote(a) for a in
                               ["benchmarks/heat_drift.py", *(argv or sys.argv[1:])])
    body = "\n".join([
        f"### {args.title}", "",
        f"{args.test_samples} held-out heat sequences (test seed 2, as `heat_forecast.py`), "
        f"context {K}, {L} leads; MSE of the forecast against the noise-free truth "
        "(squared temperature units); mean level: the spatial mean of the (ensemble-mean) "
        "forecast, averaged over the sequences; peak: its maximum over the plate, averaged "
        "over the sequences. Ensemble: the benchmark's forecast (mean of the members); mean "
        "path: guide and transition means, no draws.", "",
        *lines, "", f"Command: `{cmd}`" + (f"  \n{args.note}" if args.note else "")])
    print(body)
    if args.results:
        from pyro_videossm.experiments.records import make_record
        from pyro_videossm.experiments.results import record_path_for, write_section

        record = make_record("heat-drift", command=cmd, options=vars(args) | {
            "results": str(args.results)}, data={"simulated": "heat_data(test seed 2)"},
            metrics=results)
        write_section(args.results, args.section, body, record=record, record_path=(
            record_path_for(args.results, f"benchmarks/results/heat/{args.section}.json")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
