"""iEnKS, EnKF-N, 3D-Var and 4D-Var on the standard Lorenz-63 setting, beside the ETKF.

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/variational_lorenz63.py --cycles 1000 \\
        --seeds 0 1 2 --out benchmarks/results/variational_lorenz63.json

Setting of Sakov et al. (2012) (``simulate("lorenz63")`` defaults: dt 0.01, observed every
25 steps, R = 2 I, all components). For each seed the truth and observations are simulated
with that seed and the method is run with the same seed; the score is the time-averaged RMSE
of the posterior mean after 100 burn-in cycles (``pyro_videossm.metrics.posterior.rmse``),
for the iEnKS also of its filter estimate (the analysis at the window end). Prints a
markdown table (mean ± standard error over seeds) and writes every number as JSON.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import torch
import xarray as xr

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pyro_videossm.assimilate import get_method  # noqa: E402
from pyro_videossm.atomic import atomic_path  # noqa: E402
from pyro_videossm.data import simulate  # noqa: E402
from pyro_videossm.metrics.posterior import rmse  # noqa: E402

BURN_IN = 100

#: label -> (method, options)
METHODS = {
    "ETKF N=10, no inflation": ("etkf", {"members": 10, "inflation": 1.0, "rotate": False,
                                         "spinup": 0}),
    "ETKF N=10, inflation 1.02": ("etkf", {"members": 10, "inflation": 1.02, "rotate": True}),
    "EnKF-N N=10": ("enkf-n", {"members": 10}),
    "EnKF-N N=10, rotations": ("enkf-n", {"members": 10, "rotate": True}),
    "iEnKS N=10, lag 1": ("ienks", {"members": 10, "lag": 1, "inflation": 1.02,
                                    "rotate": True}),
    "3D-Var": ("3dvar", {}),
    "4D-Var, windows of 2": ("4dvar", {}),
    "hybrid 4D-Var, windows of 2": ("4dvar", {"hybrid_weight": 0.5, "hybrid_members": 10}),
}


def _score(label: str, seed: int, cycles: int) -> dict:
    name, options = METHODS[label]
    ds = simulate("lorenz63", cycles=cycles, seed=seed)
    method = get_method(name, **options)
    post = method(ds, seed=seed)
    out = {"rmse": rmse(post["mean"], ds["truth"], burn_in=BURN_IN),
           "seconds_per_cycle": float(post.attrs["seconds_per_cycle"])}
    if name == "ienks":
        mean = xr.DataArray(method.filter_estimate.mean.numpy(), dims=("time", "component"))
        truth = xr.DataArray(ds["truth"].values, dims=("time", "component"))
        out["filter_rmse"] = rmse(mean, truth, burn_in=BURN_IN)
        out["model_runs_per_cycle"] = float(method.model_runs.double().mean())
    return out


def _summary(values: list[float]) -> str:
    m = sum(values) / len(values)
    if len(values) < 2:
        return f"{m:.3f}"
    se = math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1) / len(values))
    return f"{m:.3f} ± {se:.3f}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=1000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS),
                        metavar="LABEL")
    parser.add_argument("--out", type=Path, default=None, help="JSON file for the scores")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    results = {}
    print(f"Lorenz-63, {args.cycles} cycles, seeds {args.seeds}, burn-in {BURN_IN}\n")
    print("| method | options | RMSE | ms/cycle |")
    print("| --- | --- | --- | --- |")
    for label in args.methods:
        runs = [_score(label, seed, args.cycles) for seed in args.seeds]
        results[label] = {"method": METHODS[label][0], "options": METHODS[label][1],
                          "seeds": args.seeds, "runs": runs}
        score = _summary([r["rmse"] for r in runs])
        if "filter_rmse" in runs[0]:
            score += f" (filter: {_summary([r['filter_rmse'] for r in runs])})"
        ms = 1e3 * sum(r["seconds_per_cycle"] for r in runs) / len(runs)
        name, options = METHODS[label]
        print(f"| {label} | `{name}({', '.join(f'{k}={v}' for k, v in options.items())})` "
              f"| {score} | {ms:.1f} |", flush=True)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(args.out) as tmp:
            tmp.write_text(json.dumps({"cycles": args.cycles, "burn_in": BURN_IN,
                                       "results": results}, indent=1))


if __name__ == "__main__":
    main()
