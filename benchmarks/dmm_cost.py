"""Cost of a posterior: a trained hybrid DMM's guide against the EnKS, 1000 Lorenz-63 cycles.

Both assimilate the same held-out record (the standard Lorenz-63 setting, seed 1, 1000
cycles, as in ``assimilation/dmm_experiments.py``) through the common interface
(``assimilate(obs, name, ...)``: mean, std and quantiles). Each call is timed ``--repeats``
times (wall clock, best and median; one torch thread unless ``--threads``), after one
warm-up call. The DMM's time includes reading its model file. Run it on a quiet machine::

    python assimilation/dmm_experiments.py l63     # trains assimilation/dmm_results/l63.pt
    python benchmarks/dmm_cost.py --model assimilation/dmm_results/l63.pt \\
        --json assimilation/dmm_results/cost.json

The JSON feeds the cost table of the DMM section of docs/RESULTS.md
(``python assimilation/dmm_experiments.py`` with no experiment rebuilds the section).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import torch

from pyro_videossm.assimilate import assimilate
from pyro_videossm.data import simulate
from pyro_videossm.experiments.records import write_json
from pyro_videossm.metrics.posterior import rmse


def timed(fn, repeats: int) -> tuple[object, list[float]]:
    fn()  # warm-up (allocations, the model file's first read)
    times, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return out, times


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", type=Path, required=True, help="trained hybrid DMM (l63)")
    p.add_argument("--samples", type=int, nargs="+", default=[64, 32])
    p.add_argument("--members", type=int, default=10, help="EnKS members (default 10)")
    p.add_argument("--lag", type=int, default=8,
                   help="EnKS lag in cycles (default 8, the EnKS's default)")
    p.add_argument("--cycles", type=int, default=1000)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", type=Path, help="also write the results here")
    args = p.parse_args(argv)
    if not args.model.is_file():
        raise SystemExit(f"{args.model}: no such model file (train one with "
                         "assimilation/dmm_experiments.py l63)")
    torch.set_num_threads(args.threads)
    obs = simulate("lorenz63", cycles=args.cycles, seed=1)
    load = os.getloadavg()[0]
    rows = []
    runs = [("enks", f"EnKS N={args.members} (lag {args.lag})",
             dict(members=args.members, lag=args.lag, seed=0))]
    runs += [("dmm", f"hybrid DMM, {s} guide draws", dict(model=str(args.model), samples=s,
                                                         seed=0)) for s in args.samples]
    for method, label, options in runs:
        post, times = timed(lambda m=method, o=options: assimilate(obs, m, **o), args.repeats)
        rows.append({"method": label, "rmse": float(rmse(post["mean"], obs["truth"],
                                                         burn_in=100)),
                     "best_s": min(times), "median_s": statistics.median(times)})
        print(f"{label}: RMSE {rows[-1]['rmse']:.3f}, best {min(times):.3f} s, median "
              f"{statistics.median(times):.3f} s per {args.cycles} cycles", flush=True)
    ref = rows[0]["best_s"]
    for row in rows:
        row["speed-up"] = ref / row["best_s"]
    record = {"rows": rows, "cycles": args.cycles, "repeats": args.repeats,
              "threads": args.threads, "load_before": round(load, 2),
              "load_after": round(os.getloadavg()[0], 2),
              "machine": f"{platform.machine()}, {os.cpu_count()} CPU(s), torch "
                         f"{torch.__version__}",
              "command": "python benchmarks/dmm_cost.py --model " + str(args.model)
                         + (f" --lag {args.lag}" if args.lag != 8 else "")
                         + (f" --threads {args.threads}" if args.threads != 1 else "")}
    print(json.dumps(record, indent=1))
    if args.json:
        write_json(args.json, record)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
