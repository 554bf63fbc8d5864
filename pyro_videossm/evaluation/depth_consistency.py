"""Depth-colour consistency of generated RGB-D clips.

A model that generates colour and depth (DCVGAN, or MoCoGAN with a depth channel) should
generate a depth that matches its colour. A :class:`~pyro_videossm.evaluation.depth_estimator.
DepthEstimator` trained on real pairs estimates the depth of every generated colour frame; the
**consistency error** is the mean absolute difference between that estimate and the generated
depth, in world units (``mae``; ``rmse`` too). The estimator's own error on real test pairs
(stored in its file as ``extra["test_error"]``) is the floor to compare with: a generator
cannot be judged more consistent than the estimator is accurate.
"""

from __future__ import annotations

from torch import Tensor

from pyro_videossm.errors import InputError
from pyro_videossm.evaluation.depth_estimator import DepthEstimator, depth_error


def depth_consistency(estimator: DepthEstimator, frames: Tensor, depth: Tensor,
                      batch_size: int = 256) -> dict[str, float]:
    """Consistency errors (:func:`~pyro_videossm.evaluation.depth_estimator.depth_error`) of
    clips ``frames (N, T, C, S, S)`` with their unit depths ``depth (N, T, 1, S, S)``."""
    if depth.dim() == 4:
        depth = depth.unsqueeze(2)
    if depth.shape[:2] != frames.shape[:2] or depth.shape[-2:] != frames.shape[-2:]:
        raise InputError(f"frames {tuple(frames.shape)} and depth {tuple(depth.shape)} do not "
                         "match")
    return depth_error(estimator.estimate(frames, batch_size), depth)
