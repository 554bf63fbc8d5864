"""Baselines of sound from video, on numpy arrays.

* **class average** (an oracle: it is told the true food class): every spectrogram frame is the
  mean log-amplitude spectrum of the training clips of that class (mean over clips and their
  valid frames), :func:`class_average_spectra`;
* **retrieval**: the audio of the training clip whose visual features are nearest (Euclidean,
  features standardised on the training clips), :func:`retrieval_features` and
  :func:`nearest_training_clip`; the features are the clip's mean face crop at 8×8 pixels
  (colours of the face and the food) and the per-pixel standard deviation over time (where
  and how much things move);
* **silence**: the log-amplitude of silence everywhere (a zero waveform).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def class_average_spectra(log_specs: np.ndarray, spec_mask: np.ndarray, labels: np.ndarray,
                          n_classes: int, fill: float) -> np.ndarray:
    """Mean log-spectrum ``(n_classes, F)`` of spectrograms ``(N, K, F)`` over the valid frames
    (``spec_mask (N, K)``) of the clips of each class; ``fill`` for a class without clips."""
    out = np.full((n_classes, log_specs.shape[-1]), fill, np.float32)
    for c in range(n_classes):
        sel = (labels == c)[:, None] & spec_mask
        if sel.any():
            out[c] = log_specs[sel].mean(axis=0)
    return out


def retrieval_features(crops: np.ndarray, frame_mask: np.ndarray, size: int = 8) -> np.ndarray:
    """Visual features ``(N, 2 C size²)`` of crops ``(N, T, C, S, S)`` (uint8 or [0, 1]):
    the mean over valid frames and the standard deviation over valid frames of the crops
    averaged down to ``size``×``size`` pixels."""
    x = torch.as_tensor(crops)
    x = x.float() / 255.0 if x.dtype == torch.uint8 else torch.nan_to_num(x.float())
    n, t = x.shape[:2]
    small = F.adaptive_avg_pool2d(x.flatten(0, 1), size).reshape(n, t, -1)
    m = torch.as_tensor(frame_mask, dtype=torch.bool)[..., None].float()
    count = m.sum(1).clamp(min=1)
    mean = (small * m).sum(1) / count
    std = (((small - mean[:, None]) ** 2 * m).sum(1) / count).sqrt()
    return torch.cat([mean, std], dim=-1).numpy()


def nearest_training_clip(train_features: np.ndarray, query_features: np.ndarray) -> np.ndarray:
    """Index ``(M,)`` of the nearest training clip (features standardised with the training
    clips' mean and standard deviation) of each query ``(M, D)``."""
    mu = train_features.mean(0)
    sd = train_features.std(0) + 1e-6
    a = (train_features - mu) / sd
    b = (query_features - mu) / sd
    d2 = (b ** 2).sum(1)[:, None] - 2 * b @ a.T + (a ** 2).sum(1)[None]
    return np.argmin(d2, axis=1)


def fit_length(audio: np.ndarray, length: int) -> np.ndarray:
    """A waveform ``(S,)`` cut or zero-padded to ``length`` samples (NaN -> 0)."""
    audio = np.nan_to_num(np.asarray(audio, np.float32))[:length]
    return np.pad(audio, (0, length - audio.shape[0]))
