"""Video-generation benchmark: zero-shot (action, content) generation on the sprites.

Data: procedural sprites (``--size`` px, ``--frames`` frames) of the first ``--characters``
training characters. The zero-shot split leaves out a third of the motion x top-colour pairs:
pair ``(motion m, top t)`` is unseen when ``(m + t) % 3 == 0`` (18 of 54 pairs; every motion
keeps 4 of its 6 tops and every top 6 of its 9 motions). The generators train on the clips of
the seen pairs only.

The judge (:mod:`pyro_videossm.evaluation.judge`, heads ``motion`` and ``top``) trains on the
real clips of every pair (it is the measuring instrument, not a generator) and is checked on
the clips of ``--test-characters`` test characters.

``--variant disentangled``: ``videossm train cmocogan`` (separate routing, auxiliary
classifiers, generated conditions over all pairs); ``--variant baseline``: the same with
``--no-disentangling`` (joint conditions on both paths, projection critics only, seen pairs
only). Both get the same epochs, widths and learning rate. Each model generates
``--per-pair`` clips of each of the 54 pairs; the judge's accuracy on the conditions is
reported separately for seen and unseen pairs.

    nice -n 10 OMP_NUM_THREADS=1 python benchmarks/video_generation.py --variant disentangled
    nice -n 10 OMP_NUM_THREADS=1 python benchmarks/video_generation.py --variant baseline
    python benchmarks/video_generation.py --quick --no-write     # end-to-end check (seconds)

Writes ``benchmarks/results/video_generation/zero_shot_<variant>_seed<S>.json`` and, for the
disentangled variant, the grids ``docs/video_generation_seen.png`` and
``docs/video_generation_unseen.png`` (unless ``--no-write``). The data and the judge are cached
in ``--work`` (default ``/tmp/video_generation``) and shared by the runs.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pyro_videossm.data.conventions import open_dataset, write_netcdf  # noqa: E402
from pyro_videossm.data.sprites import MOTIONS, STATIC_FACTORS, make_sprites  # noqa: E402
from pyro_videossm.experiments.recipe import TrainingRun  # noqa: E402
from pyro_videossm.experiments.records import make_record, write_record  # noqa: E402
from pyro_videossm.experiments.video_gan_recipes import (  # noqa: E402
    CMOCOGAN,
    colour_depth_clips,
    generate_clips,
)

RESULTS = ROOT / "benchmarks/results/video_generation"
DOCS = ROOT / "docs"
TOPS = STATIC_FACTORS["top"]


def unseen_pair(motion: int, top: int) -> bool:
    """The zero-shot split (module doc)."""
    return (motion + top) % 3 == 0


def prepare(work: Path, args) -> dict:
    """Training file (seen pairs), judge file; cached in ``work``."""
    from pyro_videossm.evaluation.judge import judge_accuracy, save_judge, train_judge

    work.mkdir(parents=True, exist_ok=True)
    tag = f"s{args.size}_f{args.frames}_c{args.characters}"
    all_path, seen_path = work / f"sprites_{tag}.nc", work / f"sprites_{tag}_seen.nc"
    judge_path, test_path = work / f"judge_{tag}.pt", work / f"sprites_{tag}_test.nc"
    timings = {}
    if not all_path.exists():
        t0 = time.perf_counter()
        ds = make_sprites("train", size=args.size, frames=args.frames,
                          characters=args.characters)
        write_netcdf(ds, all_path)
        keep = ~np.array([unseen_pair(int(m), int(t)) for m, t in
                          zip(ds["motion"].values, ds["top"].values)])
        write_netcdf(ds.isel(clip=np.flatnonzero(keep)), seen_path)
        write_netcdf(make_sprites("test", size=args.size, frames=args.frames,
                                  characters=args.test_characters), test_path)
        timings["data_seconds"] = time.perf_counter() - t0
    judge_info = {}
    if not judge_path.exists():
        t0 = time.perf_counter()
        judge, _ = train_judge(open_dataset(all_path).load(), ["motion", "top"],
                               epochs=args.judge_epochs, conv_channels=16, hidden_dim=64)
        acc = judge_accuracy(judge, open_dataset(test_path).load())
        save_judge(judge, judge_path, extra={"test_accuracy": acc})
        timings["judge_seconds"] = time.perf_counter() - t0
    from pyro_videossm.evaluation.judge import load_judge

    judge, extra = load_judge(judge_path)
    judge_info = {"real_test_accuracy": extra["test_accuracy"]}
    n_seen = open_dataset(seen_path).sizes["clip"]
    return {"all": all_path, "seen": seen_path, "n_seen": n_seen, "judge": judge,
            "judge_path": judge_path, "judge_info": judge_info, "timings": timings}


def score(model: Path, judge, per_pair: int, seed: int) -> tuple[dict, dict]:
    """Judge accuracy on the conditions, seen and unseen pairs; and sample clips per pair."""
    from pyro_videossm.data.sprites import frames_tensor

    correct = {"seen": {"motion": [], "top": []}, "unseen": {"motion": [], "top": []}}
    samples = {}
    for m in range(len(MOTIONS)):
        for t in range(len(TOPS)):
            ds = generate_clips(model, per_pair, action=m, content=t, seed=seed + 100 * m + t)
            probs = judge.predict_proba(frames_tensor(ds))
            part = "unseen" if unseen_pair(m, t) else "seen"
            correct[part]["motion"] += (probs["motion"].argmax(-1) == m).tolist()
            correct[part]["top"] += (probs["top"].argmax(-1) == t).tolist()
            samples[(m, t)] = colour_depth_clips(ds)
    metrics = {}
    for part, c in correct.items():
        for label, v in c.items():
            metrics[f"{part}_{label}_accuracy"] = float(np.mean(v))
            metrics[f"{part}_{label}_se"] = float(np.std(v) / np.sqrt(len(v)))
        metrics[f"{part}_clips"] = len(c["motion"])
    return metrics, samples


def grids(samples: dict, frames_stride: int = 1) -> None:
    from pyro_videossm.plots.video_samples import plot_condition_grid

    for part, want in (("seen", False), ("unseen", True)):
        rows = []
        for m in range(len(MOTIONS)):
            t = next(t for t in range(len(TOPS)) if unseen_pair(m, t) == want)
            rows.append((f"{MOTIONS[m]}\n{TOPS[t]} top", samples[(m, t)][:2]))
        plot_condition_grid(rows, DOCS / f"video_generation_{part}.png", stride=frames_stride,
                            title=f"conditional MoCoGAN, {part} (motion, top) pairs")


def zero_shot_table() -> str:
    """The markdown table of the stored zero-shot records (mean +- s.e. over seeds; one seed:
    the binomial s.e. over the generated clips)."""
    from pyro_videossm.experiments.records import read_records

    runs: dict[str, list[dict]] = {}
    for rec in read_records(RESULTS):
        if rec.get("name", "").startswith("zero_shot_") and "seen_motion_accuracy" in rec.get(
                "metrics", {}):
            runs.setdefault(rec["name"].removeprefix("zero_shot_"), []).append(rec)
    lines = ["| model | seeds | epochs | train min | seen motion | seen top | "
             "unseen motion | unseen top |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    names = {"disentangled": "cmocogan (disentangled)",
             "baseline": "cmocogan --no-disentangling (baseline)"}
    for variant in ("disentangled", "baseline"):
        recs = runs.get(variant, [])
        if not recs:
            continue
        cells = []
        for key in ("seen_motion", "seen_top", "unseen_motion", "unseen_top"):
            v = np.array([r["metrics"][f"{key}_accuracy"] for r in recs])
            se = (v.std(ddof=1) / np.sqrt(len(v)) if len(v) > 1
                  else recs[0]["metrics"][f"{key}_se"])
            cells.append(f"{100 * v.mean():.1f} ± {100 * se:.1f} %")
        minutes = np.mean([r["timings"]["train_seconds"] for r in recs]) / 60
        lines.append(f"| {names[variant]} | {len(recs)} | {recs[0]['epochs']} | "
                     f"{minutes:.1f} | " + " | ".join(cells) + " |")
    judge = next(iter(runs.values()))[0]["metrics"]["judge_real_test_accuracy"]
    lines += ["", f"Judge on real test clips: motion {100 * judge['motion']:.1f} %, top "
                  f"{100 * judge['top']:.1f} %. Machine: shared, loaded (2 cores, about 8 jobs);"
                  " minutes are wall clock."]
    return "\n".join(lines)


def write_table() -> None:
    from pyro_videossm.experiments.results import write_section

    body = zero_shot_table()
    write_section(DOCS / "video_generation.md", "video_generation:zero_shot", body,
                  record=make_record("zero_shot_table", command="python benchmarks/"
                                     "video_generation.py --table"),
                  record_path=RESULTS / "zero_shot_table.json")
    print(body)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--variant", choices=("disentangled", "baseline"), default="disentangled")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--characters", type=int, default=200)
    p.add_argument("--test-characters", type=int, default=30)
    p.add_argument("--judge-epochs", type=int, default=3)
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--channels", type=int, default=8, help="generator and critic widths")
    p.add_argument("--per-pair", type=int, default=10)
    p.add_argument("--work", type=Path, default=Path("/tmp/video_generation"))
    p.add_argument("--quick", action="store_true", help="tiny sizes: an end-to-end check")
    p.add_argument("--no-write", action="store_true")
    p.add_argument("--table", action="store_true", help="only rewrite the docs table from the "
                                                         "stored records")
    args = p.parse_args(argv)
    if args.table:
        write_table()
        return 0
    if args.quick:
        args.size, args.frames, args.characters, args.test_characters = 8, 3, 6, 2
        args.judge_epochs, args.epochs, args.per_pair, args.channels = 1, 1, 2, 4
    torch.set_num_threads(1)
    prep = prepare(args.work, args)
    model = args.work / f"cmocogan_{args.variant}_seed{args.seed}_{args.size}.pt"
    options = CMOCOGAN.make_options(gen_channels=args.channels, disc_channels=args.channels,
                                    no_disentangling=args.variant == "baseline")
    t0 = time.perf_counter()
    history = CMOCOGAN.fit(TrainingRun(prep["seen"], model, epochs=args.epochs, lr=args.lr,
                                       seed=args.seed, progress=False), options)
    train_seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    metrics, samples = score(model, prep["judge"], args.per_pair, args.seed)
    score_seconds = time.perf_counter() - t0
    metrics.update({"judge_" + k: v for k, v in prep["judge_info"].items()},
                   final_g_loss=history[-1]["g_loss"], final_d_loss=history[-1]["d_loss"],
                   training_clips=prep["n_seen"],
                   steps=len(history) * -(-prep["n_seen"] // 32))
    for part in ("seen", "unseen"):
        print(f"{args.variant} {part}: motion {metrics[f'{part}_motion_accuracy']:.1%}, "
              f"top {metrics[f'{part}_top_accuracy']:.1%}")
    print("judge on real test clips:", prep["judge_info"])
    if args.no_write:
        return 0
    command = ("nice -n 10 OMP_NUM_THREADS=1 python benchmarks/video_generation.py --variant "
               f"{args.variant} --seed {args.seed}")
    record = make_record(
        f"zero_shot_{args.variant}", command=command, options=vars(args) | {
            "work": str(args.work), "unseen_rule": "(motion + top) % 3 == 0"},
        data={"sprites": {"split": "train", "characters": args.characters, "size": args.size,
                          "frames": args.frames}},
        metrics=metrics, timings={"train_seconds": train_seconds,
                                  "score_seconds": score_seconds, **prep["timings"]},
        epochs=len(history), machine_note="shared, loaded")
    write_record(RESULTS / f"zero_shot_{args.variant}_seed{args.seed}.json", record)
    if args.variant == "disentangled" and args.seed == 0:
        grids(samples)
    return 0


if __name__ == "__main__":
    sys.exit(main())
