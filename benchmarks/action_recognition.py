"""Few-label action recognition: a GRU on the DSVAE's dynamic latents against a CNN+GRU trained
from scratch, with 1 %, 10 % and 100 % of the training labels.

Data: procedural sprites (:func:`pyro_videossm.data.sprites.make_sprites`, ``--size`` 32, 8
frames, the literature split: 9000 training clips of 1000 characters, 2664 test clips of 296
characters never seen in training), or every clip of each split (``split`` 0/1) of ``--data``
(``videossm simulate sprites --split all``, ``videossm simulate shapes-rgbd``). The label is
``--label`` (default ``motion``, 9 classes; ``action`` for shapes-rgbd, with ``--name``).

1. **DSVAE pretraining, without labels** (shared by every seed and fraction): ``--dsvae`` reads
   a model file of ``videossm train dsvae``; without it one is trained here on all training
   clips (``--dsvae-epochs``) and saved to ``--out``.
2. For each ``--seeds`` and ``--fractions``: the labelled subset
   (:func:`~pyro_videossm.data.label_subsets.stratified_subset`, the same clips for both
   models) and

   * ``latent``: the DSVAE's frame and dynamic encoders, frozen, give the posterior means of
     ``z_{1:T}`` (standardised with statistics of all training clips, no labels); a GRU head
     (``--head-hidden``) learns the label;
   * ``supervised``: the DSVAE's frame-encoder architecture (same widths), randomly
     initialised, and the same GRU head, trained end to end on the labelled clips.

   Budget rule: both train for ``--steps`` optimiser steps of ``--batch-size`` labelled clips
   (Adam, ``--lr``), whatever the fraction. Accuracy on all test clips.

Each (model, seed) writes a run record ``<name>_<model>_seed<s>.json`` under ``--records``
as soon as it is done (``..._f<fractions>.json`` for other ``--fractions``); ``--table`` (no
training) averages every record of the folder (mean ± standard error over seeds) into the
``action_recognition_<name>`` section of ``--results`` (default docs/action_recognition.md)
with its own record, so the table regenerates with
``python benchmarks/results_tables.py``.

    nice -n 10 python benchmarks/action_recognition.py --dsvae dsvae.pt --seeds 0 1 2
    python benchmarks/action_recognition.py --table
    python benchmarks/action_recognition.py --quick --no-write       # end-to-end check
"""

from __future__ import annotations

import argparse
import math
import os
import shlex
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from pyro_videossm.experiments.records import (  # noqa: E402
    data_fingerprint,
    make_record,
    read_records,
    write_record,
)

MODELS = {"latent": "DSVAE latents + GRU (frozen encoder)",
          "supervised": "CNN+GRU from scratch"}


def command_line(argv: list[str] | None) -> str:
    args = argv if argv is not None else sys.argv[1:]
    return "python benchmarks/action_recognition.py " + " ".join(shlex.quote(a) for a in args)


def get_clips(args, log):
    """Training and test clips: every clip of each split of ``--data``, else simulated
    sprites."""
    from pyro_videossm.data.conventions import open_dataset
    from pyro_videossm.data.sprites import select_split
    from pyro_videossm.experiments.video_benchmark import sprite_clips

    if args.data is not None:
        ds = open_dataset(args.data)
        train, test = select_split(ds, "train").load(), select_split(ds, "test").load()
    else:
        train, test = sprite_clips(args.size, args.train_characters, args.test_characters,
                                   args.seed_data)
    log(f"data: {train.sizes['clip']} training, {test.sizes['clip']} test clips "
        f"{train.sizes['x']}x{train.sizes['x']}")
    return train, test


def get_dsvae(args, x_train, log):
    """The DSVAE (read, or trained here without labels) and a description for the records."""
    from pyro_videossm.experiments.video_recipes import DSVAEOptions, build_dsvae
    from pyro_videossm.infer import TrainConfig
    from pyro_videossm.models.video.dsvae import load_dsvae, save_dsvae, train_dsvae

    if args.dsvae is not None:
        model, extra = load_dsvae(args.dsvae)
        return model, {"file": str(args.dsvae), "architecture": model.architecture(),
                       "train_config": extra.get("train_config"),
                       "final_loss_per_frame": (extra.get("history") or [{}])[-1]
                       .get("train_loss")}
    options = DSVAEOptions(conv_channels=args.conv_channels, feature_dim=args.feature_dim,
                           hidden_dim=args.hidden_dim)
    torch.manual_seed(args.seed_data)
    model = build_dsvae(options, x_train.shape[2:4])
    config = TrainConfig(epochs=args.dsvae_epochs, batch_size=args.batch_size, lr=args.lr,
                         seed=args.seed_data, progress=args.progress)
    t0 = time.time()
    history = train_dsvae(model, x_train, None, config)
    seconds = time.time() - t0
    args.out.mkdir(parents=True, exist_ok=True)
    save_dsvae(model, args.out / "dsvae.pt", extra={"train_config": config.to_dict()})
    log(f"DSVAE trained without labels in {seconds / 60:.1f} min")
    return model.eval(), {"file": str(args.out / "dsvae.pt"),
                          "architecture": model.architecture(),
                          "train_config": config.to_dict(), "train_seconds": seconds,
                          "final_loss_per_frame": history[-1]["train_loss"]}


def fraction_tag(args) -> str:
    """``""`` for the default fractions, else ``_f0.001-0.5``: records of other fractions
    sit beside the default ones."""
    default = [0.01, 0.1, 1.0]
    return "" if args.fractions == default else "_f" + "-".join(f"{f:g}" for f in args.fractions)


def run_one(kind, dsvae, x_train, y_train, x_test, y_test, fraction, seed, args, names,
            latents=None):
    """Train one recognizer on the stratified ``fraction`` of the labels; its scores.
    ``latents``: the frozen encoder's ``z_loc`` of the training and test clips, computed once
    (the latent recognizer's standardisation and test predictions read them)."""
    from pyro_videossm.data.label_subsets import stratified_subset
    from pyro_videossm.infer import TrainConfig
    from pyro_videossm.models.video.recognizer import (
        Recognizer,
        accuracy,
        set_standardisation,
        standardise_latents,
        train_recognizer,
    )

    idx = torch.as_tensor(stratified_subset(y_train.numpy(), fraction, seed))
    torch.manual_seed(seed)
    n_classes = int(y_train.max()) + 1
    t0 = time.time()
    if kind == "latent":
        rec = Recognizer.from_dsvae(dsvae, n_classes, head_hidden=args.head_hidden,
                                    label=args.label, class_names=names)
        if latents is None:
            standardise_latents(rec, x_train)
        else:
            set_standardisation(rec, latents[0])
    else:  # the DSVAE's frame-encoder widths (the options' when no DSVAE is needed)
        a = (dsvae.architecture() if dsvae is not None else
             {"channels": x_train.shape[2], "size": x_train.shape[3],
              "feature_dim": args.feature_dim, "conv_channels": args.conv_channels})
        rec = Recognizer(n_classes, a["channels"], a["size"], kind="supervised",
                         label=args.label, class_names=names, feature_dim=a["feature_dim"],
                         conv_channels=a["conv_channels"], head_hidden=args.head_hidden)
    config = TrainConfig(batch_size=args.batch_size, lr=args.lr, seed=seed,
                         progress=args.progress)
    history = train_recognizer(rec, x_train[idx], y_train[idx], config, steps=args.steps)
    seconds = time.time() - t0
    if kind == "latent" and latents is not None:
        with torch.no_grad():  # = accuracy(rec, x_test, y_test), from the cached latents
            logits = rec.head((latents[1] - rec.z_mean) / rec.z_std)
        acc = float((logits.argmax(-1) == y_test).float().mean())
    else:
        acc = accuracy(rec, x_test, y_test)
    return {"fraction": fraction, "labelled_clips": int(len(idx)), "accuracy": acc,
            "epochs": len(history), "final_train_loss": history[-1]["train_loss"],
            "train_seconds": seconds,
            "trained_parameters": sum(p.numel() for p in rec.parameters() if p.requires_grad)}


# -- the table ---------------------------------------------------------------------------------
def mean_se(values: list[float]) -> tuple[float, float]:
    v = np.asarray(values, float)
    se = float(v.std(ddof=1) / math.sqrt(len(v))) if len(v) > 1 else math.nan
    return float(v.mean()), se


def table_body(records: list[dict], name: str, fractions: list[float]) -> tuple[str, dict]:
    """The markdown section (text + table) and the aggregated metrics."""
    rows, summary = [], {}
    first = records[0]
    n_train = first["metrics"]["training_clips"]
    header = ["model"] + [f"{f * 100:g} % labels ({_n_labelled(records, f)} clips)"
                          for f in fractions] + ["seeds", "train min per run (mean)"]
    for kind, title in MODELS.items():
        mine = [r for r in records if r["metrics"]["model"] == kind]
        if not mine:
            continue
        cells, minutes = [title], []
        for f in fractions:
            accs = [s["accuracy"] for r in mine for s in r["metrics"]["runs"]
                    if math.isclose(s["fraction"], f)]
            minutes += [s["train_seconds"] / 60 for r in mine for s in r["metrics"]["runs"]
                        if math.isclose(s["fraction"], f)]
            if not accs:
                cells.append("")
                continue
            m, se = mean_se(accs)
            summary.setdefault(kind, {})[f"{f:g}"] = {"mean": m, "se": se, "n": len(accs),
                                                      "values": accs}
            cell = f"{m:.1%} ± {se:.1%}" if len(accs) > 1 else f"{m:.1%}"
            n_seeds = len({r["metrics"]["seed"] for r in mine})
            plural = "s" if len(accs) > 1 else ""
            cells.append(cell if len(accs) == n_seeds else f"{cell} ({len(accs)} seed{plural})")
        seeds = sorted({r["metrics"]["seed"] for r in mine})
        cells += [" ".join(map(str, seeds)), f"{np.mean(minutes):.1f}" if minutes else ""]
        rows.append(cells)
    ds = next((r["metrics"]["dsvae"] for r in records if r["metrics"]["model"] == "latent"),
              first["metrics"]["dsvae"])
    arch = ds.get("architecture", {})
    tc = ds.get("train_config") or {}
    opts = first["options"]
    lines = [
        f"### Few-label action recognition on {name}",
        "",
        f"Commands: `{_dsvae_command(records)}` (DSVAE pretraining, no labels), then "
        + ", ".join(f"`{c}`" for c in dict.fromkeys(r["command"] for r in records))
        + ", then `python benchmarks/action_recognition.py --table"
        + (f" --name {name}`" if name != "sprites" else "`") + ". Machine: shared, loaded "
        f"({first['machine'].get('cpus')} cores shared by several jobs, torch threads "
        f"{first.get('threads')}); times are not quiet-machine times.",
        "",
        f"{n_train} training clips (the DSVAE saw all of them, without labels), "
        f"{first['metrics']['test_clips']} test clips "
        + ("of characters never seen in training; " if name == "sprites" else
           "(`split == 1`, scenes drawn independently of the training ones); ")
        + f"label `{opts.get('label')}`. DSVAE: one pretraining shared by every seed and "
        f"fraction ({tc.get('epochs')} epochs of {tc.get('batch_size')} clips, f "
        f"{arch.get('static_dim')}, z_t {arch.get('dynamic_dim')}, conv width "
        f"{arch.get('conv_channels')}, features {arch.get('feature_dim')}, dynamic encoder "
        f"`{arch.get('dynamic_encoder')}`). Latent classifier: the DSVAE's encoder frozen, "
        f"posterior means of z_{{1:T}} standardised, GRU head of width "
        f"{opts.get('head_hidden')}. CNN+GRU: the same frame-encoder architecture and head, "
        "from scratch. Same labelled clips (stratified by class, drawn by the seed) and the "
        f"same budget for both: {opts.get('steps')} Adam steps of {opts.get('batch_size')} "
        f"labelled clips (lr {opts.get('lr')}). Accuracy on the test clips, mean ± standard "
        "error over the seeds.",
        "",
        render_markdown(header, rows),
    ]
    paired = paired_rows(records, fractions)
    if paired:
        test = first["metrics"]["test_clips"]
        lines += ["", "Paired by seed (the same labelled clips for both models): latent "
                  "classifier minus CNN+GRU, in points of test accuracy (mean ± s.e. over the "
                  f"seeds), the seeds on which it is higher, equal or lower, and the wrong "
                  f"test clips of each model summed over the seeds ({test} test clips per "
                  "seed):", "",
                  render_markdown(["labels", "seeds", "difference (points)",
                                   "higher / equal / lower", "wrong clips: latent",
                                   "wrong clips: CNN+GRU"], paired)]
        summary["paired"] = {row[0]: row[1:] for row in paired}
    return "\n".join(lines), summary


def paired_rows(records: list[dict], fractions: list[float]) -> list[list[str]]:
    """Per fraction: the seeds both models ran, the paired accuracy difference (latent minus
    supervised), the sign counts and the summed wrong test clips (fractions with at least two
    common seeds)."""
    def by_seed(kind: str, f: float) -> dict[int, float]:
        return {r["metrics"]["seed"]: s["accuracy"] for r in records
                if r["metrics"]["model"] == kind for s in r["metrics"]["runs"]
                if math.isclose(s["fraction"], f)}

    test = records[0]["metrics"]["test_clips"]
    rows = []
    for f in fractions:
        lat, sup = by_seed("latent", f), by_seed("supervised", f)
        seeds = sorted(set(lat) & set(sup))
        if len(seeds) < 2:
            continue
        d = [100 * (lat[k] - sup[k]) for k in seeds]
        m, se = mean_se(d)
        wrong = [sum(round((1 - acc[k]) * test) for k in seeds) for acc in (lat, sup)]
        rows.append([f"{f * 100:g} %", f"{len(seeds)} ({seeds[0]}–{seeds[-1]})",
                     f"{m:+.2f} ± {se:.2f}",
                     f"{sum(x > 0 for x in d)} / {sum(x == 0 for x in d)} / "
                     f"{sum(x < 0 for x in d)}", str(wrong[0]), str(wrong[1])])
    return rows


def _dsvae_command(records: list[dict]) -> str:
    return next((r["metrics"]["dsvae_command"] for r in records
                 if r["metrics"].get("dsvae_command")), "")


def _n_labelled(records: list[dict], f: float) -> int:
    for r in records:
        for s in r["metrics"]["runs"]:
            if math.isclose(s["fraction"], f):
                return s["labelled_clips"]
    return 0


def render_markdown(header: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


def write_table(args, argv) -> int:
    from pyro_videossm.experiments.results import record_path_for, write_section

    records = [r for r in read_records(args.records)
               if r["name"].startswith(f"action_recognition_{args.name}_")
               and "section" not in r]
    if not records:
        raise SystemExit(f"no run records of {args.name} in {args.records}")
    fractions = sorted({s["fraction"] for r in records for s in r["metrics"]["runs"]})
    body, summary = table_body(records, args.name, fractions)
    print(body)
    if args.no_write:
        return 0
    section = f"action_recognition_{args.name}"
    record = make_record(section, command=command_line(argv), options=vars(args),
                         metrics={"summary": summary,
                                  "records": sorted(Path(r["_path"]).name for r in records)})
    header = ("# Action recognition from state-space latents\n\n"
              "Few-label recognition with the DSVAE's dynamic latents "
              "(`videossm train recognizer`, `videossm recognize`); see "
              "[Training](TRAINING.md) and [the DSVAE results](RESULTS.md).\n\n")
    write_section(args.results, section, body, header=header, record=record,
                  record_path=record_path_for(args.results,
                                              f"benchmarks/results/action_recognition/"
                                              f"table_{args.name}.json"))
    print(f"updated {args.results}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--name", default="sprites", help="data set name in records and docs")
    p.add_argument("--data", type=Path, help="sprites of `videossm simulate sprites --split "
                                             "all` (default: simulate)")
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--train-characters", type=int, default=1000)
    p.add_argument("--test-characters", type=int, default=296)
    p.add_argument("--seed-data", type=int, default=0,
                   help="seed of the character split and of the DSVAE trained here")
    p.add_argument("--label", default="motion")
    p.add_argument("--dsvae", type=Path, help="pretrained DSVAE (videossm train dsvae)")
    p.add_argument("--dsvae-command", default="",
                   help="the command that trained --dsvae (kept in the records)")
    p.add_argument("--dsvae-epochs", type=int, default=3)
    p.add_argument("--conv-channels", type=int, default=16)
    p.add_argument("--feature-dim", type=int, default=64)
    p.add_argument("--hidden-dim", type=int, default=64)
    p.add_argument("--fractions", type=float, nargs="+", default=[0.01, 0.1, 1.0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    p.add_argument("--steps", type=int, default=500)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--head-hidden", type=int, default=64)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, default=Path("out/action_recognition"))
    p.add_argument("--records", type=Path,
                   default=REPO / "benchmarks" / "results" / "action_recognition")
    p.add_argument("--results", type=Path, default=REPO / "docs" / "action_recognition.md")
    p.add_argument("--table", action="store_true", help="only write the table from the records")
    p.add_argument("--no-write", action="store_true", help="write no record and no docs")
    p.add_argument("--quick", action="store_true",
                   help="tiny end-to-end check: 16x16, 20+10 characters, few steps")
    p.add_argument("--progress", action="store_true")
    args = p.parse_args(argv)
    if args.table:
        return write_table(args, argv)
    if args.quick:
        args.size, args.train_characters, args.test_characters = 16, 20, 10
        args.dsvae_epochs, args.steps, args.seeds = 1, 5, args.seeds[:1]
        args.conv_channels, args.hidden_dim, args.feature_dim, args.head_hidden = 4, 8, 8, 8
    torch.set_num_threads(args.threads)
    t_start = time.time()

    def log(msg: str) -> None:
        print(f"[{time.time() - t_start:7.0f} s] {msg}", file=sys.stderr, flush=True)

    from pyro_videossm.data.sprites import frames_tensor, labels_tensor
    from pyro_videossm.evaluation.judge import label_classes
    from pyro_videossm.experiments.recognition_recipe import class_names

    train, test = get_clips(args, log)
    k = label_classes(train, [args.label])
    x_train, y_train = frames_tensor(train), labels_tensor(train, [args.label], "", k)[args.label]
    x_test, y_test = frames_tensor(test), labels_tensor(test, [args.label], "", k)[args.label]
    names = class_names(train, args.label, k[args.label])
    if args.models == ["supervised"] and args.dsvae is None:  # the baseline needs no DSVAE
        dsvae, dsvae_info = None, {"note": "no DSVAE: the CNN+GRU used --conv-channels "
                                           f"{args.conv_channels} --feature-dim "
                                           f"{args.feature_dim}"}
    else:
        dsvae, dsvae_info = get_dsvae(args, x_train, log)
    if args.dsvae is None and dsvae is not None:
        dsvae_info["command"] = command_line(argv) + " (this run)"
    data = (data_fingerprint([args.data]) if args.data is not None else
            data_fingerprint(simulate={"sprites": args.size, "seed": args.seed_data}))
    if args.dsvae is not None:
        data.update(data_fingerprint([args.dsvae]))
    latents = None
    if "latent" in args.models:
        from pyro_videossm.models.video.recognizer import Recognizer

        probe = Recognizer.from_dsvae(dsvae, int(y_train.max()) + 1)
        latents = (probe.batched(probe.latents, x_train), probe.batched(probe.latents, x_test))
        log(f"latents of {x_train.shape[0]} + {x_test.shape[0]} clips: {tuple(latents[0].shape)}")
    for kind in args.models:
        for seed in args.seeds:
            runs = []
            for fraction in args.fractions:
                runs.append(run_one(kind, dsvae, x_train, y_train, x_test, y_test, fraction,
                                    seed, args, names, latents))
                log(f"{kind} seed {seed} fraction {fraction:g}: "
                    f"{runs[-1]['labelled_clips']} labelled clips, accuracy "
                    f"{runs[-1]['accuracy']:.2%} ({runs[-1]['train_seconds'] / 60:.1f} min)")
            if args.no_write:
                continue
            name = f"action_recognition_{args.name}_{kind}_seed{seed}"
            record = make_record(
                name, command=command_line(argv), options=vars(args), data=data,
                metrics={"model": kind, "seed": seed, "runs": runs,
                         "training_clips": int(x_train.shape[0]),
                         "test_clips": int(x_test.shape[0]), "dsvae": dsvae_info,
                         "dsvae_command": args.dsvae_command or dsvae_info.get("command", "")},
                timings={"train_seconds": sum(r["train_seconds"] for r in runs)},
                load_at_end=list(os.getloadavg()))
            record["machine"] = {"note": "shared, loaded", **record["machine"]}
            path = args.records / f"{args.name}_{kind}_seed{seed}{fraction_tag(args)}.json"
            write_record(path, record)
            log(f"wrote {path}")
    log("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
