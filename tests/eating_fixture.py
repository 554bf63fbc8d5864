"""A tiny stand-in for ``videossm simulate eating`` (the data contract of issue 17):
``frames(clip, time, channel, y, x)`` at 25 fps in [0, 1], ``audio(clip, sample)`` at 16 kHz,
``food(clip)``, ``face(clip)``, ``split(clip)``. A grey square "face" whose "mouth" bar opens
and closes; a burst of class-coloured noise at every closure; the food class sets the
colour of a dot by the mouth and the burst's frequency band."""

from __future__ import annotations

import numpy as np
import xarray as xr


def tiny_eating(clips: int = 6, frames: int = 20, size: int = 32, seed: int = 0,
                test_clips: int = 0) -> xr.Dataset:
    rng = np.random.default_rng(seed)
    sr, spf = 16000, 640
    n = clips + test_clips
    video = np.zeros((n, frames, 3, size, size), np.float32)
    audio = np.zeros((n, frames * spf), np.float32)
    food = np.arange(n) % 5
    for i in range(n):
        y0, x0 = rng.integers(2, size // 3, 2)
        s = size // 2
        video[i, :, :, y0:y0 + s, x0:x0 + s] = 0.6
        period = rng.integers(4, 7)
        for t in range(frames):
            opening = (t % period) / period
            h = 1 + int(opening * s // 3)
            video[i, t, :, y0 + s // 2:y0 + s // 2 + h, x0 + s // 4:x0 + 3 * s // 4] = 0.1
            video[i, t, food[i] % 3, y0 + s - 3:y0 + s - 1, x0 + 2:x0 + 5] = 1.0
            if t % period == 0:
                k = np.arange(spf)
                f = 500 + 1000 * food[i]
                audio[i, t * spf:(t + 1) * spf] = (0.5 * np.exp(-k / 80)
                                                   * np.sin(2 * np.pi * f * k / sr))
        audio[i] += 0.001 * rng.standard_normal(audio.shape[1]).astype(np.float32)
    return xr.Dataset(
        {"frames": (("clip", "time", "channel", "y", "x"), video),
         "audio": (("clip", "sample"), audio),
         "food": (("clip",), food, {"flag_values": np.arange(5),
                                     "flag_meanings": "crispy crunchy soft chewy slurpy"}),
         "face": (("clip",), np.arange(n)),
         "split": (("clip",), (np.arange(n) >= clips).astype(np.int8))},
        attrs={"fps": 25.0, "sample_rate": sr})
