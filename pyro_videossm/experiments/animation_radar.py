"""Real radar driving clips for the flow animator: KNMI rain rates as brightness clips.

The KNMI composites (:func:`pyro_videossm.data.radar.load_knmi`, the nowcasting work's reader)
are cropped to a ``box_km`` square around ``center`` (x, y km), coarsened to ``resolution`` km,
cut into consecutive clips of ``frames`` frames (non-overlapping, in time order) and mapped to
brightness in ``[0, 1)`` by :func:`rain_brightness`, ``1 - exp(-R / scale)`` (``scale`` mm/h),
the shading of the procedural clouds. Pixels outside the radar range stay NaN (masked by the
scores; read as 0 by the flow estimator).

:func:`radar_clips` gives ``(N, T, H, W)`` float32, what
:func:`~pyro_videossm.experiments.animation_recipe.evaluate_animation` reads.
"""

from __future__ import annotations

import os

import numpy as np

from pyro_videossm.errors import InputError

#: The nowcasting benchmark's crop centre (x, y km; the centre of the radar range).
KNMI_CENTER = (370.0, -4080.0)


def rain_brightness(rain_rate: np.ndarray, scale: float = 2.0) -> np.ndarray:
    """``1 - exp(-R / scale)`` of rain rates ``R`` (mm/h; NaN kept, negative read as 0)."""
    if scale <= 0:
        raise InputError(f"brightness scale must be positive, got {scale}")
    r = np.asarray(rain_rate, dtype=np.float64)
    out = 1.0 - np.exp(-np.maximum(r, 0.0) / scale)
    return np.where(np.isnan(r), np.nan, out).astype(np.float32)


def rain_clips(rain_rate: np.ndarray, frames: int = 16, scale: float = 2.0) -> np.ndarray:
    """Consecutive non-overlapping clips ``(N, frames, H, W)`` of brightness from rain rates
    ``(time, H, W)`` (the last incomplete clip dropped)."""
    r = np.asarray(rain_rate)
    if r.ndim != 3:
        raise InputError(f"rain rates must be (time, y, x), got shape {r.shape}")
    if frames < 2:
        raise InputError(f"driving clips need at least 2 frames, got {frames}")
    n = r.shape[0] // frames
    if n == 0:
        raise InputError(f"{r.shape[0]} radar frames make no clip of {frames} frames")
    return rain_brightness(r[: n * frames], scale).reshape(n, frames, *r.shape[1:])


def radar_clips(data: str | os.PathLike, *, frames: int = 16, resolution: float = 4.0,
                box_km: float = 256.0, center: tuple[float, float] = KNMI_CENTER,
                scale: float = 2.0) -> np.ndarray:
    """Brightness clips ``(N, frames, H, W)`` of the KNMI composites in folder ``data``
    (module doc); 256 km at 4 km gives 64 x 64 pixels."""
    from pyro_videossm.data.radar import load_knmi

    half = box_km / 2.0
    ds = load_knmi(data, resolution_km=resolution, crop_x=(center[0] - half, center[0] + half),
                   crop_y=(center[1] - half, center[1] + half))
    return rain_clips(ds["rain_rate"].values, frames, scale)
