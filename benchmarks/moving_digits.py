"""Moving digits benchmark: every frame forecaster trained with the same budget, scored on the
fixed held-out test set.

Data: ``--train-clips`` clips from ``moving_digits(split="train")`` (simulated 1000 at a time,
kept as uint8; the last ``--valid-fraction`` of them give the validation loss) and the fixed
test set
``moving_digits(--test-clips, split="test")`` whose digits were never seen in training.
10 context frames, 10 leads, frames in [0, 1].

Models (``--models``): ``persistence`` (last frame, untrained), ``spatrans`` (point, MSE),
``spatrans-q`` (quantiles 0.1/0.5/0.9, pinball loss), ``transformer``, ``lstm``, ``seq2seq``,
``seq2seq-attn`` and ``convlstm`` (the conv engineer's encoder–forecaster). Each trains on the
same clips with the shared Trainer (Adam, ``--lr``, ``--batch-size``), once per seed in
``--seeds``, for the same budget: ``--minutes`` of training (it stops at the first optimiser
step after the deadline; ``--epochs`` caps it), or with ``--minutes 0`` exactly ``--epochs``
epochs. The final parameters are scored; "epochs" in the table counts the training clips seen
divided by the training set size.

Scores on the test set (frames in [0, 1]): MSE and MAE per pixel (also MSE per frame =
per pixel × 4096, the figure moving-MNIST papers quote), SSIM (Gaussian window, data range 1;
:func:`pyro_videossm.metrics.fields.ssim_frames`) of the point forecast (the median for
quantile models), and for quantile models the mean pinball loss, the coverage (ICP) of the
10–90 % interval (nominal 0.8) and its mean width (MIL); see
:mod:`pyro_videossm.metrics.quantile`. Mean ± standard deviation over seeds.

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
"""

from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
import xarray as xr
from torch.utils.data import Dataset

from pyro_videossm.atomic import atomic_path
from pyro_videossm.data.moving_digits import DEFAULT_MNIST, moving_digits
from pyro_videossm.infer import LossObjective, TrainConfig, Trainer
from pyro_videossm.metrics.fields import ssim_frames
from pyro_videossm.metrics.quantile import quantile_loss, quantile_scores
from pyro_videossm.models.forecasters.sequence_baselines import (
    FlatTransformer,
    LSTMForecaster,
    Seq2Seq,
    Seq2SeqAttention,
)
from pyro_videossm.models.forecasters.spatiotemporal_transformer import SpatioTemporalTransformer

BEGIN, END = "<!-- BEGIN spatrans -->", "<!-- END spatrans -->"
ALL_MODELS = ("persistence", "spatrans", "spatrans-q", "transformer", "lstm", "seq2seq",
              "seq2seq-attn", "convlstm")
QUANTILES = (0.1, 0.5, 0.9)
#: per-model settings of the training loop rather than of the architecture (``--set``)
TRAINING_KEYS = ("lr", "lr_decay")
CONTEXT = LEADS = 10

#: Architecture of each model at the full budget (``--quick`` shrinks them).
ARCH = {
    # chosen by validation loss among 5 settings at this budget (docs/spatrans.md)
    "spatrans": dict(patch=32, d_model=128, heads=4, encoder_layers=2, decoder_layers=2,
                     lr=0.002),
    "transformer": dict(d_model=256, heads=4, encoder_layers=3, decoder_layers=3),
    "lstm": dict(d_model=256, hidden=512, layers=2),
    "seq2seq": dict(d_model=256, hidden=512, layers=2),
    "seq2seq-attn": dict(d_model=256, hidden=512, layers=2),
    "convlstm": dict(hidden_channels=(32, 32), stem_channels=16),  # the module's defaults
}
QUICK_ARCH = {
    "spatrans": dict(patch=8, d_model=16, heads=2, encoder_layers=1, decoder_layers=1),
    "transformer": dict(d_model=16, heads=2, encoder_layers=1, decoder_layers=1),
    "lstm": dict(d_model=16, hidden=16, layers=1),
    "seq2seq": dict(d_model=16, hidden=16, layers=1),
    "seq2seq-attn": dict(d_model=16, hidden=16, layers=1),
    "convlstm": dict(hidden_channels=(8, 8), stem_channels=8),
}


# -- data -----------------------------------------------------------------------------------
class Clips(Dataset):
    """uint8 clips ``(N, T, H, W)`` (4× less memory than float32) -> items
    ``{key: (T, H, W) float32 in [0, 1]}`` (plus an all-True ``mask`` if asked)."""

    def __init__(self, clips: torch.Tensor, key: str, with_mask: bool = False) -> None:
        self.clips, self.key, self.with_mask = clips, key, with_mask

    def __len__(self) -> int:
        return self.clips.shape[0]

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        x = self.clips[i].to(torch.float32) / 255.0
        out = {self.key: x}
        if self.with_mask:
            out["mask"] = torch.ones_like(x, dtype=torch.bool)
        return out


def training_clips(n: int, seed: int, mnist: str | None, chunk: int = 1000) -> torch.Tensor:
    """``n`` training clips as uint8 ``(n, 20, 64, 64)``, simulated ``chunk`` at a time
    (chunk ``k`` with seed ``100003 * seed + k``) so that float32 copies stay small."""
    parts = []
    for k, lo in enumerate(range(0, n, chunk)):
        ds = moving_digits(min(chunk, n - lo), split="train", seed=100003 * seed + k,
                           mnist_path=mnist)
        parts.append(torch.from_numpy(np.rint(ds["frames"].values * 255.0).astype(np.uint8)))
    return torch.cat(parts)


# -- models ---------------------------------------------------------------------------------
class _ConvLSTMAdapter:
    """The conv engineer's ConvLSTM encoder–forecaster behind this script's two calls."""

    def __init__(self, arch: dict, frame_shape) -> None:
        from pyro_videossm.models.forecasters.convlstm import ConvLSTMEncoderForecaster, MSELoss

        self.module = ConvLSTMEncoderForecaster(**arch)
        self.loss = MSELoss(CONTEXT)
        self.quantiles = None

    def dataset(self, clips: torch.Tensor) -> Clips:
        return Clips(clips, "x", with_mask=True)

    def predict(self, context: torch.Tensor) -> torch.Tensor:
        mask = torch.ones_like(context, dtype=torch.bool)
        return self.module(context, mask, LEADS).unsqueeze(2)


class _FrameAdapter:
    """A :class:`~pyro_videossm.models.forecasters.frame_forecaster.FrameForecaster` for this
    script."""

    def __init__(self, module) -> None:
        self.module = module
        self.quantiles = module.quantiles

    @staticmethod
    def loss(module, batch):
        return module.loss(batch)

    def dataset(self, clips: torch.Tensor) -> Clips:
        return Clips(clips, "frames")

    def predict(self, context: torch.Tensor) -> torch.Tensor:
        return self.module(context, None, LEADS)


def build(name: str, arch: dict, frame_shape):
    arch = {k: {a: v for a, v in kw.items() if a not in TRAINING_KEYS} for k, kw in arch.items()}
    q = QUANTILES if name.endswith("-q") else None
    base = dict(frame_shape=frame_shape, context_length=CONTEXT, leads=LEADS, quantiles=q)
    if name.startswith("spatrans"):
        return _FrameAdapter(SpatioTemporalTransformer(**base, **arch["spatrans"]))
    if name == "transformer":
        return _FrameAdapter(FlatTransformer(**base, **arch["transformer"]))
    if name == "convlstm":
        return _ConvLSTMAdapter(arch["convlstm"], frame_shape)
    cls = {"lstm": LSTMForecaster, "seq2seq": Seq2Seq, "seq2seq-attn": Seq2SeqAttention}[name]
    return _FrameAdapter(cls(**base, **arch[name]))


# -- scoring --------------------------------------------------------------------------------
@torch.no_grad()
def evaluate(predict, test: torch.Tensor, quantiles, batch_size: int,
             device: str = "cpu") -> dict[str, float]:
    """Scores of ``predict(context (B, 10, H, W)) -> (B, 10, Q, H, W)`` on ``test``
    (the forecasts are made on ``device`` and scored on the CPU)."""
    sums: dict[str, float] = {}
    n = test.shape[0]
    for i in range(0, n, batch_size):
        clip = test[i:i + batch_size]
        ctx, tgt = clip[:, :CONTEXT], clip[:, CONTEXT:CONTEXT + LEADS]
        out = predict(ctx.to(device)).cpu()
        b = clip.shape[0]
        if quantiles is None:
            point = out[:, :, 0]
        else:
            point = out[:, :, quantiles.index(0.5)]
        s = {
            "mse": float(((point - tgt) ** 2).mean()),
            "mae": float((point - tgt).abs().mean()),
            "ssim": float(ssim_frames(point.reshape(-1, *point.shape[-2:]).double(),
                                      tgt.reshape(-1, *tgt.shape[-2:]).double(), 1.0).mean()),
        }
        if quantiles is not None:
            qa = xr.DataArray(out.numpy(), dims=("clip", "lead", "quantile", "y", "x"),
                              coords={"quantile": list(quantiles)})
            ta = xr.DataArray(tgt.numpy(), dims=("clip", "lead", "y", "x"))
            qs = quantile_scores(qa, ta, lower=0.1, upper=0.9)
            s.update(pinball=qs["pinball"], icp=qs["icp"], mil=qs["mil"])
            s["pinball_check"] = float(quantile_loss(out, tgt, quantiles, dim=2))
        for k, v in s.items():
            sums[k] = sums.get(k, 0.0) + v * b
    out = {k: v / n for k, v in sums.items()}
    out.pop("pinball_check", None)
    out["mse_frame"] = out["mse"] * test.shape[-1] * test.shape[-2]
    return out


def persistence(context: torch.Tensor) -> torch.Tensor:
    return context[:, -1:, None].expand(-1, LEADS, 1, -1, -1)


# -- main -----------------------------------------------------------------------------------
class _TimeUp(Exception):
    """Raised by the training loss when the time budget is spent."""


def run_one(name: str, seed: int, arch: dict, train: torch.Tensor, valid: torch.Tensor,
            test: torch.Tensor, args) -> dict:
    if name == "persistence":
        return {"model": name, "seed": seed, "train_s": 0.0, "epochs": 0, "params": 0,
                **evaluate(persistence, test, None, args.eval_batch)}
    torch.manual_seed(seed)
    model = build(name, arch, tuple(train.shape[-2:]))
    module = model.module
    budget = 60.0 * args.minutes if args.minutes else math.inf
    seen = [0]  # training clips seen
    deadline = time.perf_counter() + budget

    def loss_fn(module, batch):
        # The time budget: training stops at the first step after the deadline (validation
        # batches, run in eval mode, are never cut).
        if module.training:
            if time.perf_counter() > deadline:
                raise _TimeUp
            seen[0] += next(iter(batch.values())).shape[0]
        return model.loss(module, batch)

    own = arch.get(name.removesuffix("-q"), {})
    lr, lr_decay = own.get("lr", args.lr), own.get("lr_decay", 1.0)
    config = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=lr,
                         lr_decay=lr_decay, seed=seed, progress=args.progress,
                         device=args.device)
    trainer = Trainer(LossObjective(module, loss_fn), config)
    t0 = time.perf_counter()
    try:
        trainer.fit(model.dataset(train), model.dataset(valid))
    except _TimeUp:
        pass
    seconds = time.perf_counter() - t0
    hist = trainer.history
    module.eval()
    scores = evaluate(model.predict, test, model.quantiles, args.eval_batch, args.device)
    return {"model": name, "seed": seed, "train_s": seconds,
            "epochs": seen[0] / len(train),
            "params": sum(p.numel() for p in module.parameters()),
            "final_valid": hist[-1]["valid_loss"] if hist else None, "lr": lr,
            "lr_decay": lr_decay,
            "valid_history": [h.get("valid_loss") for h in hist], **scores}


def fingerprint(name: str, arch: dict, args) -> str:
    """Short hash of everything that changes the result of one (model, seed) run."""
    key = {"model": name, "arch": arch.get(name.removesuffix("-q"), {}),
           "train_clips": args.train_clips, "test_clips": args.test_clips,
           "valid_fraction": args.valid_fraction, "data_seed": args.data_seed,
           "epochs": args.epochs, "minutes": args.minutes, "batch_size": args.batch_size,
           "lr": args.lr, "threads": args.threads, "mnist": args.mnist, "quick": args.quick,
           **({"device": args.device} if args.device != "cpu" else {})}
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:10]


def run_path(runs: Path, name: str, seed: int, arch: dict, args) -> Path:
    return runs / f"{name}_seed{seed}_{fingerprint(name, arch, args)}.json"


def save_run(path: Path, row: dict) -> None:
    """Write one run's row atomically (a killed run leaves no partial file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(row, indent=1))


COLUMNS = [("mse", "MSE/pixel", ".5f"), ("mse_frame", "MSE/frame", ".1f"),
           ("mae", "MAE/pixel", ".4f"), ("ssim", "SSIM", ".3f"),
           ("pinball", "pinball", ".5f"), ("icp", "ICP 10–90%", ".3f"),
           ("mil", "MIL", ".4f"), ("epochs", "epochs", ".1f"), ("train_s", "train s", ".0f")]


def table(rows: list[dict], models: list[str]) -> str:
    head = "| model | params | seeds | " + " | ".join(c[1] for c in COLUMNS) + " |"
    lines = [head, "|" + " --- |" * (3 + len(COLUMNS))]
    for m in models:
        rs = [r for r in rows if r["model"] == m]
        if not rs:
            continue
        cells = []
        for key, _, fmt in COLUMNS:
            vals = [r[key] for r in rs if key in r]
            if not vals:
                cells.append("")
            elif len(vals) == 1:
                cells.append(format(vals[0], fmt))
            else:
                se = np.std(vals, ddof=1) / math.sqrt(len(vals))
                cells.append(f"{format(np.mean(vals), fmt)} ± {format(se, fmt)}")
        lines.append(f"| {m} | {rs[0]['params']:,} | {len(rs)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_section(path: Path, body: str, record: dict | None = None) -> None:
    """Replace the spatrans section of ``path`` (append it if absent) with the shared writer;
    with ``record`` also store the run record the section regenerates from."""
    from pyro_videossm.experiments.results import record_path_for
    from pyro_videossm.experiments.results import write_section as write

    write(path, "spatrans", body, record=record, record_path=record_path_for(
        path, "benchmarks/results/moving_digits_section/moving_digits.json"))


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
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    arch = ARCH
    if args.quick:
        arch = QUICK_ARCH
    arch = {k: dict(v) for k, v in arch.items()}
    for item in args.set:
        key, _, value = item.partition("=")
        model, _, setting = key.partition(".")
        if model not in arch or not setting or not value:
            p.error(f"--set {item}: expected MODEL.KEY=VALUE with MODEL one of {sorted(arch)}")
        arch[model][setting] = json.loads(value) if value[0] in "[{" else (
            int(value) if value.lstrip("-").isdigit() else float(value))
    if args.quick:
        args.train_clips, args.test_clips = 40, 20
        args.minutes, args.epochs = min(args.minutes, 0.2), min(args.epochs, 3)
        args.seeds = args.seeds[:1]
    load0 = os.getloadavg()
    runs = Path(args.runs)
    paths = {(seed, name): run_path(runs, name, seed, arch, args)
             for seed in args.seeds for name in args.models
             if not (name == "persistence" and seed != args.seeds[0])}
    missing = [key for key, path in paths.items() if not path.exists()]
    n_valid = max(1, int(round(args.valid_fraction * args.train_clips)))
    if missing and not args.table_only:
        mnist = args.mnist or (None if args.quick else str(DEFAULT_MNIST))
        clips = training_clips(args.train_clips, args.data_seed, mnist)
        test_ds = moving_digits(args.test_clips, split="test", mnist_path=mnist)
        train, valid = clips[:-n_valid], clips[-n_valid:]
        test = torch.from_numpy(test_ds["frames"].values)
        for seed, name in missing:
            path = paths[seed, name]
            if path.exists():  # finished meanwhile by another process sharing --runs
                continue
            r = run_one(name, seed, arch, train, valid, test, args)
            r["load_average"] = os.getloadavg()[0]
            save_run(path, r)
            print(f"seed {seed} {name}: MSE/pixel {r['mse']:.5f} SSIM {r['ssim']:.3f}"
                  + (f" ICP {r['icp']:.3f} MIL {r['mil']:.4f}" if "icp" in r else "")
                  + f" ({r['train_s']:.0f} s)", file=sys.stderr, flush=True)
    rows = [json.loads(path.read_text()) for path in paths.values() if path.exists()]
    absent = [f"{n} seed {s_}" for (s_, n), path in paths.items() if not path.exists()]
    load1 = os.getloadavg()
    tab = table(rows, args.models)
    words = [w for w in (argv if argv is not None else sys.argv[1:])
             if w not in ("--table-only", "--no-write")]
    cmd = "python benchmarks/moving_digits.py " + " ".join(words)
    # Loaded: more runnable threads than cores (two 1-thread streams on 2 cores are not).
    loads = [load0[0], load1[0]] + [r.get("load_average", 0.0) for r in rows]
    loaded = max(loads) > (os.cpu_count() or 1) + 0.5
    d = p.parse_args([])
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
    body = "\n".join([
        "## Moving digits: Spatiotemporal Transformer and sequence baselines",
        "",
        f"Command: `{cmd.strip()}` ({_dt.date.today().isoformat()}; "
        f"{args.train_clips} training clips ({n_valid} of them validate), "
        f"{args.test_clips} test clips with held-out digits, 10 context + 10 target frames "
        f"64×64 in [0, 1], "
        + (f"{args.epochs} epochs" if not args.minutes else
           f"{args.minutes:g} min of training (at most {args.epochs} epochs)")
        + f", batch {args.batch_size}, lr {args.lr}, "
        f"seeds {args.seeds}, torch threads {args.threads}).",
        "",
        tab,
        "",
        "Settings per model (`--set` overrides; `lr` defaults to `--lr`): "
        + "; ".join(f"{m} " + ", ".join(f"{k} {v}" for k, v in arch[m].items())
                    for m in dict.fromkeys(n.removesuffix("-q") for n in args.models)
                    if m in arch) + ".",
        "",
        "MSE/MAE per pixel and SSIM of the point forecast (the median for `spatrans-q`), mean "
        "over the 10 leads; MSE/frame = per pixel × 4096. ICP: fraction of target pixels inside "
        "the 10–90 % interval (nominal 0.8); MIL: its mean width. ± is the standard error "
        "of the mean over seeds.",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPU(s), torch {torch.__version__}; "
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
    print(body)
    if not args.no_write:
        from pyro_videossm.experiments.records import make_record

        write_section(Path(args.results), body, record=make_record(
            "moving_digits", command=cmd.strip(), options=vars(args),
            metrics={"rows": rows}, derived_from=str(args.runs)))
        print(f"updated {args.results}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
