"""Amortised cost of the hybrid DMM against the iEnKS on Lorenz-63: training seconds,
inference seconds per 1000 cycles, and the record length at which they break even.

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/lorenz63_dmm_cost.py --write-docs

One process, one torch thread. It trains the DMM of the ``lorenz63_dmm`` setting (the demo
recipe, :func:`pyro_videossm.experiments.dmm.train_demo_model`, on its own simulation: seed
1001) and times the training; then it assimilates one held-out record of the same setting
(``--seed``, ``--cycles`` cycles) with the DMM (``samples`` guide draws, model file read
included) and with the iEnKS of the setting (N = 10, lag 1, early stopping at 1e-4), after one
warm-up call each, ``--repeats`` times, the two alternating so that both see the same load.
Times are the median over the repeats, as CPU seconds of this process
(``time.process_time``: what the work costs, less sensitive to other jobs on the machine) and
as wall seconds. The break-even record length is ``training / (iEnKS - DMM)`` in seconds per
cycle: from that many cycles on, training the DMM and running it costs less than running the
iEnKS. The run record goes to ``benchmarks/results/lorenz63_dmm/cost.json`` and the table to
the ``lorenz63_dmm:cost`` section of docs/LORENZ63_DMM.md (``--write-docs``).

``--model PATH --tag NAME`` times a model trained earlier instead (a row of
``assimilation/lorenz63_dmm_recipes.py``, trained by its recipe under
``assimilation/_work/``), with the training seconds its file records (``train_hybrid_dmm``
measures them while training): section ``lorenz63_dmm:cost-NAME``, record ``cost-NAME.json``.
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from assimilation.lorenz63_dmm import IENKS, SETTING  # noqa: E402
from pyro_videossm.assimilate import get_method  # noqa: E402
from pyro_videossm.data import simulate  # noqa: E402
from pyro_videossm.errors import InputError  # noqa: E402
from pyro_videossm.experiments.dmm import DEMO_TRAINING, train_demo_model  # noqa: E402
from pyro_videossm.experiments.records import make_record  # noqa: E402
from pyro_videossm.experiments.results import (  # noqa: E402
    record_path_for,
    write_section,
)
from pyro_videossm.metrics.posterior import markdown_table, rmse  # noqa: E402

DOCS = REPO / "docs" / "LORENZ63_DMM.md"
SECTION = "lorenz63_dmm:cost"
RECORD = "benchmarks/results/lorenz63_dmm/cost.json"
BURN_IN = 100


def clocks() -> tuple[float, float]:
    """(CPU seconds of this process, wall seconds) now."""
    return time.process_time(), time.perf_counter()


def since(start: tuple[float, float]) -> tuple[float, float]:
    cpu, wall = clocks()
    return cpu - start[0], wall - start[1]


def break_even_cycles(train_seconds: float, dmm_per_cycle: float,
                      ienks_per_cycle: float) -> float:
    """Record length (cycles) from which training + running the DMM costs less than running
    the iEnKS: ``train / (iEnKS - DMM)`` per cycle; inf when the DMM is not cheaper per
    cycle."""
    saving = ienks_per_cycle - dmm_per_cycle
    return train_seconds / saving if saving > 0 else float("inf")


def recorded_training(path: Path) -> tuple[float, float, dict]:
    """(CPU s, wall s, recipe) of a model file's training, as ``train_hybrid_dmm`` wrote
    them; InputError when the file has none."""
    from pyro_videossm.infer.model_file import load_model_file

    extra = load_model_file(path).get("extra") or {}
    training = extra.get("training") or {}
    if "cpu_seconds" not in training:
        raise InputError(f"{path}: the model file records no training seconds")
    return (float(training["cpu_seconds"]), float(training["wall_seconds"]),
            extra.get("recipe") or training.get("options", {}))


def measure(*, train_seed: int, seed: int, cycles: int, repeats: int, samples: int,
            train_cycles: int | None = None, epochs: int | None = None,
            model: Path | None = None, log=print) -> dict:
    """Train the DMM (or take ``model`` and the training seconds its file records), time
    both methods on one held-out record; the numbers of the record."""
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        if model is None:
            model = Path(tmp) / "dmm.pt"
            start = clocks()
            train_demo_model(model, seed=train_seed, epochs=epochs, cycles=train_cycles)
            train_cpu, train_wall = since(start)
            recipe = {**DEMO_TRAINING, **({"epochs": epochs} if epochs else {}),
                      **({"cycles": train_cycles} if train_cycles else {})}
        else:
            train_cpu, train_wall, recipe = recorded_training(model)
        log(f"training: {train_cpu:.1f} CPU s, {train_wall:.1f} wall s")
        obs = simulate(**SETTING.simulate, cycles=cycles, seed=seed)
        methods = {"hybrid DMM": get_method("dmm", model=str(model), samples=samples),
                   "iEnKS N=10 (lag 1)": get_method("ienks", **IENKS)}
        times = {label: {"cpu": [], "wall": []} for label in methods}
        scores = {}
        for label, method in methods.items():  # warm-up; also the RMSE of each
            post = method(obs, seed=seed)
            scores[label] = float(rmse(post["mean"], obs["truth"],
                                       burn_in=min(BURN_IN, cycles // 2)))
        for _ in range(repeats):
            for label, method in methods.items():
                start = clocks()
                method(obs, seed=seed)
                cpu, wall = since(start)
                times[label]["cpu"].append(cpu)
                times[label]["wall"].append(wall)
                log(f"{label}: {cpu:.2f} CPU s, {wall:.2f} wall s per {cycles} cycles")
    per_1000 = {label: {k: 1000 * statistics.median(v) / cycles for k, v in t.items()}
                for label, t in times.items()}
    dmm, ienks = per_1000["hybrid DMM"], per_1000["iEnKS N=10 (lag 1)"]
    return {
        "training": {"cpu_seconds": train_cpu, "wall_seconds": train_wall,
                     "train_seed": train_seed, "recipe": recipe,
                     "model": None if str(model).startswith(tempfile.gettempdir())
                     else str(model)},
        "rmse": scores, "times": times, "seconds_per_1000_cycles": per_1000,
        "speed_up": {k: ienks[k] / dmm[k] for k in ("cpu", "wall")},
        "break_even_cycles": {
            k: break_even_cycles({"cpu": train_cpu, "wall": train_wall}[k], dmm[k] / 1000,
                                 ienks[k] / 1000) for k in ("cpu", "wall")},
    }


def render(result: dict, *, command: str, cycles: int, repeats: int, seed: int,
           samples: int, load: tuple[float, float], title: str = "") -> str:
    """The docs section: conditions, the cost table, the break-even lengths."""
    per, train = result["seconds_per_1000_cycles"], result["training"]
    trained = (f"the DMM trained once (seed {train['train_seed']}, the demo recipe) and timed"
               if train["model"] is None else
               f"the DMM of `{train['model']}` (its training seconds are those its model file "
               f"records, measured when it was trained on this machine: recipe "
               f"{train['recipe']})")
    rows = []
    for label in per:
        is_dmm = label == "hybrid DMM"
        rows.append({
            "method": label,
            "training CPU s": f"{train['cpu_seconds']:.1f}" if is_dmm else "—",
            "training wall s": f"{train['wall_seconds']:.1f}" if is_dmm else "—",
            "CPU s / 1000 cycles": f"{per[label]['cpu']:.2f}",
            "wall s / 1000 cycles": f"{per[label]['wall']:.2f}",
            "RMSE (this record)": f"{result['rmse'][label]:.3f}",
        })
    even, speed = result["break_even_cycles"], result["speed_up"]
    return "\n".join([
        f"### Amortised cost: hybrid DMM{title} against the iEnKS",
        "",
        f"Command: `{command}`",
        "",
        f"One process, one torch thread: {trained}, then the DMM ({samples} guide draws, "
        f"model file read included) and the iEnKS (N=10, lag 1) alternating on one held-out "
        f"record (seed {seed}, {cycles} cycles), median of {repeats} calls after a warm-up. "
        f"Measured on a shared, loaded machine (load average {load[0]:.1f} before, "
        f"{load[1]:.1f} after): the CPU seconds of the process are the fairer measure, and "
        "the ratio of two methods timed side by side is more meaningful than either time.",
        "",
        markdown_table(rows),
        "",
        f"- Inference: the DMM is {speed['cpu']:.0f}× cheaper than the iEnKS in CPU seconds "
        f"({speed['wall']:.0f}× in wall seconds); target ≥ 20×: "
        f"**{'met' if speed['cpu'] >= 20 else 'not met'}**.",
        f"- Break-even: training plus inference of the DMM costs less than the iEnKS from "
        f"{even['cpu']:,.0f} cycles on (CPU seconds; {even['wall']:,.0f} cycles in wall "
        f"seconds), i.e. {even['cpu'] / cycles:.1f} records of {cycles} cycles.",
    ])


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--train-seed", type=int, default=1001)
    p.add_argument("--seed", type=int, default=0, help="held-out record (default 0)")
    p.add_argument("--cycles", type=int, default=1000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--samples", type=int, default=64, help="DMM guide draws (default 64)")
    p.add_argument("--train-cycles", type=int, default=None,
                   help="training cycles (default: the demo recipe's 5000)")
    p.add_argument("--epochs", type=int, default=None,
                   help="training epochs (default: the demo recipe's 10)")
    p.add_argument("--model", type=Path, default=None,
                   help="time this trained model instead of training one (training seconds: "
                        "those its file records)")
    p.add_argument("--tag", default="", help="a second cost section and record: "
                   "lorenz63_dmm:cost-TAG, cost-TAG.json (e.g. a recipe variant's model)")
    p.add_argument("--docs", type=Path, default=DOCS)
    p.add_argument("--write-docs", action="store_true",
                   help="store the run record and rewrite the cost section of --docs")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        for name in ("cycles", "repeats", "samples"):
            if getattr(args, name) < 1:
                raise InputError(f"--{name} must be >= 1, got {getattr(args, name)}")
        if args.model is not None and not args.model.is_file():
            raise InputError(f"{args.model}: no such model file")
        if args.tag and not args.tag.replace("-", "").isalnum():
            raise InputError(f"--tag must be letters, digits and dashes, got {args.tag!r}")
        if args.write_docs and not args.docs.exists():
            raise InputError(f"{args.docs}: no such results file")
    except InputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    load_before = os.getloadavg()[0]
    result = measure(train_seed=args.train_seed, seed=args.seed, cycles=args.cycles,
                     repeats=args.repeats, samples=args.samples,
                     train_cycles=args.train_cycles, epochs=args.epochs, model=args.model)
    load = (load_before, os.getloadavg()[0])
    parts = ["OMP_NUM_THREADS=1", "nice", "-n", "10", "python", "benchmarks/lorenz63_dmm_cost.py"]
    for name in ("train_seed", "seed", "cycles", "repeats", "samples", "train_cycles",
                 "epochs", "model", "tag"):
        value, default = getattr(args, name), build_parser().get_default(name)
        if value != default:
            parts += [f"--{name.replace('_', '-')}", str(value)]
    if args.docs.resolve() != DOCS.resolve():
        parts += ["--docs", str(args.docs)]
    command = shlex.join(parts + ["--write-docs"])
    body = render(result, command=command, cycles=args.cycles, repeats=args.repeats,
                  seed=args.seed, samples=args.samples, load=load,
                  title=f" ({args.tag})" if args.tag else "")
    print(body)
    if args.write_docs:
        record = make_record("lorenz63_dmm_cost", command=command,
                             options={k: getattr(args, k) for k in (
                                 "train_seed", "seed", "cycles", "repeats", "samples",
                                 "train_cycles", "epochs", "model", "tag")},
                             data={"simulate": SETTING.simulate, "seed": args.seed},
                             metrics=result, timings=result["seconds_per_1000_cycles"],
                             machine_note="shared, loaded")
        section = SECTION + (f"-{args.tag}" if args.tag else "")
        path = RECORD.replace("cost.json", f"cost-{args.tag}.json" if args.tag else "cost.json")
        write_section(args.docs, section, body, record=record,
                      record_path=record_path_for(args.docs, path))
        print(f"wrote the {section} section of {args.docs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
