"""Run a forecast setting: backtest every forecaster on the same rolling windows, table the
pooled scores, and (``--write-docs``) write its section of docs/RESULTS.md with the run record.

    python -m forecasting.run heat
    python -m forecasting.run heat --model "ConvDMM=out/heat/convdmm.pt" --write-docs

For each row of ``forecasting/<name>.py`` the forecaster is built by name
(:func:`pyro_videossm.forecast.get_forecaster`) or loaded from its model file
(:func:`pyro_videossm.forecast.load_forecaster`; a row's training recipe writes it first when
absent, as in ``assimilation.run``) and scored by
:func:`pyro_videossm.experiments.backtest.backtest`: per-window scores (``--json``) and
scores pooled over every window and pixel (the table). The section goes between
``<!-- BEGIN forecast:NAME -->`` and ``<!-- END forecast:NAME -->``; the run record (command,
options, data and model fingerprints, machine, load, metrics) is stored in
``benchmarks/results/forecast/NAME.json`` so that ``python benchmarks/results_tables.py``
rebuilds the section without running anything.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
import xarray as xr

from assimilation.config import MethodEntry
from assimilation.run import import_setting, model_file, parse_model_overrides, setting_names
from forecasting.config import ForecasterEntry, ForecastSetting
from pyro_videossm.data import open_dataset
from pyro_videossm.errors import InputError
from pyro_videossm.experiments.backtest import DEFAULT_METRICS, Backtest, backtest
from pyro_videossm.experiments.records import data_fingerprint, file_hash, make_record
from pyro_videossm.experiments.results import record_path_for, write_section
from pyro_videossm.forecast import get_forecaster, load_forecaster
from pyro_videossm.metrics.posterior import markdown_table
from pyro_videossm.registry import import_object

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DOCS = REPO / "docs" / "RESULTS.md"
DEFAULT_WORKDIR = REPO / "forecasting" / "_work"


def available_settings() -> list[str]:
    """Names of the setting modules in this folder (those that define ``SETTING``)."""
    return setting_names(Path(__file__).resolve().parent, ForecastSetting)


def load_setting(name: str) -> ForecastSetting:
    """The ``SETTING`` of ``forecasting/<name>.py``; an unknown name is an InputError."""
    return import_setting(Path(__file__).resolve().parent, name, ForecastSetting,
                          kind="forecast setting")


def load_data(setting: ForecastSetting) -> tuple[xr.Dataset, dict]:
    """The setting's Dataset and its fingerprint for the run record."""
    spec = setting.data
    if "path" in spec:
        path = Path(spec["path"])
        path = path if path.is_absolute() else REPO / path
        return open_dataset(path).load(), data_fingerprint([path])
    if "simulator" in spec:
        simulator = import_object(spec["simulator"], kind="simulator")
        options = dict(spec.get("options", {}))
        return simulator(**options), {"simulated": {"simulator": spec["simulator"],
                                                    "options": options}}
    raise InputError(f"forecast setting {setting.name}: data needs 'path' or 'simulator'")


def build_forecaster(entry: ForecasterEntry, workdir: Path, override: str | None = None,
                     log: Callable[[str], None] = print):
    """``(forecaster, model file or None)`` of a row."""
    if override is None and entry.model is None:
        if entry.forecaster is None:
            raise InputError(f"{entry.label}: no forecaster name and no model file")
        return get_forecaster(entry.forecaster, **entry.options), None
    path = model_file(MethodEntry(entry.label, "forecast", model=entry.model), workdir,
                      override=override, log=log)
    return load_forecaster(path), path


def run_setting(setting: ForecastSetting, *, workdir: Path = DEFAULT_WORKDIR,
                models: dict[str, str] | None = None, windows: int | None = None,
                log: Callable[[str], None] = print) -> tuple[list[dict], dict]:
    """Backtest every row: ``([{"entry", "backtest" or "error", "model"}], data fingerprint)``."""
    models = dict(models or {})
    unknown = sorted(set(models) - {e.label for e in setting.forecasters})
    if unknown:
        raise InputError(f"--model names no row of {setting.name}: {unknown[0]!r}")
    data, fingerprint = load_data(setting)
    out = []
    for entry in setting.forecasters:
        row: dict = {"entry": entry, "model": None}
        try:
            forecaster, row["model"] = build_forecaster(entry, workdir / setting.name,
                                                        models.get(entry.label), log)
            row["backtest"] = backtest(
                forecaster, data, context=setting.context, leads=setting.leads,
                stride=setting.stride, windows=windows or setting.windows,
                members=setting.members, variable=setting.variable, truth=setting.truth,
                metrics=DEFAULT_METRICS)
            pooled = row["backtest"].pooled
            log(f"[{setting.name}] {entry.label}: {len(row['backtest'].windows)} windows, "
                f"MSE lead 1 {pooled['mse'][0]:.4g}, lead {setting.leads} "
                f"{pooled['mse'][-1]:.4g}")
        except (InputError, RuntimeError, FileNotFoundError) as err:
            row["error"] = f"{type(err).__name__}: {err}"
            log(f"[{setting.name}] {entry.label}: {row['error']}")
        out.append(row)
    return out, fingerprint


def render_table(setting: ForecastSetting, rows: list[dict]) -> str:
    """One table per metric would be long: one row per forecaster and metric, the pooled
    score at the shown leads and the mean over all leads."""
    show = [k for k in setting.show_leads if 1 <= k <= setting.leads]
    table = []
    for row in rows:
        for metric in DEFAULT_METRICS:
            cells = {"forecaster": row["entry"].label, "score": metric}
            bt: Backtest | None = row.get("backtest")
            for k in show:
                cells[f"lead {k}"] = "—" if bt is None else f"{bt.pooled[metric][k - 1]:.4g}"
            cells[f"mean of {setting.leads} leads"] = (
                "—" if bt is None else f"{float(np.nanmean(bt.pooled[metric])):.4g}")
            cells["windows"] = "—" if bt is None else str(len(bt.windows))
            table.append(cells)
    return markdown_table(table)


def render_section(setting: ForecastSetting, rows: list[dict], command: str) -> str:
    notes = [f"- {r['entry'].label}: {r['entry'].note}" for r in rows if r["entry"].note]
    notes += [f"- {r['entry'].label}: {r['error']}" for r in rows if "error" in r]
    return "\n".join([f"### {setting.title}", "", setting.description, "",
                      f"Command: `{command}`", "", render_table(setting, rows)]
                     + (["", *notes] if notes else []))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m forecasting.run",
                                description="Backtest the forecasters of a forecast setting.")
    p.add_argument("setting", help=f"setting module in forecasting/ "
                                   f"({', '.join(available_settings())})")
    p.add_argument("--model", action="append", default=[], metavar="LABEL=PATH",
                   help="model file of a row (repeatable)")
    p.add_argument("--windows", type=int, default=None, help="at most this many per sample")
    p.add_argument("--write-docs", action="store_true",
                   help="replace this setting's section of the results file")
    p.add_argument("--docs", type=Path, default=DEFAULT_DOCS)
    p.add_argument("--json", type=Path, default=None, help="also write per-window scores here")
    p.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR)
    p.add_argument("--threads", type=int, default=1)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    torch.set_num_threads(args.threads)
    try:
        setting = load_setting(args.setting)
        models = parse_model_overrides(args.model)
        rows, fingerprint = run_setting(setting, workdir=args.workdir, models=models,
                                        windows=args.windows)
    except InputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(render_table(setting, rows))
    metrics = {r["entry"].label: ({"pooled": r["backtest"].pooled,
                                   "windows": r["backtest"].windows}
                                  if "backtest" in r else {"error": r["error"]}) for r in rows}
    if args.json is not None:
        from pyro_videossm.experiments.records import write_json

        write_json(args.json, metrics)
    if args.write_docs:
        parts = ["python", "-m", "forecasting.run", setting.name]
        for item in args.model:
            parts += ["--model", item]
        if args.windows:
            parts += ["--windows", str(args.windows)]
        command = shlex.join(parts + ["--write-docs"])
        fingerprint["models"] = {r["entry"].label: {"path": str(r["model"]),
                                                   "hash": file_hash(r["model"])}
                                 for r in rows if r["model"] is not None}
        record = make_record(
            setting.name, command=command,
            options={"context": setting.context, "leads": setting.leads,
                     "stride": setting.stride, "windows": args.windows or setting.windows,
                     "members": setting.members, "variable": setting.variable,
                     "truth": setting.truth},
            data=fingerprint, metrics=metrics,
            timings={label: float(sum(w["seconds"] for w in m.get("windows", [])))
                     for label, m in metrics.items()})
        write_section(args.docs, f"forecast:{setting.name}",
                      render_section(setting, rows, command), record=record,
                      record_path=record_path_for(
                          args.docs, f"benchmarks/results/forecast/{setting.name}.json"))
        print(f"wrote the forecast:{setting.name} section of {args.docs}")
    return 1 if any("error" in r for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
