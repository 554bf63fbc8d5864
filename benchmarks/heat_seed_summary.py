"""Mean ± standard error over seeds of the heat benchmark's per-seed tables of one section
(``benchmarks/heat_forecast.py ... --section NAME --seed S``, one appended table per seed),
read from their run records, written as section ``NAME-seeds`` with its own record::

    python benchmarks/heat_seed_summary.py --section heat-advection \\
        --results docs/advection_convdmm.md

Nothing is trained: the numbers are those of the per-seed records
(``benchmarks/results/heat/NAME.json``, ``NAME_1.json``, ...).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from pyro_videossm.experiments.records import make_record, read_records  # noqa: E402
from pyro_videossm.experiments.results import record_path_for, write_section  # noqa: E402


def seed_table(records: list[dict]) -> tuple[str, dict]:
    """Markdown table (per model: seeds, mean ± s.e. of the MSE at leads 1, 10, 20 and of the
    mean over leads 15–20) and the numbers it shows."""
    per_model: dict[str, list[np.ndarray]] = {}
    seeds = []
    for rec in records:
        seeds.append(rec["options"]["seed"])
        for name, mse in rec["metrics"]["mse_per_lead"].items():
            per_model.setdefault(name, []).append(np.asarray(mse, dtype=float))

    def mean_se(values) -> tuple[float, float]:
        v = np.asarray(values, dtype=float)
        se = float(v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else float("nan")
        return float(v.mean()), se

    lines = ["| model | seeds | lead 1 | lead 10 | lead 20 | mean 15–20 | per seed (15–20) |",
             "|---|---:|---:|---:|---:|---:|---|"]
    numbers = {}
    for name, runs in per_model.items():
        cells, numbers[name] = [], {}
        for key, vals in (("lead 1", [r[0] for r in runs]), ("lead 10", [r[9] for r in runs]),
                          ("lead 20", [r[19] for r in runs]),
                          ("mean 15–20", [r[14:20].mean() for r in runs])):
            m, se = mean_se(vals)
            numbers[name][key] = [m, se]
            cells.append(f"{m:.4g} ± {se:.2g}")
        per_seed = ", ".join(f"{r[14:20].mean():.4g}" for r in runs)
        lines.append(f"| {name} | {len(runs)} | " + " | ".join(cells) + f" | {per_seed} |")
    return "\n".join(lines), {"seeds": seeds, "mean_se": numbers}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--section", nargs="+", default=["heat-advection"],
                   help="the per-seed section(s) whose records are summarised (several: their "
                        "tables pooled, e.g. a baseline's seeds recorded in another section)")
    p.add_argument("--name", help="name of the written section (default: FIRST-SECTION-seeds)")
    p.add_argument("--results", type=Path, required=True, help="markdown file to write into")
    p.add_argument("--note", default="", help="paragraph added under the table")
    args = p.parse_args(argv)
    folder = REPO / "benchmarks" / "results" / "heat"
    records = [r for r in read_records(folder)
               if r.get("section", {}).get("name") in args.section]
    records.sort(key=lambda r: (args.section.index(r["section"]["name"]),
                                r["section"].get("part", 0)))
    if not records:
        raise SystemExit(f"no records of section {args.section!r} in {folder}")
    table, numbers = seed_table(records)
    cmd = "python benchmarks/heat_seed_summary.py " + " ".join(
        shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    body = "\n".join([
        f"### Heat: mean ± standard error over seeds ({', '.join(args.section)})", "",
        "MSE against the noise-free truth, mean over the seeds of the tables above "
        "(± standard error of the mean); the last column lists each seed's mean over leads "
        "15–20.", "", table, "", f"Command: `{cmd.strip()}`"
        + (f"  \n{args.note}" if args.note else "")])
    print(body)
    name = args.name or f"{args.section[0]}-seeds"
    write_section(args.results, name, body, record=make_record(
        "heat-seeds", command=cmd.strip(), options=vars(args) | {"results": str(args.results)},
        data={"records": [Path(r["_path"]).name for r in records]}, metrics=numbers),
        record_path=record_path_for(args.results, f"benchmarks/results/heat/{name}.json"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
