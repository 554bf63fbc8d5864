"""Where the conditional MoCoGAN's errors on unseen (motion, top) pairs go: for stored models of
``benchmarks/video_generation.py``, the judge's verdicts on 10 clips of every pair (generated
with the same noise seed, 123, for every model), and for each wrong verdict on an unseen pair
whether the judged motion (top colour) is one that comes with the conditioned top colour
(motion) in training, and for motions whether the judged motion has the conditioned
direction. Errors spread evenly over the wrong classes would go to such a pair 6 times in 8
(motion: each colour has 6 seen motions among the 8 others) and 4 times in 5 (top); but by the
split's rule a motion of the right direction and another action is *always* seen with the
colour (one action per (direction, colour) is unseen), so action confusions within the
direction go to seen pairs whatever their cause.

    nice -n 10 OMP_NUM_THREADS=1 python benchmarks/video_generation_pair_errors.py \\
        disentangled_seed52 disentangled_seed53 disentangled_seed54 seen-pairs_seed61 \\
        seen-pairs_seed62 seen-pairs_seed63
    nice -n 10 OMP_NUM_THREADS=1 python benchmarks/video_generation_pair_errors.py \
        content-pairs_seed61 content-pairs_seed62 grey-action_seed61 grey-action_seed62 \
        grey-action_seed63 grey-only_seed61 grey-only_seed62 grey-only_seed63

Models are read from ``/tmp/video_generation/<name>_s16.pt`` (the benchmark's ``--work``);
writes ``benchmarks/results/video_generation_pairs/<name>.json``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from video_generation_curves import WORK, pairs  # noqa: E402

from pyro_videossm.data.sprites import MOTIONS, STATIC_FACTORS  # noqa: E402
from pyro_videossm.data.sprites_zero_shot import unseen_mask  # noqa: E402
from pyro_videossm.evaluation.judge import load_judge  # noqa: E402
from pyro_videossm.experiments.records import make_record, write_record  # noqa: E402
from pyro_videossm.experiments.video_gan_recipes import load_video_gan  # noqa: E402

RESULTS = ROOT / "benchmarks/results/video_generation_pairs"
TOPS = STATIC_FACTORS["top"]


@torch.no_grad()
def pair_errors(model: Path, judge) -> dict:
    """The judge's accuracy per pair and where the unseen pairs' errors go (module doc)."""
    _, generator, _ = load_video_gan(model)
    motion, top, unseen = pairs(10)
    torch.manual_seed(123)
    x = torch.cat([generator(90, motion[i:i + 90], top[i:i + 90])
                   for i in range(0, len(motion), 90)])
    p = judge.predict_proba(x)
    judged_motion, judged_top = p["motion"].argmax(-1), p["top"].argmax(-1)
    out = {}
    for name, truth, guess, other in (("motion", motion, judged_motion, top),
                                      ("top", top, judged_top, motion)):
        wrong = unseen & (guess != truth)
        if name == "motion":
            to_seen = [not unseen_mask(int(g), int(o)) for g, o in zip(guess[wrong], other[wrong])]
        else:
            to_seen = [not unseen_mask(int(o), int(g)) for g, o in zip(guess[wrong], other[wrong])]
        out[f"unseen_{name}_accuracy"] = float((guess == truth)[unseen].float().mean())
        out[f"unseen_{name}_errors"] = int(wrong.sum())
        out[f"unseen_{name}_errors_to_seen_pairs"] = int(sum(to_seen))
        if name == "motion":  # motion = 3 action + direction (walk/cast/slash x front/left/right)
            out["unseen_motion_errors_same_direction"] = int(
                (guess[wrong] % 3 == truth[wrong] % 3).sum())
    failing = []
    for m in range(len(MOTIONS)):
        for t in range(len(TOPS)):
            k = (motion == m) & (top == t)
            acc_m = float((judged_motion[k] == m).float().mean())
            acc_t = float((judged_top[k] == t).float().mean())
            if acc_m < 0.5 or acc_t < 0.5:
                failing.append({
                    "motion": MOTIONS[m], "top": TOPS[t], "unseen": bool(unseen_mask(m, t)),
                    "motion_accuracy": acc_m, "top_accuracy": acc_t,
                    "judged_motion": MOTIONS[int(torch.bincount(judged_motion[k],
                                                                minlength=9).argmax())],
                    "judged_top": TOPS[int(torch.bincount(judged_top[k], minlength=6).argmax())]})
    out["failing_pairs"] = failing
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("models", nargs="+", help="<variant>_seed<S> of the benchmark's models")
    p.add_argument("--judge", type=Path,
                   default=WORK / "judge_sprites_s16_f8_c230_from32_j15.pt")
    p.add_argument("--no-write", action="store_true")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    judge, _ = load_judge(args.judge)
    for name in args.models:
        metrics = pair_errors(WORK / f"{name}_s16.pt", judge)
        print(name, {k: v for k, v in metrics.items() if k != "failing_pairs"})
        if not args.no_write:
            write_record(RESULTS / f"{name}.json", make_record(
                "video_generation_pair_errors", command="nice -n 10 OMP_NUM_THREADS=1 python "
                f"benchmarks/video_generation_pair_errors.py {name}",
                options={"model": name, "judge": str(args.judge)},
                data={"model": str(WORK / f"{name}_s16.pt")}, metrics=metrics,
                machine_note="shared, loaded"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
