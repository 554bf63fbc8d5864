"""Accuracy of generated clips on the conditions they were generated with, seen vs unseen.

A conditional generator is asked for clips of given labels (an action, a content); a trusted
:class:`~pyro_videossm.evaluation.judge.Judge` classifies the clips and its argmax is compared
with the condition, label by label and jointly (every condition right). With a zero-shot split
the accuracies are reported separately for clips of combinations seen in training and of unseen
ones (the ``unseen`` flag of each clip); chance is ``1 / K`` for a label of ``K`` classes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from torch import Tensor

from pyro_videossm.errors import InputError


def _mean(x: Tensor) -> float:
    return float(x.double().mean()) if x.numel() else math.nan


def condition_accuracy(probs: Mapping[str, Tensor], conditions: Mapping[str, Tensor],
                       unseen: Tensor | None = None) -> dict:
    """Accuracies of judge probabilities ``probs {label: (N, K)}`` on ``conditions {label:
    (N,)}`` (the labels present in both are scored).

    Returns ``{"labels": {label: {"all", "seen", "unseen", "chance"}}, "joint": {"all",
    "seen", "unseen"}, "counts": {"all", "seen", "unseen"}}``; without ``unseen (N,)`` (bool
    or 0/1) every clip counts as seen; a part without clips has NaN accuracy.
    """
    names = [k for k in conditions if k in probs]
    if not names:
        raise InputError(f"no condition the judge can score: conditions {sorted(conditions)}, "
                         f"judge labels {sorted(probs)}")
    n = len(conditions[names[0]])
    flag = (torch.zeros(n, dtype=torch.bool) if unseen is None
            else torch.as_tensor(unseen).reshape(-1).bool())
    if len(flag) != n or any(len(conditions[k]) != n or probs[k].shape[0] != n
                             for k in names):
        raise InputError("conditions, unseen flags and judge probabilities differ in length")
    parts = {"all": torch.ones(n, dtype=torch.bool), "seen": ~flag, "unseen": flag}
    right = {k: probs[k].argmax(-1) == torch.as_tensor(conditions[k]).long() for k in names}
    joint = torch.stack(list(right.values())).all(0)
    out = {"labels": {}, "joint": {p: _mean(joint[m]) for p, m in parts.items()},
           "counts": {p: int(m.sum()) for p, m in parts.items()}}
    for k in names:
        out["labels"][k] = {p: _mean(right[k][m]) for p, m in parts.items()}
        out["labels"][k]["chance"] = 1.0 / probs[k].shape[1]
    return out
