"""Content stability over a clip: does the judge see the same content in every frame?

The judge's frame heads (:meth:`~pyro_videossm.evaluation.judge.Judge.predict_frames_proba`)
classify each frame's content (a colour, a shape) on its own. For each clip and content label:

* ``agreement``: the fraction of frames whose predicted class is the clip's most frequent one
  (1 for a perfectly stable clip; ``1 / T`` at worst for ``T`` frames);
* ``flip_rate``: the fraction of consecutive frame pairs whose predictions differ (0 when
  stable);
* ``frame_accuracy`` (when the condition is known): the fraction of frames predicted as the
  condition.

Each is averaged over the clips. Real clips of the judge's data score close to 1, 0 and the
judge's frame accuracy: report those next to a generator's numbers.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor

from pyro_videossm.errors import InputError


def content_stability(frame_probs: Mapping[str, Tensor],
                      conditions: Mapping[str, Tensor] | None = None) -> dict[str, dict]:
    """Stability scores ``{label: {"agreement", "flip_rate"[, "frame_accuracy"]}}`` of
    per-frame probabilities ``{label: (N, T, K)}`` (module doc)."""
    out = {}
    for k, p in frame_probs.items():
        if p.dim() != 3 or p.shape[0] < 1 or p.shape[1] < 2:
            raise InputError(f"frame probabilities of {k!r} must be (N, T >= 2, K), got "
                             f"{tuple(p.shape)}")
        pred = p.argmax(-1)  # (N, T)
        mode = torch.mode(pred, dim=1).values  # (N,)
        scores = {"agreement": float((pred == mode[:, None]).double().mean()),
                  "flip_rate": float((pred[:, 1:] != pred[:, :-1]).double().mean())}
        if conditions is not None and k in conditions:
            y = torch.as_tensor(conditions[k]).long().reshape(-1, 1)
            scores["frame_accuracy"] = float((pred == y).double().mean())
        out[k] = scores
    return out
