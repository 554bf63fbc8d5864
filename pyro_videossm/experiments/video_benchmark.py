"""The DSVAE disentanglement benchmark on procedural sprites: data, judge, models, protocol.

* :func:`sprite_clips`: the literature split of :func:`~pyro_videossm.data.sprites.make_sprites`
  (or clips read from a file made by ``videossm simulate sprites --split all``);
* :func:`training_tensors`: the training clips ``(N, T, C, S, S)`` and their motion labels,
  through the experiment layer's builder
  (:func:`~pyro_videossm.experiments.windows.build_windows`, ``kind="video"``);
* :func:`prepare_judge`: the judge classifier (:mod:`pyro_videossm.evaluation.judge`) trained
  (or read) and its accuracy on the real test clips, trusted above
  :data:`~pyro_videossm.evaluation.MIN_MOTION_ACCURACY`;
* :func:`train_and_evaluate`: one DSVAE (the recipe's builder,
  :func:`~pyro_videossm.experiments.video_recipes.build_dsvae`) trained with the shared
  Trainer, saved, and scored by the protocol of :mod:`pyro_videossm.evaluation.disentanglement`;
* :func:`swap_grids`: swap-grid figures of the trained models; :func:`protocol_table`: the
  markdown table (both models and the judge on real clips).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import xarray as xr

from pyro_videossm.data.sprites import STATIC_FACTORS
from pyro_videossm.errors import InputError

#: the labels the judge learns
LABELS = ["motion", *STATIC_FACTORS]


def _quiet(message: str) -> None:
    pass


def sprite_clips(size: int, train_characters: int, test_characters: int, seed: int,
                 data: str | os.PathLike | None = None) -> tuple[xr.Dataset, xr.Dataset]:
    """Training and test clips (9 per character) of ``size`` × ``size`` sprites: simulated, or
    the first ones of each split of ``data``."""
    from pyro_videossm.data.sprites import make_sprites, select_split

    if data is None:
        return (make_sprites("train", size=size, characters=train_characters, seed=seed),
                make_sprites("test", size=size, characters=test_characters, seed=seed))
    from pyro_videossm.data.conventions import open_dataset

    ds = open_dataset(data)
    train = select_split(ds, "train").isel(clip=slice(0, 9 * train_characters)).load()
    test = select_split(ds, "test").isel(clip=slice(0, 9 * test_characters)).load()
    if train.sizes["x"] != size:
        raise InputError(f"{data} has {train.sizes['x']}x{train.sizes['x']} frames, not "
                         f"--size {size}")
    return train, test


def training_tensors(train: xr.Dataset, label: str = "motion"
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """Whole clips ``(N, T, C, S, S)`` in [0, 1] and the ``label`` of each (int64)."""
    from pyro_videossm.experiments.windows import build_windows

    data = build_windows(train, train.sizes["time"], variable="frames", valid_fraction=0.0,
                         normalize="none", kind="video", labels=[label])
    return data.train["x"], data.train[label]


def prepare_judge(train: xr.Dataset, test: xr.Dataset, *, path: str | os.PathLike | None,
                  out: str | os.PathLike, epochs: int, batch_size: int, lr: float,
                  conv_channels: int, device: str = "cpu", seed: int = 0,
                  progress: bool = False, log: Callable[[str], None] = _quiet
                  ) -> tuple[Any, dict[str, float], bool]:
    """The judge read from ``path``, or trained on ``train`` and saved as ``out/judge.pt``;
    its accuracy per label on ``test`` and whether it is trusted."""
    from pyro_videossm.evaluation import (
        MIN_MOTION_ACCURACY,
        judge_accuracy,
        load_judge,
        save_judge,
        train_judge,
    )

    if path is not None:
        judge, _ = load_judge(path, device)
    else:
        t = time.time()
        judge, _ = train_judge(train, LABELS, epochs=epochs, batch_size=batch_size, lr=lr,
                               conv_channels=conv_channels, device=device, seed=seed,
                               progress=progress)
        log(f"judge trained in {(time.time() - t) / 60:.1f} min")
        save_judge(judge, Path(out) / "judge.pt")
    judge = judge.to(device)
    accuracy = judge_accuracy(judge, test)
    return judge, accuracy, accuracy["motion"] >= MIN_MOTION_ACCURACY


def model_label(name: str) -> str:
    return "DSVAE + adversarial" if name == "adversarial" else "DSVAE"


def train_and_evaluate(name: str, x: torch.Tensor, motion: torch.Tensor, test: xr.Dataset,
                       judge, options, config, *, repeats: int, per_class: int,
                       trusted: bool, seed: int, out: str | os.PathLike,
                       log: Callable[[str], None] = _quiet
                       ) -> tuple[dict, dict, torch.nn.Module]:
    """Train the DSVAE ``options`` (a :class:`~pyro_videossm.experiments.video_recipes.
    DSVAEOptions`) on ``x`` with ``config`` (a :class:`~pyro_videossm.infer.TrainConfig`),
    save it as ``out/dsvae_{name}.pt`` and run the protocol on ``test``: returns the table
    row, the full result and the model (on the CPU, in eval mode)."""
    import pyro

    from pyro_videossm.evaluation import evaluate_disentanglement, summary_row
    from pyro_videossm.experiments.video_recipes import build_dsvae
    from pyro_videossm.models.video.dsvae import save_dsvae, train_dsvae

    label = model_label(name)
    pyro.clear_param_store()
    torch.manual_seed(seed)
    model = build_dsvae(options, tuple(x.shape[2:4]))
    t = time.time()
    history = train_dsvae(model, x, motion, config)
    minutes = (time.time() - t) / 60
    log(f"{label}: {minutes:.1f} min, loss/frame "
        + " ".join(f"{h['train_loss']:.1f}" for h in history))
    save_dsvae(model.cpu(), Path(out) / f"dsvae_{name}.pt",
               extra={"history": history, "train_config": config.to_dict()})
    model.to(config.device)
    t = time.time()
    res = evaluate_disentanglement(model, judge, test, repeats=repeats, seed=seed,
                                   max_per_class=per_class,
                                   min_judge_accuracy=0.0 if not trusted else None)
    log(f"{label}: protocol in {(time.time() - t) / 60:.1f} min")
    row = summary_row(label, res)
    row.update({"motion acc std": res["dynamics_kept"]["motion"]["accuracy_std"],
                "minutes": minutes, "loss": history[-1]["train_loss"]})
    result = {"scores": res, "minutes": minutes, "history": history,
              "parameters": sum(p.numel() for p in model.parameters())}
    return row, result, model.cpu().eval()


def pick_distinct(labels: np.ndarray, n: int, rng: np.random.Generator) -> list[int]:
    """``n`` indices with distinct labels (first occurrence in a random order)."""
    out, seen = [], set()
    for i in rng.permutation(len(labels)):
        if labels[i] not in seen:
            out.append(int(i))
            seen.add(labels[i])
        if len(out) == n:
            break
    return out


def swap_grids(models: Mapping[str, torch.nn.Module], test: xr.Dataset, seed: int,
               targets: Mapping[str, Path], log: Callable[[str], None] = _quiet
               ) -> dict[str, Path]:
    """One swap grid per model (4 test characters × 6 motions) written to ``targets[name]``."""
    from pyro_videossm.data.sprites import frames_tensor
    from pyro_videossm.plots import save_figure
    from pyro_videossm.plots.video import plot_swap_grid

    rng = np.random.default_rng(seed)
    xt = frames_tensor(test)
    rows_idx = pick_distinct(test["character"].values, 4, rng)
    cols_idx = pick_distinct(test["motion"].values, 6, rng)
    written = {}
    for name, model in models.items():
        torch.manual_seed(seed)
        fig = plot_swap_grid(model, xt[rows_idx], xt[cols_idx], stride=2, scale=1.0,
                             title=f"{model_label(name)}: rows keep the character, columns "
                                   "keep the motion")
        save_figure(fig, targets[name])
        written[name] = targets[name]
        log(f"wrote {targets[name]}")
    return written


def protocol_table(rows: Sequence[dict], judge_acc: Mapping[str, float], trusted: bool) -> str:
    """Markdown: the judge on real test clips, then one line per model."""
    factors = list(STATIC_FACTORS)
    head = ("| model | motion acc (dynamics kept) | IS | H(y\\|x) | H(y) | static acc (f kept), "
            "mean | " + " | ".join(factors) + " | motion acc on reconstructions | "
            "train min | loss/frame |")
    lines = [head, "|" + "---|" * (head.count(" | ") + 1)]
    j = judge_acc
    lines.append(
        f"| judge on real test clips{'' if trusted else ' (UNTRUSTED)'} | {j['motion']:.2%} | "
        " |  |  | " + f"{np.mean([j[k] for k in factors]):.2%} | "
        + " | ".join(f"{j[k]:.2%}" for k in factors) + " |  |  |  |")
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['motion acc']:.2%} ± {r['motion acc std']:.2%} | "
            f"{r['motion IS']:.2f} | {r['H(y|x)']:.3f} | {r['H(y)']:.3f} | "
            f"{r['static acc (mean)']:.2%} | "
            + " | ".join(f"{r[f'{k} acc']:.2%}" for k in factors)
            + f" | {r['recon motion acc']:.2%} | {r['minutes']:.1f} | {r['loss']:.1f} |")
    return "\n".join(lines)


__all__ = ["LABELS", "pick_distinct", "prepare_judge", "protocol_table", "sprite_clips",
           "swap_grids", "train_and_evaluate", "training_tensors"]
