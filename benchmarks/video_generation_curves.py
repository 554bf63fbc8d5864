"""Learning curves of the conditional MoCoGAN on the zero-shot sprites: the judged accuracy of
the EMA generator on its conditions every ``--every`` generator steps (the diagnosis of what
stopped the zero-shot runs from learning; docs/video_generation.md).

The data and judge are those of ``benchmarks/video_generation.py`` (run it once first: they
are cached in ``/tmp/video_generation``). Training mirrors
:class:`~pyro_videossm.infer.gan_trainer.GANTrainer`'s step (``--d-steps`` critic updates,
one generator update, Adam betas 0.5, 0.999, EMA of the generator) with batches drawn from a
seeded permutation per epoch; every ``--every`` steps the EMA generator makes 10 clips of each
of the 54 (motion, top) pairs and the judge scores them, seen and unseen pairs apart.

    # the separate auxiliary classifier (the recipe's default) against the critics' heads
    nice -n 10 OMP_NUM_THREADS=1 python benchmarks/video_generation_curves.py --tag separate \\
        --options '{"gen_channels": 8, "disc_channels": 8}'
    nice -n 10 OMP_NUM_THREADS=1 python benchmarks/video_generation_curves.py --tag critic \\
        --options '{"gen_channels": 8, "disc_channels": 8, "classifier_channels": 0}'

    # the issue's budget (3264 steps, seed 60): the default of then, then the critics'
    # adversarial terms and the classifier's softmax on the training pairs (docs' sixth
    # round; the recipe's defaults changed in the seventh, so the options name them)
    nice -n 10 OMP_NUM_THREADS=1 python benchmarks/video_generation_curves.py \
        --tag full_budget --seed 60 --steps 3264 --every 408 --options '{"gen_channels": 8, \
        "disc_channels": 8, "critic_pairs": "all", "classifier_pairs": "all", \
        "classifier_action_input": "colour"}'
    nice -n 10 OMP_NUM_THREADS=1 python benchmarks/video_generation_curves.py \
        --tag seen_pairs --seed 60 --steps 3264 --every 408 --options '{"gen_channels": 8, \
        "disc_channels": 8, "critic_pairs": "seen", "classifier_pairs": "seen", \
        "classifier_action_input": "colour"}'

Writes ``benchmarks/results/video_generation_curves/<tag>_seed<S>.json``.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pyro_videossm.data.sprites import MOTIONS, STATIC_FACTORS  # noqa: E402
from pyro_videossm.data.sprites_zero_shot import unseen_mask  # noqa: E402
from pyro_videossm.evaluation.judge import load_judge  # noqa: E402
from pyro_videossm.experiments.recipes import RECIPES  # noqa: E402
from pyro_videossm.experiments.records import make_record, write_record  # noqa: E402
from pyro_videossm.experiments.video_gan_recipes import build_gan, load_gan_data  # noqa: E402

RESULTS = ROOT / "benchmarks/results/video_generation_curves"
WORK = Path("/tmp/video_generation")


def pairs(per_pair: int = 10) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(motion, top, unseen)`` of ``per_pair`` clips of every pair, each ``(54 per_pair,)``."""
    m, k = len(MOTIONS), len(STATIC_FACTORS["top"])
    motion = torch.arange(m).repeat_interleave(k * per_pair)
    top = torch.arange(k).repeat_interleave(per_pair).repeat(m)
    unseen = torch.tensor([unseen_mask(int(a), int(c)) for a, c in zip(motion, top)])
    return motion, top, unseen


def confusion(truth: torch.Tensor, guess: torch.Tensor, k: int) -> list[list[int]]:
    """Counts ``[true class][judged class]``, ``(k, k)``."""
    return torch.bincount(truth * k + guess, minlength=k * k).view(k, k).tolist()


@torch.no_grad()
def judged(generator, judge, motion, top, unseen, classifier=None, critics=None) -> dict:
    """The judge's accuracy on motion and top of clips of ``generator``, seen / unseen, its
    motion confusion matrices and, with ``classifier`` (the critics' separate
    :class:`~pyro_videossm.nn.gan_blocks.ConditionClassifier`), that classifier's accuracy on
    the same generated clips (does the auxiliary classifier agree with the judge?); with
    ``critics`` (the :class:`~pyro_videossm.models.video.mocogan.MoCoGANDiscriminator`), the
    mean video and image critic scores of the same clips under their conditions (do the
    critics tell unseen pairs from seen ones?)."""
    state = torch.get_rng_state()
    torch.manual_seed(123)
    generator.eval()
    x = torch.cat([generator(90, motion[i:i + 90], top[i:i + 90])
                   for i in range(0, len(motion), 90)])
    torch.set_rng_state(state)
    p = judge.predict_proba(x)
    guess = p["motion"].argmax(-1)
    aux = None
    if classifier is not None:
        was = classifier.training
        classifier.eval()
        logits = [classifier(x[i:i + 90])[0] for i in range(0, len(x), 90)]
        aux = torch.cat([v["action"][:, :len(MOTIONS)].argmax(-1) for v in logits])
        aux_top = torch.cat([v["content"][:, :len(STATIC_FACTORS["top"])].argmax(-1)
                             for v in logits])
        classifier.train(was)
    scores = None
    if critics is not None:  # eval: no power iteration of the spectral norms
        was = critics.training
        critics.eval()
        parts = [critics(x[i:i + 90], {"action": motion[i:i + 90], "content": top[i:i + 90]})
                 for i in range(0, len(x), 90)]
        scores = (torch.cat([v for v, *_ in parts]), torch.cat([f for _, f, *_ in parts]))
        critics.train(was)
    out = {}
    for part, mask in (("seen", ~unseen), ("unseen", unseen)):
        out[f"{part}_motion_accuracy"] = float((guess == motion)[mask].float().mean())
        out[f"{part}_top_accuracy"] = float((p["top"].argmax(-1) == top)[mask].float().mean())
        out[f"{part}_motion_confusion"] = confusion(motion[mask], guess[mask], len(MOTIONS))
        if aux is not None:
            out[f"{part}_classifier_motion_accuracy"] = float((aux == motion)[mask]
                                                              .float().mean())
            out[f"{part}_classifier_top_accuracy"] = float((aux_top == top)[mask]
                                                           .float().mean())
        if scores is not None:
            out[f"{part}_video_critic_score"] = float(scores[0][mask].mean())
            out[f"{part}_image_critic_score"] = float(scores[1][mask].mean())
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tag", required=True)
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--every", type=int, default=250)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--lr", type=float, default=1e-3, help="generator learning rate")
    p.add_argument("--options", default="{}", help="cmocogan options (JSON)")
    p.add_argument("--data", type=Path,
                   default=WORK / "sprites_s16_f8_c230_from32_zero_shot.nc")
    p.add_argument("--judge", type=Path,
                   default=WORK / "judge_sprites_s16_f8_c230_from32_j15.pt")
    p.add_argument("--no-write", action="store_true")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    opts = RECIPES["cmocogan"].make_options(**json.loads(args.options))
    data = load_gan_data(args.data, conditions=("motion", "top"))
    torch.manual_seed(args.seed)
    gen, disc, obj = build_gan("cmocogan", opts, data.meta)
    ema = copy.deepcopy(gen).requires_grad_(False)
    opt_g = torch.optim.Adam(gen.parameters(), lr=args.lr, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(disc.parameters(), lr=opts.lr_discriminator, betas=(0.5, 0.999))
    judge, _ = load_judge(args.judge)
    motion, top, unseen = pairs()
    n = data.clips.shape[0]
    order = torch.Generator().manual_seed(args.seed)
    curve, sums, step, t0 = [], {}, 0, time.perf_counter()
    while step < args.steps:
        perm = torch.randperm(n, generator=order)
        for s in range(0, n - 31, 32):
            idx = perm[s:s + 32]
            batch = {"frames": data.clips[idx], **{k: v[idx] for k, v in data.labels.items()}}
            for _ in range(opts.d_steps):
                opt_d.zero_grad()
                d_loss, d_logs = obj.discriminator_loss(batch)
                d_loss.backward()
                opt_d.step()
            disc.requires_grad_(False)
            opt_g.zero_grad()
            g_loss, g_logs = obj.generator_loss(batch)
            g_loss.backward()
            opt_g.step()
            disc.requires_grad_(True)
            with torch.no_grad():
                for e, q in zip(ema.parameters(), gen.parameters()):
                    e.mul_(opts.ema_decay).add_(q, alpha=1 - opts.ema_decay)
                for e, b in zip(ema.buffers(), gen.buffers()):
                    e.copy_(b)
            for k, v in {**d_logs, **g_logs}.items():
                sums[k] = sums.get(k, 0.0) + float(v)
            step += 1
            if step % args.every == 0 or step == args.steps:
                point = {"step": step, "seconds": time.perf_counter() - t0,
                         **judged(ema, judge, motion, top, unseen,
                                  getattr(disc, "classifier", None), disc),
                         **{k: v / args.every for k, v in sums.items()}}
                curve.append(point)
                sums = {}
                print(json.dumps({k: v for k, v in point.items()
                                  if not k.endswith("confusion")}), flush=True)
            if step >= args.steps:
                break
    if not args.no_write:
        command = ("nice -n 10 OMP_NUM_THREADS=1 python benchmarks/video_generation_curves.py "
                   f"--tag {args.tag} --seed {args.seed} --steps {args.steps} --every "
                   f"{args.every} --options '{args.options}'")
        write_record(RESULTS / f"{args.tag}_seed{args.seed}.json", make_record(
            f"video_generation_curves_{args.tag}", command=command,
            options=vars(args) | {"data": str(args.data), "judge": str(args.judge)},
            data={"training_clips": n}, metrics={"curve": curve},
            timings={"train_seconds": time.perf_counter() - t0}, machine_note="shared, loaded"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
