"""Evaluation of generative video models: the judge classifier and the disentanglement protocol."""

from pyro_videossm.evaluation.disentanglement import (
    balanced_subset,
    classification_scores,
    evaluate_disentanglement,
    summary_row,
)
from pyro_videossm.evaluation.judge import (
    MIN_MOTION_ACCURACY,
    Judge,
    UntrustedJudgeError,
    check_trusted,
    judge_accuracy,
    load_judge,
    save_judge,
    train_judge,
)

__all__ = [
    "MIN_MOTION_ACCURACY",
    "Judge",
    "UntrustedJudgeError",
    "balanced_subset",
    "check_trusted",
    "classification_scores",
    "evaluate_disentanglement",
    "judge_accuracy",
    "load_judge",
    "save_judge",
    "summary_row",
    "train_judge",
]
