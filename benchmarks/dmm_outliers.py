"""Gross outliers at DMM inference: the hybrid DMM with Gaussian, Student-t and Huber
observation messages (IRLS, :mod:`pyro_videossm.models.ssm.robust_guide`) on Lorenz-63
records with 1 % of the observations replaced by +-1e3..1e4, against the same records clean.

The model is the demo recipe (:func:`pyro_videossm.experiments.dmm.train_demo_model`, seed
1001, trained on its own clean simulation; written to ``--model`` when absent). Each seed
simulates the standard Lorenz-63 record (``simulate("lorenz63", seed=s)``), corrupts 1 % of
its observations (``numpy`` generator seeded with ``s``) and scores the smoothed mean
(RMSE after 100 burn-in cycles) on the clean and the corrupted record; the ETKF with the same
likelihoods is the classical reference. Writes ``assimilation/results/dmm/outliers.json``::

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/dmm_outliers.py --seeds 3 --cycles 500
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pyro_videossm.assimilate import assimilate  # noqa: E402
from pyro_videossm.data import simulate  # noqa: E402
from pyro_videossm.errors import InputError  # noqa: E402
from pyro_videossm.experiments.records import make_record, write_record  # noqa: E402
from pyro_videossm.metrics import rmse  # noqa: E402

OUT = ROOT / "assimilation" / "results" / "dmm" / "outliers.json"
BURN_IN = 100


def corrupt(obs, seed: int, fraction: float = 0.01):
    """A copy of ``obs`` with ``fraction`` of its observations replaced by +-U(1e3, 1e4)."""
    bad = obs.copy(deep=True)
    rng = np.random.default_rng(seed)
    values = bad["obs"].values
    idx = rng.choice(values.size, int(round(fraction * values.size)), replace=False)
    values.flat[idx] = rng.uniform(1e3, 1e4, idx.size) * rng.choice([-1, 1], idx.size)
    return bad


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--cycles", type=int, default=500)
    parser.add_argument("--model", default=str(ROOT / "assimilation" / "_work" / "dmm_outliers"
                                               / "demo.pt"))
    parser.add_argument("--output", default=str(OUT))
    args = parser.parse_args(argv)
    model = Path(args.model)
    train_seconds = None
    if not model.exists():
        from pyro_videossm.experiments.dmm import train_demo_model

        model.parent.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        train_demo_model(model, seed=1001)
        train_seconds = round(time.perf_counter() - start, 1)
    rows = {
        "hybrid DMM, Gaussian messages": ("dmm", {"model": str(model), "samples": 64,
                                                  "obs_likelihood": "gaussian"}),
        "hybrid DMM, Student-t IRLS": ("dmm", {"model": str(model), "samples": 64,
                                               "obs_likelihood": "student_t"}),
        "hybrid DMM, Huber IRLS": ("dmm", {"model": str(model), "samples": 64,
                                           "obs_likelihood": "huber"}),
        "ETKF N=10, Student-t": ("etkf", {"members": 10, "inflation": 1.02, "rotate": True,
                                          "obs_likelihood": "student_t"}),
        "ETKF N=10, Huber": ("etkf", {"members": 10, "inflation": 1.02, "rotate": True,
                                      "obs_likelihood": "huber"}),
    }
    metrics = {label: {"clean": [], "outliers": [], "refused": []} for label in rows}
    start = time.perf_counter()
    for seed in range(1, args.seeds + 1):
        clean = simulate("lorenz63", seed=seed, cycles=args.cycles)
        bad = corrupt(clean, seed)
        for label, (method, options) in rows.items():
            for name, data in (("clean", clean), ("outliers", bad)):
                try:
                    post = assimilate(data, method, seed=seed, **options)
                    score = float(rmse(post["mean"], clean["truth"], burn_in=BURN_IN))
                except InputError as err:
                    metrics[label]["refused"].append(str(err))
                    score = None
                metrics[label][name].append(score)
            print(seed, label, metrics[label]["clean"][-1], metrics[label]["outliers"][-1],
                  flush=True)
    for m in metrics.values():
        for name in ("clean", "outliers"):
            vals = [v for v in m[name] if v is not None]
            m[f"{name}_mean"] = float(np.mean(vals)) if vals else None
        if m["clean_mean"] and m["outliers_mean"]:
            m["ratio"] = m["outliers_mean"] / m["clean_mean"]
    record = make_record(
        "dmm_outliers",
        command=f"OMP_NUM_THREADS=1 nice -n 10 python benchmarks/dmm_outliers.py --seeds "
                f"{args.seeds} --cycles {args.cycles}",
        options={**vars(args), "burn_in": BURN_IN, "fraction": 0.01,
                 "machine_note": "shared, loaded"},
        data={"records": f"simulate('lorenz63', seed=1..{args.seeds}, cycles={args.cycles}); "
                         "1% of observations replaced by +-U(1e3, 1e4), numpy seed = seed",
              "model": "train_demo_model(seed=1001)"},
        metrics=metrics,
        timings={"seconds": round(time.perf_counter() - start, 1),
                 "train_seconds": train_seconds},
    )
    write_record(args.output, record)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
