"""DSVAE versus DSVAE + adversarial motion classifier on procedural sprites, scored by a judge.

Data: :func:`pyro_videossm.data.sprites.make_sprites` at ``--size`` (default 32 × 32, 8 frames):
the literature split, ``--train-characters`` of the 1000 training characters (default all:
9000 clips) and ``--test-characters`` of the 296 test characters (default all: 2664 clips).

1. **Judge** (:mod:`pyro_videossm.evaluation.judge`): trained on the training clips for
   ``--judge-epochs``; it must reach 99 % motion accuracy on the real test clips, or the run
   stops (``--quick`` runs go on and mark it untrusted).
2. **DSVAE** and **DSVAE + adversarial** (:mod:`pyro_videossm.models.video.dsvae`), the same
   architecture, data, seed and budget (``--epochs`` epochs of ``--batch-size`` clips with
   the shared Trainer), the second with the motion classifier on ``f`` trained against the
   encoder (``--adversary-mode``).
3. **Protocol** (:mod:`pyro_videossm.evaluation.disentanglement`): with the dynamics of test
   clips kept and ``f`` drawn from the prior, the judge's motion accuracy, IS, H(y|x), H(y);
   with ``f`` kept and the dynamics drawn from the prior, its accuracy on each static factor;
   ``--repeats`` prior draws on a motion-balanced subset of ``--per-class`` test clips per
   motion.

Writes the table (both models + the judge on real clips) and the command into
``--results`` (default docs/RESULTS.md) between ``<!-- BEGIN dsvae -->`` and
``<!-- END dsvae -->`` (appended if absent; nothing else changes), swap grids as
``docs/dsvae_swap.png`` (adversarial model) and ``docs/dsvae_swap_plain.png``, and the models,
the judge and all scores (JSON) into ``--out``.

    nice -n 10 python benchmarks/dsvae_sprites.py                 # the full run
    python benchmarks/dsvae_sprites.py --quick --no-write         # end-to-end check (minutes)
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from pathlib import Path

import torch

from pyro_videossm.experiments.benchmark_sections import dsvae_section
from pyro_videossm.experiments.video_benchmark import (
    prepare_judge,
    protocol_table,
    sprite_clips,
    swap_grids,
    train_and_evaluate,
    training_tensors,
)
from pyro_videossm.experiments.video_recipes import DSVAEOptions
from pyro_videossm.infer import TrainConfig

BEGIN, END = "<!-- BEGIN dsvae -->", "<!-- END dsvae -->"


def write_section(path: Path, body: str, record: dict | None = None) -> None:
    """Replace the dsvae section of ``path`` (append it if absent) with the shared writer;
    with ``record`` also store the run record the section regenerates from."""
    from pyro_videossm.experiments.results import record_path_for
    from pyro_videossm.experiments.results import write_section as write

    write(path, "dsvae", body, record=record,
          record_path=record_path_for(path, "benchmarks/results/dsvae/dsvae_sprites.json"))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--train-characters", type=int, default=1000)
    p.add_argument("--test-characters", type=int, default=296)
    p.add_argument("--epochs", type=int, default=20, help="DSVAE epochs (both models)")
    p.add_argument("--judge-epochs", type=int, default=4)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--static-dim", type=int, default=32)
    p.add_argument("--dynamic-dim", type=int, default=8)
    p.add_argument("--hidden-dim", type=int, default=128)
    p.add_argument("--feature-dim", type=int, default=128)
    p.add_argument("--conv-channels", type=int, default=32)
    p.add_argument("--dynamic-encoder", choices=["frame", "rnn"], default="frame")
    p.add_argument("--likelihood", choices=["bernoulli", "normal"], default="bernoulli")
    p.add_argument("--adversary-weight", type=float, default=30.0)
    p.add_argument("--dynamic-kl-weight", type=float, default=1.0)
    p.add_argument("--adversary-mode", choices=["minmax", "grl"], default="minmax")
    p.add_argument("--anneal-epochs", type=int, default=0)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--per-class", type=int, default=100,
                   help="test clips per motion class in the protocol (default 100)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu")
    p.add_argument("--models", nargs="+", default=["plain", "adversarial"],
                   choices=["plain", "adversarial"])
    p.add_argument("--judge", type=Path, help="reuse a judge file instead of training one")
    p.add_argument("--data", type=Path,
                   help="reuse sprites written by `videossm simulate sprites --split all` "
                        "(must have been made with the same --size and seed)")
    p.add_argument("--out", type=Path, default=Path("out/dsvae_sprites"))
    p.add_argument("--results", type=Path, default=Path("docs/RESULTS.md"))
    p.add_argument("--docs", type=Path, default=Path("docs"), help="where the PNGs go")
    p.add_argument("--no-write", action="store_true", help="do not touch docs/")
    p.add_argument("--quick", action="store_true",
                   help="tiny end-to-end check: 16x16, 30+20 characters, 1 epoch each")
    p.add_argument("--progress", action="store_true")
    args = p.parse_args(argv)
    if args.quick:
        args.size, args.train_characters, args.test_characters = 16, 30, 20
        args.epochs, args.judge_epochs, args.repeats, args.per_class = 1, 1, 2, 10
        args.conv_channels, args.hidden_dim, args.feature_dim = 8, 32, 32
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    t_start = time.time()
    load0 = os.getloadavg()[0]

    def log(msg: str) -> None:
        print(f"[{time.time() - t_start:7.0f} s] {msg}", file=sys.stderr, flush=True)

    train, test = sprite_clips(args.size, args.train_characters, args.test_characters,
                               args.seed, args.data)
    log(f"data: {train.sizes['clip']} training, {test.sizes['clip']} test clips "
        f"{args.size}x{args.size}")

    # 1. the judge
    judge, judge_acc, trusted = prepare_judge(
        train, test, path=args.judge, out=args.out, epochs=args.judge_epochs,
        batch_size=args.batch_size, lr=args.lr, conv_channels=args.conv_channels,
        device=args.device, seed=args.seed, progress=args.progress, log=log)
    log("judge on real test clips: " + ", ".join(f"{k} {v:.2%}" for k, v in judge_acc.items()))
    if not trusted and not args.quick:
        from pyro_videossm.evaluation import MIN_MOTION_ACCURACY

        raise SystemExit(f"the judge reaches only {judge_acc['motion']:.2%} motion accuracy on "
                         f"real test clips (< {MIN_MOTION_ACCURACY:.0%}); raise --judge-epochs")

    # 2. the two models, same budget
    x, motion = training_tensors(train)
    del train
    rows, results, models = [], {}, {}
    for name in args.models:
        options = DSVAEOptions(
            adversarial=name == "adversarial", static_dim=args.static_dim,
            dynamic_dim=args.dynamic_dim, hidden_dim=args.hidden_dim,
            feature_dim=args.feature_dim, conv_channels=args.conv_channels,
            likelihood=args.likelihood, dynamic_encoder=args.dynamic_encoder,
            adversary_weight=args.adversary_weight, adversary_mode=args.adversary_mode,
            dynamic_kl_weight=args.dynamic_kl_weight)
        config = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                             anneal_epochs=args.anneal_epochs, device=args.device,
                             seed=args.seed, progress=args.progress)
        row, results[name], models[name] = train_and_evaluate(
            name, x, motion, test, judge, options, config, repeats=args.repeats,
            per_class=args.per_class, trusted=trusted, seed=args.seed, out=args.out, log=log)
        rows.append(row)
        log(json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()}))

    text = protocol_table(rows, judge_acc, trusted)
    print(text)
    (args.out / "scores.json").write_text(json.dumps(
        {"args": {k: str(v) for k, v in vars(args).items()}, "judge": judge_acc,
         "results": results}, indent=1))

    # 3. swap grids: 4 test characters x 6 motions
    folder = args.docs if not args.no_write else args.out
    swap_grids(models, test, args.seed, {
        name: folder / ("dsvae_swap.png" if name == "adversarial" else "dsvae_swap_plain.png")
        for name in models}, log=log)
    n_train, n_test_clips = x.shape[0], test.sizes["clip"]

    if not args.no_write:
        cmd = "python benchmarks/dsvae_sprites.py " + " ".join(
            shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
        n_test = int(results[next(iter(results))]["scores"]["clips"]) if results else 0
        body = dsvae_section(args, table=text, n_train=n_train, n_test_clips=n_test_clips,
                             n_protocol=n_test, command=cmd.strip(),
                             loads=(load0, os.getloadavg()[0]))
        from pyro_videossm.experiments.records import make_record

        write_section(args.results, body, record=make_record(
            "dsvae_sprites", command=cmd.strip(), options=vars(args),
            metrics={"judge": judge_acc, "rows": rows, "results": results},
            timings={"train_minutes": {k: v["minutes"] for k, v in results.items()}}))
        log(f"updated {args.results}")
    log("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
