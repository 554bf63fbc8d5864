"""Moving digits benchmark: every frame forecaster trained with the same budget, scored on the
fixed held-out test set.

The protocol is :mod:`pyro_videossm.experiments.clip_benchmark`: ``--train-clips`` clips
from ``moving_digits(split="train")`` (the last ``--valid-fraction`` of them validate) and the
fixed test set ``moving_digits(--test-clips, split="test")`` with digits never seen in
training; 10 context frames, 10 leads, frames in [0, 1]. Models (``--models``):
``persistence``, ``spatrans``, ``spatrans-q`` (quantiles 0.1/0.5/0.9), ``transformer``,
``lstm``, ``seq2seq``, ``seq2seq-attn``, ``convlstm``, each trained with the shared Trainer
(Adam, ``--lr``, ``--batch-size``) once per seed in ``--seeds`` for the same budget:
``--minutes`` of training (stopped at the first optimiser step after the deadline;
``--epochs`` caps it), or with ``--minutes 0`` exactly ``--epochs`` epochs. Scores of the final
parameters: MSE and MAE per pixel (MSE per frame = per pixel × 4096), SSIM of the point
forecast (the median for quantile models), pinball loss, coverage (ICP) and mean width (MIL)
of the 10–90 % interval; mean ± standard error over seeds.

    nice -n 10 python benchmarks/moving_digits.py                         # 15 min per model
    python benchmarks/moving_digits.py --quick --no-write                 # end-to-end check
    python benchmarks/moving_digits.py --models spatrans convlstm --seeds 0 --minutes 0 \
        --epochs 5                                                        # 5 epochs each

With ``--results FILE`` (default docs/RESULTS.md) the table replaces the section between
``<!-- BEGIN spatrans -->`` and ``<!-- END spatrans -->`` (appended if absent); nothing else in
the file changes. The section records the command, the machine and its load average: timings
taken while other work loads the machine are marked as such.

Every finished (model, seed) run is also written as one JSON file to ``--runs DIR`` (default
``benchmarks/results/moving_digits``), named by model, seed and a fingerprint of the settings
that change its result (data, budget, architecture, optimiser, threads). A run whose file
exists is not trained again, so an interrupted benchmark resumes where it stopped, and the
models can be split over processes that share the directory (one torch thread each on a
2-core machine) — the table is built from every stored run with the current settings:

    python benchmarks/moving_digits.py --threads 1 --models spatrans spatrans-q transformer lstm &
    python benchmarks/moving_digits.py --threads 1 --models convlstm seq2seq seq2seq-attn &
    wait; python benchmarks/moving_digits.py --threads 1 --table-only   # writes the section

The defaults are the standard 64 × 64 recipe (the GPU configuration). The CPU configuration
(``--canvas 32 --digit-size 14 --digits-per-clip 1 --speed 1.8``: one MNIST digit shrunk to
14 × 14 on a 32 × 32 canvas, the same relative speed) is meant to train the models to
early-stopping convergence (``--patience``: stop after that many epochs without a lower
validation loss, score the best parameters) within the per-model cap (``--epochs``;
``--minutes 0``: no clock); it writes its own section (``--section spatrans-cpu``) and
learning curves (``--curves PNG``, not with ``--no-write``: validation loss per epoch, every
model and seed). The published command, with the models' sizes for 32 × 32, and which models
did converge: docs/spatrans.md ("The CPU configuration")::

    nice -n 10 python benchmarks/moving_digits.py --canvas 32 --digit-size 14 \
        --digits-per-clip 1 --speed 1.8 --train-clips 600 --test-clips 200 --patience 3 \
        --epochs 25 --minutes 0 --lr 0.002 --threads 1 --set spatrans.patch=8 ... \
        --runs benchmarks/results/moving_digits_cpu --section spatrans-cpu \
        --curves docs/moving_digits_cpu_curves.png
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import torch

from pyro_videossm.data.moving_digits import DEFAULT_MNIST
from pyro_videossm.errors import InputError
from pyro_videossm.experiments.benchmark_sections import moving_digits_section
from pyro_videossm.experiments.clip_benchmark import MODELS as ALL_MODELS
from pyro_videossm.experiments.clip_benchmark import (
    RECIPE_DEFAULTS,
    architectures,
    clip_score_table,
    clip_windows,
    recipe,
    run_settings,
    test_clips,
    training_clips,
)
from pyro_videossm.experiments.clip_benchmark import run_clip_model as run_one
from pyro_videossm.experiments.run_cache import RunCache

BEGIN, END = "<!-- BEGIN spatrans -->", "<!-- END spatrans -->"


def write_section(path: Path, body: str, record: dict | None = None,
                  name: str = "spatrans") -> None:
    """Replace section ``name`` of ``path`` (append it if absent) with the shared writer;
    with ``record`` also store the run record the section regenerates from."""
    from pyro_videossm.experiments.results import record_path_for
    from pyro_videossm.experiments.results import write_section as write

    folder = "moving_digits_section" if name == "spatrans" else f"moving_digits_{name}_section"
    write(path, name, body, record=record, record_path=record_path_for(
        path, f"benchmarks/results/{folder}/moving_digits.json"))


def plot_curves(rows: list[dict], models: list[str], path: str) -> None:
    """Validation loss per epoch of every trained (model, seed) row, one panel per model
    (log scale; a dot marks the best epoch), written atomically to ``path`` (PNG):
    :func:`~pyro_videossm.plots.learning_curves.plot_learning_curves`."""
    from pyro_videossm.plots.learning_curves import plot_learning_curves

    plot_learning_curves(rows, models, path)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="+", default=list(ALL_MODELS), choices=ALL_MODELS)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--train-clips", type=int, default=10000)
    p.add_argument("--test-clips", type=int, default=500)
    p.add_argument("--valid-fraction", type=float, default=0.1)
    p.add_argument("--data-seed", type=int, default=0)
    p.add_argument("--epochs", type=int, default=50,
                   help="training epochs (with --minutes: the most epochs; default 50)")
    p.add_argument("--minutes", type=float, default=15.0,
                   help="training time budget per model and seed: training stops at the "
                        "first step after it (default 15); 0: exactly --epochs epochs")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--eval-batch", type=int, default=50)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    p.add_argument("--mnist", help="digit file (default: shared/data/mnist/mnist_5k.npz; with "
                   "--quick: scikit-learn's bundled digits, so the check needs no file)")
    p.add_argument("--quick", action="store_true",
                   help="tiny data, models and budget: checks the pipeline end to end")
    p.add_argument("--results", default="docs/RESULTS.md", help="markdown file to update")
    p.add_argument("--no-write", action="store_true", help="print the table only")
    p.add_argument("--progress", action="store_true", help="show training progress bars")
    p.add_argument("--runs", default="benchmarks/results/moving_digits",
                   help="directory of the per-run JSON rows (resume / merge)")
    p.add_argument("--set", nargs="+", action="extend", default=[], metavar="MODEL.KEY=VALUE",
                   help="override an architecture setting (or 'lr', or 'lr_decay': the "
                        "factor per epoch) of one model, e.g. spatrans.d_model=192 "
                        "spatrans.lr=0.002 (spatrans-q shares spatrans')")
    p.add_argument("--table-only", action="store_true",
                   help="train nothing: build the table from the stored runs")
    p.add_argument("--canvas", type=int, default=64, help="canvas side in pixels (default 64)")
    p.add_argument("--digits-per-clip", dest="n_digits", type=int, default=2,
                   help="digits per clip (default 2)")
    p.add_argument("--digit-size", type=int, default=28,
                   help="digit side in pixels: smaller than the file's shrinks the digits by "
                        "area averaging (default 28)")
    p.add_argument("--speed", type=float, default=3.6, help="pixels per frame (default 3.6)")
    p.add_argument("--patience", type=int, default=None,
                   help="early stopping: stop after this many epochs without a lower "
                        "validation loss and score the best parameters (default: off)")
    p.add_argument("--section", default="spatrans",
                   help="results section to write (default spatrans: the 64x64 recipe)")
    p.add_argument("--curves", help="PNG of the validation loss per epoch of every run")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    try:
        arch = architectures(args.quick, args.set)
    except InputError as err:
        p.error(str(err))
    if args.quick:
        args.train_clips, args.test_clips = 40, 20
        args.minutes, args.epochs = min(args.minutes, 0.2), min(args.epochs, 3)
        args.seeds = args.seeds[:1]
    load0 = os.getloadavg()
    cache = RunCache(args.runs)
    paths = {(seed, name): cache.path(f"{name}_seed{seed}", run_settings(name, arch, args))
             for seed in args.seeds for name in args.models
             if not (name == "persistence" and seed != args.seeds[0])}
    missing = [key for key, path in paths.items() if not path.exists()]
    if missing and not args.table_only:
        mnist = args.mnist or (None if args.quick else str(DEFAULT_MNIST))
        sim = {} if not any(getattr(args, k) != v for k, v in RECIPE_DEFAULTS.items()
                            if k != "patience") else recipe(
            args.canvas, args.n_digits, args.digit_size, args.speed, mnist)
        data = clip_windows(training_clips(args.train_clips, args.data_seed, mnist, **sim),
                            args.valid_fraction)
        test = test_clips(args.test_clips, mnist, **sim)
        for seed, name in missing:
            path = paths[seed, name]
            if path.exists():  # finished meanwhile by another process sharing --runs
                continue
            r = run_one(name, seed, arch, data, test, epochs=args.epochs,
                        minutes=args.minutes, batch_size=args.batch_size, lr=args.lr,
                        eval_batch=args.eval_batch, progress=args.progress,
                        device=args.device, patience=args.patience)
            r["load_average"] = os.getloadavg()[0]
            cache.save(path, r)
            print(f"seed {seed} {name}: MSE/pixel {r['mse']:.5f} SSIM {r['ssim']:.3f}"
                  + (f" ICP {r['icp']:.3f} MIL {r['mil']:.4f}" if "icp" in r else "")
                  + (f" best epoch {r['best_epoch']} of {len(r['valid_history'])}"
                     f" converged {r['converged']}" if "converged" in r else "")
                  + f" ({r['train_s']:.0f} s)", file=sys.stderr, flush=True)
    rows = [cache.load(path) for path in paths.values() if path.exists()]
    words = [w for w in (argv if argv is not None else sys.argv[1:])
             if w not in ("--table-only", "--no-write")]
    cmd = ("python benchmarks/moving_digits.py " + " ".join(words)).strip()
    if args.curves and rows and not args.no_write:
        plot_curves(rows, args.models, args.curves)
    body = moving_digits_section(
        args, arch=arch, table=clip_score_table(rows, args.models), command=cmd,
        n_valid=max(1, int(round(args.valid_fraction * args.train_clips))),
        loads=[load0[0], os.getloadavg()[0]] + [r.get("load_average", 0.0) for r in rows],
        absent=[f"{n} seed {s}" for (s, n), path in paths.items() if not path.exists()],
        defaults=p.parse_args([]), curves=args.curves, table_rows=rows)
    print(body)
    if not args.no_write:
        from pyro_videossm.experiments.records import make_record

        write_section(Path(args.results), body, record=make_record(
            "moving_digits", command=cmd, options=vars(args),
            metrics={"rows": rows}, derived_from=str(args.runs)), name=args.section)
        print(f"updated {args.results}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
