"""Run a benchmark setting: simulate with several seeds, assimilate with every method, score.

    python -m assimilation.run lorenz63_sakov2012 --seeds 3 --cycles 1000 --write-docs
    python -m assimilation.run lorenz96_n40 --methods letkf "ETKF N=24"

For each seed the truth and observations are simulated once (:func:`pyro_videossm.data.simulate`
with the setting's arguments) and every method in the setting's config module runs on them
through :func:`pyro_videossm.assimilate.get_method`. Scores
(:mod:`pyro_videossm.metrics.posterior`):
time-averaged RMSE after burn-in, spread, CRPS and 90% coverage; the table gives the mean
± standard error over seeds, seconds per cycle, the published RMSE, the bound and PASS/FAIL
(the mean RMSE against the bound). ``--write-docs`` replaces this setting's section of
docs/RESULTS.md (between ``<!-- BEGIN classical:NAME -->`` and ``<!-- END classical:NAME -->``;
appended under "Classical data assimilation" if absent) and nothing else.

Learned methods (``dmm``) run like the others once their model file is there: a row's
:class:`~assimilation.config.TrainedModel` names the file and, optionally, the training recipe
that writes it when it is absent (run once per run, before the seeds; it trains on its own
simulation, never on the scored records); ``--model LABEL=PATH`` gives a row another file.
The file's fingerprint goes into the run record.

A method that is not registered, whose model file is missing, or that fails (diverges) gets
a row saying so; the other rows still run.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import importlib
import json
import math
import os
import pkgutil
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from assimilation.config import MethodEntry, Setting
from pyro_videossm.assimilate import METHODS, available_methods, get_method
from pyro_videossm.data import simulate
from pyro_videossm.errors import InputError
from pyro_videossm.experiments.records import file_hash, make_record
from pyro_videossm.experiments.results import markers as section_markers
from pyro_videossm.experiments.results import (
    record_path_for,
    replace_section,
    store_section_record,
    write_text,
)
from pyro_videossm.metrics.posterior import markdown_table, score_posterior
from pyro_videossm.registry import import_object

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DOCS = REPO / "docs" / "RESULTS.md"
DEFAULT_WORKDIR = REPO / "assimilation" / "_work"
SECTION_HEADING = "## Classical data assimilation"
#: Most members written for the ensemble CRPS (all of them for the usual ensemble sizes).
CRPS_SAMPLES = 1000


def setting_names(folder: Path, setting_type: type) -> list[str]:
    """Names of the modules in ``folder`` that define ``SETTING = <setting_type>(...)``."""
    marker = f"SETTING = {setting_type.__name__}("
    return sorted(
        m.name for m in pkgutil.iter_modules([str(folder)])
        if not m.name.startswith("_") and m.name not in {"config", "run"}
        and marker in (folder / f"{m.name}.py").read_text(errors="replace")
    )


def import_setting(folder: Path, name: str, setting_type: type, kind: str = "setting"):
    """The ``SETTING`` of ``<folder>/<name>.py`` (module ``<folder name>.<name>``); an unknown
    name, or a module without a ``setting_type`` SETTING, is an InputError."""
    names = setting_names(folder, setting_type)
    if name not in names:
        raise InputError(f"unknown {kind} {name!r}; available: {', '.join(names)}")
    setting = getattr(importlib.import_module(f"{folder.name}.{name}"), "SETTING", None)
    if not isinstance(setting, setting_type):
        raise InputError(f"{folder.name}/{name}.py defines no SETTING")
    return setting


def available_settings() -> list[str]:
    """Names of the config modules in this folder (those that define ``SETTING``)."""
    return setting_names(Path(__file__).resolve().parent, Setting)


def load_setting(name: str) -> Setting:
    """The ``SETTING`` of ``assimilation/<name>.py``; an unknown name is an InputError."""
    return import_setting(Path(__file__).resolve().parent, name, Setting)


def parse_model_overrides(items: Sequence[str]) -> dict[str, str]:
    """``--model LABEL=PATH`` values -> ``{label: path}``; a malformed one is an InputError."""
    models = {}
    for item in items:
        label, sep, path = item.partition("=")
        if not sep or not path:
            raise InputError(f"--model wants LABEL=PATH, got {item!r}")
        models[label] = path
    return models


def select_methods(setting: Setting, wanted: Sequence[str] | None) -> list[MethodEntry]:
    """Entries whose label or method name matches one of ``wanted`` (all when None)."""
    if not wanted:
        return list(setting.methods)
    keys = {w.lower() for w in wanted}
    chosen = [e for e in setting.methods if e.label.lower() in keys or e.method.lower() in keys]
    known = {e.label.lower() for e in setting.methods} | {e.method.lower() for e in setting.methods}
    unknown = sorted(keys - known)
    if unknown:
        raise InputError(f"{setting.name} has no method {unknown[0]!r}; rows: "
                         f"{', '.join(e.label for e in setting.methods)}")
    return chosen


def model_file(entry: MethodEntry, workdir: Path, *, override: str | Path | None = None,
               log: Callable[[str], None] = print) -> Path:
    """The model file of a learned row: ``override``, else its ``TrainedModel`` path, trained
    with the row's recipe when absent. InputError when there is none."""
    spec = entry.model
    if override is None and spec is None:
        raise InputError(f"{entry.label}: no model file (give --model '{entry.label}=PATH')")
    path = Path(override if override is not None else spec.path)
    if not path.is_absolute():
        path = (workdir if override is None and spec.workdir else REPO) / path
    if path.exists():
        return path
    if override is not None or spec.recipe is None:
        raise InputError(f"{entry.label}: no model file {path}")
    recipe = import_object(spec.recipe, kind="training recipe")
    path.parent.mkdir(parents=True, exist_ok=True)
    log(f"{entry.label}: training its model with {spec.recipe} -> {path}")
    recipe(path, **spec.options)
    if not path.exists():
        raise InputError(f"{entry.label}: the recipe {spec.recipe} wrote no {path}")
    return path


def run_entry(entry: MethodEntry, setting: Setting, obs, *, seed: int, cycles: int,
              burn_in: int, workdir: Path, progress: bool = False,
              model: Path | None = None) -> dict:
    """Run one method on one seed's observations (a learned one with its ``model`` file):
    its scores, or ``{"error": ...}``."""
    if entry.method not in available_methods():
        return {"error": f"method {entry.method!r} is not registered"}
    options = dict(entry.options)
    if model is not None:
        options[entry.model.option if entry.model is not None else "model"] = str(model)
    physics = {}
    if setting.known_system:  # model error: the methods get other physics than the truth's
        known = dict(setting.known_system)
        physics = {"system": known.pop("system"), "system_parameters": known}
    try:
        method = get_method(entry.method, **options)
        post = method(obs, seed=seed, n_samples=CRPS_SAMPLES, progress=progress, **physics)
    except (InputError, RuntimeError, FileNotFoundError) as err:
        return {"error": f"{type(err).__name__}: {err}"}
    scores = score_posterior(post, obs["truth"], burn_in=burn_in)
    scores["seconds_per_cycle"] = float(post.attrs["seconds_per_cycle"])
    scores["kind"] = METHODS[entry.method].kind
    return scores


def run_setting(
    setting: Setting,
    *,
    seeds: Sequence[int],
    cycles: int | None = None,
    burn_in: int | None = None,
    entries: Sequence[MethodEntry] | None = None,
    workdir: Path = DEFAULT_WORKDIR,
    progress: bool = False,
    log: Callable[[str], None] = print,
    models: dict[str, str | Path] | None = None,
) -> list[dict]:
    """Scores per entry and seed: ``[{"entry": MethodEntry, "runs": [scores per seed],
    "model": model file or None}]``. ``models`` maps a row's label to its model file (else
    the row's ``TrainedModel``, trained first if its file is absent)."""
    cycles = int(cycles or setting.cycles)
    burn_in = setting.burn_in if burn_in is None else int(burn_in)
    if burn_in >= cycles:
        raise InputError(f"burn-in ({burn_in}) must be shorter than the run ({cycles} cycles)")
    entries = list(setting.methods if entries is None else entries)
    results = [{"entry": e, "runs": [], "model": None} for e in entries]
    models = dict(models or {})
    unknown = sorted(set(models) - {e.label for e in entries})
    if unknown:
        raise InputError(f"--model names no row of {setting.name}: {unknown[0]!r}")
    for res in results:
        entry = res["entry"]
        if (entry.model is None and entry.label not in models) or (
                entry.method not in available_methods()):  # no training for an unknown method
            continue
        try:
            res["model"] = model_file(entry, workdir / setting.name,
                                      override=models.get(entry.label), log=log)
        except (InputError, RuntimeError, FileNotFoundError) as err:
            res["model_error"] = f"{type(err).__name__}: {err}"
    for seed in seeds:
        obs = simulate(**setting.simulate, cycles=cycles, seed=int(seed))
        for res in results:
            entry = res["entry"]
            start = time.perf_counter()
            if "model_error" in res:
                scores = {"error": res["model_error"]}
            else:
                scores = run_entry(entry, setting, obs, seed=int(seed), cycles=cycles,
                                   burn_in=burn_in, workdir=workdir / setting.name,
                                   progress=progress, model=res["model"])
            scores["seed"] = int(seed)
            res["runs"].append(scores)
            what = (f"RMSE {scores['rmse']:.3f}, spread {scores['spread']:.3f}"
                    if "rmse" in scores else scores["error"])
            log(f"[{setting.name}] seed {seed} {entry.label}: {what} "
                f"({time.perf_counter() - start:.1f} s)")
    return results


def _mean_se(values: Sequence[float]) -> tuple[float, float]:
    v = np.asarray(values, dtype=float)
    se = float(v.std(ddof=1) / math.sqrt(len(v))) if len(v) > 1 else float("nan")
    return float(v.mean()), se


def summarize(results: list[dict]) -> list[dict]:
    """One row per entry: means over seeds, standard error of the RMSE, PASS/FAIL."""
    rows = []
    for res in results:
        entry, runs = res["entry"], res["runs"]
        ok = [r for r in runs if "rmse" in r]
        row = {"label": entry.label, "method": entry.method, "options": entry.options,
               "published": entry.published, "bound": entry.bound, "n_seeds": len(ok),
               "errors": [r["error"] for r in runs if "error" in r]}
        if ok:
            row["kind"] = ok[0]["kind"]
            row["rmse"], row["rmse_se"] = _mean_se([r["rmse"] for r in ok])
            for key in ("spread", "crps", "coverage_90", "seconds_per_cycle"):
                row[key] = float(np.mean([r.get(key, float("nan")) for r in ok]))
        if row["errors"]:
            row["status"] = "ERROR" if ok else "not run"
        elif entry.bound is None and entry.relative_bound is not None:
            row["status"] = "relative"  # set below, against the best classical row
        elif entry.bound is None:
            row["status"] = "—"
        else:
            row["status"] = "PASS" if row["rmse"] <= entry.bound else "FAIL"
        rows.append(row)
    classical = [(row["rmse"], row["label"]) for res, row in zip(results, rows)
                 if res["entry"].model is None and "rmse" in row]
    for res, row in zip(results, rows):
        factor = res["entry"].relative_bound
        if factor is None or row["status"] != "relative":
            continue
        if not classical:
            row["status"] = "—"
            continue
        best, label = min(classical)
        row["bound"] = factor * best
        row["bound_text"] = f"{factor:g} x the best classical row ({label}: {best:.3f})"
        row["status"] = "PASS" if row["rmse"] <= row["bound"] else "FAIL"
    return rows


def _fmt(value: float | None, spec: str = ".3f") -> str:
    return "—" if value is None or not math.isfinite(value) else format(value, spec)


def _call(row: dict) -> str:
    opts = ", ".join(f"{k}={v}" for k, v in row["options"].items())
    return f"`{row['method']}({opts})`"


def render_table(rows: list[dict]) -> str:
    """The markdown table of :func:`summarize` rows."""
    table = []
    for r in rows:
        rmse = _fmt(r.get("rmse"))
        if math.isfinite(r.get("rmse_se", float("nan"))):
            rmse += f" ± {r['rmse_se']:.3f}"
        table.append({
            "method": r["label"], "call": _call(r), "estimate": r.get("kind", "—"),
            "RMSE": rmse, "spread": _fmt(r.get("spread")), "CRPS": _fmt(r.get("crps")),
            "90% cov.": _fmt(r.get("coverage_90"), ".2f"),
            "ms/cycle": _fmt(1000 * r["seconds_per_cycle"] if "seconds_per_cycle" in r
                             else None, ".2f"),
            "published": _fmt(r["published"], ".2f"), "bound": _fmt(r["bound"], ".2f"),
            "status": r["status"],
        })
    return markdown_table(table)


def render_section(setting: Setting, rows: list[dict], *, command: str, seeds: Sequence[int],
                   cycles: int, burn_in: int) -> str:
    """This setting's section of docs/RESULTS.md (heading, command, conditions, table, notes)."""
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    cores = os.cpu_count() or 1
    under_load = math.isfinite(load) and load > 0.5 * cores
    seed_text = (f"seeds {seeds[0]}–{seeds[-1]}" if len(seeds) > 1 else f"seed {seeds[0]}")
    lines = [
        f"### {setting.title}",
        "",
        setting.description,
        "",
        f"Command: `{command}`",
        "",
        f"{len(seeds)} {seed_text.split()[0]} ({seed_text}; each seed simulates its own truth "
        f"and observations, shared by all methods), {cycles} cycles, burn-in {burn_in}. "
        "RMSE: mean ± standard error over seeds of the time-averaged RMSE; spread, CRPS and "
        "coverage of the central 90% interval averaged the same way. Status: PASS when the "
        "mean RMSE is at most the bound. Measured "
        f"{_dt.date.today().isoformat()} on {cores} CPU cores, torch {torch.__version__}, "
        f"one thread; load average {load:.1f} at the end of the run"
        + (" — **timings measured under load** (other jobs were running), compare them "
           "with care." if under_load else "."),
        "",
        render_table(rows),
    ]
    notes = []
    for entry, row in zip(_entries_of(setting, rows), rows):
        if entry is not None and entry.reference:
            notes.append(f"- {entry.label}: published value from {entry.reference}.")
        if entry is not None and entry.note:
            notes.append(f"- {entry.label}: {entry.note}.")
        if row.get("bound_text"):
            notes.append(f"- {row['label']}: bound = {row['bound_text']}.")
        for err in sorted(set(row["errors"])):
            notes.append(f"- {row['label']}: {err}")
    if notes:
        lines += ["", *notes]
    return "\n".join(lines)


def _entries_of(setting: Setting, rows: list[dict]) -> list[MethodEntry | None]:
    by_label = {e.label: e for e in setting.methods}
    return [by_label.get(r["label"]) for r in rows]


def markers(name: str) -> tuple[str, str]:
    return section_markers(f"classical:{name}")


RESULTS_HEADER = """# Results

Every number here was measured with the command printed beside it; rerun the command to
reproduce it. One section per topic; each section is regenerated by its own script between
its `<!-- BEGIN ... -->` / `<!-- END ... -->` markers, and nothing else in the file changes.
"""


def _after_classical_blocks(text: str) -> int:
    """Where a new classical block goes: after the last one; else before whatever follows the
    heading's intro (another topic's heading or marked block), never inside another topic's
    block."""
    last_end = text.rfind("<!-- END classical:")
    if last_end >= 0:
        return text.index("-->", last_end) + 3
    start = text.index(SECTION_HEADING) + len(SECTION_HEADING)
    found = [i for i in (text.find("\n## ", start), text.find("\n<!-- BEGIN ", start))
             if i >= 0]
    return min(found) if found else len(text)


def write_section(path: Path, name: str, body: str, *, record: dict | None = None,
                  record_path: Path | None = None) -> None:
    """Replace (or add) the section of setting ``name`` in the markdown file, atomically, with
    the shared writer (:mod:`pyro_videossm.experiments.results`); with ``record`` also store
    the run record the section regenerates from (default
    ``assimilation/results/classical/NAME.json``, beside ``path`` for a copy)."""
    path = Path(path)
    text = path.read_text() if path.exists() else RESULTS_HEADER
    if not text.lstrip().startswith("# "):  # a file begun by another topic's script
        text = RESULTS_HEADER + "\n" + text
    if SECTION_HEADING not in text:
        text = (text.rstrip("\n") + f"\n\n{SECTION_HEADING}\n\n"
                "Classical filters and smoothers on the standard chaotic-system benchmarks "
                "(`assimilation/`: one config per setting, one runner).\n")
    section = f"classical:{name}"
    body = body.rstrip()
    text = replace_section(text, section, body, where=_after_classical_blocks)
    if record is not None:
        store_section_record(record_path or record_path_for(
            path, f"assimilation/results/classical/{name}.json"), record, section, body,
            file=path)
    write_text(path, text)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m assimilation.run",
        description="Score assimilation methods on a benchmark setting over several seeds.",
    )
    p.add_argument("setting", help=f"config module in assimilation/ "
                                   f"({', '.join(available_settings())})")
    p.add_argument("--seeds", type=int, default=3, help="number of seeds (default 3)")
    p.add_argument("--first-seed", type=int, default=0, help="first seed (default 0)")
    p.add_argument("--cycles", type=int, default=None, help="cycles (default: the setting's)")
    p.add_argument("--burn-in", type=int, default=None, help="default: the setting's")
    p.add_argument("--methods", nargs="+", default=None,
                   help="rows to run, by label or method name (default: all)")
    p.add_argument("--write-docs", action="store_true",
                   help="replace this setting's section of the results file")
    p.add_argument("--docs", type=Path, default=DEFAULT_DOCS,
                   help="results file for --write-docs (default docs/RESULTS.md)")
    p.add_argument("--json", type=Path, default=None, help="also write per-seed scores here")
    p.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR,
                   help="folder for the models that rows' training recipes write")
    p.add_argument("--model", action="append", default=[], metavar="LABEL=PATH",
                   help="model file of a learned row (repeatable)")
    p.add_argument("--progress", action="store_true", help="progress bars over cycles")
    p.add_argument("--merge-json", type=Path, nargs="+", default=None, metavar="FILE",
                   help="run nothing: merge the per-seed scores that --json wrote for runs of "
                        "this setting over parts of the seeds (--first-seed) and summarise "
                        "them as this one run")
    return p


def merge_runs(setting: Setting, entries: Sequence[MethodEntry], files: Sequence[Path], *,
               seeds: Sequence[int], workdir: Path, models: dict[str, str] | None = None
               ) -> list[dict]:
    """:func:`run_setting`'s output rebuilt from ``--json`` files of runs over parts of
    ``seeds`` (each seed's scores do not depend on the process that computed them); a seed
    missing or scored twice for a row is an InputError."""
    results = [{"entry": e, "runs": [], "model": None} for e in entries]
    by_label = {res["entry"].label: res for res in results}
    for path in files:
        if not Path(path).is_file():
            raise InputError(f"--merge-json: no file {path}")
        for item in json.loads(Path(path).read_text()):
            if item.get("label") in by_label:
                by_label[item["label"]]["runs"] += item["runs"]
    for res in results:
        res["runs"].sort(key=lambda r: r["seed"])
        found = [r["seed"] for r in res["runs"]]
        if found != list(seeds):
            raise InputError(f"--merge-json: {res['entry'].label!r} has seeds {found}, "
                             f"not {list(seeds)}")
        entry = res["entry"]
        if entry.model is not None or entry.label in (models or {}):
            res["model"] = model_file(entry, workdir / setting.name,
                                      override=(models or {}).get(entry.label))
    return results


def canonical_command(args: argparse.Namespace, cycles: int, burn_in: int) -> str:
    """The command that reproduces this run's numbers (output-only options left out)."""
    parts = ["nice", "-n", "10", "python", "-m", "assimilation.run", args.setting,
             "--seeds", str(args.seeds)]
    if args.first_seed:
        parts += ["--first-seed", str(args.first_seed)]
    parts += ["--cycles", str(cycles), "--burn-in", str(burn_in)]
    if args.methods:
        parts += ["--methods", *args.methods]
    for item in args.model:
        parts += ["--model", item]
    if Path(args.docs).resolve() != DEFAULT_DOCS.resolve():
        parts += ["--docs", str(args.docs)]
    return shlex.join(parts + ["--write-docs"])


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    torch.set_num_threads(1)
    try:
        if args.seeds < 1:
            raise InputError(f"--seeds must be >= 1, got {args.seeds}")
        setting = load_setting(args.setting)
        entries = select_methods(setting, args.methods)
        cycles = int(args.cycles or setting.cycles)
        burn_in = setting.burn_in if args.burn_in is None else args.burn_in
        seeds = list(range(args.first_seed, args.first_seed + args.seeds))
        models = parse_model_overrides(args.model)
        if args.merge_json:
            results = merge_runs(setting, entries, args.merge_json, seeds=seeds,
                                 workdir=args.workdir, models=models)
        else:
            results = run_setting(setting, seeds=seeds, cycles=cycles, burn_in=burn_in,
                                  entries=entries, workdir=args.workdir,
                                  progress=args.progress, models=models)
    except InputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    rows = summarize(results)
    print(render_table(rows))
    if args.json is not None:
        payload = [{"label": r["entry"].label, "method": r["entry"].method,
                    "options": r["entry"].options, "runs": r["runs"]} for r in results]
        args.json.write_text(json.dumps(payload, indent=1, default=float))
    if args.write_docs:
        command = canonical_command(args, cycles, burn_in)
        record = make_record(
            setting.name, command=command,
            options={"seeds": seeds, "cycles": cycles, "burn_in": burn_in,
                     "methods": [e.label for e in entries]},
            data={"simulate": setting.simulate, "seeds": seeds,
                  "models": {r["entry"].label: {"path": str(r["model"]),
                                                "hash": file_hash(r["model"])}
                             for r in results if r["model"] is not None}},
            metrics={"rows": rows, "runs": [{"label": r["entry"].label, "runs": r["runs"]}
                                            for r in results]},
            timings={r["label"]: r.get("seconds_per_cycle") for r in rows},
            **({"combined_from": [str(f) for f in args.merge_json]} if args.merge_json else {}))
        write_section(args.docs, setting.name, render_section(
            setting, rows, command=command, seeds=seeds, cycles=cycles, burn_in=burn_in),
            record=record)
        print(f"wrote the {setting.name} section of {args.docs}")
    return 1 if any(r["status"] == "FAIL" for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
