"""``videossm sonify video.mp4|clips.nc --model m.pt -o out.wav [--mux out.mp4]``: the sound
of eating generated from silent video by a model of ``videossm train eating-sounds``.

A video file is read through imageio-ffmpeg (its frame rate is resampled to the model's
25 fps); a netCDF file of ``videossm simulate eating`` gives clip ``--clip``. The face is
found and tracked with OpenCV's Haar cascade (when the model was trained on face crops);
the spectrogram the model predicts becomes a waveform by Griffin-Lim (librosa) and is written
as WAV (soundfile); ``--mux`` also writes the video (at 25 fps) with the generated track.
"""

from __future__ import annotations

from pathlib import Path

from pyro_videossm.cli.common import say
from pyro_videossm.errors import InputError

NETCDF_SUFFIXES = (".nc", ".nc4", ".netcdf")


def register(sub) -> None:
    p = sub.add_parser("sonify", help="generate the sound of eating for a silent video "
                                      "(model of videossm train eating-sounds)")
    p.add_argument("video", type=Path, help="video file (mp4, ...) or netCDF of clips")
    p.add_argument("--model", type=Path, required=True,
                   help="model file of videossm train eating-sounds")
    p.add_argument("--clip", type=int, default=0, help="clip of a netCDF file (default 0)")
    p.add_argument("--iterations", type=int, default=32,
                   help="Griffin-Lim iterations (default 32)")
    p.add_argument("-o", "--output", type=Path, required=True, help="WAV file to write")
    p.add_argument("--mux", type=Path, help="also write this MP4: the video with the sound")
    p.set_defaults(func=run)


def run(args) -> int:
    from pyro_videossm.experiments.eating_recipe import (
        load_eating_model,
        read_clip_frames,
        sonify_frames,
        write_sonified,
    )

    if args.iterations < 1:
        raise InputError(f"--iterations {args.iterations} is out of range (must be > 0)")
    if args.output.suffix.lower() != ".wav":
        raise InputError(f"output {args.output} must be a .wav file")
    if args.mux is not None and args.mux.suffix.lower() != ".mp4":
        raise InputError(f"--mux {args.mux} must be an .mp4 file")
    load_eating_model(args.model)  # refuse another kind of model before reading the video
    frames, fps = read_clip_frames(args.video, args.clip)
    audio, info = sonify_frames(args.model, frames, fps, where=str(args.video),
                                n_iter=args.iterations)
    write_sonified(args.output, audio, info, mux=args.mux)
    say(f"wrote {args.output} ({audio.shape[0] / info['sample_rate']:.2f} s from "
        f"{info['frames']} frames at {info['fps']:g} fps"
        + (f", face found in {info['face_detection_rate']:.0%} of frames"
           if info.get("crop") != "frame" else "") + ")"
        + (f" and {args.mux}" if args.mux is not None else ""))
    return 0
