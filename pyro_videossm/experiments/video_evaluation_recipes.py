"""Recipes ``video-judge`` and ``depth-estimator``: the referees of generated clips.

* ``video-judge``: the clip classifier of :mod:`pyro_videossm.evaluation.judge` with clip heads
  for an action label and content labels, frame heads for the content labels (content
  stability), trained on the training clips (``split == 0``) of a video file. Labels ``auto``:
  ``motion`` + the four static factors for sprites files, ``action``, ``shape``, ``colour`` for
  shapes-rgbd files. Its file keeps, in ``extra``: ``action_label``, ``content_labels``,
  ``test_accuracy`` (per label, on the test clips) and ``reference``, the judge-feature
  statistics of the real test clips (training clips when there are none) that the
  judge-FID / judge-FVD analogue of generated clips are measured against.
* ``depth-estimator``: :class:`~pyro_videossm.evaluation.depth_estimator.DepthEstimator` on the
  training clips' (frame, depth) pairs of an RGB-D file; its file keeps ``test_error`` (mean
  absolute error in world units on the test clips).
"""

from __future__ import annotations

from dataclasses import dataclass

import xarray as xr

from pyro_videossm.data.sprites import STATIC_FACTORS, select_split
from pyro_videossm.errors import InputError
from pyro_videossm.experiments.recipe import Recipe, TrainingRun, plain_history, say
from pyro_videossm.experiments.recipes import RECIPES
from pyro_videossm.experiments.video_recipes import open_clips, training_clips
from pyro_videossm.experiments.windowed import option

#: Labels ``auto`` picks: (action label, content labels) by data set, first match wins.
AUTO_LABELS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("motion", tuple(STATIC_FACTORS)),
    ("action", ("shape", "colour")),
)


def auto_labels(ds: xr.Dataset) -> tuple[str, list[str]]:
    """(action label, content labels) of a sprites or shapes-rgbd Dataset."""
    for action, content in AUTO_LABELS:
        if action in ds.data_vars and all(c in ds.data_vars for c in content):
            return action, list(content)
    raise InputError("cannot tell the labels of this data set: pass --labels ACTION,CONTENT,..."
                     " (the first is the action)")


def _test_clips(ds: xr.Dataset) -> xr.Dataset | None:
    if "split" not in ds.data_vars:
        return None
    test = select_split(ds, "test")
    return test.load() if test.sizes["clip"] else None


@dataclass
class VideoJudgeOptions:
    labels: str = option("auto", "comma-separated labels, the action first (auto: sprites "
                                 "motion + static factors, shapes-rgbd action,shape,colour)")
    frame_labels: str = option("auto", "comma-separated content labels with frame heads "
                                       "(auto: all labels but the first)")
    conv_channels: int = option(32, "channels of the first convolution")
    hidden_dim: int = option(128, "LSTM width")
    feature_dim: int = option(128, "frame-feature size")


def train_video_judge_recipe(run: TrainingRun, options: VideoJudgeOptions) -> list[dict]:
    from pyro_videossm.data.sprites import frames_tensor
    from pyro_videossm.evaluation.judge import judge_accuracy, save_judge, train_judge
    from pyro_videossm.evaluation.judge_space import feature_statistics

    ds = open_clips(run.data)
    if options.labels == "auto":
        action, content = auto_labels(ds)
    else:
        names = [s for s in options.labels.split(",") if s]
        if not names:
            raise InputError("--labels is empty")
        action, content = names[0], names[1:]
    frame_labels = (content if options.frame_labels == "auto"
                    else [s for s in options.frame_labels.split(",") if s])
    unknown = [k for k in frame_labels if k not in [action, *content]]
    if unknown:
        raise InputError(f"--frame-labels {unknown[0]!r} is not among the labels "
                         f"({', '.join([action, *content])})")
    train = training_clips(run.data)
    config = run.config(**VIDEO_JUDGE.defaults)
    judge, history = train_judge(train, [action, *content], epochs=config.epochs,
                                 batch_size=config.batch_size, lr=config.lr,
                                 conv_channels=options.conv_channels,
                                 hidden_dim=options.hidden_dim, feature_dim=options.feature_dim,
                                 device=config.device, seed=config.seed,
                                 progress=config.progress, frame_labels=frame_labels)
    judge = judge.cpu()
    say(f"video judge trained: action {action}, content {', '.join(content) or 'none'}, "
        f"frame heads {', '.join(frame_labels) or 'none'}; {train.sizes['clip']} training clips")
    test = _test_clips(ds)
    extra = {"history": plain_history(history), "data": run.data_label,
             "action_label": action, "content_labels": list(content)}
    if test is not None:
        acc = judge_accuracy(judge, test)
        extra["test_accuracy"] = acc
        say("judge accuracy on the test clips: "
            + ", ".join(f"{k} {v:.2%}" for k, v in acc.items()))
    ref = test if test is not None and test.sizes["clip"] >= 2 else train
    extra["reference"] = feature_statistics(judge, frames_tensor(ref, "reference clips"))
    extra["reference_split"] = "test" if ref is test else "train"
    if run.output is not None:
        save_judge(judge, run.output, extra=extra)
        say(f"wrote {run.output}")
    return history


@dataclass
class DepthEstimatorOptions:
    width: int = option(16, "channels at full resolution")


def train_depth_estimator_recipe(run: TrainingRun, options: DepthEstimatorOptions
                                 ) -> list[dict]:
    from pyro_videossm.evaluation.depth_estimator import (
        depth_error,
        rgbd_pairs,
        save_depth_estimator,
        train_depth_estimator,
    )

    ds = open_clips(run.data)
    train = training_clips(run.data)
    config = run.config(**DEPTH_ESTIMATOR.defaults)
    model, history = train_depth_estimator(train, width=options.width, epochs=config.epochs,
                                           batch_size=config.batch_size, lr=config.lr,
                                           device=config.device, seed=config.seed,
                                           progress=config.progress)
    model = model.cpu()
    extra = {"history": plain_history(history), "data": run.data_label}
    test = _test_clips(ds)
    if test is not None:
        x, d = rgbd_pairs(test, "test clips")
        extra["test_error"] = depth_error(model.estimate(x), d)
        say(f"depth estimator on the test clips: mean absolute error "
            f"{extra['test_error']['mae']:.3f} (world units)")
    if run.output is not None:
        save_depth_estimator(model, run.output, extra=extra)
        say(f"wrote {run.output}")
    return history


VIDEO_JUDGE = RECIPES.register(Recipe(
    name="video-judge", help="clip classifier with action and content heads (and per-frame "
                             "content heads) that scores generated clips",
    options=VideoJudgeOptions, train=train_video_judge_recipe,
    defaults={"epochs": 4, "batch_size": 32, "lr": 1e-3}))
DEPTH_ESTIMATOR = RECIPES.register(Recipe(
    name="depth-estimator", help="colour frame -> depth CNN trained on real RGB-D pairs "
                                 "(referee of depth-colour consistency)",
    options=DepthEstimatorOptions, train=train_depth_estimator_recipe,
    defaults={"epochs": 5, "batch_size": 64, "lr": 2e-3}))
