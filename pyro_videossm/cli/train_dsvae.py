"""``videossm train dsvae clips.nc [--adversarial] -o model.pt`` and ``videossm train judge``.

* ``dsvae``: the disentangled sequential VAE (:mod:`pyro_videossm.models.video.dsvae`), with
  ``--adversarial`` the motion classifier on the static latent (trained against the encoder), with
  the shared SVI loop on the training clips of a video file (``frames(clip, time, channel, y,
  x)``; clips with ``split == 0`` when the file has a ``split`` variable).
* ``judge``: the clip classifier of :mod:`pyro_videossm.evaluation.judge` on the training clips,
  one head per label (default: ``motion`` and the sprites' static factors), checked on the test
  clips when the file has some.
"""

from __future__ import annotations

import math

import torch

from pyro_videossm.cli.common import say
from pyro_videossm.cli.train import register_trainer
from pyro_videossm.data.conventions import open_dataset
from pyro_videossm.data.sprites import (
    STATIC_FACTORS,
    frames_tensor,
    labels_tensor,
    select_split,
)
from pyro_videossm.errors import InputError

#: Labels the judge learns by default (the sprites' motion and static factors).
DEFAULT_JUDGE_LABELS = ("motion", *STATIC_FACTORS)


def _clean(history: list[dict]) -> list[dict]:
    return [{k: (None if isinstance(v, float) and not math.isfinite(v) else v)
             for k, v in h.items()} for h in history]


def _config(args, epochs: int, batch_size: int, lr: float):
    from pyro_videossm.infer import TrainConfig

    return TrainConfig(
        epochs=epochs if args.epochs is None else args.epochs,
        batch_size=batch_size if args.batch_size is None else args.batch_size,
        lr=lr if args.lr is None else args.lr, anneal_epochs=getattr(args, "anneal_epochs", 0),
        device=args.device, seed=args.seed,
        checkpoint_path=str(args.checkpoint) if args.checkpoint else None,
        progress=args.progress)


def _training_clips(path):
    ds = open_dataset(path)
    train = select_split(ds, "train")
    if train.sizes.get("clip", 0) == 0:
        raise InputError(f"{path}: no training clips (split == 0)")
    return train.load()


def _dsvae_arguments(parser) -> None:
    parser.add_argument("--adversarial", action="store_true",
                        help="add the motion classifier on the static latent, trained against "
                             "the encoder")
    parser.add_argument("--static-dim", type=int, default=32, help="size of f (default 32)")
    parser.add_argument("--dynamic-dim", type=int, default=8, help="size of each z_t (default 8)")
    parser.add_argument("--hidden-dim", type=int, default=128, help="LSTM/MLP width (default 128)")
    parser.add_argument("--feature-dim", type=int, default=128,
                        help="frame-feature size (default 128)")
    parser.add_argument("--conv-channels", type=int, default=32,
                        help="channels of the first convolution (default 32)")
    parser.add_argument("--likelihood", choices=["bernoulli", "normal"], default="bernoulli",
                        help="pixel likelihood (default bernoulli)")
    parser.add_argument("--pixel-scale", type=float, default=0.1,
                        help="std of the normal likelihood (default 0.1)")
    parser.add_argument("--dynamic-encoder", choices=["frame", "rnn"], default="frame",
                        help="q(z_t | x_t) per frame or a causal LSTM (default frame)")
    parser.add_argument("--adversary-weight", type=float, default=30.0,
                        help="weight of the adversary's loss (default 30)")
    parser.add_argument("--adversary-mode", choices=["minmax", "grl"], default="minmax",
                        help="encoder vs classifier: confusion loss (minmax, default) or "
                             "gradient reversal (grl)")
    parser.add_argument("--dynamic-kl-weight", type=float, default=1.0,
                        help="weight beta_z of the KL of z (default 1: the ELBO)")
    parser.add_argument("--motion-label", default="motion",
                        help="label variable the adversary predicts (default motion)")
    parser.add_argument("--anneal-epochs", type=int, default=0,
                        help="epochs of linear KL annealing (default 0)")


def _run_dsvae(args) -> int:
    from pyro_videossm.models.video.dsvae import DisentangledSequentialVAE, save_dsvae, train_dsvae

    ds = _training_clips(args.data)
    x = frames_tensor(ds, str(args.data))
    if x.shape[-1] != x.shape[-2]:
        raise InputError(f"{args.data}: frames must be square, got {x.shape[-2]}x{x.shape[-1]}")
    motion, n_classes = None, 9
    if args.adversarial:
        from pyro_videossm.evaluation.judge import label_classes

        n_classes = label_classes(ds, [args.motion_label])[args.motion_label]
        motion = labels_tensor(ds, [args.motion_label], str(args.data),
                               {args.motion_label: n_classes})[args.motion_label]
    torch.manual_seed(args.seed)
    model = DisentangledSequentialVAE(
        x.shape[2], x.shape[3], static_dim=args.static_dim, dynamic_dim=args.dynamic_dim,
        feature_dim=args.feature_dim, hidden_dim=args.hidden_dim,
        conv_channels=args.conv_channels, likelihood=args.likelihood,
        pixel_scale=args.pixel_scale, dynamic_encoder=args.dynamic_encoder,
        adversarial=args.adversarial, n_motion_classes=n_classes,
        adversary_weight=args.adversary_weight, dynamic_kl_weight=args.dynamic_kl_weight,
        adversary_mode=args.adversary_mode)
    config = _config(args, epochs=20, batch_size=32, lr=1e-3)
    kind = "DSVAE + adversarial classifier" if args.adversarial else "DSVAE"
    say(f"{kind}: {sum(p.numel() for p in model.parameters()):,} parameters, "
        f"{x.shape[0]} training clips of {x.shape[1]} frames {x.shape[3]}x{x.shape[4]}")
    history = train_dsvae(model, x, motion, config, resume=args.resume)
    save_dsvae(model, args.output, extra={"history": _clean(history), "data": str(args.data),
                                          "motion_label": args.motion_label,
                                          "train_config": config.to_dict()})
    last = history[-1]["train_loss"] if history else math.nan
    say(f"wrote {args.output} ({len(history)} epochs, loss per frame {last:.2f})")
    return 0


def _judge_arguments(parser) -> None:
    parser.add_argument("--labels", default=",".join(DEFAULT_JUDGE_LABELS),
                        help="comma-separated label variables, one head each "
                             f"(default {','.join(DEFAULT_JUDGE_LABELS)})")
    parser.add_argument("--conv-channels", type=int, default=32,
                        help="channels of the first convolution (default 32)")
    parser.add_argument("--hidden-dim", type=int, default=128, help="LSTM width (default 128)")


def _run_judge(args) -> int:
    from pyro_videossm.evaluation.judge import judge_accuracy, save_judge, train_judge

    ds = open_dataset(args.data)
    train = _training_clips(args.data)
    labels = [s for s in args.labels.split(",") if s]
    config = _config(args, epochs=4, batch_size=32, lr=1e-3)
    judge, history = train_judge(train, labels, epochs=config.epochs,
                                 batch_size=config.batch_size, lr=config.lr,
                                 conv_channels=args.conv_channels, hidden_dim=args.hidden_dim,
                                 device=args.device, seed=args.seed, progress=args.progress)
    extra = {"history": _clean(history), "data": str(args.data)}
    test = select_split(ds, "test") if "split" in ds.data_vars else None
    if test is not None and test.sizes["clip"] > 0:
        acc = judge_accuracy(judge.cpu(), test.load())
        extra["test_accuracy"] = acc
        say("judge accuracy on the test clips: "
            + ", ".join(f"{k} {v:.2%}" for k, v in acc.items()))
    save_judge(judge, args.output, extra=extra)
    say(f"wrote {args.output}")
    return 0


register_trainer("dsvae", "disentangled sequential VAE (static f, dynamic z_t) on video clips",
                 _dsvae_arguments, _run_dsvae)
register_trainer("judge", "clip classifier (motion + static factors) that scores generated clips",
                 _judge_arguments, _run_judge)
