"""The moving-digits comparison's models on real radar (``benchmarks/radar_comparison.py``):
one ``(model, seed)`` row trained with early stopping on radar windows and scored on the test
block, the table's columns and the section text.

* :func:`run_radar_model`: persistence, zero rain (:class:`BlankForecast`), pysteps'
  ``extrapolation`` (untrained) or a frame forecaster / the ConvLSTM built with the
  moving-digits settings
  (:func:`~pyro_videossm.experiments.clip_benchmark.architectures`), trained by
  :func:`~pyro_videossm.experiments.forecast_benchmark.train_model` with early stopping
  (the best epoch scored; :func:`~pyro_videossm.experiments.clip_benchmark.stopping`), every
  test window forecast and scored pooled
  (:func:`~pyro_videossm.experiments.forecast_benchmark.pooled_window_scores`: MSE, CSI, FSS
  per lead) and, for quantile models, :func:`interval_scores`;
* :func:`run_settings`: what enters a run's fingerprint
  (:class:`~pyro_videossm.experiments.run_cache.RunCache`);
* :func:`comparison_columns`, :func:`comparison_section`: the markdown table's columns
  (:func:`~pyro_videossm.experiments.clip_benchmark.clip_score_table`) and the section.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from pyro_videossm.experiments.clip_benchmark import (
    QUANTILES,
    TRAINING_KEYS,
    architectures,
    stopping,
)

MODELS = ("persistence", "blank", "extrapolation", "lstm", "transformer", "convlstm", "spatrans",
          "spatrans-q", "seq2seq", "seq2seq-attn")
DEFAULT_MODELS = ("persistence", "lstm", "transformer", "convlstm", "spatrans", "spatrans-q")
#: The architectures of the moving-digits CPU configuration (32 × 32 frames, docs/spatrans.md).
DIGITS_CPU_SET = ("spatrans.patch=8", "spatrans.d_model=64", "transformer.d_model=128",
                  "transformer.encoder_layers=2", "transformer.decoder_layers=2",
                  "lstm.d_model=128", "lstm.hidden=256", "convlstm.hidden_channels=[16,16]",
                  "convlstm.stem_channels=8")
#: Models scored without training (one run, whatever the seeds).
UNTRAINED = ("persistence", "blank", "extrapolation")
#: Settings that do not change a run's result (left out of its fingerprint).
_NOT_RESULT = ("models", "seeds", "results", "no_write", "table_only", "runs", "section",
               "curves", "progress", "set")


def run_radar_model(name: str, seed: int, arch: dict[str, dict], data, da, *, test_block: slice,
                    args) -> dict[str, Any]:
    """Train model ``name`` with ``seed`` (early stopping on ``data.valid``), forecast every
    test window of ``da`` and score them pooled: one row of the comparison."""
    from pyro_videossm.experiments.forecast_benchmark import pooled_window_scores, train_model
    from pyro_videossm.forecast import Persistence, get_forecaster
    from pyro_videossm.infer import TrainConfig

    K, L = args.context, args.leads
    row: dict[str, Any] = {"model": name, "seed": seed, "train_s": 0.0, "epochs": 0,
                           "params": 0}
    quantiles = QUANTILES if name.endswith("-q") else None
    if name == "persistence":
        forecaster = Persistence()
    elif name == "blank":
        forecaster = BlankForecast()
    elif name == "extrapolation":
        forecaster = get_forecaster(name)
    else:
        base = name.removesuffix("-q")
        own = arch.get(base, {})
        lr, lr_decay = own.get("lr", args.lr), own.get("lr_decay", 1.0)
        config = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=lr,
                             lr_decay=lr_decay, seed=seed, patience=args.patience,
                             progress=args.progress)
        shape = {k: v for k, v in own.items() if k not in TRAINING_KEYS}
        trained = train_model(base, shape, data, config, context=K, leads=L, seed=seed,
                              quantiles=quantiles)
        trained.module.eval()
        forecaster = trained.forecaster()
        history = [h.get("valid_loss") for h in trained.history]
        row.update(train_s=trained.seconds, epochs=len(history), params=trained.parameters,
                   lr=lr, lr_decay=lr_decay, valid_history=history,
                   patience=args.patience, **stopping(history, args.patience))
    scores, forecasts = pooled_window_scores(
        forecaster, da, context=K, leads=L, start=test_block.start + K, stop=test_block.stop,
        members=1, seed=seed, threshold=args.threshold, scales=args.fss_scales)
    row["windows"] = len(forecasts)
    row["mse"] = float(np.nanmean(scores["mse"]))
    row["leads"] = {k: np.asarray(v, dtype=float).tolist() for k, v in scores.items()}
    for minutes, lead in zip(args.show_minutes, args.show_leads):
        row[f"mse_{minutes:g}"] = float(scores["mse"][lead - 1])
        row[f"csi_{minutes:g}"] = float(scores["csi"][lead - 1])
        row[f"fss_{minutes:g}"] = float(scores[f"fss{args.fss_scales[-1]}"][lead - 1])
    if quantiles is not None:
        row.update(interval_scores(forecasts, da, L, args.threshold))
    return row


class BlankForecast:
    """Zero rain at every lead (NaN where the last context frame is missing): the score of a
    model that learned nothing but "dry", the radar's counterpart of the digits' blank
    frames."""

    def forecast(self, context, leads: int, members: int = 1, **kwargs):
        from pyro_videossm.forecast import Persistence

        fc = Persistence().forecast(context, leads, members, **kwargs)
        fc["forecast"] = fc["forecast"] * 0.0
        return fc


def interval_scores(forecasts, da, leads: int, threshold: float) -> dict[str, float]:
    """Coverage (``icp``) and mean width (``mil``) of the 10-90 % interval of quantile
    ``forecasts`` (their ``quantiles`` variable) against ``da(time, y, x)``, over every pixel
    with a value and over the wet ones (truth >= ``threshold``: ``icp_wet``), and the pinball
    loss of the levels (``pinball``)."""
    import xarray as xr

    from pyro_videossm.metrics.quantile import quantile_scores

    times = da["time"].values
    qs, truth = [], []
    for f in forecasts:
        q = f["quantiles"].transpose(..., "lead_time", "quantile", "y", "x")
        qs.append(np.asarray(q.values).reshape(leads, *q.shape[-3:]))
        t1 = int(np.searchsorted(times, f["init_time"].values)) + 1
        truth.append(np.asarray(da.isel(time=slice(t1, t1 + leads)).values))
    levels = list(forecasts[0]["quantiles"]["quantile"].values)
    qa = xr.DataArray(np.stack(qs), dims=("window", "lead", "quantile", "y", "x"),
                      coords={"quantile": levels})
    ta = xr.DataArray(np.stack(truth), dims=("window", "lead", "y", "x"))
    out = quantile_scores(qa, ta, lower=0.1, upper=0.9)
    wet = ta.where(ta >= threshold)
    return {"icp": out["icp"], "mil": out["mil"], "pinball": out["pinball"],
            "icp_wet": quantile_scores(qa, wet, lower=0.1, upper=0.9)["icp"]}


def comparison_columns(args) -> list[tuple[str, str, str]]:
    """The table's columns: test MSE over all leads, MSE, CSI and FSS at the shown leads,
    the interval's coverage, epochs, best epoch, training seconds."""
    th, km = f"{args.threshold:g}", f"{args.fss_km[-1]:g}"
    cols = [("mse", "MSE (mm/h)², all leads", ".4f")]
    cols += [(f"mse_{m:g}", f"MSE {m:g} min", ".3f") for m in args.show_minutes]
    cols += [(f"csi_{m:g}", f"CSI {m:g} min ({th} mm/h)", ".3f") for m in args.show_minutes]
    cols += [(f"fss_{m:g}", f"FSS {m:g} min ({km} km)", ".3f") for m in args.show_minutes]
    cols += [("icp", "ICP 10–90%", ".3f"), ("icp_wet", "ICP wet", ".3f"),
             ("epochs", "epochs", ".1f"), ("best_epoch", "best epoch", ".1f"),
             ("train_s", "train s", ".0f")]
    return cols


def comparison_section(args, table: str, rows: list[dict], summary: dict, command: str,
            loads: list[float], absent: list[str]) -> str:
    """The markdown section: data, protocol, the table, convergence, command and machine."""
    trained = [r for r in rows if "converged" in r]
    conv = {m: [r["converged"] for r in trained if r["model"] == m] for m in args.models}
    lines = [
        f"## Moving-digits models on KNMI radar ({summary['grid'][0]} × {summary['grid'][1]}, "
        f"{args.resolution:g} km; batch {args.batch_size}, patience {args.patience}, at most "
        f"{args.epochs} epochs)",
        "",
        f"KNMI composites of {summary['day']}: {summary['frames']} frames every "
        f"{summary['step']:g} min, a {args.box_km:g} km square at {args.resolution:g} km; "
        f"blocks by time train / valid / test {summary['blocks']}; windows of "
        f"{args.context} + {args.leads} frames: {summary['windows']['train']} train, "
        f"{summary['windows']['valid']} valid, {summary['windows']['test']} test; scaling "
        f"{summary['scaling']} (training block). Per-model budget, the same for every model: "
        f"batch {args.batch_size}, lr {args.lr:g}, at most {args.epochs} epochs, early "
        f"stopping with patience {args.patience} on the validation MSE (pinball loss for "
        f"`spatrans-q`), the best epoch's parameters scored. Scores pooled over the test "
        f"windows; MSE in (mm/h)²; FSS over {args.fss_km[-1]:g} km "
        f"({args.fss_scales[-1]} px); `spatrans-q` scored by its median. Mean ± s.e. over "
        f"seeds {' '.join(map(str, args.seeds))}.",
        "",
        table,
        "",
        "Stopped by the patience rule (per seed): " + "; ".join(
            f"{m} {sum(c)}/{len(c)}" for m, c in conv.items() if c) + ".",
        "",
        "Settings: " + "; ".join(
            f"`{m}` {', '.join(f'{k}={v}' for k, v in summary['arch'].get(m, {}).items())}"
            for m in args.models if summary["arch"].get(m)) + ".",
    ]
    if args.curves:
        rel = os.path.relpath(Path(args.curves).resolve(), Path(args.results).resolve().parent)
        lines += ["", "Learning curves (validation loss per epoch, every seed; a dot marks the "
                      f"best epoch): ![learning curves]({rel})"]
    if absent:
        lines += ["", "Not run yet: " + ", ".join(absent) + "."]
    lines += ["", "```bash", command, "```", "",
              f"Machine: shared, loaded (load average {min(loads):.1f}–{max(loads):.1f} on "
              f"{os.cpu_count()} cores); training seconds are not quiet-machine numbers."]
    return "\n".join(lines)


def run_settings(name: str, arch: dict, args) -> dict:
    """Everything that changes one (model, seed) run's result: its fingerprint."""
    out = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()
           if k not in _NOT_RESULT}
    out["data"] = [str(d) for d in args.data]
    out["model"] = name
    out["arch"] = arch.get(name.removesuffix("-q"), {})
    return out


def after_digits_section(text: str) -> int:
    """Where a new section goes: after the radar comparison's main section if present, else
    after the digits CPU section, else at the end."""
    for end in ("<!-- END radar-comparison -->", "<!-- END spatrans-cpu -->"):
        at = text.find(end)
        if at >= 0:
            return at + len(end)
    return len(text)


def override(arch: dict[str, dict], item: str) -> dict[str, dict]:
    """``arch`` with one ``MODEL.KEY=VALUE`` override (the digits benchmark's syntax)."""
    from pyro_videossm.experiments.clip_benchmark import ARCHITECTURES

    base = architectures(False, [item])
    model, _, rest = item.partition(".")
    key = rest.partition("=")[0]
    out = {k: dict(v) for k, v in arch.items()}
    out.setdefault(model, dict(ARCHITECTURES.get(model, {})))[key] = base[model][key]
    return out


__all__ = ["BlankForecast", "DEFAULT_MODELS", "DIGITS_CPU_SET", "MODELS", "UNTRAINED",
           "after_digits_section", "comparison_columns", "comparison_section",
           "interval_scores", "override", "run_radar_model", "run_settings"]
