"""``videossm evaluate-disentanglement model.pt clips.nc`` and ``videossm swap model.pt clips.nc
-o grid.png``: the disentanglement protocol and swap grids of a trained DSVAE.

``evaluate-disentanglement`` scores generated clips with a judge classifier
(:mod:`pyro_videossm.evaluation`): ``--judge judge.pt`` (from ``videossm train judge``), or a
judge trained here on the file's training clips (``split == 0``). The judge must reach 99%
motion accuracy on the real test clips (``split == 1``, or all clips when the file has no
split) before the protocol runs; then it prints a markdown table.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from pyro_videossm.cli.common import add_output, check_output_path, say
from pyro_videossm.data.conventions import open_dataset
from pyro_videossm.data.sprites import STATIC_FACTORS, check_video, frames_tensor, select_split
from pyro_videossm.errors import InputError
from pyro_videossm.metrics.posterior import markdown_table


def register(sub) -> None:
    p = sub.add_parser("evaluate-disentanglement",
                       help="judge clips generated with swapped latents (accuracy, IS, entropies)")
    p.add_argument("model", type=Path, help="DSVAE model file (videossm train dsvae)")
    p.add_argument("data", type=Path, help="clips with labels (netCDF); test clips are scored")
    p.add_argument("--judge", type=Path, help="judge file (videossm train judge); default: "
                   "train one on the data file's training clips")
    p.add_argument("--judge-epochs", type=int, default=4,
                   help="epochs when the judge is trained here (default 4)")
    p.add_argument("--save-judge", type=Path, help="write the judge trained here to this file")
    p.add_argument("--motion-label", default="motion", help="label of the dynamics (motion)")
    p.add_argument("--static-labels", default=None,
                   help="comma-separated static labels (default: the judge's other heads)")
    p.add_argument("--repeats", type=int, default=5,
                   help="draws from the priors to average over (default 5)")
    p.add_argument("--min-judge-accuracy", type=float, default=0.99,
                   help="motion accuracy on real test clips the judge needs (default 0.99)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p.add_argument("--json", type=Path, help="also write all scores as JSON")
    p.add_argument("--no-progress", dest="progress", action="store_false",
                   help="hide progress bars")
    p.set_defaults(func=run_evaluate)

    s = sub.add_parser("swap", help="PNG grid: static latent of one clip, dynamics of another")
    s.add_argument("model", type=Path, help="DSVAE model file")
    s.add_argument("data", type=Path, help="clips (netCDF); test clips are used when present")
    add_output(s, help="PNG file to write")
    s.add_argument("--rows", type=int, default=4, help="characters (rows, default 4)")
    s.add_argument("--cols", type=int, default=6, help="motions (columns, default 6)")
    s.add_argument("--frames", type=int, help="frames shown per clip (default all)")
    s.add_argument("--stride", type=int, default=1,
                   help="show every STRIDE-th frame (default 1)")
    s.add_argument("--seed", type=int, default=0, help="seed of the choice of clips (default 0)")
    s.set_defaults(func=run_swap)


def _test_clips(path: Path):
    ds = open_dataset(path)
    check_video(ds, str(path))
    test = select_split(ds, "test")
    if test.sizes["clip"] == 0:
        raise InputError(f"{path}: no test clips (split == 1)")
    return ds, test.load()


def run_evaluate(args) -> int:
    from pyro_videossm.evaluation import (
        evaluate_disentanglement,
        load_judge,
        save_judge,
        summary_row,
        train_judge,
    )
    from pyro_videossm.models.video.dsvae import load_dsvae

    for flag, value in (("--judge-epochs", args.judge_epochs), ("--repeats", args.repeats)):
        if value < 1:
            raise InputError(f"{flag} must be >= 1, got {value}")
    if not 0 <= args.min_judge_accuracy <= 1:
        raise InputError(f"--min-judge-accuracy must be in [0, 1], got "
                         f"{args.min_judge_accuracy}")
    if args.json is not None:
        check_output_path(args.json, inputs=(args.data, args.model))
    if args.save_judge is not None:
        check_output_path(args.save_judge, inputs=(args.data, args.model))
    model, _ = load_dsvae(args.model, device=args.device)
    ds, test = _test_clips(args.data)
    if args.motion_label not in test.data_vars:
        raise InputError(f"{args.data}: labels are needed for evaluation: missing "
                         f"{args.motion_label!r}")
    if args.judge is not None:
        judge, _ = load_judge(args.judge, device=args.device)
    else:
        if "split" not in ds.data_vars or not (ds["split"] == 0).any():
            raise InputError(f"{args.data}: no training clips to train a judge on; "
                             "pass --judge judge.pt")
        labels = [args.motion_label] + [k for k in STATIC_FACTORS if k in ds.data_vars]
        if args.static_labels:
            labels = [args.motion_label] + args.static_labels.split(",")
        say(f"training a judge on the training clips ({', '.join(labels)})")
        judge, _ = train_judge(select_split(ds, "train").load(), labels,
                               epochs=args.judge_epochs, device=args.device, seed=args.seed,
                               progress=args.progress)
        if args.save_judge is not None:
            save_judge(judge, args.save_judge)
    judge = judge.to(args.device)
    static = args.static_labels.split(",") if args.static_labels else None
    result = evaluate_disentanglement(model, judge, test, motion_label=args.motion_label,
                                      static_labels=static, repeats=args.repeats,
                                      seed=args.seed, min_judge_accuracy=args.min_judge_accuracy)
    name = "DSVAE + adversarial" if model.adversarial else "DSVAE"
    print(f"judge accuracy on {result['clips']} real test clips: "
          + ", ".join(f"{k} {v:.2%}" for k, v in result["judge"].items()))
    print()
    print(markdown_table([summary_row(name, result, args.motion_label)]))
    print()
    rows = []
    for kept, group in (("dynamics", result["dynamics_kept"]), ("static", result["static_kept"])):
        for label, sc in group.items():
            rows.append({"kept": kept, "label": label, "accuracy": sc["accuracy"],
                         "IS": sc["IS"], "H(y|x)": sc["H_y_given_x"], "H(y)": sc["H_y"],
                         "classes": judge.labels[label],
                         "clips": result["balanced_clips"][label]})
    print(markdown_table(rows))
    if args.json is not None:
        tmp = args.json.with_name(f".{args.json.name}.tmp")
        tmp.write_text(json.dumps(result, indent=1))
        tmp.replace(args.json)
    return 0


def _pick(labels: np.ndarray | None, n_total: int, n: int,
          rng: np.random.Generator) -> np.ndarray:
    """``n`` clip indices, with distinct labels as far as possible (random order)."""
    idx = rng.permutation(n_total)
    if labels is None:
        return idx[:n]
    out, seen = [], set()
    for i in idx:
        if labels[i] not in seen:
            out.append(int(i))
            seen.add(labels[i])
        if len(out) == n:
            break
    rest = [int(i) for i in idx if i not in set(out)]
    return np.array(out + rest[: n - len(out)], dtype=int)


def run_swap(args) -> int:
    from pyro_videossm.models.video.dsvae import load_dsvae
    from pyro_videossm.plots.video import save_swap_grid

    out = check_output_path(args.output, inputs=(args.data, args.model))
    for flag, value in (("--rows", args.rows), ("--cols", args.cols), ("--frames", args.frames),
                        ("--stride", args.stride)):
        if value is not None and value < 1:
            raise InputError(f"{flag} must be >= 1, got {value}")
    model, _ = load_dsvae(args.model)
    _, clips = _test_clips(args.data)
    rng = np.random.default_rng(args.seed)

    def lab(name):
        return np.asarray(clips[name].values) if name in clips.data_vars else None

    n = clips.sizes["clip"]
    rows = _pick(lab("character"), n, min(args.rows, n), rng)
    cols = _pick(lab("motion"), n, min(args.cols, n), rng)
    x = frames_tensor(clips, str(args.data), channels=model.channels, size=model.size)
    torch.manual_seed(args.seed)
    save_swap_grid(model, x[torch.as_tensor(rows)], x[torch.as_tensor(cols)], out,
                   frames=args.frames, stride=args.stride)
    say(f"wrote {out} ({len(rows)} characters x {len(cols)} motions)")
    return 0
