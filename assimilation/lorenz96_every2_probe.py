"""Which learned part of the hybrid DMM spoils its guide on Lorenz-96 observing every 2nd
component (issue 13, "harder settings"): train the setting's DMM with one group of learned
parts frozen at a time and score the guide on a held-out record after each epoch.

::

    nice -n 10 python -m assimilation.lorenz96_every2_probe --freeze none model guide \\
        correction --units climatology --epochs 1 --train-cycles 400 \\
        --out assimilation/results/probes/lorenz96_every2_freeze.json

Each variant builds the setting's DMM (``DMM_TRAINING`` of :mod:`assimilation.
lorenz96_every_kth`, the correction in ``--units``), trains it on its own simulation (seed
1001, ``--train-cycles`` cycles, windows of 40 every 8, batches of 64, ClippedAdam at
``--lr`` decaying by 0.9 per epoch, as the recipe does) and, after every epoch, puts the
frozen parameters back to their initial values and scores the ``dmm`` method (64 samples) on
the record of seed ``--seed`` (``--cycles`` cycles, burn-in 100). Frozen groups: ``model``
(correction and transition noise), ``correction``, ``scale`` (transition noise), ``guide``
(everything in the guide), ``none``. Writes a run record (``--out``).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pyro
import torch

from assimilation.config import MethodEntry
from assimilation.lorenz96_every_kth import DMM_TRAINING
from assimilation.run import load_setting, run_entry
from pyro_videossm.data import simulate
from pyro_videossm.experiments.dmm import HybridDMMOptions, build_dmm
from pyro_videossm.experiments.records import make_record, write_record
from pyro_videossm.infer import TrainConfig
from pyro_videossm.infer.objectives import SVIObjective
from pyro_videossm.models.ssm.dmm_file import save_dmm
from pyro_videossm.models.ssm.hybrid import observation_windows

FROZEN = {"none": (), "model": ("model.",), "correction": ("model.transition.correction",),
          "scale": ("model.transition.log_scale",), "guide": ("guide.",)}


def probe(freeze: str, *, units: str, epochs: int, lr: float, train_cycles: int, seed: int,
          cycles: int, workdir: Path, log=print) -> list[dict]:
    """RMSE of the guide before training and after each epoch with ``freeze`` frozen."""
    setting = load_setting("lorenz96_every2")
    train = simulate(**setting.simulate, cycles=train_cycles, seed=1001)
    test = simulate(**setting.simulate, cycles=cycles, seed=seed)
    shaping = {k: v for k, v in DMM_TRAINING.items() if k not in ("cycles", "epochs")}
    options = HybridDMMOptions(**{**shaping, "correction_units": units}, seed=1001)
    torch.manual_seed(1001)
    dmm = build_dmm(train, options)
    params = dict(dmm.named_parameters())
    frozen = {n: p.detach().clone() for n, p in params.items()
              if any(n.startswith(prefix) for prefix in FROZEN[freeze])}
    windows = observation_windows(train, options.window, options.train_stride())
    n = int(windows["x"].shape[0])
    batches = -(-n // options.batch_size)
    objective = SVIObjective(dmm)
    objective.setup(TrainConfig(lr=lr, lr_decay=options.lr_decay, seed=1001), batches)
    objective.reset()
    pyro.set_rng_seed(1001)
    entry = MethodEntry("hybrid DMM", "dmm", {"samples": 64})
    path = workdir / f"probe_{freeze}_{units}.pt"
    rows = []

    def score(epoch: int, loss: float | None) -> None:
        save_dmm(path, dmm, extra={"window": options.window})
        result = run_entry(entry, setting, test, seed=seed, cycles=cycles, burn_in=100,
                           workdir=workdir, model=path)
        row = {"freeze": freeze, "units": units, "lr": lr, "epoch": epoch,
               "loss_per_cycle": loss, "rmse": result.get("rmse"),
               "spread": result.get("spread"), "error": result.get("error"),
               "transition_scale": float(dmm.model.transition.log_scale.exp().mean())}
        rows.append(row)
        log(row)

    score(0, None)
    order = torch.Generator().manual_seed(1001)
    for epoch in range(1, epochs + 1):
        total = norm = 0.0
        for idx in torch.randperm(n, generator=order).split(options.batch_size):
            batch = {k: v[idx] for k, v in windows.items()}
            loss, step_params = objective.loss_and_grads(batch, 1.0)
            objective.apply(step_params)
            with torch.no_grad():
                for name, value in frozen.items():
                    params[name].copy_(value)
            total, norm = total + float(loss), norm + float(objective.normalizer(batch))
        score(epoch, total / norm)
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m assimilation.lorenz96_every2_probe",
                                description=__doc__.splitlines()[0])
    p.add_argument("--freeze", nargs="+", choices=sorted(FROZEN), default=["none"])
    p.add_argument("--units", choices=("climatology", "transition"), default="transition")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--train-cycles", type=int, default=400)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cycles", type=int, default=300)
    p.add_argument("--workdir", type=Path, default=Path("assimilation/_work/probes"))
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    args.workdir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    rows = [row for freeze in args.freeze
            for row in probe(freeze, units=args.units, epochs=args.epochs, lr=args.lr,
                             train_cycles=args.train_cycles, seed=args.seed,
                             cycles=args.cycles, workdir=args.workdir)]
    command = " ".join(["nice -n 10 python -m assimilation.lorenz96_every2_probe",
                        "--freeze", *args.freeze, "--units", args.units,
                        "--epochs", str(args.epochs), "--lr", str(args.lr),
                        "--train-cycles", str(args.train_cycles), "--seed", str(args.seed),
                        "--cycles", str(args.cycles), "--out", str(args.out)])
    write_record(args.out, make_record(
        "lorenz96_every2_probe", command=command, options=vars(args) | {"out": str(args.out)},
        metrics={"rows": rows}, timings={"seconds": round(time.perf_counter() - start, 1)},
        machine_note="shared, loaded"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
