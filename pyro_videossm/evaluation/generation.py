"""Scores of a file of generated clips: the generation half of the judge protocol.

Generated clips are a video Dataset like real ones: ``frames(clip, time, channel, y, x)`` in
[0, 1], one integer variable on ``clip`` per condition the generator was given, named like the
real data's labels (``motion`` and ``top`` for the sprites; ``action``, ``shape``, ``colour``
for shapes-rgbd), optionally ``unseen`` (0/1: the combination was never in training; see
:func:`pyro_videossm.data.sprites_zero_shot.mark_unseen`) and ``depth(clip, time, y, x)`` in
world units. :func:`evaluate_generation` reports, with a trusted
:class:`~pyro_videossm.evaluation.judge.Judge`:

* ``accuracy``: the judge's accuracy on each condition and jointly, for all, seen and unseen
  clips (:mod:`~pyro_videossm.evaluation.condition_accuracy`);
* ``inception``: the inception score (IS) and entropies per judge label
  (:func:`~pyro_videossm.evaluation.disentanglement.classification_scores`);
* ``judge_fid`` / ``judge_fvd``: the Fréchet distances in the judge's frame / clip features to
  the real clips' statistics (:mod:`~pyro_videossm.evaluation.judge_space`);
* ``content_stability`` for the judge's frame labels
  (:mod:`~pyro_videossm.evaluation.content_stability`);
* ``depth_consistency`` with a depth estimator, when the clips have a depth
  (:mod:`~pyro_videossm.evaluation.depth_consistency`).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
import xarray as xr

from pyro_videossm.data.sprites import frames_tensor, labels_tensor
from pyro_videossm.errors import InputError
from pyro_videossm.evaluation.condition_accuracy import condition_accuracy
from pyro_videossm.evaluation.content_stability import content_stability
from pyro_videossm.evaluation.depth_consistency import depth_consistency
from pyro_videossm.evaluation.depth_estimator import DepthEstimator
from pyro_videossm.evaluation.disentanglement import classification_scores
from pyro_videossm.evaluation.judge import Judge
from pyro_videossm.evaluation.judge_space import feature_statistics, judge_frechet_distances


def condition_labels(ds: xr.Dataset, judge: Judge) -> list[str]:
    """The judge's labels that ``ds`` carries as integer variables on ``clip`` (the
    conditions to score), in the judge's order."""
    return [k for k in judge.labels
            if k in ds.data_vars and tuple(ds[k].dims) == ("clip",)]


def unseen_flags(ds: xr.Dataset) -> torch.Tensor | None:
    """The ``unseen`` variable as a bool tensor, or None without one."""
    if "unseen" not in ds.data_vars:
        return None
    v = np.asarray(ds["unseen"].values)
    if tuple(ds["unseen"].dims) != ("clip",) or not np.isin(v, (0, 1)).all():
        raise InputError("'unseen' must be 0 or 1 on dimension 'clip'")
    return torch.as_tensor(v.astype(bool))


def evaluate_generation(clips: xr.Dataset, judge: Judge, *, reference: Mapping | None = None,
                        real: xr.Dataset | None = None,
                        depth_estimator: DepthEstimator | None = None,
                        batch_size: int = 64) -> dict:
    """Scores of generated ``clips`` (module doc). The Fréchet distances use ``reference``
    statistics (the judge file's ``extra["reference"]``) or, when given, those of the ``real``
    clips; without either they are None. ``depth_consistency`` needs both a depth estimator
    and a ``depth`` variable (None otherwise)."""
    x = frames_tensor(clips, "generated clips", channels=judge.channels, size=judge.size)
    names = condition_labels(clips, judge)
    conditions = labels_tensor(clips, names, "generated clips", judge.labels)
    probs = judge.predict_proba(x, batch_size)
    out: dict = {"clips": int(x.shape[0]), "frames": int(x.shape[1]), "conditions": names}
    out["accuracy"] = (condition_accuracy(probs, conditions, unseen_flags(clips))
                       if names else None)
    out["inception"] = {k: classification_scores(p) for k, p in probs.items()}
    if real is not None:
        xr_ = frames_tensor(real, "real clips", channels=judge.channels, size=judge.size)
        reference = feature_statistics(judge, xr_, batch_size)
    out["judge_fid"] = out["judge_fvd"] = None
    if reference is not None:
        if x.shape[0] < 2:
            raise InputError("the Fréchet distances need at least 2 generated clips")
        out.update(judge_frechet_distances(judge, x, reference, batch_size))
    out["content_stability"] = (content_stability(judge.predict_frames_proba(x, batch_size),
                                                  conditions)
                                if judge.frame_labels else None)
    out["depth_consistency"] = None
    if depth_estimator is not None and "depth" in clips.data_vars:
        from pyro_videossm.data.shapes_rgbd import depth_tensor

        out["depth_consistency"] = depth_consistency(
            depth_estimator, x, depth_tensor(clips, "generated clips"), batch_size)
    return out


def summary_rows(result: Mapping, name: str = "generated") -> list[dict]:
    """Rows of a markdown table of :func:`evaluate_generation`'s result: one per condition
    (accuracy all / seen / unseen, chance, IS) and one joint row with the distances."""
    rows = []
    acc = result.get("accuracy") or {"labels": {}, "joint": {}}
    for label, a in acc["labels"].items():
        rows.append({"model": name, "label": label, "accuracy": a["all"], "seen": a["seen"],
                     "unseen": a["unseen"], "chance": a["chance"],
                     "IS": result["inception"][label]["IS"]})
    if acc["joint"]:
        j = acc["joint"]
        rows.append({"model": name, "label": "joint", "accuracy": j["all"], "seen": j["seen"],
                     "unseen": j["unseen"], "chance": float(np.prod(
                         [a["chance"] for a in acc["labels"].values()])), "IS": float("nan")})
    return rows
