"""Combine the per-seed runs of one setting into the table, run record and docs section that
one run over all the seeds writes.

On a loaded machine the seeds of a slow setting can run in parallel processes, one seed
each, with ``--json``::

    for s in 0 1 2 3 4; do
      nice -n 10 python -m assimilation.run lorenz63_dmm --seeds 1 --first-seed $s \\
          --cycles 1000 --burn-in 100 --json /tmp/seed$s.json &
    done; wait
    python -m assimilation.combine_runs lorenz63_dmm /tmp/seed*.json --cycles 1000 \\
        --burn-in 100 --docs docs/LORENZ63_DMM.md --write-docs

Each seed simulates its own records and every method is seeded with the seed
(:func:`assimilation.run.run_setting`), so the combined rows are those of
``python -m assimilation.run NAME --seeds 5 ...``, the command the record gives; the record
also lists the per-seed files it was combined from. The seeds must be consecutive and each
given once; a learned row's model file must be the one in the work folder (the runs found
it there: train it first, or all processes would train their own copy).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from assimilation.run import (
    DEFAULT_DOCS,
    DEFAULT_WORKDIR,
    canonical_command,
    load_setting,
    model_file,
    render_section,
    render_table,
    summarize,
    write_section,
)
from pyro_videossm.errors import InputError
from pyro_videossm.experiments.records import file_hash, make_record


def read_runs(paths: Sequence[Path]) -> dict[str, list[dict]]:
    """``{row label: [scores per seed]}`` from the ``--json`` files of per-seed runs."""
    runs: dict[str, list[dict]] = {}
    for path in paths:
        try:
            payload = json.loads(Path(path).read_text())
        except (OSError, ValueError) as err:
            raise InputError(f"{path}: not a runner --json file ({err})") from None
        for row in payload:
            runs.setdefault(row["label"], []).extend(row["runs"])
    return runs


def combine(setting_name: str, paths: Sequence[Path], *, workdir: Path = DEFAULT_WORKDIR
            ) -> tuple[list[dict], list[int]]:
    """The runner's results (``run_setting``'s list, rows in the setting's order) of the
    per-seed files, and the seeds."""
    setting = load_setting(setting_name)
    runs = read_runs(paths)
    unknown = sorted(set(runs) - {e.label for e in setting.methods})
    if unknown:
        raise InputError(f"{setting_name} has no row {unknown[0]!r}")
    results, seeds = [], None
    for entry in setting.methods:
        if entry.label not in runs:
            continue
        these = sorted(runs[entry.label], key=lambda r: r["seed"])
        row_seeds = [r["seed"] for r in these]
        if seeds is None:
            seeds = row_seeds
        if row_seeds != seeds or len(set(row_seeds)) != len(row_seeds):
            raise InputError(f"{entry.label}: seeds {row_seeds}, other rows {seeds} (each "
                             "seed once, the same for every row)")
        model = (model_file(entry, workdir / setting.name) if entry.model is not None
                 else None)
        results.append({"entry": entry, "runs": these, "model": model})
    if not results:
        raise InputError("no rows in the given files")
    if seeds != list(range(seeds[0], seeds[0] + len(seeds))):
        raise InputError(f"the seeds must be consecutive, got {seeds}")
    return results, seeds


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m assimilation.combine_runs",
                                description=__doc__.splitlines()[0])
    p.add_argument("setting")
    p.add_argument("files", type=Path, nargs="+", help="--json files of per-seed runs")
    p.add_argument("--cycles", type=int, default=None, help="the runs' cycles (default: "
                   "the setting's)")
    p.add_argument("--burn-in", type=int, default=None, help="the runs' burn-in")
    p.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR)
    p.add_argument("--docs", type=Path, default=DEFAULT_DOCS)
    p.add_argument("--write-docs", action="store_true")
    args = p.parse_args(argv)
    try:
        setting = load_setting(args.setting)
        results, seeds = combine(args.setting, args.files, workdir=args.workdir)
    except InputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    cycles = int(args.cycles or setting.cycles)
    burn_in = setting.burn_in if args.burn_in is None else int(args.burn_in)
    rows = summarize(results)
    print(render_table(rows))
    if args.write_docs:
        entries = [r["entry"] for r in results]
        labels = [e.label for e in entries]
        run_args = argparse.Namespace(
            setting=args.setting, seeds=len(seeds), first_seed=seeds[0], model=[],
            methods=None if labels == [e.label for e in setting.methods] else labels,
            docs=args.docs)
        command = canonical_command(run_args, cycles, burn_in)
        record = make_record(
            setting.name, command=command,
            options={"seeds": seeds, "cycles": cycles, "burn_in": burn_in, "methods": labels},
            data={"simulate": setting.simulate, "seeds": seeds,
                  "models": {r["entry"].label: {"path": str(r["model"]),
                                                "hash": file_hash(r["model"])}
                             for r in results if r["model"] is not None}},
            metrics={"rows": rows, "runs": [{"label": r["entry"].label, "runs": r["runs"]}
                                            for r in results]},
            timings={r["label"]: r.get("seconds_per_cycle") for r in rows},
            combined_from=[str(f) for f in args.files],
            machine_note="shared, loaded: the seeds ran in parallel processes")
        write_section(args.docs, setting.name, render_section(
            setting, rows, command=command, seeds=seeds, cycles=cycles, burn_in=burn_in),
            record=record)
        print(f"wrote the {setting.name} section of {args.docs}")
    return 1 if any(r["status"] == "FAIL" for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
