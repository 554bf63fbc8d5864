"""Flow-animation benchmark: animate held-out procedural clouds by their own optical flow.

Training clips: ``videossm simulate clouds`` (``--train-clips``, seed ``--data-seed``, 0); test
clips: the same simulator with another seed (``--test-clips``, seed ``--test-seed``, 1000), so
their fields and flows were never seen in training. The flow animator is trained with the
``flow-animator`` recipe (the flags default to the recipe's defaults, what ``videossm train
flow-animator`` trains); then each method animates frame 0 of every test clip by the OpenCV
(DIS) flows of that clip
(:func:`pyro_videossm.experiments.animation_recipe.evaluate_animation`): the still source,
semi-Lagrangian advection, the model's warp without its refinement network, and the trained
model. The same model then animates the first frame of each KNMI radar driving clip
(:func:`pyro_videossm.experiments.animation_radar.radar_clips`, ``--radar``; skipped when the
folder is absent). Scores (:mod:`pyro_videossm.metrics.animation`): self-reconstruction L1,
SSIM and FSS (threshold 0.2, 5 px) against the real frames, motion end-point error (pixels) and
power-spectrum distance to the source.

Target: the model's L1 and spectrum distance below semi-Lagrangian warping's, its end-point
error within 10 % of semi-Lagrangian warping's.

    OMP_NUM_THREADS=1 python benchmarks/flow_animation.py      # about 5 min of CPU time
    python benchmarks/flow_animation.py --quick --no-write     # end-to-end check
    python benchmarks/flow_animation.py --publish RECORD       # docs section from a record

Writes the run record (``--record``, default
``benchmarks/results/flow_animation/flow_animation.json``) and the strips
``docs/animation_strip.png`` and ``docs/animation_radar_strip.png`` (unless ``--no-write``);
with the default record it also writes the ``animation`` section of docs/animation.md
(:func:`publish`).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pyro_videossm.data.clouds import simulate_clouds  # noqa: E402
from pyro_videossm.experiments.animation_radar import radar_clips  # noqa: E402
from pyro_videossm.experiments.animation_recipe import (  # noqa: E402
    ANIMATION_METHODS,
    FLOW_ANIMATOR,
    evaluate_animation,
)
from pyro_videossm.experiments.animation_selection import KEEP_CHOICES  # noqa: E402
from pyro_videossm.experiments.recipe import TrainingRun  # noqa: E402
from pyro_videossm.experiments.records import make_record, write_record  # noqa: E402
from pyro_videossm.infer import load_model_file  # noqa: E402

RECORD = ROOT / "benchmarks/results/flow_animation/flow_animation.json"
STRIP = ROOT / "docs/animation_strip.png"
RADAR_STRIP = ROOT / "docs/animation_radar_strip.png"
DOCS = ROOT / "docs/animation.md"
#: The KNMI day beside the checkout (``../shared``; ``../../shared`` from a worktree folder).
DEFAULT_RADAR = next((p / "shared" / "data" / "radar" / "knmi_20100826"
                      for p in ROOT.parents[:2]
                      if (p / "shared" / "data" / "radar" / "knmi_20100826").is_dir()),
                     ROOT.parent / "shared" / "data" / "radar" / "knmi_20100826")
COLUMNS = ("l1", "ssim", "fss", "motion_epe", "spectrum_distance")


def table(scores: dict) -> str:
    """The scores of every method; with a ``clip_fd`` (judged clips) its column too."""
    fd = all("clip_fd" in scores[name] for name in ANIMATION_METHODS)
    lines = ["| method | L1 ↓ | SSIM ↑ | FSS ↑ | motion EPE (px) ↓ | spectrum distance ↓ |"
             + (" clip FD, judge ↓ |" if fd else ""),
             "| --- | --- | --- | --- | --- | --- |" + (" --- |" if fd else "")]
    for name in ANIMATION_METHODS:
        s = scores[name]
        lines.append(f"| {name} | " + " | ".join(f"{s[c]:.4f}" for c in COLUMNS) + " |"
                     + (f" {s['clip_fd']:.3f} |" if fd else ""))
    return "\n".join(lines)


def targets(scores: dict) -> dict:
    m, w = scores["flow-animator"], scores["semi-lagrangian"]
    return {"l1_below_warping": m["l1"] < w["l1"],
            "spectrum_below_warping": m["spectrum_distance"] < w["spectrum_distance"],
            "epe_within_10pct_of_warping": m["motion_epe"] <= 1.1 * w["motion_epe"]}


def section_body(record: dict, attempts: list[tuple[str, dict]] = ()) -> str:
    """The ``animation`` section of docs/animation.md from a run record: the scores on the
    procedural and radar test clips, the targets, the learning curve, and the flow
    animator's scores in ``attempts`` (``(file name, record)`` of other runs)."""
    m, opts = record["metrics"], record["options"]
    yes = {True: "holds", False: "does not hold"}
    t = m["targets"]
    parts = [f"Procedural clouds, {opts['test_clips']} held-out clips (seed "
             f"{opts.get('test_seed', 1000)}), each animated "
             "from its frame 0 by its own DIS flow:", "", table(m["scores"]), "",
             f"Targets (against semi-Lagrangian warping): L1 below, {yes[t['l1_below_warping']]}; "
             f"spectrum distance below, {yes[t['spectrum_below_warping']]}; end-point error "
             f"within 10 %, {yes[t['epe_within_10pct_of_warping']]}."]
    if m.get("judge"):
        acc = m["judge"]["accuracy"]
        parts += ["", "Clip FD, judge: the Fréchet distance of each method's clips to the real "
                      "ones in the clip features of a judge of cloud appearance (a judge-FVD "
                      "analogue; `pyro_videossm.experiments.animation_judge`: "
                      f"{m['judge']['classes']}; {m['judge']['epochs']} epochs); the judge "
                      "tells the classes of held-out clips apart at "
                      + ", ".join(f"{k} {100 * v:.1f} %" for k, v in acc.items())
                      + " (chance 33.3 %). Not one of the issue's targets; lower is closer."]
    if "radar" in m:
        n, frames, h, w = m["radar"]["clips"]
        parts += ["", f"KNMI radar driving clips ({n} consecutive clips of {frames} frames "
                      f"{h}x{w}, 4 km, 5 minutes apart; the model trained on procedural clouds "
                      "only):", "", table(m["radar"]["scores"])]
    n_valid = max(1, round(0.1 * opts["train_clips"]))
    curve = m["learning_curve"]
    if all(h.get("valid_spectrum") is not None for h in curve):
        vb = m["valid_baseline"]
        parts += ["", f"Learning curve (the EMA generator after each epoch on the {n_valid} "
                      "validation clips: the trainer's L1, then the scores above):", "",
                  "| epoch | train L1 | validation L1 | validation spectrum | validation EPE "
                  "(px) |", "| --- | --- | --- | --- | --- |"]
        parts += [f"| {h['epoch']} | {h['l1']:.4f} | {h['valid']:.4f} | "
                  f"{h['valid_spectrum']:.4f} | {h['valid_epe']:.4f} |" for h in curve]
        parts.append(f"| semi-lagrangian | | {vb['l1']:.4f} (frames 1 to T-1) | "
                     f"{vb['spectrum_distance']:.4f} | {vb['motion_epe']:.4f} |")
    else:
        parts += ["", f"Learning curve (validation L1: the EMA generator on the {n_valid} "
                      "validation clips):", "", "| epoch | train L1 | validation L1 |",
                  "| --- | --- | --- |"]
        parts += [f"| {h['epoch']} | {h['l1']:.4f} | {h['valid']:.4f} |" for h in curve]
    why = {"best": "the best validation L1, `--keep best`",
           "targets": "the epoch that holds the three targets on the validation clips by the "
                      "widest relative margin, `--keep targets`"}
    if m.get("kept_epoch") is not None and opts.get("keep", "last") in why:
        parts += ["", f"The model file holds the EMA generator of epoch {m['kept_epoch']} "
                      f"({why[opts['keep']]})."]
    seeds = [rec for _, rec in attempts if same_recipe(rec, record)]
    if len(seeds) > 1:
        parts += ["", f"The published recipe over {len(seeds)} training seeds (the data fixed; "
                      "records beside the published one):", "",
                  seeds_table(seeds, tuning=TUNING_SEEDS)]
        radar = [rec for rec in seeds if "radar" in rec["metrics"]]
        if len(radar) > 1:
            parts += ["", radar_summary(radar)]
    for (data_seed, test_seed, test_clips), fresh in other_data(record, attempts):
        parts += ["", f"The published recipe on other data (which of them were used while "
                      f"designing it: the text below the tables): training "
                      f"clips of data seed {data_seed}, {test_clips} test clips of seed "
                      f"{test_seed} (`--data-seed {data_seed} --test-seed {test_seed} "
                      f"--test-clips {test_clips}`), over {len(fresh)} training seeds; the "
                      "targets are against warping on these clips:", "", seeds_table(fresh)]
    for variant, by_data in other_recipes(record, attempts):
        for data, others in by_data.items():
            where = ("" if data == data_of(record) else
                     f" on data seed {data[0]} with {data[2]} test clips of seed {data[1]}")
            parts += ["", f"The recipe with {difference(variant, record)}{where}, over "
                          f"{len(others)} training seeds:", "",
                      seeds_table(others, tuning=TUNING_SEEDS if data == data_of(record)
                                  else None)]
    attempts = [(name, rec) for name, rec in attempts if data_of(rec) == data_of(record)]
    if attempts:
        parts += ["", "Every run of this benchmark kept in `benchmarks/results/flow_animation/` "
                      "(the flow animator's held-out scores; semi-Lagrangian: L1 "
                      f"{m['scores']['semi-lagrangian']['l1']:.4f}, EPE "
                      f"{m['scores']['semi-lagrangian']['motion_epe']:.4f} px, spectrum "
                      f"{m['scores']['semi-lagrangian']['spectrum_distance']:.4f}):", "",
                  "| record | warping | interpolation | adversarial | spectral | consistency "
                  "| sharpening | train clips | epochs | kept | seed | L1 | EPE (px) | spectrum "
                  "| targets held |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- "
                  "| --- | --- | --- |"]
        for name, rec in attempts:
            o, sc = rec["options"], rec["metrics"]["scores"]["flow-animator"]
            held = sum(bool(v) for v in rec["metrics"]["targets"].values())
            parts.append(f"| {name} | {o['warping']} | {o.get('interpolation', 'bicubic')} | "
                         f"{o['adversarial_weight']:.2f} | {o.get('spectral_weight', 0.0):.2f} |"
                         f" {o.get('consistency_weight', 0.0):.2f} | {sharpening_label(rec)} | "
                         f"{o['train_clips']} | "
                         f"{o['epochs']} | {kept_label(rec)} | {o.get('seed', 0)} | "
                         f"{sc['l1']:.4f} | {sc['motion_epe']:.4f} | "
                         f"{sc['spectrum_distance']:.4f} | {held} of 3 |")
    timing = record.get("timings", {})
    if timing:
        cpu = timing.get("train_cpu_seconds")
        parts += ["", f"Training {timing['train_seconds']:.0f} s"
                      + ("" if cpu is None else f" ({cpu:.0f} s of CPU time)")
                      + f", {timing['total_seconds']:.0f} s"
                      f" in all, {record.get('threads', 1)} torch thread on a 2-core machine "
                      "shared with other work (load average "
                      f"{(record.get('load') or [float('nan')])[0]:.0f}); command: "
                      f"`{record['command']}`."]
    return "\n".join(parts)


#: Options that make two runs the same recipe on the same data (all but the seed and paths).
RECIPE_KEYS = ("train_clips", "test_clips", "epochs", "channels", "warping", "interpolation",
               "spectral_weight", "consistency_weight", "disc_channels", "adversarial_weight",
               "ema_decay", "keep", "lr", "batch_size", "data_seed", "test_seed",
               "sharpen_amount", "sharpen_sigma", "texture_budget")
#: What a record without the key ran (records written before the option existed).
OPTION_DEFAULTS = {"keep": "last", "data_seed": 0, "test_seed": 1000, "sharpen_amount": 0.0,
                   "sharpen_sigma": None, "texture_budget": None}


def same_recipe(a: dict, b: dict) -> bool:
    """Whether run records ``a`` and ``b`` ran the same recipe on the same data (seeds aside;
    a missing option is :data:`OPTION_DEFAULTS`'s)."""
    oa, ob = ({**OPTION_DEFAULTS, **r["options"]} for r in (a, b))
    return all(oa.get(k) == ob.get(k) for k in RECIPE_KEYS)


#: Options that choose the data (training and test clips).
DATA_KEYS = ("data_seed", "test_seed", "test_clips")


def data_of(record: dict) -> tuple:
    """``(data_seed, test_seed, test_clips)`` of a run record."""
    o = {**OPTION_DEFAULTS, **record["options"]}
    return tuple(o.get(k) for k in DATA_KEYS)


def other_data(record: dict, attempts) -> list[tuple[tuple, list[dict]]]:
    """``(data, records)`` of the runs in ``attempts`` (``(name, record)``) of ``record``'s
    recipe on other data (:func:`data_of`), one group per data, in the order of first run."""
    groups: dict[tuple, list[dict]] = {}
    for _, rec in attempts:
        if data_of(rec) != data_of(record) and same_recipe(
                rec, {**record, "options": {**record["options"],
                                            **dict(zip(DATA_KEYS, data_of(rec)))}}):
            groups.setdefault(data_of(rec), []).append(rec)
    return list(groups.items())


def recipe_of(record: dict) -> tuple:
    """The recipe options of a run record (:data:`RECIPE_KEYS` but the data's), a hashable
    key (a missing option is :data:`OPTION_DEFAULTS`'s)."""
    o = {**OPTION_DEFAULTS, **record["options"]}
    return tuple((k, o.get(k)) for k in RECIPE_KEYS if k not in DATA_KEYS)


def other_recipes(record: dict, attempts) -> list[tuple[dict, dict[tuple, list[dict]]]]:
    """``(options, {data: records})`` of every recipe in ``attempts`` (``(name, record)``)
    other than ``record``'s, with the data (:func:`data_of`) it ran on over several seeds, in
    the order of first run; data with one run only are left out (the table of every run
    lists them)."""
    groups: dict[tuple, dict[tuple, list[dict]]] = {}
    for _, rec in attempts:
        if recipe_of(rec) != recipe_of(record):
            groups.setdefault(recipe_of(rec), {}).setdefault(data_of(rec), []).append(rec)
    out = []
    for key, by_data in groups.items():
        several = {d: runs for d, runs in by_data.items() if len(runs) > 1}
        if several:
            out.append((dict(key), several))
    return out


#: How :func:`difference` names an option.
OPTION_LABELS = {"spectral_weight": "spectral weight", "adversarial_weight": "adversarial weight",
                 "consistency_weight": "consistency weight", "train_clips": "training clips",
                 "sharpen_sigma": "unsharp-mask sigma", "texture_budget": "texture budget"}


def difference(options: dict, record: dict) -> str:
    """How the recipe ``options`` (:func:`recipe_of`, as a dict) differs from ``record``'s,
    in words (e.g. ``spectral weight 0.12, --keep targets, no sharpening``)."""
    ref = dict(recipe_of(record))
    words = []
    for k, v in options.items():
        if ref.get(k) == v or (k in ("sharpen_sigma", "texture_budget")
                               and options.get("sharpen_amount") is not None):
            continue
        if k == "keep":
            words.append(f"`--keep {v}`")
        elif k == "sharpen_amount":
            words.append("sharpening calibrated" if v is None else "no sharpening" if v == 0
                         else f"sharpening amount {v:g}")
        else:
            words.append(f"{OPTION_LABELS.get(k, k.replace('_', ' '))} {v:g}"
                         if isinstance(v, (int, float)) else f"{k.replace('_', ' ')} {v}")
    return ", ".join(words) or "the same options"


#: The judged scores, as the seed tables name them.
SCORE_NAMES = (("l1", "L1"), ("motion_epe", "EPE (px)"), ("spectrum_distance", "spectrum"))
#: The targets of :func:`targets`, per score.
TARGET_OF = {"l1": "l1_below_warping", "motion_epe": "epe_within_10pct_of_warping",
             "spectrum_distance": "spectrum_below_warping"}
#: Training seeds the previous recipe (spectral weight 0.12, ``--keep targets``) was chosen
#: on, after their test scores were seen (tuning seeds); its seeds 5-9 confirm it (never tuned
#: on). The current recipe's seeds on the published data are all tuning seeds in that sense
#: (docs/animation.md).
TUNING_SEEDS = (0, 1, 2, 3, 4)


def target_bounds(reference: dict) -> dict[str, float]:
    """The bound of each judged score: semi-Lagrangian warping's L1 and spectrum distance,
    1.1 × its end-point error."""
    return {"l1": reference["l1"], "motion_epe": 1.1 * reference["motion_epe"],
            "spectrum_distance": reference["spectrum_distance"]}


def mean_se(values) -> tuple[float, float]:
    """Mean and standard error (NaN for one value)."""
    v = np.asarray(values, dtype=float)
    return float(v.mean()), float(v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else np.nan


def seed_range(seeds) -> str:
    seeds = sorted(seeds)
    consecutive = seeds == list(range(seeds[0], seeds[-1] + 1))
    return (f"{seeds[0]}–{seeds[-1]}" if consecutive and len(seeds) > 2
            else ", ".join(str(s) for s in seeds))


def seeds_table(runs: list[dict], tuning=None) -> str:
    """Per-seed scores of the flow animator in run records ``runs`` of one recipe, their mean
    ± standard error, semi-Lagrangian warping's scores, and whether each target holds; with
    ``tuning`` (seeds), also the mean ± s.e. of the tuning seeds and of the others
    (confirmation), when both are present."""
    runs = sorted(runs, key=lambda r: r["options"].get("seed", 0))
    seed = {id(r): r["options"].get("seed", 0) for r in runs}
    groups = []
    if tuning is not None:
        tuned = [r for r in runs if seed[id(r)] in tuning]
        fresh = [r for r in runs if seed[id(r)] not in tuning]
        if tuned and fresh:
            groups = [("tuning", tuned), ("confirmation", fresh)]
    role = {id(r): name for name, group in groups for r in group}
    lines = ["| seed | " + ("role | " if groups else "") + "kept | "
             + " | ".join(n for _, n in SCORE_NAMES) + " | targets held |",
             "| --- | " + ("--- | " if groups else "") + "--- | --- | --- | --- | --- |"]
    for r in runs:
        sc = r["metrics"]["scores"]["flow-animator"]
        held = sum(bool(v) for v in r["metrics"]["targets"].values())
        lines.append(f"| {seed[id(r)]} | " + (f"{role[id(r)]} | " if groups else "")
                     + f"{kept_label(r)} | "
                     + " | ".join(f"{sc[k]:.4f}" for k, _ in SCORE_NAMES) + f" | {held} of 3 |")
    pad = "| " if groups else ""
    ref = runs[0]["metrics"]["scores"]["semi-lagrangian"]
    bound = target_bounds(ref)

    def summary_row(label, group):
        stats = [mean_se([r["metrics"]["scores"]["flow-animator"][k] for r in group])
                 for k, _ in SCORE_NAMES]
        every = sum(all(r["metrics"]["targets"].values()) for r in group)
        return (f"| {label} | {pad}| " + " | ".join(f"{m:.4f} ± {e:.4f}" for m, e in stats)
                + f" | {every} of {len(group)} hold all three |")

    for name, group in groups:
        lines.append(summary_row(f"mean ± s.e., seeds {seed_range(seed[id(r)] for r in group)} "
                                 f"({name})", group))
    lines.append(summary_row(f"mean ± s.e. ({len(runs)})", runs))
    lines.append(f"| semi-lagrangian | {pad}| " + " | ".join(f"{ref[k]:.4f}"
                                                            for k, _ in SCORE_NAMES) + " | |")
    lines.append(f"| target | {pad}| " + " | ".join(
        f"{'≤' if k == 'motion_epe' else '<'} {bound[k]:.4f}" for k, _ in SCORE_NAMES) + " | |")
    every = sum(all(r["metrics"]["targets"].values()) for r in runs)
    text = f"{every} of {len(runs)} seeds hold all three targets"
    if groups:
        text += " (" + "; ".join(
            f"{name} seeds {seed_range(seed[id(r)] for r in group)}: "
            f"{sum(all(r['metrics']['targets'].values()) for r in group)} of {len(group)}"
            for name, group in groups) + ")"
    held = "; ".join(
        f"{n.split()[0]} {sum(bool(r['metrics']['targets'][TARGET_OF[k]]) for r in runs)}"
        for k, n in SCORE_NAMES)
    margins = []
    for k, n in SCORE_NAMES:
        m, e = mean_se([r["metrics"]["scores"]["flow-animator"][k] for r in runs])
        margins.append(f"{n.split()[0]} {(bound[k] - m) / e:.1f}")
    thinnest = []
    for k, n in SCORE_NAMES:
        r = min(runs, key=lambda r: bound[k] - r["metrics"]["scores"]["flow-animator"][k])
        gap = bound[k] - r["metrics"]["scores"]["flow-animator"][k]
        thinnest.append(f"{n.split()[0]} {gap:+.4f} (seed {seed[id(r)]}, "
                        f"{100 * gap / bound[k]:+.1f} %)")
    text += (f"; seeds holding each target: {held}; the mean's margin to each target (L1 and "
             "spectrum below semi-Lagrangian warping, EPE at most 1.1 × its), in standard "
             f"errors: {'; '.join(margins)}; the smallest margin of a seed (bound − score; "
             f"negative: missed): {'; '.join(thinnest)}.")
    return "\n".join(lines + ["", text])


def radar_summary(runs: list[dict]) -> str:
    """The flow animator on the KNMI driving clips over run records ``runs`` of one recipe:
    mean ± s.e. of each judged score against semi-Lagrangian warping's (the same for every
    seed), and how many seeds hold each target there."""
    ref = runs[0]["metrics"]["radar"]["scores"]["semi-lagrangian"]
    parts = []
    for k, n in SCORE_NAMES:
        m, e = mean_se([r["metrics"]["radar"]["scores"]["flow-animator"][k] for r in runs])
        held = sum(bool(r["metrics"]["radar"]["targets"][TARGET_OF[k]]) for r in runs)
        parts.append(f"{n} {m:.4f} ± {e:.4f} against {ref[k]:.4f} (target held by {held})")
    every = sum(all(r["metrics"]["radar"]["targets"].values()) for r in runs)
    return (f"KNMI radar driving clips, the same {len(runs)} seeds (the flow animator, mean ± "
            "s.e., against semi-Lagrangian warping): " + "; ".join(parts)
            + f"; {every} of {len(runs)} seeds hold all three there.")


def sharpening_label(record: dict) -> str:
    """The unsharp-mask amount a run used: ``0`` (none), ``0.35 (calibrated)``, ``0.3``."""
    info = record["metrics"].get("sharpening")
    if not info:
        return f"{record['options'].get('sharpen_amount') or 0:g}"
    return f"{info['amount']:g}" + (" (calibrated)" if info.get("calibrated") else "")


def kept_label(record: dict) -> str:
    """``last``, ``best (N)`` or ``targets (N)``: the epoch whose EMA generator a run
    evaluated."""
    keep = record["options"].get("keep", "last")
    if keep == "last":
        return "last"
    return f"{keep} ({record['metrics'].get('kept_epoch')})"


def publish(record_path: Path, docs: Path = DOCS) -> None:
    """Write the ``animation`` section of ``docs`` from a run record and store the record,
    with its section, as the published :data:`RECORD`."""
    from pyro_videossm.experiments.records import read_record, read_records
    from pyro_videossm.experiments.results import write_section

    record = read_record(record_path)
    attempts = [(Path(r["_path"]).name, r) for r in read_records(RECORD.parent)
                if Path(r["_path"]).resolve() != RECORD.resolve()
                and "flow-animator" in r.get("metrics", {}).get("scores", {})]
    attempts.sort(key=lambda a: a[1].get("created", ""))
    write_section(docs, "animation", section_body(record, attempts), record=record,
                  record_path=RECORD)
    print(f"wrote section 'animation' of {docs} and {RECORD}")


def build_parser() -> argparse.ArgumentParser:
    """The script's flags; the recipe's ones default to the recipe's defaults."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--train-clips", type=int, default=480)
    p.add_argument("--test-clips", type=int, default=16)
    d, dd = FLOW_ANIMATOR.make_options(), FLOW_ANIMATOR.defaults  # the recipe's defaults
    p.add_argument("--epochs", type=int, default=dd["epochs"])
    p.add_argument("--channels", type=int, default=d.channels)
    p.add_argument("--warping", default=d.warping,
                   choices=("accumulated", "sequential", "recurrent"))
    p.add_argument("--interpolation", default=d.interpolation, choices=("bicubic", "bspline"))
    p.add_argument("--spectral-weight", type=float, default=d.spectral_weight)
    p.add_argument("--consistency-weight", type=float, default=d.consistency_weight)
    p.add_argument("--disc-channels", type=int, default=d.disc_channels)
    p.add_argument("--adversarial-weight", type=float, default=d.adversarial_weight)
    p.add_argument("--ema-decay", type=float, default=d.ema_decay,
                   help="generator EMA decay (short runs: a short average)")
    p.add_argument("--keep", default=d.keep, choices=KEEP_CHOICES,
                   help="EMA generator evaluated: the last, the best-validation-L1 epoch's, or "
                        "the epoch's that holds the targets by the widest margin on the "
                        "validation clips")
    p.add_argument("--sharpen-amount", type=float, default=d.sharpen_amount,
                   help="unsharp-mask amount (default: calibrated on the validation clips)")
    p.add_argument("--sharpen-sigma", type=float, default=d.sharpen_sigma)
    p.add_argument("--texture-budget", type=float, default=d.texture_budget)
    p.add_argument("--judge-epochs", type=int, default=20,
                   help="epochs of the cloud judge of the clip Fréchet distance (0: no judge)")
    p.add_argument("--lr", type=float, default=dd["lr"])
    p.add_argument("--batch-size", type=int, default=dd["batch_size"])
    p.add_argument("--radar", type=Path, default=DEFAULT_RADAR,
                   help="folder of KNMI composites: real driving clips (skipped if absent)")
    p.add_argument("--radar-frames", type=int, default=16, help="frames per radar clip")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0,
                   help="training seed (initial weights and batch order; the data stay fixed)")
    p.add_argument("--data-seed", type=int, default=0,
                   help="seed of the training clips (the published runs: 0)")
    p.add_argument("--test-seed", type=int, default=1000,
                   help="seed of the held-out test clips (the published runs: 1000)")
    p.add_argument("--record", type=Path, default=RECORD, help="run record to write")
    p.add_argument("--strip", type=Path, default=STRIP, help="strip PNG of a procedural clip")
    p.add_argument("--radar-strip", type=Path, default=RADAR_STRIP,
                   help="strip PNG of a radar clip")
    p.add_argument("--publish", type=Path, metavar="RECORD",
                   help="run nothing: write the section of docs/animation.md from RECORD and "
                        "store it as the published record")
    p.add_argument("--quick", action="store_true", help="tiny run (end-to-end check)")
    p.add_argument("--no-write", action="store_true", help="write no record and no figure")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.publish is not None:
        publish(args.publish)
        return 0
    if args.quick:
        args.train_clips, args.test_clips, args.epochs = 8, 2, 1
        args.judge_epochs = min(args.judge_epochs, 1)
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    train = simulate_clouds(clips=args.train_clips, seed=args.data_seed)
    test = simulate_clouds(clips=args.test_clips, seed=args.test_seed)
    options = FLOW_ANIMATOR.make_options(channels=args.channels,
                                         disc_channels=args.disc_channels,
                                         adversarial_weight=args.adversarial_weight,
                                         warping=args.warping, ema_decay=args.ema_decay,
                                         interpolation=args.interpolation,
                                         spectral_weight=args.spectral_weight,
                                         consistency_weight=args.consistency_weight,
                                         keep=args.keep, sharpen_amount=args.sharpen_amount,
                                         sharpen_sigma=args.sharpen_sigma,
                                         texture_budget=args.texture_budget)
    with tempfile.TemporaryDirectory() as tmp:
        model = Path(tmp) / "flow_animator.pt"
        t0, cpu0 = time.perf_counter(), time.process_time()
        history = FLOW_ANIMATOR.fit(TrainingRun(train, model, epochs=args.epochs, lr=args.lr,
                                                batch_size=args.batch_size, seed=args.seed,
                                                progress=False),
                                    options)
        train_seconds = time.perf_counter() - t0
        train_cpu_seconds = time.process_time() - cpu0
        extra = load_model_file(model)["extra"]
        kept_epoch, valid_baseline = extra.get("kept_epoch"), extra.get("valid_baseline")
        sharpening = extra.get("sharpening")
        judge = judge_accuracy = judge_classes = None
        if args.judge_epochs > 0:
            from pyro_videossm.experiments.animation_judge import (
                APPEARANCE_CLASSES,
                train_cloud_judge,
            )

            n_train, n_test = (2, 2) if args.quick else (100, 20)
            judge, judge_accuracy = train_cloud_judge(
                clips_per_class=n_train, test_clips_per_class=n_test, epochs=args.judge_epochs,
                seed=args.seed, size=test.frames.shape[-1], frames=test.frames.shape[1])
            judge_classes = ("simulate_clouds " + " x ".join(
                f"{k} {', '.join(f'{v:g}' for v in vals)}"
                for k, vals in APPEARANCE_CLASSES.items())
                + f"; {n_train} clips per class (seed = training seed), {n_test} held out "
                  "per class (seed + 1000)")
        scores, generated = evaluate_animation(model, test.frames.values, judge=judge)
        radar_scores = radar_generated = radar = None
        if args.radar.is_dir():
            radar = radar_clips(args.radar, frames=args.radar_frames)
            if args.quick:
                radar = radar[:1, :4]
            radar_scores, radar_generated = evaluate_animation(model, radar)
    body = table(scores)
    checks = targets(scores)
    print(body)
    radar_body = None
    if radar_scores is not None:
        radar_body = table(radar_scores)
        print(f"KNMI radar driving clips ({radar.shape[0]} clips of {radar.shape[1]} frames "
              f"{radar.shape[2]}x{radar.shape[3]}):")
        print(radar_body)
        print("radar targets:", targets(radar_scores))
    print("learning curve (epoch: train L1, validation L1, spectrum, EPE):")
    for h in history:
        print(f"  {h['epoch']}: {h['l1']:.4f}, {h['valid']:.4f}, "
              f"{h.get('valid_spectrum', float('nan')):.4f}, "
              f"{h.get('valid_epe', float('nan')):.4f}")
    print("validation semi-Lagrangian:", valid_baseline)
    print("kept the EMA generator of epoch", kept_epoch)
    if sharpening:
        print("sharpening:", {k: v for k, v in sharpening.items() if k != "valid_l1"})
    print("targets:", checks)
    if not args.no_write:
        from pyro_videossm.plots.animation import plot_animation_strip

        rows = {"real": test.frames.values[0],
                **{name: generated[name][0] for name in ANIMATION_METHODS}}
        plot_animation_strip(rows, args.strip, frames=6,
                             title="held-out test clip 0: frame 0 animated by its own flow")
        if radar_scores is not None:
            rows = {"real": radar[0], **{name: radar_generated[name][0]
                                         for name in ANIMATION_METHODS}}
            plot_animation_strip(rows, args.radar_strip, frames=6,
                                 title="KNMI radar clip 0 (26 Aug 2010, 00:00 UTC): frame 0 "
                                       "animated by its own flow")
        write_record(args.record, make_record(
            "flow_animation", command="OMP_NUM_THREADS=1 python " + " ".join(
                ["benchmarks/flow_animation.py", *(argv if argv is not None else sys.argv[1:])]),
            options={k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
            data={"train": f"simulate_clouds(clips={args.train_clips}, seed={args.data_seed})",
                  "test": f"simulate_clouds(clips={args.test_clips}, seed={args.test_seed})",
                  **({} if radar is None else {
                      "radar": f"radar_clips({args.radar.name}, frames={args.radar_frames}): "
                               "KNMI 26 Aug 2010, 256 km at 4 km around (370, -4080) km, "
                               "brightness 1 - exp(-R / 2 mm/h)"})},
            metrics={"scores": scores, "targets": checks,
                     **({} if radar_scores is None else {
                         "radar": {"scores": radar_scores, "targets": targets(radar_scores),
                                   "clips": list(radar.shape)}}),
                     "learning_curve": [{k: h.get(k) for k in (
                         "epoch", "l1", "valid", "valid_spectrum", "valid_epe", "g_adv",
                         "d_loss")} for h in history],
                     "kept_epoch": kept_epoch, "valid_baseline": valid_baseline,
                     "judge": None if judge_accuracy is None else {
                         "accuracy": judge_accuracy, "epochs": args.judge_epochs,
                         "classes": judge_classes},
                     "sharpening": sharpening},
            timings={"train_seconds": train_seconds, "train_cpu_seconds": train_cpu_seconds,
                     "total_seconds": time.perf_counter() - started},
            table=body if radar_body is None else body + "\n\nKNMI radar:\n\n" + radar_body))
        print(f"wrote {args.record} and {args.strip}")
        if args.record.resolve() == RECORD.resolve():
            publish(RECORD)
    return 0


if __name__ == "__main__":
    sys.exit(main())
