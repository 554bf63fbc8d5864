"""``videossm recognize clips.nc --model r.pt [-o predictions.nc|.json]``: classify clips with a
recognizer (``videossm train recognizer``) and print its accuracy when the file has the label.

``--split`` picks the clips (``all``, or ``train``/``test`` by the file's ``split`` variable).
The output holds, per clip, the predicted class and the class probabilities: netCDF
(``predicted_<label>(clip)`` with CF flags, ``probability(clip, class)``) or JSON.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import xarray as xr

from pyro_videossm.atomic import atomic_path
from pyro_videossm.cli.common import add_output, say
from pyro_videossm.data.conventions import open_dataset, write_netcdf
from pyro_videossm.data.sprites import frames_tensor, labels_tensor, select_split
from pyro_videossm.errors import InputError

SUFFIXES = (".nc", ".json")


def register(sub) -> None:
    p = sub.add_parser("recognize", help="classify the action of clips with a recognizer "
                                         "(videossm train recognizer)")
    p.add_argument("data", type=Path, help="clips frames(clip, time, channel, y, x) (netCDF)")
    p.add_argument("--model", type=Path, required=True, help="recognizer model file")
    add_output(p, required=False, help="predictions to write (.nc or .json)")
    p.add_argument("--split", choices=("all", "train", "test"), default="all",
                   help="clips to classify, by the file's split variable (default all)")
    p.add_argument("--batch-size", type=int, default=256,
                   help="clips per forward pass (default 256)")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p.set_defaults(func=run_recognize)


def _clips(path: Path, split: str) -> xr.Dataset:
    ds = open_dataset(path)
    if split != "all":
        if "split" not in ds.data_vars:
            raise InputError(f"{path}: no 'split' variable to select {split} clips by")
        ds = select_split(ds, split)
        if ds.sizes["clip"] == 0:
            raise InputError(f"{path}: no {split} clips")
    return ds.load()


def predictions_dataset(rec, pred: np.ndarray, prob: np.ndarray, clips) -> xr.Dataset:
    """``predicted_<label>(clip)`` (CF flags when the classes have names) and
    ``probability(clip, class)``."""
    label = rec.label
    attrs = {"long_name": f"predicted {label}", "flag_values": np.arange(rec.n_classes)}
    if rec.class_names:
        attrs["flag_meanings"] = " ".join(rec.class_names)
    return xr.Dataset(
        {f"predicted_{label}": ("clip", pred.astype(np.int32), attrs),
         "probability": (("clip", "class"), prob.astype(np.float32),
                         {"long_name": f"probability of each {label} class", "units": "1"})},
        coords={"clip": clips, "class": np.arange(rec.n_classes)},
        attrs={"title": f"{label} predicted by a {rec.kind} recognizer"})


def run_recognize(args) -> int:
    from pyro_videossm.models.video.recognizer import load_recognizer

    if args.batch_size < 1:
        raise InputError(f"--batch-size must be >= 1, got {args.batch_size}")
    if args.output is not None and args.output.suffix not in SUFFIXES:
        raise InputError(f"-o {args.output}: write .nc or .json predictions")
    rec, _ = load_recognizer(args.model, device=args.device)
    ds = _clips(args.data, args.split)
    x = frames_tensor(ds, str(args.data), channels=rec.channels, size=rec.size)
    y = None
    if rec.label in ds.data_vars:
        y = labels_tensor(ds, [rec.label], str(args.data), {rec.label: rec.n_classes})[rec.label]
    prob = rec.predict_proba(x, args.batch_size).numpy()
    pred = prob.argmax(-1)
    acc = None if y is None else float((torch.as_tensor(pred) == y).float().mean())
    if acc is not None:
        print(f"{rec.label} accuracy on {len(pred)} clips: {acc:.2%}")
    else:
        counts = np.bincount(pred, minlength=rec.n_classes)
        names = rec.class_names or [str(k) for k in range(rec.n_classes)]
        print(f"{len(pred)} clips, no {rec.label!r} labels; predicted: "
              + ", ".join(f"{n} {c}" for n, c in zip(names, counts) if c))
    if args.output is None:
        return 0
    clips = ds["clip"].values if "clip" in ds.coords else np.arange(len(pred))
    if args.output.suffix == ".nc":
        write_netcdf(predictions_dataset(rec, pred, prob, clips), args.output)
    else:
        payload = {"label": rec.label, "kind": rec.kind, "classes": rec.class_names,
                   "clip": np.asarray(clips).tolist(), "predicted": pred.tolist(),
                   "probability": np.round(prob, 6).tolist(), "accuracy": acc}
        with atomic_path(args.output) as tmp:
            tmp.write_text(json.dumps(payload) + "\n")
    say(f"wrote {args.output}")
    return 0
