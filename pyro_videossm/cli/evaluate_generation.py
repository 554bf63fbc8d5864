"""``videossm evaluate-generation clips.nc --judge judge.pt [--depth-estimator d.pt]
[--real real.nc] [--json out.json]``: score a file of generated clips.

The clips carry their conditions as label variables named like the judge's heads and,
optionally, ``unseen`` (0/1) and ``depth``; see :mod:`pyro_videossm.evaluation.generation`.
The judge (``videossm train video-judge``) must have reached ``--min-judge-accuracy`` on the
real test clips for every condition scored (its file records that accuracy). Prints markdown
tables; ``--json`` writes every score.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from pyro_videossm.atomic import atomic_path
from pyro_videossm.cli.common import say
from pyro_videossm.data.conventions import open_dataset
from pyro_videossm.data.sprites import check_video
from pyro_videossm.errors import InputError
from pyro_videossm.metrics.posterior import markdown_table


def register(sub) -> None:
    p = sub.add_parser("evaluate-generation",
                       help="score generated clips: accuracy on their conditions (seen / "
                            "unseen), IS, judge-FID / FVD analogue, content stability, depth")
    p.add_argument("clips", type=Path, help="generated clips (netCDF) with their conditions")
    p.add_argument("--judge", type=Path, required=True,
                   help="judge file (videossm train video-judge)")
    p.add_argument("--depth-estimator", type=Path,
                   help="depth estimator file (videossm train depth-estimator): depth-colour "
                        "consistency of clips with a depth variable")
    p.add_argument("--real", type=Path, help="real clips for the Fréchet distances (default: "
                   "the statistics stored in the judge file)")
    p.add_argument("--min-judge-accuracy", type=float, default=0.9,
                   help="accuracy on real test clips the judge needs on each condition "
                        "(default 0.9; 0 to skip the check)")
    p.add_argument("--name", default="generated", help="model name in the tables")
    p.add_argument("--batch-size", type=int, default=64, help="clips per batch (default 64)")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p.add_argument("--json", type=Path, help="also write all scores as JSON")
    p.set_defaults(func=run_evaluate_generation)


def _plain(obj):
    """JSON-safe: NaN -> None."""
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def run_evaluate_generation(args) -> int:
    from pyro_videossm.evaluation.generation import (
        condition_labels,
        evaluate_generation,
        summary_rows,
    )
    from pyro_videossm.evaluation.judge import check_trusted, load_judge

    if not 0 <= args.min_judge_accuracy <= 1:
        raise InputError(f"--min-judge-accuracy must be in [0, 1], got "
                         f"{args.min_judge_accuracy}")
    if args.batch_size < 1:
        raise InputError(f"--batch-size must be >= 1, got {args.batch_size}")
    judge, extra = load_judge(args.judge, device=args.device)
    estimator = None
    if args.depth_estimator is not None:
        from pyro_videossm.evaluation.depth_estimator import load_depth_estimator

        estimator, _ = load_depth_estimator(args.depth_estimator, device=args.device)
    clips = open_dataset(args.clips)
    check_video(clips, str(args.clips))
    clips = clips.load()
    names = condition_labels(clips, judge)
    if not names:
        raise InputError(f"{args.clips}: no condition to score: the judge's labels are "
                         f"{', '.join(judge.labels)}, none is a variable of the clips")
    if args.min_judge_accuracy > 0:
        accuracy = extra.get("test_accuracy")
        if not accuracy:
            raise InputError(f"{args.judge}: the judge file records no test accuracy; pass "
                             "--min-judge-accuracy 0 to use it anyway")
        for k in names:
            check_trusted(accuracy, k, args.min_judge_accuracy)
    if args.depth_estimator is not None and "depth" not in clips.data_vars:
        raise InputError(f"{args.clips}: --depth-estimator given but the clips have no 'depth'")
    real = None
    if args.real is not None:
        real = open_dataset(args.real)
        check_video(real, str(args.real))
        real = real.load()
    reference = extra.get("reference")
    result = evaluate_generation(clips, judge, reference=reference, real=real,
                                 depth_estimator=estimator, batch_size=args.batch_size)
    if real is None and reference is None:
        say("no reference statistics in the judge file and no --real: no Fréchet distances")
    result["judge_test_accuracy"] = extra.get("test_accuracy")
    counts = result["accuracy"]["counts"]
    print(f"{result['clips']} generated clips ({counts['seen']} of seen combinations, "
          f"{counts['unseen']} unseen); judge {args.judge}")
    print()
    print(markdown_table(summary_rows(result, args.name)))
    print()
    extra_row = {"model": args.name, "judge-FID": result["judge_fid"],
                 "judge-FVD analogue": result["judge_fvd"]}
    for k, v in (result["content_stability"] or {}).items():
        extra_row[f"{k} agreement"] = v["agreement"]
    if result["depth_consistency"] is not None:
        extra_row["depth MAE"] = result["depth_consistency"]["mae"]
    print(markdown_table([{k: (math.nan if v is None else v) for k, v in extra_row.items()}]))
    if args.json is not None:
        with atomic_path(args.json) as tmp:
            Path(tmp).write_text(json.dumps(_plain(result), indent=1))
    return 0
