"""The judge's feature spaces and the Fréchet distances measured in them.

* **judge-FID** — the Fréchet distance (:mod:`pyro_videossm.evaluation.frechet`) between the
  judge's *frame* features (its frame encoder's output, every frame of every clip) of generated
  and of real clips;
* **judge-FVD analogue** — the same between the judge's *clip* features (the bidirectional
  LSTM summary its clip heads read).

They play the parts of FID and FVD with a network trained here on the data set's own labels
instead of a downloaded Inception / I3D network: lower is closer to the real clips; values are
comparable only between models scored by the same judge file. :func:`feature_statistics` of
the real test clips are stored in the judge file (``extra["reference"]``) by ``videossm train
video-judge``, so that generated clips can be scored without the real data at hand.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from torch import Tensor

from pyro_videossm.errors import InputError
from pyro_videossm.evaluation.frechet import frechet_distance, gaussian_statistics
from pyro_videossm.evaluation.judge import Judge

#: The two feature spaces: frame encoder features and clip summaries.
SPACES = ("frame", "clip")


@torch.no_grad()
def judge_features(judge: Judge, frames: Tensor, batch_size: int = 64) -> dict[str, Tensor]:
    """``{"frame": (N * T, feature_dim), "clip": (N, 2 hidden_dim)}`` of clips ``frames (N, T,
    C, S, S)``."""
    was = judge.training
    judge.eval()
    device = next(judge.parameters()).device
    fr, cl = [], []
    for s in range(0, frames.shape[0], batch_size):
        e, summary = judge.features(frames[s:s + batch_size].to(device))
        fr.append(e.flatten(0, 1).cpu())
        cl.append(summary.cpu())
    judge.train(was)
    if not cl:
        raise InputError("no clips to compute judge features of")
    return {"frame": torch.cat(fr), "clip": torch.cat(cl)}


def feature_statistics(judge: Judge, frames: Tensor, batch_size: int = 64) -> dict:
    """Gaussian statistics of the judge features of ``frames``: ``{"frame": {"mean", "cov",
    "n"}, "clip": {...}}`` (float64 tensors: storable in a model file)."""
    feats = judge_features(judge, frames, batch_size)
    out = {}
    for space in SPACES:
        mu, cov = gaussian_statistics(feats[space])
        out[space] = {"mean": torch.as_tensor(mu), "cov": torch.as_tensor(cov),
                      "n": int(feats[space].shape[0])}
    return out


def judge_frechet_distances(judge: Judge, frames: Tensor, reference: Mapping,
                            batch_size: int = 64) -> dict[str, float]:
    """``{"judge_fid": ..., "judge_fvd": ...}`` of clips ``frames`` against ``reference`` (the
    :func:`feature_statistics` of real clips)."""
    ours = feature_statistics(judge, frames, batch_size)
    out = {}
    for space, name in zip(SPACES, ("judge_fid", "judge_fvd")):
        if space not in reference:
            raise InputError(f"reference statistics lack the {space!r} features")
        ref = reference[space]
        out[name] = frechet_distance(ours[space]["mean"].numpy(), ours[space]["cov"].numpy(),
                                     np.asarray(ref["mean"], np.float64),
                                     np.asarray(ref["cov"], np.float64))
    return out
