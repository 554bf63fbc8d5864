"""The text of the docs/RESULTS.md sections the benchmark scripts write (presentation only).

Each function takes the script's parsed arguments (``args``, read by attribute) and the
numbers of the run, and returns the markdown body of the section; the scripts print it and
store it with :func:`~pyro_videossm.experiments.results.write_section` and a run record.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


def _torch_version() -> str:
    import torch

    return torch.__version__


def _rows_by_model(args, rows: Sequence[Mapping]) -> dict[str, list]:
    """The trained rows of each model of ``args.models`` (persistence left out)."""
    return {m: [r for r in rows if r["model"] == m] for m in args.models
            if m != "persistence" and any(r["model"] == m for r in rows)}


def moving_digits_section(args, *, arch: Mapping[str, dict], table: str, n_valid: int,
                          command: str, loads: Sequence[float], absent: Sequence[str],
                          defaults, curves: str | None = None,
                          table_rows: Sequence[Mapping] = ()) -> str:
    """The ``spatrans`` section (``benchmarks/moving_digits.py``); ``defaults``: the parser's
    defaults (what counts as a reduced run). A run with ``args.patience`` (early stopping, the
    CPU configuration) gets its own title, the stopping rule and ``curves`` (the learning
    curves' PNG, linked relative to docs/)."""
    loaded = max(loads) > (os.cpu_count() or 1) + 0.5  # more runnable threads than cores
    d = defaults
    side = getattr(args, "canvas", 64)
    patience = getattr(args, "patience", None)
    reduced = [] if args.quick else [
        what for what, less in (
            (f"{args.minutes:g} min per run instead of {d.minutes:g}",
             (args.minutes or 0) < (d.minutes or 0)),
            (f"{args.train_clips} training clips instead of {d.train_clips}",
             args.train_clips < d.train_clips),
            (f"{args.test_clips} test clips instead of {d.test_clips}",
             args.test_clips < d.test_clips),
            (f"{len(args.seeds)} seed(s) instead of {len(d.seeds)}",
             len(args.seeds) < len(d.seeds))) if less]
    if patience is not None:  # the converged CPU configuration: what to compare with
        reduced = []
    budget = (f"{args.epochs} epochs" if not args.minutes else
              f"{args.minutes:g} min of training (at most {args.epochs} epochs)")
    if patience is not None:
        budget = (f"early stopping with patience {patience} (the best parameters are scored), "
                  f"at most {args.epochs} epochs per model and seed"
                  + (f" and {args.minutes:g} min" if args.minutes else " (no time cap)"))
    recipe = "" if side == 64 and patience is None else (
        f"{args.n_digits} digit(s) of {args.digit_size}×{args.digit_size} px at "
        f"{args.speed:g} px/frame, ")
    return "\n".join([
        "## Moving digits: Spatiotemporal Transformer and sequence baselines"
        + ("" if patience is None else f" (CPU configuration, {side}×{side}, converged)"),
        "",
        f"Command: `{command}` ({_dt.date.today().isoformat()}; "
        f"{args.train_clips} training clips ({n_valid} of them validate), "
        f"{args.test_clips} test clips with held-out digits, 10 context + 10 target frames "
        f"{side}×{side} in [0, 1], " + recipe + budget
        + f", batch {args.batch_size}, lr {args.lr}, "
        f"seeds {args.seeds}, torch threads {args.threads}).",
        "",
        table,
        "",
        "Settings per model (`--set` overrides; `lr` defaults to `--lr`): "
        + "; ".join(f"{m} " + ", ".join(f"{k} {v}" for k, v in arch[m].items())
                    for m in dict.fromkeys(n.removesuffix("-q") for n in args.models)
                    if m in arch) + ".",
        "",
        "MSE/MAE per pixel and SSIM of the point forecast (the median for `spatrans-q`), mean "
        f"over the 10 leads; MSE/frame = per pixel × {side * side}. ICP: fraction of target "
        "pixels inside the 10–90 % interval (nominal 0.8); MIL: its mean width. ± is the "
        "standard error of the mean over seeds."
        + ("" if patience is None else
           " epochs: epochs trained; best epoch: the epoch of the lowest validation loss "
           f"(training stopped {patience} epochs later unless a cap came first). "
           "Converged (stopped by the patience rule) runs: "
           + ", ".join(f"{m} {sum(bool(r.get('converged')) for r in rows)}/{len(rows)}"
                       for m, rows in _rows_by_model(args, table_rows).items()) + ".")
        + ("" if not curves else
           f"\n\nLearning curves (validation loss per epoch, every seed; a dot marks the best "
           f"epoch): ![learning curves]({Path(curves).name})"),
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPU(s), torch {_torch_version()}; "
        f"highest load average seen {max(loads):.1f}; runs stored in `{args.runs}` (the "
        "command trains the missing ones; they may be split over processes, see the script's "
        "doc). Findings and the `spatrans` settings tried: [spatrans.md](spatrans.md)."
        + (" **Measured under load: training times are not final.**" if loaded else ""),
        ("" if not args.quick else "\n**`--quick` run: a pipeline check at a tiny budget, "
         "not a result.**"),
        ("" if not reduced else "\n**Smaller than the defaults: " + "; ".join(reduced)
         + ".**"),
        ("" if not absent else "\n**Not run yet: " + ", ".join(absent) + ".**"),
    ])


def radar_section(args, *, summary: Mapping[str, Any], rows: Mapping[str, Mapping],
                  init_times: Sequence[str], scaling: str, command: str,
                  strips: Sequence[tuple[str, str]], reused: Sequence[str],
                  loads: tuple[float, float], total: float, title: str | None = None,
                  calibration: Mapping[str, Any] | None = None,
                  calibration_figure: str | None = None) -> str:
    """The ``radar`` section (``benchmarks/radar_forecast.py``): ``summary`` is the run
    summary (``frames``, ``grid``, ``time_step_minutes``, ``block_times``, ``windows``,
    ``models``, ...), ``rows`` the pooled scores per model, ``init_times`` the test windows'
    initial times (ISO strings), ``strips`` ``(model, link)`` of the frame strips;
    ``calibration`` the ensemble models' calibration summaries (and ``calibration_figure`` a
    link to their PNG)."""
    from pyro_videossm.experiments.radar_benchmark import (
        PYSTEPS_MODELS,
        calibration_table,
        score_tables,
        training_table,
    )

    K, L = args.context, args.leads
    n_time, grid, nan_frac, wet = (summary["frames"], summary["grid"],
                                   summary["outside_range_fraction"], summary["wet_fraction"])
    step_min = summary["time_step_minutes"]
    show = [k for k in args.show_leads if 1 <= k <= L]
    load0, load1 = loads
    loaded = max(load0, load1) > 0.5 * (os.cpu_count() or 1)
    tb = {k: summary["block_times"][k] for k in ("train", "valid", "test")}
    pysteps = [n for n in rows if n in PYSTEPS_MODELS]
    source = getattr(args, "source", "knmi")
    if source == "knmi":
        data = (f"Data: {n_time} KNMI radar composites (00:00–07:35 UTC, every {step_min:g} "
                f"min) → rain rate in mm/h with `load_knmi`, cropped to a {args.box_km:g} km "
                f"square around the radar range's centre (x = {args.center_x:g}, y = "
                f"{args.center_y:g} km, polar stereographic) and block-averaged to "
                f"{args.resolution:g} km")
    else:
        where = ("the whole grid" if args.box_km is None else
                 f"cut to a {args.box_km:g} km square around "
                 + ("the grid's centre" if args.center_x is None else
                    f"x = {args.center_x:g}, y = {args.center_y:g} km"))
        data = (f"Data: {n_time} `{source}` radar frames ({tb['train'][0]} – {tb['test'][1]} "
                f"UTC, every {step_min:g} min) → rain rate in mm/h through pysteps' importer "
                f"(`videossm convert-radar --source {source}`), {where}, pixels of "
                f"{args.resolution:g} km")
    return "\n".join([
        title or ("## Real radar: KNMI composites, 26 Aug 2010 (nowcasting)" if source == "knmi"
                  else f"## Radar nowcasting: {source} composites"),
        "",
        f"Command: `{command}` (`nice -n 10`; {_dt.date.today().isoformat()}).",
        "",
        f"{data}: {grid[0]} × {grid[1]} "
        f"pixels, {100 * nan_frac:.1f} % outside radar range (NaN, masked in training and "
        f"left out of the scores), {100 * wet:.1f} % of the valid pixels ≥ "
        f"{args.threshold:g} mm/h. Chronological blocks: train {tb['train'][0][11:]}–"
        f"{tb['train'][1][11:]}, valid {tb['valid'][0][11:]}–{tb['valid'][1][11:]}, test "
        f"{tb['test'][0][11:]}–{tb['test'][1][11:]} UTC; windows of {K} context frames "
        f"({K * step_min:g} min) + {L} leads ({L * step_min:g} min) inside each block: "
        f"{summary['windows']['train']} training, {summary['windows']['valid']} validation "
        f"and {len(init_times)} "
        f"test windows (initial times {init_times[0][11:16]}–"
        f"{init_times[-1][11:16]}). Scaling `{args.normalize}` fitted on the "
        f"training block ({scaling}), shared by all models.",
        "",
        f"Budget, the same for every learned model: {args.epochs} epochs, batch "
        f"{args.batch_size}, lr {args.lr:g} (shared Trainer, ClippedAdam), seed {args.seed}; "
        f"DMMs: {args.likelihood} likelihood, KL annealing over {args.anneal_epochs} epochs, "
        f"mean of {args.members} members; the others are point forecasts trained with the "
        "masked MSE. Scores pooled over the test windows (contingency counts and FSS sums "
        "over all windows and pixels), per lead time."
        + (f" pysteps baselines ({', '.join(pysteps)}; `[nowcast]` extra), untrained, on "
           f"each window's context in mm/h: dBR (threshold 0.1 mm/h), "
           f"{getattr(args, 'motion', 'LK')} optical flow of the {K} context frames, "
           "semi-Lagrangian extrapolation; S-PROG and STEPS with 6 cascade levels and AR(2); "
           f"STEPS {args.members} members (nonparametric noise, motion perturbations), one "
           "seed per window." if pysteps else ""),
        "",
        score_tables(rows, show, step_min, args.threshold, args.fss_scales,
                     args.resolution),
        "",
        *([f"**Calibration of the ensembles** (pooled over the test windows and leads; rank "
           f"histogram with values below {args.threshold / 10:g} mm/h tied, pairs where all "
           f"are below left out; reliability of P(rain ≥ {args.threshold:g} mm/h) in 10 bins "
           "of ≥ 10 pairs)", "", calibration_table(calibration), "",
           *([f"![calibration]({calibration_figure})", ""] if calibration_figure else [])]
          if calibration else []),
        f"**Training** (losses: negative ELBO per frame for the DMMs, MSE in model units for "
        f"the others; max forecast: largest value of the (ensemble-mean) forecast over the test "
        f"windows; the truth's over the test block: {summary['truth_test_max']:.3g} mm/h; "
        "max / context max: the largest value of any member over the largest value of its "
        "window's context, worst window; "
        "wall-clock seconds on one torch thread"
        + (", measured under load from other jobs: not comparable" if loaded else "") + ")",
        "",
        training_table(summary["models"]),
        "",
        "".join(f"![{n} frame strip]({t})\n\n" for n, t in strips)
        + (f"Frame strips: one test window (init {init_times[len(init_times) // 2][11:16]}"
           " UTC): truth, forecast (members and their mean for the DMMs), error of the mean.\n"
           if strips else ""),
        (f"Trained models reused from the run before (same training settings): "
         f"{', '.join(reused)}; drop `--reuse-models` to train them again.\n" if reused else ""),
        f"Machine: {platform.machine()}, {os.cpu_count()} CPU(s), torch {_torch_version()}; "
        f"load average {load0:.1f} at the start, {load1:.1f} at the end; total "
        f"{total:.0f} s"
        + (f" (re-scoring only; the training run took {summary['training_run_seconds']:.0f} s "
           f"at load average {summary['training_run_load'][0]:.1f}–"
           f"{summary['training_run_load'][1]:.1f})" if reused else "") + "."
        + (" **Measured under load (other engineers' jobs): timings are not final.**"
           if loaded else ""),
        (f"\n{args.note}" if args.note else ""),
        ("\n**`--quick` run: a pipeline check at a tiny budget, not a result.**"
         if args.quick else ""),
    ])


def heat_section(args, *, rows: Mapping[str, Any], models: Mapping[str, Mapping[str, Any]],
                 grid: Sequence[int], n_train: int, command: str) -> str:
    """One table of the ``heat`` section (``benchmarks/heat_forecast.py``): ``rows`` the MSE
    per lead of each model, ``models`` their summaries (``history``, ``train_seconds``)."""
    K, L = args.context, args.leads
    show = [k for k in (1, 5, 10, 15, 20) if k <= L]
    header = (["model", "epochs", "train s"] + [f"lead {k}" for k in show]
              + (["mean 15–20"] if L >= 20 else []))
    table = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for n, r in rows.items():
        ep = "–" if n == "persistence" else str(len(models[n]["history"]))
        sec = models[n]["train_seconds"]
        cells = [n, ep, "–" if n == "persistence" else f"{sec:.0f}"]
        cells += [f"{r[k - 1]:.4g}" for k in show]
        if L >= 20:
            cells.append(f"{r[14:20].mean():.4g}")
        table.append("| " + " | ".join(cells) + " |")
    return "\n".join([
        f"### {args.title}",
        "",
        f"{args.test_samples} held-out sequences, {grid[0]}×{grid[1]} (simulated at "
        f"{args.sim_grid}×{args.sim_grid}, dx = 0.1, block-averaged ×{args.coarsen}), "
        f"context {K} frames, Cauchy noise. Every model: {args.epochs} epochs on "
        f"{n_train} training windows ({args.train_samples} sequences, 10% held out), "
        f"batch {args.batch_size}, lr {args.lr:g} (equal-epoch budget). DMMs: "
        f"{args.likelihood} likelihood (df {args.df:g}), mean of {args.members} members. "
        "ConvLSTM: plain MSE on the noisy frames; convlstm-clip: the same network with the "
        "MSE targets clamped to the input-clip range (a crude guard against the Cauchy "
        f"outliers). Encoder inputs of all models clamped to {list(args.input_clip)} (model "
        "units: 1st..99th percentiles of the training obs -> [0, 1]). "
        "MSE in squared temperature units; train s = wall-clock training seconds on one "
        "CPU thread.",
        "",
        *table,
        "",
        f"Command: `{command}`" + (f"  \n{args.note}" if args.note else ""),
    ])


def dsvae_section(args, *, table: str, n_train: int, n_test_clips: int, n_protocol: int,
                  command: str, loads: tuple[float, float]) -> str:
    """The ``dsvae`` section (``benchmarks/dsvae_sprites.py``): ``table`` from
    :func:`~pyro_videossm.experiments.video_benchmark.protocol_table`, ``n_protocol`` the test
    clips of the protocol."""
    load0, load1 = loads
    return f"""## Disentangled sequential VAE on procedural sprites

Command (`{command}`), {_dt.date.today().isoformat()}, {platform.processor() or
platform.machine()}, torch threads {args.threads}; load average {load0:.1f} at the start and
{load1:.1f} at the end{' (shared machine: timings measured under load)' if max(load0, load1)
> 2.5 else ''}.

Sprites {args.size}x{args.size}, 8 frames; {n_train} training clips, {n_test_clips} test clips
(characters never seen in training). Both models: the same architecture (f {args.static_dim},
z_t {args.dynamic_dim}, conv width {args.conv_channels}, {args.likelihood} likelihood,
dynamic encoder `{args.dynamic_encoder}`, KL weight of z {args.dynamic_kl_weight}), seed
{args.seed} and budget ({args.epochs} epochs of {args.batch_size} clips, lr {args.lr}); the
adversarial one adds the motion classifier on f
trained against the encoder (mode `{args.adversary_mode}`, weight {args.adversary_weight}).
Judge: {args.judge_epochs} epochs on
the training clips. Protocol: {args.repeats} prior draws on {n_protocol} motion-balanced test clips
(each static factor on a subset balanced by that factor); mean ± std over the draws.
"Dynamics kept": z of a test clip, f from the prior, judged on the 9 motions (chance 11.1%,
IS ≤ 9, H(y) ≤ ln 9 = 2.197). "f kept": z from the prior, judged on each static factor
(6 values, chance 16.7%).

{table}

Swap grids (rows keep the character, columns keep the motion; first row/column are the real
test clips; frames 0, 2, 4, 6 of each clip): `docs/dsvae_swap.png` (adversarial),
`docs/dsvae_swap_plain.png` (plain).
"""
