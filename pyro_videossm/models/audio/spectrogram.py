"""The spectrogram the audio models predict, and its way back to a waveform.

A clip's audio ``(S,)`` at ``sample_rate`` Hz becomes the log-amplitude of its short-time
Fourier transform (librosa, Hann window of ``n_fft`` samples, ``hop`` samples apart, centred
frames):

    log_spec[k, f] = log(|STFT(audio)[f, k]| + floor),   k = 0 .. K-1,  f = 0 .. n_fft/2

Defaults: 16 kHz, ``n_fft`` 512 (32 ms, 257 frequency bins of 31.25 Hz), ``hop`` 160 (10 ms),
so 100 spectrogram frames per second: 4 per video frame at 25 fps. Spectrogram frame ``k`` is
centred on sample ``k * hop``; video frame ``t`` (samples ``t * 640 .. t * 640 + 639``) owns
spectrogram frames ``4t .. 4t + 3``, so a clip of ``T`` video frames has ``K = 4T`` frames.
A linear (not mel) spectrogram is used so that Griffin–Lim inverts it directly.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from pyro_videossm.errors import InputError


@dataclass(frozen=True)
class SpectrogramSettings:
    """STFT settings; :attr:`frames_per_video_frame` must be a whole number."""

    sample_rate: int = 16000
    n_fft: int = 512
    hop: int = 160
    fps: float = 25.0
    floor: float = 1e-4

    def __post_init__(self) -> None:
        ratio = self.sample_rate / (self.hop * self.fps)
        if abs(ratio - round(ratio)) > 1e-9 or round(ratio) < 1:
            raise InputError(f"sample rate {self.sample_rate} / (hop {self.hop} x fps "
                             f"{self.fps:g}) must be a whole number of spectrogram frames")

    @property
    def n_freq(self) -> int:
        """Frequency bins, ``n_fft // 2 + 1``."""
        return self.n_fft // 2 + 1

    @property
    def frames_per_video_frame(self) -> int:
        """Spectrogram frames per video frame (4 by default)."""
        return round(self.sample_rate / (self.hop * self.fps))

    @property
    def samples_per_video_frame(self) -> int:
        return self.hop * self.frames_per_video_frame

    @property
    def silence(self) -> float:
        """The log-amplitude of silence, ``log(floor)``."""
        return float(np.log(self.floor))

    def to_dict(self) -> dict:
        return asdict(self)


def log_spectrogram(audio: np.ndarray, settings: SpectrogramSettings = SpectrogramSettings(),
                    frames: int | None = None) -> np.ndarray:
    """Log-amplitude spectrograms ``(..., K, n_freq)`` float32 of waveforms ``(..., S)``.

    ``K`` is ``frames`` if given (the STFT's frames cut or padded with silence), else
    ``S // hop``. NaN samples are read as 0.
    """
    import librosa

    audio = np.nan_to_num(np.asarray(audio, np.float32))
    stft = librosa.stft(audio, n_fft=settings.n_fft, hop_length=settings.hop, center=True,
                        window="hann", pad_mode="constant")
    spec = np.log(np.abs(stft) + settings.floor).astype(np.float32)
    spec = np.swapaxes(spec, -1, -2)  # (..., K_stft, F)
    k = audio.shape[-1] // settings.hop if frames is None else frames
    if spec.shape[-2] >= k:
        return np.ascontiguousarray(spec[..., :k, :])
    pad = np.full((*spec.shape[:-2], k - spec.shape[-2], spec.shape[-1]), settings.silence,
                  np.float32)
    return np.concatenate([spec, pad], axis=-2)


def griffin_lim(log_spec: np.ndarray, settings: SpectrogramSettings = SpectrogramSettings(),
                length: int | None = None, n_iter: int = 32, seed: int = 0) -> np.ndarray:
    """Waveform ``(S,)`` float32 of one log-amplitude spectrogram ``(K, n_freq)`` by
    Griffin–Lim (librosa, ``n_iter`` iterations, random initial phase from ``seed``);
    ``S = length`` (default ``K * hop``)."""
    import librosa

    log_spec = np.asarray(log_spec, np.float64)
    if log_spec.ndim != 2 or log_spec.shape[1] != settings.n_freq:
        raise InputError(f"a spectrogram must be (frames, {settings.n_freq}), got "
                         f"{log_spec.shape}")
    length = log_spec.shape[0] * settings.hop if length is None else int(length)
    frames = 1 + length // settings.hop  # librosa's centred frames of `length` samples
    log_spec = np.concatenate([log_spec[:frames], np.full(
        (max(0, frames - log_spec.shape[0]), log_spec.shape[1]), settings.silence)])
    magnitude = np.where(log_spec <= settings.silence + 1e-9, 0.0,
                         np.clip(np.exp(log_spec) - settings.floor, 0.0, None)).T
    if not magnitude.any():
        return np.zeros(length, np.float32)
    audio = librosa.griffinlim(magnitude, n_iter=n_iter, hop_length=settings.hop,
                               n_fft=settings.n_fft, window="hann", center=True,
                               pad_mode="constant", length=length,
                               random_state=np.random.default_rng(seed))
    return audio.astype(np.float32)
