"""Procedural cloud clips with their true optical flow (``videossm simulate clouds``).

A clip is made in three steps:

1. **Field**: a Gaussian random field with a radially symmetric power-law spectrum
   ``P(k) ∝ |k|^-exponent`` (:func:`power_law_field`: white noise filtered in Fourier space,
   as pysteps' noise generators do), periodic on the grid.
2. **Clouds**: the field thresholded at the ``1 - cover`` quantile and shaded,
   ``image = 1 - exp(-max(field - threshold, 0) / softness)``, values in ``[0, 1)``
   (:func:`shade_clouds`).
3. **Motion**: each frame is the previous one warped by a smooth random flow
   (:func:`random_flow`: translation + rotation + divergence about the centre, each
   coefficient varying slowly and sinusoidally in time) plus growth and decay
   ``growth * tanh(g_t)`` from a second slowly evolving power-law field ``g_t``, clipped to
   ``[0, 1]``: ``frames[t] = clip(F + growth * tanh(g_t), 0, 1)`` with ``F(x) =
   frames[t-1](x - flow[t](x))``.

   The warp (:func:`warp_backward`) is cubic interpolation at the departure points, periodic
   at the edges (the fields are periodic). ``flow[t]`` (pixels per frame, components
   ``u`` along ``x`` and ``v`` along ``y``) moves frame ``t - 1`` into frame ``t``;
   ``flow[0]`` is zero.

Output (:func:`simulate_clouds`): ``frames(clip, time, y, x)`` in ``[0, 1]`` and
``flow(clip, time, component, y, x)`` in pixels per frame.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from pyro_videossm.errors import InputError

#: Flow components, in the order of the ``component`` dimension.
FLOW_COMPONENTS = ("u", "v")


def power_law_field(shape: tuple[int, int], exponent: float,
                    rng: np.random.Generator) -> np.ndarray:
    """A periodic Gaussian field ``(H, W)`` with power spectrum ``∝ |k|^-exponent``.

    White noise is transformed with ``numpy.fft.rfft2``, its amplitude multiplied by
    ``|k|^(-exponent / 2)`` (the mean, ``k = 0``, set to zero), transformed back and scaled to
    zero mean and unit standard deviation.
    """
    h, w = shape
    noise = rng.standard_normal((h, w))
    ky = np.fft.fftfreq(h)[:, None]
    kx = np.fft.rfftfreq(w)[None, :]
    k = np.sqrt(kx ** 2 + ky ** 2)
    k[0, 0] = 1.0
    amplitude = k ** (-exponent / 2.0)
    amplitude[0, 0] = 0.0
    field = np.fft.irfft2(np.fft.rfft2(noise) * amplitude, s=(h, w))
    field -= field.mean()
    return field / max(field.std(), 1e-12)


def shade_clouds(field: np.ndarray, cover: float = 0.5, softness: float = 0.5) -> np.ndarray:
    """Cloud image in ``[0, 1)``: ``1 - exp(-max(field - q, 0) / softness)`` with ``q`` the
    ``1 - cover`` quantile of ``field`` (a fraction ``cover`` of the pixels is cloudy)."""
    if not 0.0 < cover <= 1.0:
        raise InputError(f"cloud cover must be in (0, 1], got {cover}")
    if softness <= 0:
        raise InputError(f"softness must be positive, got {softness}")
    threshold = np.quantile(field, 1.0 - cover)
    return 1.0 - np.exp(-np.maximum(field - threshold, 0.0) / softness)


def warp_backward(image: np.ndarray, flow: np.ndarray, order: int = 3) -> np.ndarray:
    """``image(x - flow(x))``: ``image`` ``(H, W)``, ``flow`` ``(2, H, W)`` (``u``, ``v`` in
    pixels); interpolation of ``order`` (scipy.ndimage), periodic edges."""
    from scipy.ndimage import map_coordinates

    h, w = image.shape
    yy, xx = np.meshgrid(np.arange(h, dtype=np.float64), np.arange(w, dtype=np.float64),
                         indexing="ij")
    coords = np.stack([yy - flow[1], xx - flow[0]])
    return map_coordinates(image, coords, order=order, mode="grid-wrap")


def random_flow(shape: tuple[int, int], frames: int, rng: np.random.Generator, *,
                speed: float = 1.0, rotation: float = 0.02, divergence: float = 0.01,
                variation: float = 0.5) -> np.ndarray:
    """Smooth flows ``(frames, 2, H, W)`` in pixels per frame (``flow[0] = 0``).

    ``u = tx + r * -(y - cy) + d * (x - cx)``, ``v = ty + r * (x - cx) + d * (y - cy)`` about the
    centre ``(cy, cx)``: translation ``(tx, ty) ~ N(0, speed^2)``, rotation ``r ~ N(0,
    rotation^2)`` (radians per frame), divergence ``d ~ N(0, divergence^2)`` (per frame;
    negative: convergence). Each coefficient ``a`` varies in time as
    ``a * (1 + variation * sin(2 pi t / P + phase))`` with a period ``P`` between 1 and 3
    clip lengths, so the motion changes slowly.
    """
    h, w = shape
    yy, xx = np.meshgrid(np.arange(h, dtype=np.float64) - (h - 1) / 2,
                         np.arange(w, dtype=np.float64) - (w - 1) / 2, indexing="ij")
    tx, ty = rng.normal(0.0, speed, 2)
    r = rng.normal(0.0, rotation)
    d = rng.normal(0.0, divergence)
    periods = rng.uniform(1.0, 3.0, 4) * max(frames, 2)
    phases = rng.uniform(0.0, 2 * np.pi, 4)
    out = np.zeros((frames, 2, h, w))
    for t in range(1, frames):
        m = 1.0 + variation * np.sin(2 * np.pi * t / periods + phases)
        a, b, rt, dt = tx * m[0], ty * m[1], r * m[2], d * m[3]
        out[t, 0] = a - rt * yy + dt * xx
        out[t, 1] = b + rt * xx + dt * yy
    return out


def growth_fields(shape: tuple[int, int], frames: int, rng: np.random.Generator,
                  exponent: float, turnover: float = 0.1) -> np.ndarray:
    """Slowly evolving unit-variance fields ``(frames, H, W)``: ``cos(theta_t) a + sin(theta_t)
    b`` for two power-law fields ``a``, ``b`` and ``theta_t = turnover * t``."""
    a = power_law_field(shape, exponent, rng)
    b = power_law_field(shape, exponent, rng)
    theta = turnover * np.arange(frames)
    return np.cos(theta)[:, None, None] * a + np.sin(theta)[:, None, None] * b


def cloud_clip(size: int, frames: int, rng: np.random.Generator, *, exponent: float = 3.0,
               cover: float = 0.5, softness: float = 0.5, speed: float = 0.5,
               rotation: float = 0.02, divergence: float = 0.01, growth: float = 0.03,
               growth_exponent: float = 3.5) -> tuple[np.ndarray, np.ndarray]:
    """One clip: frames ``(T, S, S)`` in ``[0, 1]`` and flow ``(T, 2, S, S)`` (module doc)."""
    shape = (size, size)
    image = shade_clouds(power_law_field(shape, exponent, rng), cover, softness)
    flow = random_flow(shape, frames, rng, speed=speed, rotation=rotation,
                       divergence=divergence)
    grow = growth_fields(shape, frames, rng, growth_exponent) if growth else None
    out = np.empty((frames, size, size))
    out[0] = image
    for t in range(1, frames):
        nxt = warp_backward(out[t - 1], flow[t])
        if grow is not None:
            nxt = nxt + growth * np.tanh(grow[t])
        out[t] = np.clip(nxt, 0.0, 1.0)
    return out, flow


def simulate_clouds(clips: int = 64, frames: int = 16, size: int = 32, seed: int = 0,
                    exponent: float = 3.0, cover: float = 0.5, softness: float = 0.5,
                    speed: float = 0.5, rotation: float = 0.02, divergence: float = 0.01,
                    growth: float = 0.03) -> xr.Dataset:
    """Procedural cloud clips with their true flow (module doc)."""
    if clips < 1 or frames < 2 or size < 8:
        raise InputError(f"clouds need clips >= 1, frames >= 2 and size >= 8, got clips={clips}"
                         f", frames={frames}, size={size}")
    if exponent < 0:
        raise InputError(f"spectral exponent must be >= 0, got {exponent}")
    if not 0 < cover < 1:
        raise InputError(f"cover must be in (0, 1), got {cover}")
    for name, value in (("softness", softness), ("speed", speed), ("rotation", rotation),
                        ("divergence", divergence), ("growth", growth)):
        if not value >= 0:
            raise InputError(f"{name} must be >= 0, got {value}")
    rng = np.random.default_rng(seed)
    all_frames = np.empty((clips, frames, size, size), np.float32)
    all_flow = np.empty((clips, frames, 2, size, size), np.float32)
    for c in range(clips):
        all_frames[c], all_flow[c] = cloud_clip(
            size, frames, rng, exponent=exponent, cover=cover, softness=softness, speed=speed,
            rotation=rotation, divergence=divergence, growth=growth)
    return xr.Dataset(
        {
            "frames": (("clip", "time", "y", "x"), all_frames,
                       {"long_name": "cloud brightness", "units": "1",
                        "valid_min": 0.0, "valid_max": 1.0}),
            "flow": (("clip", "time", "component", "y", "x"), all_flow,
                     {"long_name": "true optical flow moving frame t-1 into frame t "
                                   "(frames[t](x) = frames[t-1](x - flow[t](x)) without "
                                   "growth); zero at time 0",
                      "units": "pixel per frame"}),
        },
        coords={
            "clip": np.arange(clips),
            "time": ("time", np.arange(frames), {"long_name": "frame index", "units": "1"}),
            "component": ("component", list(FLOW_COMPONENTS),
                          {"long_name": "flow component: u along x, v along y"}),
            "y": ("y", np.arange(size), {"long_name": "row", "units": "pixel"}),
            "x": ("x", np.arange(size), {"long_name": "column", "units": "pixel"}),
        },
        attrs={
            "title": "procedural cloud clips with true optical flow",
            "kind": "clouds", "source": "pyro_videossm.data.clouds", "seed": seed,
            "spectral_exponent": exponent, "cover": cover, "softness": softness,
            "speed": speed, "rotation": rotation, "divergence": divergence, "growth": growth,
            "Conventions": "CF-1.8",
        },
    )
