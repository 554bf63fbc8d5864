"""The radar nowcasting benchmark's data, model sizes and tables (KNMI composites).

* :func:`radar_field`: ``rain_rate(time, y, x)`` mm/h on a square crop, coarsened, from any
  radar source (:func:`~pyro_videossm.data.radar.load_knmi`,
  :func:`~pyro_videossm.data.radar_importers.load_radar`) or a ``convert-radar`` netCDF;
  pixel size and time step from the data (:func:`pixel_km`, :func:`check_regular_times`,
  :func:`fss_pixels` for FSS windows given in km);
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
#: The published KNMI run's crop and pixel (``benchmarks/radar_forecast.py`` defaults for
#: ``--source knmi``): 320 km around the radar range's centre, 4 km pixels. Other sources
#: default to the whole grid at its own pixel size.
KNMI_PRESET: dict[str, float] = {"resolution": 4.0, "box_km": 320.0, "center_x": 370.0,
                                 "center_y": -4080.0}


def radar_field(data: str | os.PathLike | Sequence[str | os.PathLike],
                resolution: float | None = None, center: tuple[float, float] | None = None,
                box_km: float | None = None, frames: int | None = None, *,
                source: str = "knmi", time_format: str | None = None) -> xr.Dataset:
    """``rain_rate(time, y, x)`` mm/h of radar ``data`` on a ``box_km`` square around
    ``center`` (x, y km; default: the grid's centre; no ``box_km``: the whole grid),
    coarsened to ``resolution`` km (default: the file's pixel), first ``frames`` frames only
    if given.

    ``data``: a folder or files of ``source`` (``knmi`` through
    :func:`~pyro_videossm.data.radar.load_knmi`, the others through pysteps,
    :func:`~pyro_videossm.data.radar_importers.load_radar`), or a netCDF file written by
    ``videossm convert-radar``. The pixel size and time step come from the data; the times
    must be evenly spaced and increasing (one-line :class:`InputError` otherwise)."""
    paths = [Path(data)] if isinstance(data, (str, os.PathLike)) else [Path(d) for d in data]
    if len(paths) == 1 and paths[0].suffix in (".nc", ".nc4") and paths[0].is_file():
        ds = _converted(paths[0], frames)
        ds = crop_and_coarsen(ds, center, box_km, resolution)
    else:
        if source == "knmi":
            from pyro_videossm.data.radar import knmi_files, load_knmi

            files = knmi_files(paths[0] if len(paths) == 1 else paths)
        else:
            from pyro_videossm.data.radar_importers import load_radar, radar_files

            files = radar_files(paths)
        if frames is not None:
            files = files[:frames]
        if center is None:  # the grid's centre: read whole, crop after
            crop_x = crop_y = None
        else:
            half = (box_km if box_km is not None else math.inf) / 2.0
            crop_x = (center[0] - half, center[0] + half)
            crop_y = (center[1] - half, center[1] + half)
        if source == "knmi":
            ds = load_knmi(files, crop_x=crop_x, crop_y=crop_y,
                           resolution_km=None if center is None else resolution)
        else:
            ds = load_radar(files, source, crop_x=crop_x, crop_y=crop_y, time_format=time_format,
                            resolution_km=None if center is None else resolution)
        if center is None:
            ds = crop_and_coarsen(ds, None, box_km, resolution)
    check_regular_times(ds["rain_rate"])
    return ds


def _converted(path: Path, frames: int | None) -> xr.Dataset:
    """A ``convert-radar`` netCDF, loaded (first ``frames`` times)."""
    try:
        with xr.open_dataset(path) as f:
            ds = f.load()
    except (OSError, ValueError) as err:
        raise InputError(f"{path}: not a netCDF file ({err})".splitlines()[0]) from None
    if "rain_rate" not in ds or ds["rain_rate"].dims != ("time", "y", "x"):
        raise InputError(f"{path}: no rain_rate(time, y, x) (write it with videossm "
                         "convert-radar)")
    return ds.isel(time=slice(None, frames))


def pixel_km(ds: xr.Dataset) -> float:
    """The pixel size in km: the ``pixel_size_km`` attribute the radar readers write, else
    the ``x`` coordinate's spacing (units km or m)."""
    if "pixel_size_km" in ds.attrs:
        return float(ds.attrs["pixel_size_km"])
    x = ds["x"]
    if x.size < 2:
        raise InputError("the radar grid has fewer than 2 columns")
    scale = {"km": 1.0, "m": 1e-3}.get(str(x.attrs.get("units", "km")).strip())
    if scale is None:
        raise InputError(f"x in {x.attrs.get('units')!r}: projection coordinates in km or m "
                         "expected")
    return abs(float(x.values[1] - x.values[0])) * scale


def crop_and_coarsen(ds: xr.Dataset, center: tuple[float, float] | None,
                     box_km: float | None, resolution: float | None) -> xr.Dataset:
    """``ds`` (``rain_rate(time, y, x)``, x/y in km) cut to a ``box_km`` square around
    ``center`` (default: the grid's centre; no ``box_km``: uncut) and block-averaged
    (NaN-aware) to ``resolution`` km, a whole multiple of the pixel."""
    from pyro_videossm.data.radar import coarsen_block_mean

    if box_km is not None:
        x, y = ds["x"].values, ds["y"].values
        cx, cy = center if center is not None else ((x.min() + x.max()) / 2,
                                                    (y.min() + y.max()) / 2)
        half = box_km / 2.0
        keep_x = (x >= cx - half) & (x <= cx + half)
        keep_y = (y >= cy - half) & (y <= cy + half)
        if not keep_x.any() or not keep_y.any():
            raise InputError(f"the {box_km:g} km box around ({cx:g}, {cy:g}) km misses the grid")
        ds = ds.isel(x=np.nonzero(keep_x)[0], y=np.nonzero(keep_y)[0])
    px = pixel_km(ds)
    if resolution is None or math.isclose(resolution, px, rel_tol=1e-6):
        return ds.assign_attrs(pixel_size_km=px)
    ratio = resolution / px
    factor = int(round(ratio))
    if factor < 1 or abs(ratio - factor) > 1e-6:
        raise InputError(f"resolution {resolution:g} km is not a whole multiple of the "
                         f"{px:g} km pixel")
    r = ds["rain_rate"]
    values = coarsen_block_mean(r.values, factor)
    h, w = values.shape[-2:]
    coords = {c: ds[c].values[: n * factor].reshape(n, factor).mean(axis=1)
              for c, n in (("y", h), ("x", w))}
    out = ds.isel(y=slice(0, h * factor, factor), x=slice(0, w * factor, factor))
    out = out.assign_coords(y=("y", coords["y"], ds["y"].attrs),
                            x=("x", coords["x"], ds["x"].attrs))
    out["rain_rate"] = (r.dims, values, r.attrs)
    return out.assign_attrs(pixel_size_km=px * factor,
                            coarsening_factor=int(ds.attrs.get("coarsening_factor", 1)) * factor)


def check_regular_times(da: xr.DataArray) -> None:
    """One-line InputError unless ``da``'s times increase by one constant step (a missing,
    duplicate or misordered frame would put windows across a gap)."""
    t = np.asarray(da["time"].values)
    if t.size < 2:
        raise InputError(f"{t.size} radar frame(s): a benchmark needs a time series")
    d = np.diff(t)
    if (d <= np.zeros((), d.dtype)).any():
        i = int(np.nonzero(d <= np.zeros((), d.dtype))[0][0])
        raise InputError(f"radar times not increasing at {t[i + 1]} (duplicate or out of "
                         "order)")
    if (d != d[0]).any():
        i = int(np.nonzero(d != d[0])[0][0])
        raise InputError(f"radar times not evenly spaced: {t[i]} to {t[i + 1]} after steps of "
                         f"{d[0].astype('timedelta64[s]') if d.dtype.kind == 'm' else d[0]}")


def fss_pixels(fss_km: Sequence[float], px_km: float) -> list[int]:
    """FSS neighbourhood sizes in pixels for sizes in km on a ``px_km`` grid (nearest whole
    number of pixels, at least 1; duplicates dropped, in order)."""
    out: list[int] = []
    for km in fss_km:
        if not km > 0:
            raise InputError(f"FSS scale must be > 0 km, got {km}")
        n = max(1, int(round(km / px_km)))
        if n not in out:
            out.append(n)
    return out


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


__all__ = ["KNMI_PRESET", "PYSTEPS_MODELS", "UNTRAINED", "block_windows", "calibration",
           "calibration_table", "check_regular_times", "crop_and_coarsen", "data_summary",
           "fss_pixels", "pixel_km", "radar_architectures", "radar_field", "reusable_run",
           "run_model", "score_tables", "scores_csv", "training_table", "write_strips"]
