"""Scores of animated stills (flow style transfer): reconstruction, motion and appearance.

Arrays are clips ``(N, T, H, W)`` in ``[0, 1]``; frame 0 is the source (given, not scored).

* **self-reconstruction** (the driving video is the clip the source comes from): mean
  absolute error (:func:`reconstruction_l1`), SSIM (:func:`reconstruction_ssim`, the SSIM of
  :mod:`pyro_videossm.metrics.fields`) and the fractions skill score at a threshold and a
  neighbourhood (:func:`reconstruction_fss`) against the real frames ``1..T-1``; NaN pixels of
  the real frames are left out;
* **motion fidelity** (:func:`motion_epe`): end-point error (pixels) between the OpenCV
  optical flow of the generated clip and the driving flow, frames ``1..T-1``;
* **appearance fidelity** (:func:`spectrum_distance`): mean absolute difference of the
  ``log10`` radially averaged power spectra (:func:`radial_power_spectrum`) of the generated
  frames ``1..T-1`` and of the source frames.

:func:`score_animation` gives them all as a dict.
"""

from __future__ import annotations

import numpy as np
import torch

from pyro_videossm.errors import InputError
from pyro_videossm.metrics.fields import fractions, ssim_frames


def _clips(x: np.ndarray, name: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 4 or x.shape[1] < 2:
        raise InputError(f"{name} must be clips (N, T >= 2, H, W), got shape {x.shape}")
    return x


def _pair(generated: np.ndarray, real: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    g, r = _clips(generated, "generated"), _clips(real, "real")
    if g.shape != r.shape:
        raise InputError(f"generated {g.shape} and real {r.shape} clips differ in shape")
    return g[:, 1:], r[:, 1:]


def reconstruction_l1(generated: np.ndarray, real: np.ndarray) -> float:
    """Mean absolute error over frames ``1..T-1`` (NaN in ``real`` left out)."""
    g, r = _pair(generated, real)
    return float(np.nanmean(np.abs(g - r)))


def reconstruction_ssim(generated: np.ndarray, real: np.ndarray, sigma: float = 1.5) -> float:
    """Mean SSIM (data range 1) over frames ``1..T-1``."""
    g, r = _pair(generated, real)
    h, w = g.shape[-2:]
    vals = ssim_frames(torch.from_numpy(g.reshape(-1, h, w)),
                       torch.from_numpy(r.reshape(-1, h, w)), 1.0, sigma=sigma).numpy()
    return float(np.nanmean(vals))


def reconstruction_fss(generated: np.ndarray, real: np.ndarray, threshold: float = 0.2,
                       scale: int = 5) -> float:
    """Fractions skill score of the cloud mask ``value >= threshold`` in ``scale x scale``
    neighbourhoods, over frames ``1..T-1`` pooled (NaN where neither has cloud)."""
    g, r = _pair(generated, real)
    ok = ~np.isnan(r)
    pf = fractions(np.nan_to_num(g, nan=-np.inf) >= threshold, scale)
    po = fractions(np.nan_to_num(r, nan=-np.inf) >= threshold, scale)
    num = np.where(ok, (pf - po) ** 2, 0.0).sum()
    den = np.where(ok, pf ** 2 + po ** 2, 0.0).sum()
    return float(1.0 - num / den) if den > 0 else float("nan")


def radial_power_spectrum(frames: np.ndarray) -> np.ndarray:
    """Radially averaged power spectrum of frames ``(..., H, W)`` (each frame's mean
    removed), averaged over the leading dims: one value per integer radius
    ``1..min(H, W) // 2`` of the wavenumber in grid units."""
    x = np.asarray(frames, dtype=np.float64)
    h, w = x.shape[-2:]
    x = np.nan_to_num(x - np.nanmean(x, axis=(-2, -1), keepdims=True))
    power = np.abs(np.fft.fft2(x)) ** 2 / (h * w)
    power = power.reshape(-1, h, w).mean(axis=0)
    ky, kx = np.meshgrid(np.fft.fftfreq(h) * h, np.fft.fftfreq(w) * w, indexing="ij")
    radius = np.rint(np.hypot(ky * min(h, w) / h, kx * min(h, w) / w)).astype(int)
    n = min(h, w) // 2
    sums = np.bincount(radius.ravel(), power.ravel(), minlength=n + 1)
    counts = np.bincount(radius.ravel(), minlength=n + 1)
    return sums[1:n + 1] / np.maximum(counts[1:n + 1], 1)


def spectrum_distance(generated: np.ndarray, source: np.ndarray) -> float:
    """Mean ``|log10 P_generated(k) - log10 P_source(k)|`` over ``k = 1..min(H, W) // 2``:
    generated clips ``(N, T, H, W)`` (frames ``1..T-1``) against source frames ``(N, H, W)``."""
    g = _clips(generated, "generated")[:, 1:]
    s = np.asarray(source, dtype=np.float64)
    if s.shape != (g.shape[0], *g.shape[2:]):
        raise InputError(f"sources must be (N, H, W) = {(g.shape[0], *g.shape[2:])}, got "
                         f"{s.shape}")
    eps = 1e-12
    return float(np.mean(np.abs(np.log10(radial_power_spectrum(g) + eps)
                                - np.log10(radial_power_spectrum(s) + eps))))


def motion_epe(generated: np.ndarray, driving_flows: np.ndarray, method: str = "dis") -> float:
    """End-point error (pixels) between the optical flow of the generated clips and the
    driving flows ``(N, T, 2, H, W)``, frames ``1..T-1``."""
    from pyro_videossm.data.optical_flow import end_point_error, estimate_flows

    g = _clips(generated, "generated")
    f = np.asarray(driving_flows, dtype=np.float64)
    if f.shape != (g.shape[0], g.shape[1], 2, *g.shape[2:]):
        raise InputError(f"driving flows must be (N, T, 2, H, W) matching the clips "
                         f"{g.shape}, got {f.shape}")
    errors = [end_point_error(estimate_flows(clip, method)[1:], flow[1:])
              for clip, flow in zip(g, f)]
    return float(np.mean(errors))


def score_animation(generated: np.ndarray, driving_flows: np.ndarray, source: np.ndarray,
                    real: np.ndarray | None = None, *, threshold: float = 0.2, scale: int = 5,
                    flow_method: str = "dis") -> dict[str, float]:
    """Every score of the module doc; the reconstruction scores only with ``real`` (the
    clips the sources ``(N, H, W)`` come from)."""
    g = _clips(generated, "generated")
    out = {"motion_epe": motion_epe(g, driving_flows, flow_method),
           "spectrum_distance": spectrum_distance(g, source)}
    if real is not None:
        out.update(l1=reconstruction_l1(g, real), ssim=reconstruction_ssim(g, real),
                   fss=reconstruction_fss(g, real, threshold, scale))
    return out
