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
    """Markdown: parameters, epochs, seconds, final losses and largest forecast per model."""
    lines = ["| model | parameters | epochs | train s | final train loss | final valid loss "
             "| max forecast mm/h |", "|---|---:|---:|---:|---:|---:|---:|"]

    def f(v):
        return "–" if v is None or not math.isfinite(v) else f"{v:.4g}"

    for name, m in models.items():
        top = f"{m['max_mean_forecast']:.3g}"
        if name == "persistence":
            lines.append(f"| persistence | 0 | – | – | – | – | {top} |")
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


__all__ = ["block_windows", "radar_architectures", "radar_field", "reusable_run",
           "score_tables", "scores_csv", "training_table"]
