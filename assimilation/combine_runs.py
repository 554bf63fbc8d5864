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

It is ``python -m assimilation.run NAME --merge-json FILE...`` with the seeds and the rows
read from the files (checked first: each seed once, the same seeds for every row).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from assimilation.run import DEFAULT_DOCS, DEFAULT_WORKDIR, load_setting, model_file
from assimilation.run import main as run_main
from pyro_videossm.errors import InputError


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
    # the seeds and rows found, summarised and recorded by the runner's own --merge-json
    labels = [r["entry"].label for r in results]
    run_argv = [args.setting, "--seeds", str(len(seeds)), "--first-seed", str(seeds[0]),
                "--workdir", str(args.workdir), "--docs", str(args.docs),
                "--merge-json", *map(str, args.files)]
    if labels != [e.label for e in setting.methods]:
        run_argv += ["--methods", *labels]
    if args.cycles is not None:
        run_argv += ["--cycles", str(args.cycles)]
    if args.burn_in is not None:
        run_argv += ["--burn-in", str(args.burn_in)]
    return run_main(run_argv + (["--write-docs"] if args.write_docs else []))


if __name__ == "__main__":
    sys.exit(main())
