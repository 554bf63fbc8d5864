"""The referees of generated clips on real data: judges and the depth estimator.

Before a judge scores generated clips it must classify real ones; this run measures that, and
the numbers a generator is compared with (real clips scored as if generated):

1. **shapes-rgbd** (``--size`` 32, 16 frames, ``--clips`` clips, a quarter of them test):
   ``videossm train video-judge`` (action, shape, colour; frame heads for shape and colour)
   for ``--judge-epochs``; its accuracy on the real test clips; the judge-FID / judge-FVD
   analogue of real training clips against the real test clips' statistics (the real-vs-real
   floor); content stability of real test clips; ``videossm train depth-estimator`` for
   ``--depth-epochs`` and its mean absolute depth error on the test clips, next to the error
   of the training clips' mean depth image (a predictor that ignores the colour).
2. **sprites, zero-shot split** (``--sprite-size``, 8 frames): a judge (motion + the four
   static factors, frame heads for the static factors) trained on the training characters'
   clips of *all* combinations (``--sprite-characters`` characters in all), then its accuracy
   on the real test characters' clips of seen and of unseen (motion, top) combinations.

Writes the tables between ``<!-- BEGIN video-referees -->`` and ``<!-- END video-referees -->``
of docs/video_generation.md and the run record under benchmarks/results/video_referees/.

    nice -n 10 python benchmarks/video_referees.py
    python benchmarks/video_referees.py --quick --no-write       # end-to-end check
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "video_generation.md"
SECTION = "video-referees"


def _pct(x: float) -> str:
    return "n/a" if x is None or not np.isfinite(x) else f"{100 * x:.1f}"


def shapes_part(args, out: Path, log) -> dict:
    from pyro_videossm.data.conventions import write_netcdf
    from pyro_videossm.data.shapes_rgbd import depth_tensor, make_shapes_rgbd
    from pyro_videossm.data.sprites import frames_tensor, select_split
    from pyro_videossm.evaluation.content_stability import content_stability
    from pyro_videossm.evaluation.depth_estimator import (
        depth_error,
        load_depth_estimator,
        rgbd_pairs,
    )
    from pyro_videossm.evaluation.judge import load_judge
    from pyro_videossm.evaluation.judge_space import judge_frechet_distances
    from pyro_videossm.experiments.recipes import RECIPES, TrainingRun

    t0 = time.time()
    ds = make_shapes_rgbd(clips=args.clips, frames=16, size=args.size, seed=args.seed)
    path = out / "shapes.nc"
    write_netcdf(ds, path)
    t_data = time.time() - t0
    log(f"shapes-rgbd: {args.clips} clips rendered in {t_data:.0f} s")
    t0 = time.time()
    RECIPES["video-judge"].fit(
        TrainingRun(path, out / "shapes_judge.pt", epochs=args.judge_epochs, seed=args.seed,
                    progress=False), RECIPES["video-judge"].make_options())
    t_judge = time.time() - t0
    judge, extra = load_judge(out / "shapes_judge.pt")
    train, test = select_split(ds, "train"), select_split(ds, "test")
    x_train, x_test = frames_tensor(train), frames_tensor(test)
    floor = judge_frechet_distances(judge, x_train, extra["reference"])
    stab = content_stability(judge.predict_frames_proba(x_test),
                             {k: torch.as_tensor(test[k].values.astype(np.int64))
                              for k in judge.frame_labels})
    t0 = time.time()
    RECIPES["depth-estimator"].fit(
        TrainingRun(path, out / "depth.pt", epochs=args.depth_epochs, seed=args.seed,
                    progress=False), RECIPES["depth-estimator"].make_options())
    t_depth = time.time() - t0
    _, d_extra = load_depth_estimator(out / "depth.pt")
    _, d_test = rgbd_pairs(test)
    mean_image = depth_tensor(train).mean((0, 1), keepdim=True).expand_as(d_test)
    return {"test_accuracy": extra["test_accuracy"], "real_floor": floor, "stability": stab,
            "depth_error": d_extra["test_error"], "mean_depth_error": depth_error(mean_image,
                                                                                  d_test),
            "clips": {"train": int(x_train.shape[0]), "test": int(x_test.shape[0])},
            "timings": {"data_s": t_data, "judge_s": t_judge, "depth_s": t_depth}}


def sprites_part(args, out: Path, log) -> dict:
    from pyro_videossm.data.conventions import write_netcdf
    from pyro_videossm.data.sprites import frames_tensor, make_sprites
    from pyro_videossm.data.sprites_zero_shot import mark_unseen
    from pyro_videossm.evaluation.condition_accuracy import condition_accuracy
    from pyro_videossm.evaluation.judge import load_judge
    from pyro_videossm.experiments.recipes import RECIPES, TrainingRun

    ds = make_sprites("all", size=args.sprite_size, frames=8,
                      characters=args.sprite_characters, seed=args.seed)
    path = out / "sprites.nc"
    write_netcdf(ds, path)
    t0 = time.time()
    RECIPES["video-judge"].fit(
        TrainingRun(path, out / "sprites_judge.pt", epochs=args.judge_epochs, seed=args.seed,
                    progress=False), RECIPES["video-judge"].make_options())
    t_judge = time.time() - t0
    log(f"sprites judge trained in {t_judge:.0f} s")
    judge, extra = load_judge(out / "sprites_judge.pt")
    test = mark_unseen(ds.isel(clip=np.flatnonzero(ds["split"].values == 1)))
    probs = judge.predict_proba(frames_tensor(test))
    cond = {k: torch.as_tensor(test[k].values.astype(np.int64)) for k in ("motion", "top")}
    acc = condition_accuracy(probs, cond, torch.as_tensor(test["unseen"].values == 1))
    return {"test_accuracy": extra["test_accuracy"], "zero_shot": acc,
            "clips": {"train": int((ds["split"].values == 0).sum()),
                      "test": int(test.sizes["clip"])},
            "timings": {"judge_s": t_judge}}


def section_body(args, shapes: dict, sprites: dict, command: str) -> str:
    s, z = shapes, sprites
    acc = s["test_accuracy"]
    lines = [
        f"Measured on a shared, loaded CPU machine (2 cores), seed {args.seed}; command: "
        f"`{command}`.",
        "",
        f"**shapes-rgbd** ({args.size}x{args.size}, 16 frames; {s['clips']['train']} training, "
        f"{s['clips']['test']} test clips), judge after {args.judge_epochs} epochs, real test "
        "clips:",
        "",
        "| judge accuracy, action (%) | shape (%) | colour (%) | chance (%) | judge-FID real "
        "train vs test | judge-FVD analogue real train vs test | shape agreement | colour "
        "agreement |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
        f"| {_pct(acc['action'])} | {_pct(acc['shape'])} | {_pct(acc['colour'])} | "
        f"14.3 / 25.0 / 16.7 | {s['real_floor']['judge_fid']:.3f} | "
        f"{s['real_floor']['judge_fvd']:.3f} | {s['stability']['shape']['agreement']:.3f} | "
        f"{s['stability']['colour']['agreement']:.3f} |",
        "",
        f"Depth estimator after {args.depth_epochs} epochs, mean absolute depth error on the "
        "test clips (world units; the scene depths span about 3.5 to 11.5):",
        "",
        "| depth estimator MAE | RMSE | mean depth image of the training clips, MAE |",
        "| --- | --- | --- |",
        f"| {s['depth_error']['mae']:.3f} | {s['depth_error']['rmse']:.3f} | "
        f"{s['mean_depth_error']['mae']:.3f} |",
        "",
        f"**sprites, zero-shot split** ({args.sprite_size}x{args.sprite_size}, 8 frames; "
        f"{args.sprite_characters} characters: {z['clips']['train']} training clips of all "
        f"combinations, {z['clips']['test']} test clips), judge after {args.judge_epochs} "
        "epochs, on the real test clips of seen and unseen (motion, top) combinations:",
        "",
        "| label | seen (%) | unseen (%) | chance (%) |",
        "| --- | --- | --- | --- |",
    ]
    for k, v in z["zero_shot"]["labels"].items():
        lines.append(f"| {k} | {_pct(v['seen'])} | {_pct(v['unseen'])} | "
                     f"{_pct(v['chance'])} |")
    j = z["zero_shot"]["joint"]
    lines.append(f"| both | {_pct(j['seen'])} | {_pct(j['unseen'])} | 1.9 |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clips", type=int, default=1344, help="shapes-rgbd clips (default 1344)")
    p.add_argument("--size", type=int, default=32, help="shapes-rgbd frame side (default 32)")
    p.add_argument("--sprite-size", type=int, default=32, help="sprite frame side (default 32)")
    p.add_argument("--sprite-characters", type=int, default=600,
                   help="sprite characters, train and test (default 600)")
    p.add_argument("--judge-epochs", type=int, default=10, help="judge epochs (default 10)")
    p.add_argument("--depth-epochs", type=int, default=3, help="depth epochs (default 3)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("/tmp/video_referees"))
    p.add_argument("--quick", action="store_true", help="tiny settings (end-to-end check)")
    p.add_argument("--no-write", dest="write", action="store_false",
                   help="print the tables, write no docs or record")
    args = p.parse_args(argv)
    if args.quick:
        args.clips, args.size, args.sprite_size = 48, 16, 16
        args.sprite_characters, args.judge_epochs, args.depth_epochs = 8, 1, 1
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    command = "python benchmarks/video_referees.py " + " ".join(
        shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    command = command.strip()
    t0 = time.time()
    shapes = shapes_part(args, args.out, log)
    sprites = sprites_part(args, args.out, log)
    body = section_body(args, shapes, sprites, command)
    print(body)
    if args.write:
        from pyro_videossm.experiments.records import make_record
        from pyro_videossm.experiments.results import record_path_for, write_section

        record = make_record(
            SECTION, command=command, options=vars(args) | {"out": str(args.out)},
            data={"shapes-rgbd": {"clips": args.clips, "size": args.size, "frames": 16,
                                  "seed": args.seed},
                  "sprites": {"characters": args.sprite_characters, "size": args.sprite_size,
                              "frames": 8, "seed": args.seed}},
            metrics={"shapes": {k: v for k, v in shapes.items() if k != "timings"},
                     "sprites": {k: v for k, v in sprites.items() if k != "timings"}},
            timings={"total_s": time.time() - t0, "shapes": shapes["timings"],
                     "sprites": sprites["timings"]},
            machine_note="shared, loaded")
        write_section(DOC, SECTION, body, record=record,
                      record_path=record_path_for(DOC, f"benchmarks/results/video_referees/"
                                                       f"{SECTION}.json"))
        log(f"wrote {DOC} and the run record")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
