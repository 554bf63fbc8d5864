"""Why the hybrid DMM trails the iEnKS on Lorenz-96 N=40 (issue 13): its guide with the TRUE
physics and nothing learned (the oracle weak-constraint smoother), on one record, against the
window length, the transition noise it assumes and the Gauss-Newton relinearisations::

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/lorenz96_n40_oracle.py --write-docs

Each row builds the setting's hybrid DMM untrained with pure physics (no correction, the
data's own RK4 step, the transition noise fixed at ``q``, no guide residual; the learned
message as initialised: a weak copy of the observation) and assimilates the record with the
``dmm`` method in windows of ``window`` every ``stride`` cycles (each cycle from the window
where it is most central). The iEnKS N=40 (lag 40, inflation 1.005: the setting's best row)
runs on the same record. One seed, short record: a diagnostic, not the judged protocol (that
is ``python -m assimilation.run lorenz96_n40``).
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from pyro_videossm.assimilate import assimilate  # noqa: E402
from pyro_videossm.data import simulate  # noqa: E402
from pyro_videossm.experiments.records import make_record  # noqa: E402
from pyro_videossm.experiments.results import write_section  # noqa: E402
from pyro_videossm.metrics.posterior import score_posterior  # noqa: E402
from pyro_videossm.models.ssm.hybrid import hybrid_dmm  # noqa: E402

SECTION = "lorenz96_n40:oracle"
SIMULATE = {"system": "lorenz96", "n": 40, "forcing": 8.0, "dt": 0.05, "steps_per_obs": 1,
            "obs_noise_std": 1.0}
#: (window, stride, Gauss-Newton relinearisations, transition noise q)
GRID = ((40, 20, 3, 0.02), (40, 20, 10, 0.02), (40, 20, 10, 0.005),
        (80, 10, 3, 0.02), (80, 10, 10, 0.02), (80, 10, 10, 0.005),
        (160, 20, 10, 0.02), (160, 20, 3, 0.005), (160, 20, 5, 0.005), (160, 20, 10, 0.005),
        (160, 20, 10, 0.001), (240, 40, 5, 0.005))
IENKS = {"members": 40, "lag": 40, "inflation": 1.005}


def untrained_guide_posterior(obs, window: int, stride: int, iterations: int, q: float, *,
                              seed: int, samples: int, substeps: int | None = None):
    """``(posterior, seconds)`` of the untrained hybrid DMM's guide: pure physics (no
    correction; ``substeps`` RK4 substeps per cycle, ``None``: the data's own step), transition
    noise fixed at ``q``, no guide residual, assimilating in windows (also used by
    ``benchmarks/lorenz96_every2_oracle.py``)."""
    torch.manual_seed(seed)
    dmm = hybrid_dmm(obs, rnn_dim=16, correction_hidden=(), transition_scale=q,
                     learn_transition_scale=False, smoother_iterations=iterations,
                     guide_residual=False, physics_substeps=substeps)
    start = time.perf_counter()
    post = assimilate(obs, "dmm", model=dmm, samples=samples, window=window, stride=stride,
                      seed=seed)
    return post, time.perf_counter() - start


def oracle_row(obs, window: int, stride: int, iterations: int, q: float, *, seed: int,
               samples: int, burn_in: int) -> dict:
    """Scores of the untrained guide with the true physics (see the module docstring)."""
    post, seconds = untrained_guide_posterior(obs, window, stride, iterations, q, seed=seed,
                                              samples=samples)
    scores = score_posterior(post, obs["truth"], burn_in=burn_in)
    return {"method": "oracle smoother", "window": window, "stride": stride,
            "iterations": iterations, "q": q, "rmse": float(scores["rmse"]),
            "spread": float(scores["spread"]), "seconds": seconds}


def render(rows: list[dict], command: str, args) -> str:
    lines = [
        "### Lorenz-96 N=40: the DMM's guide with the true physics (oracle smoother)", "",
        f"Command: `{command}`", "",
        f"One record (seed {args.seed}, {args.cycles} cycles, burn-in {args.burn_in}; a "
        "diagnostic, not the judged protocol): the hybrid DMM built untrained with pure "
        "physics (no correction, the data's RK4 step, transition noise fixed at q, no guide "
        "residual), assimilating in windows (each cycle from the window where it is most "
        f"central), {args.samples} guide draws; the iEnKS N=40 (lag 40, inflation 1.005) on "
        "the same record. Seconds: wall clock on a shared, loaded machine.", "",
        "| method | window | stride | relinearisations | q | RMSE | spread | seconds |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        if r["method"] == "oracle smoother":
            cells = [r["method"], str(r["window"]), str(r["stride"]), str(r["iterations"]),
                     f"{r['q']:g}"]
        else:
            cells = [r["method"], "—", "—", "—", "—"]
        cells += [f"{r['rmse']:.4f}", f"{r['spread']:.4f}", f"{r['seconds']:.1f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cycles", type=int, default=300)
    p.add_argument("--burn-in", type=int, default=100)
    p.add_argument("--samples", type=int, default=64)
    p.add_argument("--write-docs", action="store_true",
                   help="write the record and the section of docs/RESULTS.md")
    p.add_argument("--docs", type=Path, default=REPO / "docs" / "RESULTS.md")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    obs = simulate(**SIMULATE, cycles=args.cycles, seed=args.seed)
    rows = []
    for window, stride, iterations, q in GRID:
        rows.append(oracle_row(obs, window, stride, iterations, q, seed=args.seed,
                               samples=args.samples, burn_in=args.burn_in))
        print(rows[-1], flush=True)
    start = time.perf_counter()
    post = assimilate(obs, "ienks", seed=args.seed, **IENKS)
    scores = score_posterior(post, obs["truth"], burn_in=args.burn_in)
    rows.append({"method": "iEnKS N=40 (lag 40, infl 1.005)", "rmse": float(scores["rmse"]),
                 "spread": float(scores["spread"]), "seconds": time.perf_counter() - start})
    print(rows[-1], flush=True)
    command = shlex.join(["OMP_NUM_THREADS=1", "nice", "-n", "10", "python",
                          "benchmarks/lorenz96_n40_oracle.py", "--seed", str(args.seed),
                          "--cycles", str(args.cycles), "--burn-in", str(args.burn_in),
                          "--samples", str(args.samples), "--write-docs"])
    body = render(rows, command, args)
    print(body)
    if args.write_docs:
        record = make_record("lorenz96_n40_oracle", command=command, options=vars(args) | {
            "docs": str(args.docs)}, data={"simulate": SIMULATE, "seed": args.seed},
            metrics={"rows": rows}, timings={"seconds": sum(r["seconds"] for r in rows)},
            machine_note="shared, loaded")
        write_section(args.docs, SECTION, body, record=record,
                      record_path=REPO / "benchmarks" / "results" / "lorenz96_n40"
                      / "oracle.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
