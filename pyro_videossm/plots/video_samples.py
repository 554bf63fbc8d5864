"""Generated clips as files people look at: an animated GIF or MP4 of a few clips side by side,
and a PNG grid of clips per condition.

Clips are ``(N, T, C, H, W)`` arrays in ``[0, 1]`` with 1 (grey) or 3 (RGB) channels; a 4th
(depth) channel is drawn as a grey clip beside the colour one. GIFs go through ``imageio``,
MP4s through ``imageio`` + ``imageio-ffmpeg`` (the ``[video]`` extra), both imported when
called; every file is written atomically.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from pyro_videossm.atomic import atomic_path
from pyro_videossm.errors import InputError


def _rgb(clips: np.ndarray) -> np.ndarray:
    """``(N, T, C, H, W)`` -> ``(N, T, H, W', 3)`` in [0, 1]: grey repeated; RGB-D as the
    colour clip and the depth (grey) side by side."""
    c = np.clip(np.nan_to_num(np.asarray(clips, np.float32)), 0, 1)
    if c.ndim != 5:
        raise InputError(f"clips must be (N, T, C, H, W), got shape {c.shape}")
    n, t, ch, h, w = c.shape
    if ch == 1:
        return np.repeat(c, 3, axis=2).transpose(0, 1, 3, 4, 2)
    if ch == 3:
        return c.transpose(0, 1, 3, 4, 2)
    if ch == 4:
        colour = c[:, :, :3].transpose(0, 1, 3, 4, 2)
        depth = np.repeat(c[:, :, 3:], 3, axis=2).transpose(0, 1, 3, 4, 2)
        return np.concatenate([colour, depth], axis=3)
    raise InputError(f"clips need 1, 3 or 4 (RGB + depth) channels to be drawn, got {ch}")


def tile_clips(clips: np.ndarray, columns: int = 8, gap: int = 1, scale: int = 1) -> np.ndarray:
    """Clips side by side (``columns`` per row, white gaps), frame by frame: ``(T, H', W', 3)``
    uint8, each pixel repeated ``scale`` times."""
    c = _rgb(clips)
    n, t, h, w, _ = c.shape
    cols = max(1, min(columns, n))
    rows = -(-n // cols)
    out = np.ones((t, rows * (h + gap) - gap, cols * (w + gap) - gap, 3), np.float32)
    for i in range(n):
        r, k = divmod(i, cols)
        out[:, r * (h + gap): r * (h + gap) + h, k * (w + gap): k * (w + gap) + w] = c[i]
    if scale > 1:
        out = out.repeat(scale, axis=1).repeat(scale, axis=2)
    return (out * 255).round().astype(np.uint8)


def write_clips_gif(clips: np.ndarray, path: str | os.PathLike, *, fps: float = 8.0,
                    columns: int = 8, scale: int = 2) -> Path:
    """The clips tiled (:func:`tile_clips`) as a looping animated GIF, written atomically."""
    try:
        import imageio.v2 as imageio
    except ImportError:
        raise InputError("GIFs need imageio: pip install 'pyro-videossm[video]'") from None
    frames = tile_clips(clips, columns, scale=scale)
    path = Path(path)
    with atomic_path(path, suffix=".gif") as tmp:
        imageio.mimsave(tmp, list(frames), format="GIF", duration=1.0 / fps, loop=0)
    return path


def write_clips_mp4(clips: np.ndarray, path: str | os.PathLike, *, fps: float = 8.0,
                    columns: int = 8, scale: int = 4) -> Path:
    """The clips tiled (:func:`tile_clips`) as an H.264 MP4 (imageio-ffmpeg), written
    atomically; frames are padded with white to even sizes."""
    try:
        import imageio.v2 as imageio
        import imageio_ffmpeg  # noqa: F401  (the ffmpeg binary imageio uses)
    except ImportError:
        raise InputError("MP4s need imageio and imageio-ffmpeg: pip install "
                         "'pyro-videossm[video]'") from None
    frames = tile_clips(clips, columns, scale=scale)
    t, h, w, _ = frames.shape
    frames = np.pad(frames, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), constant_values=255)
    path = Path(path)
    with atomic_path(path, suffix=".mp4") as tmp:
        imageio.mimsave(tmp, list(frames), format="FFMPEG", fps=fps, codec="libx264",
                        macro_block_size=1, pixelformat="yuv420p")
    return path


def plot_condition_grid(rows: Sequence[tuple[str, np.ndarray]], path: str | os.PathLike, *,
                        stride: int = 1, title: str | None = None) -> Path:
    """A PNG with one row per condition: its label on the left, then each of its clips
    ``(N, T, C, H, W)`` as a strip of frames ``0, stride, 2 stride, ...`` (clips one under
    the other inside the row)."""
    import matplotlib.pyplot as plt

    from pyro_videossm.plots.figure import save_figure

    if not rows:
        raise InputError("a condition grid needs at least one row")
    images = []
    for _, clips in rows:
        c = _rgb(clips)[:, ::stride]  # (N, T, H, W, 3)
        n, t, h, w, _ = c.shape
        strip = np.ones((n * (h + 1) - 1, t * (w + 1) - 1, 3), np.float32)
        for i in range(n):
            for k in range(t):
                strip[i * (h + 1): i * (h + 1) + h, k * (w + 1): k * (w + 1) + w] = c[i, k]
        images.append(strip)
    width = max(im.shape[1] for im in images)
    fig, axes = plt.subplots(len(rows), 1, squeeze=False,
                             figsize=(max(4.0, width / 40 + 1.5),
                                      sum(im.shape[0] for im in images) / 40 + 0.4 * len(rows)))
    for ax, (label, _), im in zip(axes[:, 0], rows, images):
        ax.imshow(im, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path)
