"""The radar nowcasting benchmark's data, model sizes and tables (KNMI composites).

* :func:`radar_field`: ``rain_rate(time, y, x)`` mm/h on a square crop, coarsened
  (:func:`~pyro_videossm.data.radar.load_knmi`);
* :func:`block_windows`: training and validation windows cut inside contiguous time blocks
  (:func:`~pyro_videossm.data.fields.chronological_split`), scaled with a scaling fitted on the
  training block only, as a :class:`~pyro_videossm.experiments.windows.WindowData`;
* :func:`radar_architectures`: constructor options of every learned model from one width unit;
* :func:`reusable_run`: the summary of an earlier run whose trained models may be reused;
* :func:`score_tables`, :func:`training_table`, :func:`scores_csv`: the tables it reports.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from pyro_videossm.errors import InputError
from pyro_videossm.experiments.windows import WindowData

#: pysteps' nowcasts (:mod:`pyro_videossm.forecast.pysteps_nowcasts`; the ``[nowcast]`` extra)
PYSTEPS_MODELS: tuple[str, ...] = ("extrapolation", "sprog", "steps")
#: models the benchmark runs without training
UNTRAINED: tuple[str, ...] = ("persistence", *PYSTEPS_MODELS)
#: the models trained with the ELBO (KL annealing applies)
DMM_MODELS = ("convdmm", "dmm-flat", "advection-convdmm")


# -- data -----------------------------------------------------------------------------------
def radar_field(data: str | os.PathLike, resolution: float, center: tuple[float, float],
                box_km: float, frames: int | None = None) -> xr.Dataset:
    """``rain_rate(time, y, x)`` mm/h on a ``box_km`` square around ``center`` (x, y km),
    coarsened to ``resolution`` km (first ``frames`` files only, if given)."""
    from pyro_videossm.data.radar import knmi_files, load_knmi

    files = knmi_files(data)
    if frames is not None:
        files = files[:frames]
    half = box_km / 2.0
    cx, cy = center
    return load_knmi(files, resolution_km=resolution, crop_x=(cx - half, cx + half),
                     crop_y=(cy - half, cy + half))


def block_windows(da: xr.DataArray, blocks: Mapping[str, slice], context: int, leads: int,
                  normalize: str, units: str | None = None) -> WindowData:
    """Windows of ``context + leads`` frames (stride 1; windows with an all-missing frame
    skipped) inside the ``train`` and ``valid`` blocks of ``da(time, y, x)``, scaled with
    ``normalize`` fitted on the training block (``valid`` is None without a validation
    window)."""
    from pyro_videossm.data.fields import FieldWindows
    from pyro_videossm.experiments.normalization import fit_scaling

    train_vals = np.asarray(da.isel(time=blocks["train"]).values, dtype=np.float64)
    scaling = fit_scaling(train_vals, normalize,
                          str(da.attrs.get("units", "")) if units is None else units)
    windows = {part: FieldWindows(da, context=context, leads=leads, time_range=blocks[part],
                                  scaling=scaling, missing_frames="skip")
               for part in ("train", "valid")}
    n_valid = len(windows["valid"])
    valid = windows["valid"].to_tensors() if n_valid else None
    return WindowData(windows["train"].to_tensors(), valid, scaling, str(da.name),
                      (da.sizes["y"], da.sizes["x"]), len(windows["train"]), n_valid)


def radar_architectures(hidden: int, grid: tuple[int, int], likelihood: str = "gaussian",
                        input_clip: Sequence[float] | None = None) -> dict[str, dict]:
    """Constructor options of every learned model (small: CPU budget); ``hidden`` is the width
    unit, the ``spatrans`` patch the largest of 8, 5, 4, 2, 1 dividing the grid."""
    h = hidden
    clip = list(input_clip) if input_clip else None
    lik = dict(likelihood=likelihood, input_clip=clip)
    patch = next(p for p in (8, 5, 4, 2, 1) if grid[0] % p == 0 and grid[1] % p == 0)
    return {
        "convdmm": dict(latent_channels=8, hidden_channels=h, rnn_channels=h,
                        encoder_channels=h, n_down=2, **lik),
        "convlstm": dict(hidden_channels=[h, h], stem_channels=max(8, h // 2), input_clip=clip),
        "advection-convdmm": dict(latent_channels=4, hidden_channels=h, rnn_channels=h,
                                  encoder_channels=h, n_down=2, **lik),
        "dmm-flat": dict(latent_dim=32, hidden_dim=4 * h, rnn_dim=4 * h, conv_channels=h,
                         n_down=2, **lik),
        "spatrans": dict(patch=patch, d_model=4 * h, heads=4, encoder_layers=2,
                         decoder_layers=2),
        "transformer": dict(d_model=8 * h, heads=4, encoder_layers=2, decoder_layers=2),
        "lstm": dict(d_model=8 * h, hidden=16 * h, layers=1),
        "seq2seq": dict(d_model=8 * h, hidden=16 * h, layers=1),
        "seq2seq-attn": dict(d_model=8 * h, hidden=16 * h, layers=1),
    }


def reusable_run(summary: str | os.PathLike, settings: Mapping[str, Any],
                 not_training: Iterable[str]) -> dict[str, Any]:
    """The run summary (JSON with ``settings`` and ``models``) at ``summary``, if it exists;
    ``{}`` otherwise. Its settings must equal ``settings`` except for ``not_training``, else
    :class:`InputError`."""
    summary = Path(summary)
    if not summary.exists():
        return {}
    old = json.loads(summary.read_text())
    skip = set(not_training)
    differ = [k for k in settings if k not in skip
              and json.dumps(settings[k]) != json.dumps(old["settings"].get(k))]
    if differ:
        raise InputError(f"--reuse-models: {summary} was made with other settings "
                         f"({differ[0]})")
    return old


def data_summary(da: xr.DataArray, blocks: Mapping[str, slice], data: WindowData,
                 n_test: int, threshold: float) -> dict[str, Any]:
    """What the run summary says about the data: grid, frames, time step (minutes), blocks
    (indices and times), windows per block, scaling, fraction outside the radar range (NaN),
    wet fraction (``>= threshold``) and the truth's maximum over the test block."""
    t_times = da["time"].values
    values = da.values
    return {
        "grid": [da.sizes["y"], da.sizes["x"]], "frames": da.sizes["time"],
        "time_step_minutes": float((t_times[1] - t_times[0]) / np.timedelta64(1, "m")),
        "blocks": {k: [b.start, b.stop] for k, b in blocks.items()},
        "block_times": {k: [str(t_times[b.start])[:16], str(t_times[b.stop - 1])[:16]]
                        for k, b in blocks.items()},
        "windows": {"train": data.n_train, "valid": data.n_valid, "test": n_test},
        "scaling": data.scaling.to_dict(),
        "outside_range_fraction": float(np.isnan(values).mean()),
        "wet_fraction": float(np.nanmean(values >= threshold)), "models": {},
        "truth_test_max": float(np.nanmax(da.isel(time=blocks["test"]).values))}


def run_model(name: str, args, *, data: WindowData, da: xr.DataArray,
              architectures: Mapping[str, dict], test_block: slice,
              reusable: Mapping[str, Mapping[str, Any]]
              ) -> tuple[dict[str, np.ndarray], list[xr.Dataset], dict[str, Any], bool]:
    """Train model ``name`` (or reuse ``args.out/NAME.pt`` when ``reusable`` has it), read it
    back as ``videossm forecast`` does and score every test window pooled
    (:func:`~pyro_videossm.experiments.forecast_benchmark.pooled_window_scores`). ``args``:
    ``context``, ``leads``, ``epochs``, ``batch_size``, ``lr``, ``anneal_epochs`` (DMMs),
    ``device``, ``seed``, ``progress``, ``out``, ``members``, ``threshold``, ``fss_scales``.
    Returns the scores, the forecasts, the model's summary entry and whether it was reused."""
    import time

    import torch

    from pyro_videossm.experiments.forecast_benchmark import (
        max_mean_forecast,
        max_over_context_max,
        pooled_window_scores,
        train_model,
    )
    from pyro_videossm.experiments.recipe import plain_history
    from pyro_videossm.forecast import Persistence, get_forecaster, load_forecaster
    from pyro_videossm.infer import TrainConfig

    t1 = time.perf_counter()
    history: list[dict] = []
    n_params = 0
    path = Path(args.out) / f"{name}.pt"
    reused = name in reusable and path.exists()
    if name == "persistence":
        forecaster = Persistence()
    elif name in PYSTEPS_MODELS:  # untrained: optical flow + pysteps nowcast per window
        forecaster = get_forecaster(name, motion=getattr(args, "motion", "LK"))
    else:
        torch.manual_seed(args.seed)
        if reused:
            history = reusable[name]["history"]
            n_params = reusable[name]["parameters"]
        else:
            config = TrainConfig(
                epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                anneal_epochs=args.anneal_epochs if name in DMM_MODELS else 0,
                device=args.device, seed=args.seed, progress=args.progress)
            trained = train_model(name, architectures[name], data, config,
                                  context=args.context, leads=args.leads, seed=args.seed)
            history, n_params = trained.history, trained.parameters
            trained.module.cpu()
            trained.forecaster().save(path, extra={"history": plain_history(history)})
        forecaster = load_forecaster(path, device=args.device)  # as videossm forecast
    seconds = reusable[name]["train_seconds"] if reused else time.perf_counter() - t1
    t2 = time.perf_counter()
    scores, forecasts = pooled_window_scores(
        forecaster, da, context=args.context, leads=args.leads,
        start=test_block.start + args.context, stop=test_block.stop, members=args.members,
        seed=args.seed, threshold=args.threshold, scales=args.fss_scales)
    entry = {
        "train_seconds": seconds if name not in UNTRAINED else 0.0,
        "forecast_seconds": time.perf_counter() - t2, "parameters": n_params,
        "architecture": architectures.get(name, {}), "history": plain_history(history),
        "members": int(forecasts[0].sizes["member"]),
        "max_mean_forecast": max_mean_forecast(forecasts),
        "max_over_context_max": max_over_context_max(forecasts, da, args.context),
        "scores": {k: v.tolist() for k, v in scores.items()}}
    return scores, forecasts, entry, reused


def write_strips(forecasts: Mapping[str, Sequence[xr.Dataset]], truth: xr.Dataset,
                 models: Sequence[str], strip: str | os.PathLike, pick: int
                 ) -> list[tuple[str, Path]]:
    """PNG frame strips of window ``pick`` for ``models``: ``strip`` with ``_MODEL`` before the
    suffix."""
    from pyro_videossm.plots import save_figure
    from pyro_videossm.plots.fields import plot_forecast_strip

    strip = Path(strip)
    out = []
    for name in [n for n in models if n in forecasts]:
        target = strip.with_name(f"{strip.stem}_{name}{strip.suffix}")
        save_figure(plot_forecast_strip(forecasts[name][pick], truth, members=3, max_leads=6),
                    target)
        out.append((name, target))
    return out


def calibration(forecasts: Mapping[str, Sequence[xr.Dataset]], da: xr.DataArray,
                threshold: float, figure: str | os.PathLike | None = None
                ) -> dict[str, dict[str, Any]]:
    """Rank histogram, reliability at ``threshold`` and CRPS per lead of every ensemble model
    among ``forecasts`` (:func:`~pyro_videossm.metrics.calibration.calibration_summary`,
    pooled over its test windows); with ``figure`` also the PNG of
    :func:`~pyro_videossm.plots.calibration.plot_calibration`. Returns plain dicts per model."""
    from pyro_videossm.metrics.calibration import calibration_summary
    from pyro_videossm.metrics.fields import align_truth

    summaries = []
    for name, fcs in forecasts.items():
        if not fcs or int(fcs[0].attrs.get("deterministic", 1)) or fcs[0].sizes["member"] < 2:
            continue
        s = calibration_summary(list(fcs), [align_truth(f, da) for f in fcs],
                                threshold=threshold)
        s.model = name
        summaries.append(s)
    if figure is not None and summaries:
        from pyro_videossm.plots import save_figure
        from pyro_videossm.plots.calibration import plot_calibration

        save_figure(plot_calibration(summaries), figure)
    return {s.model: s.to_dict() for s in summaries}


def calibration_table(cal: Mapping[str, Mapping[str, Any]]) -> str:
    """Markdown: per ensemble model, the share of observations below all members and above
    all members (each ``1 / (M + 1)`` if calibrated) and the largest reliability gap."""
    lines = ["| model | members | obs below all members | obs above all members | expected "
             "each | largest reliability gap |", "|---|---:|---:|---:|---:|---:|"]
    for name, c in cal.items():
        r = np.asarray(c["rank_counts"], dtype=float)
        share = r / max(r.sum(), 1.0)
        gap = np.abs(np.asarray(c["forecast_probability"], float)
                     - np.asarray(c["observed_frequency"], float))
        worst = f"{np.nanmax(gap):.3f}" if np.isfinite(gap).any() else "–"
        lines.append(f"| {name} | {c['members']} | {share[0]:.3f} | {share[-1]:.3f} | "
                     f"{1.0 / len(r):.3f} | {worst} |")
    return "\n".join(lines)


# -- tables ---------------------------------------------------------------------------------
def score_tables(rows: Mapping[str, Mapping[str, np.ndarray]], show: Sequence[int],
                 step_min: float, threshold: float, scales: Sequence[int],
                 res_km: float) -> str:
    """Markdown: one table per score, models as rows, the ``show`` leads as columns."""
    parts = []
    titles = [("mse", "MSE of the (ensemble-mean) forecast, (mm/h)², lower is better", ".4f"),
              ("csi", f"CSI at {threshold:g} mm/h, higher is better", ".3f")]
    titles += [(f"fss{s}", f"FSS at {threshold:g} mm/h, {s * res_km:g} km scale "
                           f"({s} px), higher is better", ".3f") for s in scales]
    titles.append(("crps", "CRPS (ensemble; = MAE for one member), mm/h, lower is better",
                   ".4f"))
    n_leads = len(next(iter(rows.values()))["mse"])
    head = ("| model | " + " | ".join(f"{k * step_min:g} min" for k in show)
            + f" | mean of all {n_leads} leads |")
    sep = "|---|" + "---:|" * (len(show) + 1)
    for key, title, fmt in titles:
        lines = [f"**{title}**", "", head, sep]
        for name, r in rows.items():
            v = r[key]
            cells = [format(v[k - 1], fmt) if math.isfinite(v[k - 1]) else "–" for k in show]
            mean = float(np.nanmean(v)) if np.isfinite(v).any() else float("nan")
            lines.append(f"| {name} | " + " | ".join(cells) + f" | {format(mean, fmt)} |")
        parts.append("\n".join(lines))
    return "\n\n".join(parts)


def training_table(models: Mapping[str, Mapping[str, Any]]) -> str:
    """Markdown: parameters, epochs, seconds, final losses, largest (ensemble-mean) forecast
    and the worst window's largest forecast value (any member) over its context's maximum."""
    lines = ["| model | parameters | epochs | train s | final train loss | final valid loss "
             "| max forecast mm/h | max / context max |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]

    def f(v):
        return "–" if v is None or not math.isfinite(v) else f"{v:.4g}"

    for name, m in models.items():
        ratio = m.get("max_over_context_max")
        top = f"{m['max_mean_forecast']:.3g} | " + ("–" if ratio is None else f"{ratio:.3g}")
        if name in UNTRAINED:
            lines.append(f"| {name} | 0 | – | – | – | – | {top} |")
            continue
        h = m["history"][-1] if m["history"] else {}
        lines.append(f"| {name} | {m['parameters']:,} | {len(m['history'])} | "
                     f"{m['train_seconds']:.0f} | {f(h.get('train_loss'))} | "
                     f"{f(h.get('valid_loss'))} | {top} |")
    return "\n".join(lines)


def scores_csv(rows: Mapping[str, Mapping[str, np.ndarray]], threshold: float) -> str:
    """CSV: one line per model and score, one column per lead."""
    first = next(iter(rows.values()))
    n_leads = len(first["mse"])
    lines = ["model,score,threshold_mmh," + ",".join(f"lead{k}" for k in range(1, n_leads + 1))]
    for n, r in rows.items():
        for key in first:
            lines.append(f"{n},{key},{threshold:g}," + ",".join(f"{v:.6g}" for v in r[key]))
    return "\n".join(lines) + "\n"


__all__ = ["PYSTEPS_MODELS", "UNTRAINED", "block_windows", "calibration", "calibration_table",
           "data_summary", "radar_architectures", "radar_field", "reusable_run", "run_model",
           "score_tables", "scores_csv", "training_table", "write_strips"]
