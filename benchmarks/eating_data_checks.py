"""Checks of the procedural eating clips: is the face found, are the events heard?

On ``--clips`` clips of each split (training and test faces; ``--seconds`` s at ``--size``
pixels, seed ``--seed``):

- the Haar cascade's detection rate on the frames in memory (fraction of all frames, and the
  lowest rate of one clip), and the tracked box against the true ``face_box`` (mean IoU);
- the real-input round trip on the first ``--mp4-clips`` clips: each written by
  ``write_eating_mp4`` (H.264 + AAC, frames enlarged 4x), read back by ``read_video`` and
  tracked: detection rate, and the mean absolute difference of the 48-pixel face crops from
  those of the frames in memory;
- onset F1 (+-50 ms) of librosa's onsets in each clip's sound against its event times.

    OMP_NUM_THREADS=1 python benchmarks/eating_data_checks.py        # a few minutes
    python benchmarks/eating_data_checks.py --clips 4 --mp4-clips 2 --no-write

Writes the section ``eating_data_checks`` of docs/eating_sounds.md and its run record
``benchmarks/results/eating/eating_data_checks.json`` (unless ``--no-write``).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pyro_videossm.data.eating import (  # noqa: E402
    FOODS,
    eating_face_crops,
    simulate_eating,
    write_eating_mp4,
)
from pyro_videossm.data.face_tracking import detect_faces, face_crops, track_face  # noqa: E402
from pyro_videossm.data.video_files import read_video  # noqa: E402
from pyro_videossm.experiments.records import make_record  # noqa: E402
from pyro_videossm.experiments.results import record_path_for, write_section  # noqa: E402
from pyro_videossm.metrics.audio import detect_onsets, onset_f1  # noqa: E402

DOC = ROOT / "docs/eating_sounds.md"
RECORD = "benchmarks/results/eating/eating_data_checks.json"
SECTION = "eating_data_checks"


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    w = np.clip(np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0]), 0, None)
    h = np.clip(np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1]), 0, None)
    area = lambda x: (x[:, 2] - x[:, 0]) * (x[:, 3] - x[:, 1])  # noqa: E731
    return w * h / (area(a) + area(b) - w * h)


def check_split(ds, mp4_clips: int, folder: Path) -> dict:
    rates, ious = [], []
    for c in range(ds.sizes["clip"]):
        frames = ds["frames"].values[c].transpose(0, 2, 3, 1)
        raw = detect_faces(frames)
        rates.append(float(np.isfinite(raw[:, 0]).mean()))
        track = track_face(frames, detections=raw)
        ious.append(float(_iou(track.boxes, ds["face_box"].values[c]).mean()))
    f1 = {food: [] for food in FOODS}
    for c in range(ds.sizes["clip"]):
        onsets = detect_onsets(ds["audio"].values[c], int(ds.attrs["sample_rate"]))
        f1[FOODS[int(ds["food"].values[c])]].append(
            onset_f1(onsets, ds["event_time"].values[c]).f1)
    all_f1 = [v for vs in f1.values() for v in vs]
    out = {"detection_rate": float(np.mean(rates)), "lowest_clip_detection_rate": min(rates),
           "box_iou": float(np.mean(ious)), "onset_f1_mean": float(np.mean(all_f1)),
           "onset_f1_min": float(np.min(all_f1)),
           "onset_f1_by_food": {k: float(np.mean(v)) for k, v in f1.items() if v}}
    if mp4_clips:
        sub = ds.isel(clip=slice(0, mp4_clips))
        memory = eating_face_crops(sub, 48, track=True)
        mp4_rates, diffs = [], []
        for c in range(sub.sizes["clip"]):
            path = write_eating_mp4(sub, c, folder / f"clip{c}.mp4")
            crops = face_crops(read_video(path).frames, 48)
            mp4_rates.append(crops.detection_rate)
            diffs.append(float(np.abs(crops.crops - memory[c]).mean()))
        out.update({"mp4_clips": int(sub.sizes["clip"]),
                    "mp4_detection_rate": float(np.mean(mp4_rates)),
                    "mp4_lowest_clip_detection_rate": float(np.min(mp4_rates)),
                    "mp4_crop_abs_difference": float(np.mean(diffs))})
    return out


def table(results: dict, args) -> str:
    tr, te = results["train"], results["test"]
    mp4 = te.get("mp4_clips", 0)
    rows = [
        "| check | training faces | test faces |",
        "| --- | --- | --- |",
        f"| Haar detection rate, frames in memory | {tr['detection_rate']:.3f} | "
        f"{te['detection_rate']:.3f} |",
        f"| lowest detection rate of one clip | {tr['lowest_clip_detection_rate']:.3f} | "
        f"{te['lowest_clip_detection_rate']:.3f} |",
        f"| tracked box vs true face_box, mean IoU | {tr['box_iou']:.3f} | "
        f"{te['box_iou']:.3f} |",
        f"| onset F1 (±50 ms) of the sound vs event times, mean | {tr['onset_f1_mean']:.3f} | "
        f"{te['onset_f1_mean']:.3f} |",
        f"| onset F1, lowest clip | {tr['onset_f1_min']:.3f} | {te['onset_f1_min']:.3f} |",
    ]
    if mp4:
        rows += [
            f"| MP4 round trip ({mp4} clips): detection rate | — | "
            f"{te['mp4_detection_rate']:.3f} |",
            f"| MP4 round trip: lowest clip | — | {te['mp4_lowest_clip_detection_rate']:.3f} |",
            f"| MP4 round trip: mean abs. difference of 48-px crops from in-memory crops | — | "
            f"{te['mp4_crop_abs_difference']:.4f} |",
        ]
    text = (f"{args.clips} clips per split ({args.seconds:g} s, {args.size} px, seed "
            f"{args.seed}); reproduce with `OMP_NUM_THREADS=1 python "
            f"benchmarks/eating_data_checks.py` (record `{RECORD}`).")
    return text + "\n\n" + "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=40)
    parser.add_argument("--mp4-clips", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    results, timings = {}, {}
    with tempfile.TemporaryDirectory() as folder:
        for split in ("train", "test"):
            t0 = time.perf_counter()
            ds = simulate_eating(args.clips, seconds=args.seconds, size=args.size,
                                 seed=args.seed, split=split)
            timings[f"simulate_{split}_seconds"] = time.perf_counter() - t0
            results[split] = check_split(ds, args.mp4_clips if split == "test" else 0,
                                         Path(folder))
    timings["total_seconds"] = time.perf_counter() - started
    body = table(results, args)
    print(body)
    if not args.no_write:
        record = make_record(
            SECTION, command="OMP_NUM_THREADS=1 python " + " ".join(
                ["benchmarks/eating_data_checks.py",
                 *(argv if argv is not None else sys.argv[1:])]),
            options=vars(args),
            data={split: f"simulate_eating({args.clips}, seconds={args.seconds}, "
                         f"size={args.size}, seed={args.seed}, split={split!r})"
                  for split in ("train", "test")},
            metrics=results, timings=timings, note="machine: shared, loaded")
        write_section(DOC, SECTION, body, record=record,
                      record_path=record_path_for(DOC, RECORD))
        print(f"wrote {RECORD} and the section {SECTION} of {DOC.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
