"""Optical flow of frames by OpenCV (the ``[video]`` extra: ``opencv-contrib-python-headless``).

The flow follows the convention of :mod:`pyro_videossm.data.clouds`: ``flow(x)`` (pixels,
components ``u`` along ``x``, ``v`` along ``y``) moves ``prev`` into ``next`` by backward
warping, ``next(x) ≈ prev(x - flow(x))``. OpenCV's flow from ``next`` to ``prev`` is
``d`` with ``next(x) ≈ prev(x + d(x))``, so ``flow = -d``.

Methods (:data:`FLOW_METHODS`): ``dis`` (dense inverse search, ``cv2.DISOpticalFlow``) and
``farneback`` (``cv2.calcOpticalFlowFarneback``). Frames are read as values in ``[0, 1]``
and converted to 8 bits, as both methods require.
"""

from __future__ import annotations

import numpy as np

from pyro_videossm.errors import InputError

FLOW_METHODS = ("dis", "farneback")


def _cv2():
    try:
        import cv2
    except ImportError:
        raise InputError("optical flow needs OpenCV: pip install 'pyro-videossm[video]' "
                         "(opencv-contrib-python-headless)") from None
    return cv2


def _to_uint8(frame: np.ndarray) -> np.ndarray:
    frame = np.asarray(frame, dtype=np.float64)
    if frame.ndim != 2:
        raise InputError(f"optical flow needs 2D frames, got shape {frame.shape}")
    return np.round(np.clip(np.nan_to_num(frame), 0.0, 1.0) * 255).astype(np.uint8)


def estimate_flow(prev: np.ndarray, next: np.ndarray, method: str = "dis") -> np.ndarray:
    """Flow ``(2, H, W)`` with ``next(x) ≈ prev(x - flow(x))`` (module doc); frames ``(H, W)``
    in ``[0, 1]`` (NaN read as 0)."""
    cv2 = _cv2()
    a, b = _to_uint8(next), _to_uint8(prev)
    if a.shape != b.shape:
        raise InputError(f"frames of different shapes: {prev.shape} and {next.shape}")
    if method == "dis":
        dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        patch = max(4, min(8, min(a.shape) // 4))
        dis.setPatchSize(patch)
        dis.setPatchStride(max(1, patch // 2))
        d = dis.calc(a, b, None)
    elif method == "farneback":
        d = cv2.calcOpticalFlowFarneback(a, b, None, pyr_scale=0.5, levels=3, winsize=9,
                                         iterations=5, poly_n=5, poly_sigma=1.1, flags=0)
    else:
        raise InputError(f"unknown optical-flow method {method!r} (known: "
                         f"{', '.join(FLOW_METHODS)})")
    return -np.moveaxis(np.asarray(d, dtype=np.float64), -1, 0)


def estimate_flows(frames: np.ndarray, method: str = "dis") -> np.ndarray:
    """Flows ``(T, 2, H, W)`` between consecutive frames ``(T, H, W)``: ``flow[t]`` moves frame
    ``t - 1`` into frame ``t``; ``flow[0] = 0``."""
    frames = np.asarray(frames)
    if frames.ndim != 3:
        raise InputError(f"estimate_flows needs frames (T, H, W), got shape {frames.shape}")
    out = np.zeros((frames.shape[0], 2, *frames.shape[1:]))
    for t in range(1, frames.shape[0]):
        out[t] = estimate_flow(frames[t - 1], frames[t], method)
    return out


def end_point_error(flow: np.ndarray, reference: np.ndarray) -> float:
    """Mean Euclidean distance between two flows ``(..., 2, H, W)`` (pixels)."""
    flow, reference = np.asarray(flow), np.asarray(reference)
    if flow.shape != reference.shape:
        raise InputError(f"flows of different shapes: {flow.shape} and {reference.shape}")
    return float(np.sqrt(((flow - reference) ** 2).sum(axis=-3)).mean())
