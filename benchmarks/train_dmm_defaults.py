"""``videossm train dmm`` with its defaults, end to end through the CLI, against the tuned recipe.

Simulates the standard Lorenz-63 record (``videossm simulate lorenz63 --seed 1``, 1000 cycles)
and a held-out one (``--seed 2``), trains ``videossm train dmm obs.nc -o m.pt`` with the
defaults (``train_seconds``: the whole command, start-up included; ``fit_seconds``: the
training loop), assimilates the held-out record with ``videossm assimilate test.nc --method dmm
--model m.pt`` and scores it against the truth (burn-in 100). The reference is the tuned
recipe of docs/RESULTS.md (5000 training cycles, seed 100, ``--epochs 10 --batch-size 64
--lr 0.002 --lr-decay 0.9 --physics-substeps 5 --rnn-dim 64``) scored on the same held-out
record. Writes a run record to ``assimilation/results/train_dmm_defaults/lorenz63.json``::

    OMP_NUM_THREADS=1 taskset -c 1 python benchmarks/train_dmm_defaults.py

``--quick``: toy sizes, nothing written (a smoke test).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import xarray as xr

from pyro_videossm.data.chaotic import load_observations
from pyro_videossm.experiments.records import make_record, write_record
from pyro_videossm.metrics.posterior import score_posterior
from pyro_videossm.models.ssm.dmm_file import load_dmm

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "assimilation" / "results" / "train_dmm_defaults" / "lorenz63.json"
RECIPE = ["--epochs", "10", "--batch-size", "64", "--lr", "0.002", "--lr-decay", "0.9",
          "--physics-substeps", "5", "--rnn-dim", "64"]
BURN_IN = 100


def videossm(*args: str) -> float:
    """Run ``videossm ARGS`` (this checkout first on the path); its wall seconds."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pyro_videossm", *args], check=True, env=env)
    return time.perf_counter() - start


def trained_and_scored(name: str, train: Path, test: Path, folder: Path, flags: list[str]
                       ) -> dict:
    model, post = folder / f"{name}.pt", folder / f"{name}_posterior.nc"
    train_s = videossm("train", "dmm", str(train), "-o", str(model), *flags)
    assim_s = videossm("assimilate", str(test), "--method", "dmm", "--model", str(model),
                       "-o", str(post))
    truth = load_observations(test)["truth"]
    with xr.open_dataset(post) as ds:
        scores = score_posterior(ds.load(), truth, burn_in=BURN_IN)
    _, extra = load_dmm(model)
    return {"command": f"videossm train dmm {train.name} -o {model.name} {' '.join(flags)}"
            .strip(), "train_seconds": round(train_s, 1),
            "fit_seconds": extra["training"]["wall_seconds"],
            "assimilate_seconds": round(assim_s, 1),
            **{k: round(float(v), 4) for k, v in scores.items()}}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="toy sizes, nothing written")
    args = parser.parse_args(argv)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        cycles = ["--cycles", "150"] if args.quick else []
        obs, test, ref = folder / "obs.nc", folder / "test.nc", folder / "recipe_train.nc"
        videossm("simulate", "lorenz63", "--seed", "1", *cycles, "-o", str(obs))
        videossm("simulate", "lorenz63", "--seed", "2", *cycles, "-o", str(test))
        videossm("simulate", "lorenz63", "--seed", "100",
                 "--cycles", "200" if args.quick else "5000", "-o", str(ref))
        quick = ["--epochs", "1"] if args.quick else []
        defaults = trained_and_scored("defaults", obs, test, folder, quick)
        recipe = trained_and_scored("recipe", ref, test, folder, RECIPE + quick)
    load_after = os.getloadavg()
    ratio = defaults["rmse"] / recipe["rmse"]
    print(f"defaults: train {defaults['train_seconds']} s, RMSE {defaults['rmse']:.3f}; "
          f"tuned recipe (5000 cycles): train {recipe['train_seconds']} s, RMSE "
          f"{recipe['rmse']:.3f}; ratio {ratio:.3f}; load {load_before[0]:.2f} -> "
          f"{load_after[0]:.2f}")
    if args.quick:
        return 0
    record = make_record(
        "train_dmm_defaults",
        command="OMP_NUM_THREADS=1 taskset -c 1 python benchmarks/train_dmm_defaults.py",
        options={"burn_in": BURN_IN, "recipe_flags": RECIPE,
                 "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
                 "cpu_affinity": sorted(os.sched_getaffinity(0))},
        data={"simulate": {"system": "lorenz63", "train_seed": 1, "test_seed": 2,
                           "recipe_train_seed": 100, "recipe_train_cycles": 5000,
                           "cycles": 1000}},
        metrics={"defaults": defaults, "recipe": recipe, "rmse_ratio": round(ratio, 4)},
        timings={"defaults_train": defaults["train_seconds"],
                 "recipe_train": recipe["train_seconds"]},
        load_before=list(load_before), load_after=list(load_after))
    write_record(OUT, record)
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
