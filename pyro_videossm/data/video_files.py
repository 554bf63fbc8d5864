"""Video and sound files: read a user's video, write WAV and MP4 (with a sound track).

- :func:`read_video`: the frames ``(time, y, x, 3)`` uint8 RGB of a video file and its frame
  rate, through imageio-ffmpeg (the ``ffmpeg`` binary it ships), resampled to ``fps``
  (default 25) by :func:`resample_frames` when the file's rate differs; its sound track too,
  if asked for and present (mono, resampled by ffmpeg).
- :func:`resample_frames`: nearest frame in time (as ffmpeg's ``fps`` filter does): output
  frame ``j`` (at ``j / fps_out`` s) is input frame ``floor(j * fps_in / fps_out + 0.5)``.
- :func:`write_wav` (soundfile, 16-bit PCM by default) and :func:`write_mp4` (H.264 video,
  AAC sound muxed in from a temporary WAV), both atomic: written beside the destination under
  a temporary name, renamed when complete.

Bad files raise :class:`~pyro_videossm.errors.InputError` with one line: a missing file, a
file ffmpeg cannot read, a file with no video stream, a video with no frames.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pyro_videossm.atomic import atomic_path
from pyro_videossm.errors import InputError

#: The frame rate and audio sample rate of the eating-sounds family.
DEFAULT_FPS = 25.0
DEFAULT_SAMPLE_RATE = 16000


@dataclass
class VideoClip:
    """Frames ``(time, y, x, 3)`` uint8 RGB at ``fps``; ``source_fps`` the file's own rate;
    ``audio`` mono float32 at ``sample_rate`` (None when not read or absent)."""

    frames: np.ndarray
    fps: float
    source_fps: float
    audio: np.ndarray | None = None
    sample_rate: int | None = None

    @property
    def seconds(self) -> float:
        return len(self.frames) / self.fps


def ffmpeg_exe() -> str:
    """The ``ffmpeg`` binary shipped with imageio-ffmpeg (the ``[audio]`` extra)."""
    try:
        import imageio_ffmpeg
    except ImportError:
        raise InputError("video files need imageio-ffmpeg: pip install "
                         "'pyro-videossm[audio]'") from None
    return imageio_ffmpeg.get_ffmpeg_exe()


def _existing(path: str | os.PathLike) -> Path:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    return path


def _probe_streams(path: Path) -> str:
    """ffmpeg's description of the file's streams (its stderr for ``ffmpeg -i path``)."""
    out = subprocess.run([ffmpeg_exe(), "-hide_banner", "-i", str(path)], capture_output=True,
                         text=True, errors="replace")
    return out.stderr


def resample_frames(frames: np.ndarray, fps_in: float, fps_out: float) -> np.ndarray:
    """Frames ``(time, ...)`` at ``fps_in`` -> at ``fps_out`` by the nearest frame in time.

    The duration ``time / fps_in`` is kept: ``round(time * fps_out / fps_in)`` frames (at
    least one), output frame ``j`` = input frame ``floor(j * fps_in / fps_out + 0.5)``.
    """
    if not (np.isfinite(fps_in) and np.isfinite(fps_out)) or fps_in <= 0 or fps_out <= 0:
        raise InputError(f"frame rates must be > 0, got {fps_in} and {fps_out}")
    n_in = len(frames)
    if n_in == 0 or fps_in == fps_out:
        return frames
    n_out = max(1, int(round(n_in * fps_out / fps_in)))
    idx = np.minimum(np.floor(np.arange(n_out) * fps_in / fps_out + 0.5).astype(int), n_in - 1)
    return frames[idx]


def read_audio_track(path: str | os.PathLike,
                     sample_rate: int = DEFAULT_SAMPLE_RATE) -> np.ndarray | None:
    """The file's sound as mono float32 at ``sample_rate`` (ffmpeg mixes and resamples), or
    None when it has no audio stream."""
    path = _existing(path)
    if "Audio:" not in _probe_streams(path):
        return None
    cmd = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-i", str(path), "-vn",
           "-ac", "1", "-ar", str(int(sample_rate)), "-f", "f32le", "-"]
    out = subprocess.run(cmd, capture_output=True)
    if out.returncode != 0:
        msg = out.stderr.decode(errors="replace").strip().splitlines()
        raise InputError(f"{path}: cannot read its sound ({msg[-1] if msg else 'ffmpeg failed'})")
    return np.frombuffer(out.stdout, dtype="<f4").astype(np.float32)


def read_video(path: str | os.PathLike, fps: float | None = DEFAULT_FPS, *,
               with_audio: bool = False, sample_rate: int = DEFAULT_SAMPLE_RATE,
               max_frames: int | None = None) -> VideoClip:
    """Read a video file: frames ``(time, y, x, 3)`` uint8 RGB at ``fps`` (None: the file's
    rate), and with ``with_audio`` its sound (mono, ``sample_rate``) if it has any.

    :raises InputError: a missing or unreadable file, no video stream, no frames.
    """
    import imageio_ffmpeg

    path = _existing(path)
    streams = _probe_streams(path)
    if "Video:" not in streams:
        if "Invalid data" in streams or "Stream #" not in streams:
            raise InputError(f"{path}: not a video file ffmpeg can read")
        raise InputError(f"{path}: the file has no video stream")
    try:
        gen = imageio_ffmpeg.read_frames(str(path))
        meta = next(gen)
        width, height = meta["size"]
        frames = []
        for raw in gen:
            frames.append(np.frombuffer(raw, np.uint8).reshape(height, width, 3))
            if max_frames is not None and len(frames) >= max_frames:
                gen.close()
                break
    except (OSError, RuntimeError, StopIteration) as err:
        first = str(err).strip().splitlines()
        raise InputError(f"{path}: cannot read its video ({first[0] if first else err})"
                         ) from None
    if not frames:
        raise InputError(f"{path}: the video has no frames")
    source_fps = float(meta.get("fps") or 0.0)
    if not source_fps > 0:
        raise InputError(f"{path}: the video's frame rate is unknown")
    video = np.stack(frames)
    out_fps = source_fps if fps is None else float(fps)
    video = resample_frames(video, source_fps, out_fps)
    audio = read_audio_track(path, sample_rate) if with_audio else None
    return VideoClip(video, out_fps, source_fps, audio, sample_rate if audio is not None else None)


def _as_uint8_frames(frames) -> np.ndarray:
    """Frames ``(time, y, x, 3)`` (uint8, or float in [0, 1]) as uint8."""
    x = np.asarray(frames)
    if x.ndim != 4 or x.shape[-1] != 3 or len(x) == 0:
        raise InputError(f"frames must be (time, y, x, 3) RGB with time >= 1, got {x.shape}")
    if x.dtype == np.uint8:
        return x
    x = x.astype(np.float64)
    if not np.all(np.isfinite(x)) or x.min() < -1e-6 or x.max() > 1 + 1e-6:
        raise InputError("float frames must be finite and in [0, 1]")
    return np.round(np.clip(x, 0, 1) * 255).astype(np.uint8)


def _as_audio(audio) -> np.ndarray:
    a = np.asarray(audio, dtype=np.float32)
    if a.ndim != 1 or a.size == 0 or not np.all(np.isfinite(a)):
        raise InputError(f"audio must be a finite 1-D waveform, got shape {a.shape}")
    return a


def write_wav(path: str | os.PathLike, audio, sample_rate: int = DEFAULT_SAMPLE_RATE,
              subtype: str = "PCM_16") -> Path:
    """Write mono ``audio`` (float, clipped to [-1, 1]) as a WAV file, atomically."""
    import soundfile

    path = Path(path)
    a = np.clip(_as_audio(audio), -1.0, 1.0)
    with atomic_path(path, suffix=".wav") as tmp:
        soundfile.write(str(tmp), a, int(sample_rate), subtype=subtype, format="WAV")
    return path


def write_mp4(path: str | os.PathLike, frames, fps: float = DEFAULT_FPS, audio=None,
              sample_rate: int = DEFAULT_SAMPLE_RATE, *, scale: int = 1,
              crf: int = 18) -> Path:
    """Write frames ``(time, y, x, 3)`` (uint8, or float in [0, 1]) as an H.264 MP4 at
    ``fps``, with ``audio`` (mono, ``sample_rate``) muxed in as AAC when given; atomically.

    :param scale: enlarge each frame ``scale`` times (nearest pixel) first, e.g. to watch a
        64-pixel clip.
    :param crf: H.264 constant rate factor (0 lossless, 18 visually lossless, 23 default).
    """
    import imageio_ffmpeg

    if int(scale) != scale or scale < 1:
        raise InputError(f"scale must be a whole number >= 1, got {scale}")
    video = _as_uint8_frames(frames)
    if scale > 1:
        video = video.repeat(int(scale), axis=1).repeat(int(scale), axis=2)
    h, w = video.shape[1:3]
    if h % 2 or w % 2:  # yuv420p needs even sides: repeat the last row / column
        video = np.pad(video, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), mode="edge")
        h, w = video.shape[1:3]
    path = Path(path)
    with tempfile.TemporaryDirectory() as folder, atomic_path(path, suffix=".mp4") as tmp:
        audio_path = None
        if audio is not None:
            audio_path = str(write_wav(Path(folder) / "sound.wav", audio, sample_rate))
        writer = imageio_ffmpeg.write_frames(
            str(tmp), (w, h), fps=float(fps), codec="libx264", quality=None,
            macro_block_size=2, ffmpeg_log_level="error",
            output_params=["-crf", str(int(crf))],
            audio_path=audio_path, audio_codec="aac" if audio_path else None)
        writer.send(None)
        for frame in video:
            writer.send(np.ascontiguousarray(frame))
        writer.close()
    return path
