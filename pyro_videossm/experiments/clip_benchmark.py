"""The moving-digits forecasting protocol: frame forecasters trained under one budget on
simulated clips and scored on the fixed held-out test clips.

* data: :func:`training_clips` (``frames(clip, time, y, x)`` from
  :func:`~pyro_videossm.data.moving_digits.moving_digits`, simulated 1000 clips at a time) cut
  by :func:`clip_windows` (the experiment layer's
  :func:`~pyro_videossm.experiments.windows.build_windows`: one window of ``10 + 10`` frames
  per clip, the last clips validate); :func:`test_clips` ``(N, 20, H, W)``;
* models: ``persistence`` (untrained), the frame forecasters ``spatrans``, ``transformer``,
  ``lstm``, ``seq2seq``, ``seq2seq-attn`` (``NAME-q``: quantiles 0.1/0.5/0.9, pinball loss)
  and ``convlstm``, built and trained by
  :func:`~pyro_videossm.experiments.forecast_benchmark.train_model` for ``epochs`` epochs or
  ``minutes`` of training;
* scores: :func:`score_clip_forecasts`, forecasts through the forecaster interface
  (``predict``; ``predict_quantiles`` for quantile models) scored per pixel in [0, 1]: MSE,
  MAE, SSIM of the point forecast (the median for quantile models), and for quantile models
  the pinball loss, the coverage (ICP) and mean width (MIL) of the 10-90 % interval;
  :func:`run_clip_model` gives one ``(model, seed)`` row, :func:`clip_score_table` the
  markdown table of rows (mean ± standard error over seeds).
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Sequence

import numpy as np
import torch
import xarray as xr
from torch.utils.data import Dataset

from pyro_videossm.errors import InputError
from pyro_videossm.experiments.windows import WindowData, build_windows

CONTEXT = LEADS = 10
QUANTILES = (0.1, 0.5, 0.9)
#: per-model settings of the training loop rather than of the architecture
TRAINING_KEYS = ("lr", "lr_decay")
MODELS = ("persistence", "spatrans", "spatrans-q", "transformer", "lstm", "seq2seq",
          "seq2seq-attn", "convlstm")

#: Architecture of each model at the full budget (``--quick`` shrinks them).
ARCHITECTURES = {
    # chosen by validation loss among 5 settings at this budget (docs/spatrans.md)
    "spatrans": dict(patch=32, d_model=128, heads=4, encoder_layers=2, decoder_layers=2,
                     lr=0.002),
    "transformer": dict(d_model=256, heads=4, encoder_layers=3, decoder_layers=3),
    "lstm": dict(d_model=256, hidden=512, layers=2),
    "seq2seq": dict(d_model=256, hidden=512, layers=2),
    "seq2seq-attn": dict(d_model=256, hidden=512, layers=2),
    "convlstm": dict(hidden_channels=(32, 32), stem_channels=16),  # the module's defaults
}
QUICK_ARCHITECTURES = {
    "spatrans": dict(patch=8, d_model=16, heads=2, encoder_layers=1, decoder_layers=1),
    "transformer": dict(d_model=16, heads=2, encoder_layers=1, decoder_layers=1),
    "lstm": dict(d_model=16, hidden=16, layers=1),
    "seq2seq": dict(d_model=16, hidden=16, layers=1),
    "seq2seq-attn": dict(d_model=16, hidden=16, layers=1),
    "convlstm": dict(hidden_channels=(8, 8), stem_channels=8),
}


def architectures(quick: bool, overrides: Sequence[str] = ()) -> dict[str, dict]:
    """The settings per base model (a copy), with ``overrides`` ``MODEL.KEY=VALUE`` applied
    (VALUE: JSON list/dict, int or float); a bad override raises :class:`InputError`."""
    arch = {k: dict(v) for k, v in (QUICK_ARCHITECTURES if quick else ARCHITECTURES).items()}
    for item in overrides:
        key, _, value = item.partition("=")
        model, _, setting = key.partition(".")
        if model not in arch or not setting or not value:
            raise InputError(f"--set {item}: expected MODEL.KEY=VALUE with MODEL one of "
                             f"{sorted(arch)}")
        arch[model][setting] = json.loads(value) if value[0] in "[{" else (
            int(value) if value.lstrip("-").isdigit() else float(value))
    return arch


def run_settings(name: str, arch: dict, args) -> dict:
    """Everything that changes the result of one (model, seed) run (the fingerprint of its
    file): ``args`` has ``train_clips``, ``test_clips``, ``valid_fraction``, ``data_seed``,
    ``epochs``, ``minutes``, ``batch_size``, ``lr``, ``threads``, ``mnist``, ``quick``,
    ``device``."""
    return {"model": name, "arch": arch.get(name.removesuffix("-q"), {}),
            "train_clips": args.train_clips, "test_clips": args.test_clips,
            "valid_fraction": args.valid_fraction, "data_seed": args.data_seed,
            "epochs": args.epochs, "minutes": args.minutes, "batch_size": args.batch_size,
            "lr": args.lr, "threads": args.threads, "mnist": args.mnist, "quick": args.quick,
            **({"device": args.device} if args.device != "cpu" else {}),
            # settings absent from older runs enter the fingerprint only when not the default
            **{k: getattr(args, k) for k, default in RECIPE_DEFAULTS.items()
               if getattr(args, k, default) != default}}


# -- data -----------------------------------------------------------------------------------
def recipe(canvas: int = 64, n_digits: int = 2, digit_size: int = 28, speed: float = 3.6,
           mnist: str | None = None) -> dict:
    """Keyword arguments of :func:`~pyro_videossm.data.moving_digits.moving_digits` for a
    ``canvas``-pixel canvas with ``n_digits`` digits of ``digit_size`` pixels: the digit file's
    images (or the bundled digits) shrunk by area averaging (``torch`` ``interpolate``,
    ``mode="area"``) when ``digit_size`` is smaller than theirs."""
    from pyro_videossm.data.moving_digits import load_digits

    out: dict = {"canvas": int(canvas), "n_digits": int(n_digits), "speed": float(speed)}
    images, labels = load_digits(mnist)
    if digit_size < images.shape[-1]:
        small = torch.nn.functional.interpolate(
            torch.from_numpy(images).float()[:, None], size=(digit_size, digit_size),
            mode="area")[:, 0]
        images = small.round().clamp(0, 255).to(torch.uint8).numpy()
    out["digits"] = (images, labels)
    return out


#: The simulation settings of the standard (64 × 64, GPU-scale) recipe; settings that differ
#: from these enter a run's fingerprint.
RECIPE_DEFAULTS = {"canvas": 64, "n_digits": 2, "digit_size": 28, "speed": 3.6,
                   "patience": None}


def training_clips(n: int, seed: int, mnist: str | None, chunk: int = 1000,
                   **sim) -> xr.Dataset:
    """``n`` training clips ``frames(clip, time, y, x)`` (float32 in [0, 1]), simulated
    ``chunk`` at a time (chunk ``k`` with seed ``100003 * seed + k``); ``sim``: more
    :func:`~pyro_videossm.data.moving_digits.moving_digits` options (see :func:`recipe`)."""
    from pyro_videossm.data.moving_digits import moving_digits

    if "digits" in sim:
        mnist = None
    parts = [moving_digits(min(chunk, n - lo), split="train", seed=100003 * seed + k,
                           mnist_path=mnist, **sim)[["frames"]]
             for k, lo in enumerate(range(0, n, chunk))]
    frames = np.concatenate([p["frames"].values for p in parts])
    return xr.Dataset({"frames": (("clip", "time", "y", "x"), frames,
                                  parts[0]["frames"].attrs)})


def clip_windows(clips: xr.Dataset, valid_fraction: float, **options) -> WindowData:
    """One window of ``CONTEXT + LEADS`` frames per clip, in [0, 1] (no scaling); the last
    ``max(1, round(valid_fraction * N))`` clips validate (streamed when large; ``options``:
    more :func:`~pyro_videossm.experiments.windows.build_windows` options)."""
    return build_windows(clips, CONTEXT, LEADS, variable="frames",
                         valid_fraction=valid_fraction, normalize="none", **options)


def test_clips(n: int, mnist: str | None, **sim) -> torch.Tensor:
    """The fixed test set (digits never seen in training): ``(n, 20, H, W)`` float32
    (``sim``: as for :func:`training_clips`)."""
    from pyro_videossm.data.moving_digits import moving_digits

    if "digits" in sim:
        mnist = None
    return torch.from_numpy(moving_digits(n, split="test", mnist_path=mnist,
                                          **sim)["frames"].values)


class _WithoutMask(Dataset):
    """The items of a streamed ``Dataset`` without their ``mask``."""

    def __init__(self, items: Dataset) -> None:
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {k: v for k, v in self.items[i].items() if k != "mask"}


def without_mask(data: WindowData) -> WindowData:
    """``data`` without the (all-True) masks, stacked or streamed: the frame forecasters' loss
    on complete clips is the plain mean over pixels."""
    def strip(part):
        if part is None:
            return None
        if isinstance(part, dict):
            return {k: v for k, v in part.items() if k != "mask"}
        return _WithoutMask(part)

    return dataclasses.replace(data, train=strip(data.train), valid=strip(data.valid))


# -- scores ---------------------------------------------------------------------------------
@torch.no_grad()
def score_clip_forecasts(predict, test: torch.Tensor, quantiles, batch_size: int,
                         device: str = "cpu") -> dict[str, float]:
    """Scores of ``predict(context (B, 10, H, W), mask) -> (B, 10, Q, H, W)`` on ``test``
    ``(N, 20, H, W)``, averaged over clips (forecasts made on ``device``, scored on the CPU);
    ``mse_frame`` = MSE per pixel × pixels per frame."""
    from pyro_videossm.metrics.fields import ssim_frames
    from pyro_videossm.metrics.quantile import quantile_scores

    sums: dict[str, float] = {}
    n = test.shape[0]
    for i in range(0, n, batch_size):
        clip = test[i:i + batch_size]
        ctx, tgt = clip[:, :CONTEXT], clip[:, CONTEXT:CONTEXT + LEADS]
        ctx = ctx.to(device)
        out = predict(ctx, torch.ones_like(ctx, dtype=torch.bool)).cpu()
        point = out[:, :, 0 if quantiles is None else quantiles.index(0.5)]
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
        for k, v in s.items():
            sums[k] = sums.get(k, 0.0) + v * clip.shape[0]
    scores = {k: v / n for k, v in sums.items()}
    scores["mse_frame"] = scores["mse"] * test.shape[-1] * test.shape[-2]
    return scores


# -- one run --------------------------------------------------------------------------------
def run_clip_model(name: str, seed: int, arch: dict[str, dict], data: WindowData,
                   test: torch.Tensor, *, epochs: int, minutes: float, batch_size: int,
                   lr: float, eval_batch: int, progress: bool = False,
                   device: str = "cpu", patience: int | None = None) -> dict:
    """Train model ``name`` (``arch``: settings per base model, ``lr``/``lr_decay`` among
    them) with ``seed`` for ``epochs`` epochs or ``minutes`` of training (0: no time limit)
    and score it on ``test``: one row of the benchmark.

    With ``patience``, training stops early after ``patience`` epochs without a lower
    validation loss and the best parameters are scored; the row then has ``best_epoch`` (1-based)
    and ``converged`` (True when the patience rule stopped it, not the epoch cap or the
    clock)."""
    from pyro_videossm.experiments.forecast_benchmark import train_model
    from pyro_videossm.forecast import Persistence
    from pyro_videossm.infer import TrainConfig

    if name == "persistence":
        return {"model": name, "seed": seed, "train_s": 0.0, "epochs": 0, "params": 0,
                **score_clip_forecasts(lambda c, m: Persistence().predict(c, m, LEADS), test,
                                       None, eval_batch)}
    base = name.removesuffix("-q")
    quantiles = QUANTILES if name.endswith("-q") else None
    own = arch.get(base, {})
    lr, lr_decay = own.get("lr", lr), own.get("lr_decay", 1.0)
    config = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, lr_decay=lr_decay,
                         seed=seed, progress=progress, device=device, patience=patience)
    shape = {k: v for k, v in own.items() if k not in TRAINING_KEYS}
    trained = train_model(base, shape, data if base == "convlstm" else without_mask(data),
                          config, context=CONTEXT, leads=LEADS, seed=seed,
                          seconds=60.0 * minutes if minutes else None, quantiles=quantiles,
                          scaling=None)
    trained.module.eval()
    forecaster = trained.forecaster(device)
    if base == "convlstm":
        def predict(c, m):
            return forecaster.predict(c, m, LEADS)
    elif quantiles is None:  # complete clips: no mask, as in training
        def predict(c, m):
            return forecaster.predict(c, None, LEADS)
    else:
        def predict(c, m):
            return forecaster.predict_quantiles(c, None, LEADS)
    scores = score_clip_forecasts(predict, test, quantiles, eval_batch, device)
    hist = trained.history
    row = {"model": name, "seed": seed, "train_s": trained.seconds,
           "epochs": trained.epochs_seen, "params": trained.parameters,
           "final_valid": hist[-1]["valid_loss"] if hist else None, "lr": lr,
           "lr_decay": lr_decay, "valid_history": [h.get("valid_loss") for h in hist],
           **scores}
    if patience is not None:
        row.update(patience=patience, **stopping(row["valid_history"], patience))
    return row


def stopping(valid_history: Sequence[float], patience: int) -> dict:
    """``best_epoch`` (1-based epoch of the lowest validation loss), ``best_valid`` and
    ``converged``: whether the patience rule ended training, i.e. ``patience`` complete epochs
    followed the best one without improving on it."""
    if not valid_history:
        return {"best_epoch": 0, "best_valid": None, "converged": False}
    best = int(np.argmin(valid_history))
    return {"best_epoch": best + 1, "best_valid": float(valid_history[best]),
            "converged": len(valid_history) - (best + 1) >= patience}


# -- table ----------------------------------------------------------------------------------
COLUMNS = [("mse", "MSE/pixel", ".5f"), ("mse_frame", "MSE/frame", ".1f"),
           ("mae", "MAE/pixel", ".4f"), ("ssim", "SSIM", ".3f"),
           ("pinball", "pinball", ".5f"), ("icp", "ICP 10–90%", ".3f"),
           ("mil", "MIL", ".4f"), ("epochs", "epochs", ".1f"),
           ("best_epoch", "best epoch", ".1f"), ("train_s", "train s", ".0f")]


def clip_score_table(rows: list[dict], models: list[str],
                     columns: Sequence[tuple[str, str, str]] = tuple(COLUMNS)) -> str:
    """Markdown: one line per model of ``models`` with rows, mean ± standard error over
    seeds, one column per ``(key, heading, format)`` of ``columns`` (default
    :data:`COLUMNS`; the best-epoch column only when some row was trained with early
    stopping)."""
    columns = [c for c in columns
               if c[0] != "best_epoch" or any("best_epoch" in r for r in rows)]
    head = "| model | params | seeds | " + " | ".join(c[1] for c in columns) + " |"
    lines = [head, "|" + " --- |" * (3 + len(columns))]
    for m in models:
        rs = [r for r in rows if r["model"] == m]
        if not rs:
            continue
        cells = []
        for key, _, fmt in columns:
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


__all__ = ["ARCHITECTURES", "CONTEXT", "COLUMNS", "LEADS", "MODELS", "QUANTILES",
           "QUICK_ARCHITECTURES", "RECIPE_DEFAULTS", "TRAINING_KEYS", "architectures",
           "clip_score_table", "clip_windows", "recipe", "run_clip_model", "run_settings",
           "score_clip_forecasts", "stopping", "test_clips", "training_clips", "without_mask"]
