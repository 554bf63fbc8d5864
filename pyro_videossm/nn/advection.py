"""Semi-Lagrangian advection of fields by a motion field, and the motion of a context.

The flow convention is :mod:`pyro_videossm.data.optical_flow`'s: ``flow`` (pixels, channel 0
``u`` along ``x``, channel 1 ``v`` along ``y``) moves a field one step forward by backward
warping, ``next(x) = prev(x - flow(x))``. :func:`semi_lagrangian_step` does that step with
``torch.nn.functional.grid_sample`` (bilinear; departure points outside the grid read 0,
i.e. nothing flows in from outside; ``bicubic`` smooths less over many steps than
``bilinear``, whose repeated interpolation blurs a field moving a fraction of a pixel per
step). :func:`context_motion` estimates one flow per sequence
from the last frames of a context with OpenCV (once per forecast or training batch, never per
time step).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from pyro_videossm.errors import InputError

INTERPOLATIONS = ("bilinear", "bicubic")


def semi_lagrangian_step(field: Tensor, flow: Tensor, mode: str = "bilinear") -> Tensor:
    """``field`` ``(N, C, H, W)`` moved one step by ``flow`` ``(N, 2, H, W)`` (pixels):
    ``out(x) = field(x - flow(x))``, interpolated (``mode``: ``bilinear`` or ``bicubic``),
    0 outside the grid. An integer flow shifts exactly."""
    if mode not in INTERPOLATIONS:
        raise InputError(f"interpolation must be one of {', '.join(INTERPOLATIONS)}, got "
                         f"{mode!r}")
    if field.dim() != 4 or flow.dim() != 4 or flow.shape[1] != 2:
        raise InputError(f"expected field (N, C, H, W) and flow (N, 2, H, W), got "
                         f"{tuple(field.shape)} and {tuple(flow.shape)}")
    N, _, H, W = field.shape
    ys = torch.arange(H, dtype=field.dtype, device=field.device)
    xs = torch.arange(W, dtype=field.dtype, device=field.device)
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    dep_x = gx - flow[:, 0]  # departure points (N, H, W), pixels
    dep_y = gy - flow[:, 1]
    # align_corners=True: -1 and 1 are the centres of the first and last pixels
    grid = torch.stack([2 * dep_x / max(W - 1, 1) - 1, 2 * dep_y / max(H - 1, 1) - 1], dim=-1)
    return F.grid_sample(field, grid.expand(N, H, W, 2), mode=mode,
                         padding_mode="zeros", align_corners=True)


def context_motion(frames: Tensor, frames_used: int = 3, method: str = "dis") -> Tensor:
    """One flow per sequence: the mean OpenCV flow (:func:`~pyro_videossm.data.optical_flow.
    estimate_flow`) between consecutive frames among the last ``frames_used`` of ``frames``
    ``(B, T, H, W)`` (values in ``[0, 1]``, e.g. a log-transformed rain rate) ->
    ``(B, 2, H, W)`` pixels per step. Needs ``T >= 2``; an all-constant context gives 0."""
    from pyro_videossm.data.optical_flow import estimate_flow

    if frames.dim() != 4:
        raise InputError(f"context_motion needs frames (B, T, H, W), got {tuple(frames.shape)}")
    B, T = frames.shape[:2]
    if T < 2 or frames_used < 2:
        raise InputError(f"the optical flow needs at least 2 context frames, got {T} "
                         f"(frames_used {frames_used})")
    use = frames[:, -min(frames_used, T):].detach().cpu().double().numpy()
    out = np.zeros((B, 2, *frames.shape[-2:]))
    for b in range(B):
        seq = use[b]
        if not np.any(seq != seq[0]):  # nothing moves (e.g. all dry): no flow
            continue
        out[b] = np.mean([estimate_flow(seq[t - 1], seq[t], method)
                          for t in range(1, len(seq))], axis=0)
    return torch.as_tensor(out, dtype=frames.dtype, device=frames.device)


__all__ = ["INTERPOLATIONS", "context_motion", "semi_lagrangian_step"]
