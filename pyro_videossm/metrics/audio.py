"""Scores of generated sound against the true sound of a clip.

- **Log-spectral distance** (:func:`log_spectral_distance`), in dB, on STFT magnitudes
  ``X = |STFT(x)|``, ``Y = |STFT(y)|`` (``n_fft`` 512, hop 160 = 10 ms at 16 kHz, Hann
  window)::

      LSD = 1/T sum_t sqrt( 1/F sum_f (20 log10 max(X_tf, a) - 20 log10 max(Y_tf, a))^2 )

  with a floor ``a`` (``amin``, default 1e-5) so that silence stays finite. ``LSD(x, x) = 0``,
  and ``LSD(k x, x) = |20 log10 k|`` wherever both magnitudes are above the floor.
- **Onset F1** (:func:`onset_f1`, :func:`audio_onset_f1`): onsets found by librosa's onset
  detector (:func:`detect_onsets`) in the generated audio are matched one to one to the
  reference onsets (those detected in the true audio, or known event times) within
  ``+-tolerance`` (50 ms) by an optimal assignment (most matches, then the smallest total
  time error; :func:`match_onsets`); precision = matches / generated onsets, recall =
  matches / reference onsets, F1 their harmonic mean (1 when both are empty).
- **Audio-video offset** (:func:`onset_offset`): the lag, within ``+-max_lag`` (0.2 s), that
  maximises the cross-correlation of the two onset-strength envelopes (librosa's spectral
  flux, hop 10 ms, mean removed), refined by a parabola through the peak and its neighbours;
  positive when the generated sound comes late. A set of clips is summarised by the median
  absolute offset in milliseconds (:func:`median_abs_offset_ms`).

The functions take 1-D float arrays (one clip); librosa is imported inside them (the
``[audio]`` extra).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from pyro_videossm.errors import InputError

SAMPLE_RATE = 16000
N_FFT = 512
HOP = 160
TOLERANCE = 0.05


def _mono(x, name: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 1 or x.size == 0:
        raise InputError(f"{name} must be a non-empty 1-D waveform, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise InputError(f"{name} contains NaN or infinite samples")
    return x


def stft_magnitude(audio, n_fft: int = N_FFT, hop: int = HOP) -> np.ndarray:
    """``|STFT|`` of a waveform ``(samples,)`` -> ``(n_fft // 2 + 1, frames)`` (Hann window,
    centred frames, librosa)."""
    import librosa

    return np.abs(librosa.stft(_mono(audio, "audio"), n_fft=n_fft, hop_length=hop))


def spectral_distance_db(magnitude, reference, amin: float = 1e-5) -> float:
    """The log-spectral distance (dB) of two magnitude spectrograms ``(freq, frames)`` of one
    shape (the formula of the module doc)."""
    a, b = np.asarray(magnitude, np.float64), np.asarray(reference, np.float64)
    if a.shape != b.shape or a.ndim != 2:
        raise InputError(f"spectrograms must be 2-D of one shape, got {a.shape} and {b.shape}")
    diff = 20 * np.log10(np.maximum(a, amin)) - 20 * np.log10(np.maximum(b, amin))
    return float(np.mean(np.sqrt(np.mean(diff**2, axis=0))))


def log_spectral_distance(generated, reference, n_fft: int = N_FFT, hop: int = HOP,
                          amin: float = 1e-5) -> float:
    """Log-spectral distance in dB between two waveforms (cut to the shorter one)."""
    g, r = _mono(generated, "generated audio"), _mono(reference, "reference audio")
    n = min(len(g), len(r))
    return spectral_distance_db(stft_magnitude(g[:n], n_fft, hop),
                                stft_magnitude(r[:n], n_fft, hop), amin)


def onset_envelope(audio, sample_rate: int = SAMPLE_RATE, hop: int = HOP) -> np.ndarray:
    """librosa's onset strength (spectral flux of its default 128-band mel spectrogram,
    ``n_fft`` 2048, reflected edges), one value per hop, aligned with centred frames.

    librosa pads the start of the envelope with zeros to centre it; here the padding is the
    envelope's median instead, so that the start of a clip is not taken for an onset.
    """
    import librosa

    n_fft = 2048
    y = _mono(audio, "audio")
    env = librosa.onset.onset_strength(y=y, sr=sample_rate, hop_length=hop, n_fft=n_fft,
                                       pad_mode="reflect", center=False)
    n_frames = 1 + len(y) // hop
    shift = n_fft // (2 * hop)
    env = env[1:]
    return np.concatenate([np.full(1 + shift, np.median(env) if env.size else 0.0),
                           env])[:n_frames]


def detect_onsets(audio, sample_rate: int = SAMPLE_RATE, hop: int = HOP) -> np.ndarray:
    """Onset times (s) found by ``librosa.onset.onset_detect`` (default peak picking)."""
    import librosa

    env = onset_envelope(audio, sample_rate, hop)
    return librosa.onset.onset_detect(onset_envelope=env, sr=sample_rate, hop_length=hop,
                                      units="time")


def match_onsets(estimated, reference, tolerance: float = TOLERANCE
                 ) -> list[tuple[int, int]]:
    """The largest one-to-one matching of ``estimated`` to ``reference`` times with
    ``|difference| <= tolerance``, of least total difference among the largest:
    ``[(i_estimated, i_reference), ...]``."""
    from scipy.optimize import linear_sum_assignment

    e = np.asarray(estimated, np.float64).ravel()
    r = np.asarray(reference, np.float64).ravel()
    e, r = e[np.isfinite(e)], r[np.isfinite(r)]
    if e.size == 0 or r.size == 0:
        return []
    dist = np.abs(e[:, None] - r[None, :])
    ok = dist <= tolerance + 1e-9
    # a match outside the tolerance costs more than any set of matches inside it
    cost = np.where(ok, dist, 1.0 + tolerance * (min(e.size, r.size) + 1))
    rows, cols = linear_sum_assignment(cost)
    return [(int(i), int(j)) for i, j in zip(rows, cols, strict=True) if ok[i, j]]


@dataclass(frozen=True)
class OnsetScore:
    """Onset precision, recall and F1, with the counts they come from."""

    precision: float
    recall: float
    f1: float
    matched: int
    estimated: int
    reference: int


def onset_f1(estimated, reference, tolerance: float = TOLERANCE) -> OnsetScore:
    """Precision, recall and F1 of onset times ``estimated`` against ``reference`` (seconds;
    NaN entries ignored) with one-to-one matching within ``+-tolerance``."""
    e = np.asarray(estimated, np.float64).ravel()
    r = np.asarray(reference, np.float64).ravel()
    n_e, n_r = int(np.isfinite(e).sum()), int(np.isfinite(r).sum())
    m = len(match_onsets(e, r, tolerance))
    if n_e == 0 and n_r == 0:
        return OnsetScore(1.0, 1.0, 1.0, 0, 0, 0)
    p = m / n_e if n_e else 0.0
    q = m / n_r if n_r else 0.0
    f = 2 * p * q / (p + q) if p + q > 0 else 0.0
    return OnsetScore(p, q, f, m, n_e, n_r)


def audio_onset_f1(generated, reference, sample_rate: int = SAMPLE_RATE,
                   tolerance: float = TOLERANCE) -> OnsetScore:
    """Onset F1 of the onsets detected in ``generated`` against those detected in
    ``reference`` (two waveforms)."""
    return onset_f1(detect_onsets(generated, sample_rate), detect_onsets(reference, sample_rate),
                    tolerance)


def envelope_lag(envelope, reference, max_lag: int) -> float:
    """The lag (in envelope steps, sub-step by a parabola through the peak) that maximises
    ``sum_t envelope[t] reference[t - lag]`` over ``|lag| <= max_lag`` (means removed);
    positive when ``envelope`` comes late. 0 when either envelope is constant."""
    a = np.asarray(envelope, np.float64)
    b = np.asarray(reference, np.float64)
    n = min(len(a), len(b))
    a, b = a[:n] - a[:n].mean(), b[:n] - b[:n].mean()
    if not np.any(a) or not np.any(b):
        return 0.0
    max_lag = int(min(max_lag, n - 1))
    lags = np.arange(-max_lag, max_lag + 1)
    corr = np.array([np.dot(a[max(0, k):n + min(0, k)], b[max(0, -k):n - max(0, k)])
                     for k in lags])
    i = int(np.argmax(corr))
    shift = 0.0
    if 0 < i < len(lags) - 1:
        y0, y1, y2 = corr[i - 1], corr[i], corr[i + 1]
        denom = y0 - 2 * y1 + y2
        if denom < 0:
            shift = float(np.clip(0.5 * (y0 - y2) / denom, -0.5, 0.5))
    return float(lags[i] + shift)


def onset_offset(generated, reference, sample_rate: int = SAMPLE_RATE, hop: int = HOP,
                 max_lag: float = 0.2) -> float:
    """The audio offset (s) of ``generated`` against ``reference``: the lag of the largest
    cross-correlation of their onset envelopes within ``+-max_lag`` s (positive: late)."""
    g, r = _mono(generated, "generated audio"), _mono(reference, "reference audio")
    n = min(len(g), len(r))
    steps = envelope_lag(onset_envelope(g[:n], sample_rate, hop),
                         onset_envelope(r[:n], sample_rate, hop),
                         int(round(max_lag * sample_rate / hop)))
    return steps * hop / sample_rate


def median_abs_offset_ms(offsets_s: Iterable[float]) -> float:
    """The median absolute offset in milliseconds of per-clip offsets in seconds."""
    v = np.abs(np.asarray(list(offsets_s), np.float64))
    if v.size == 0:
        raise InputError("no offsets to summarise")
    return float(np.median(v) * 1000.0)
