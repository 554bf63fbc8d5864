"""Evaluation of generative video models: the judge classifier, the disentanglement protocol and
the scores of generated clips (accuracy on their conditions for seen and unseen combinations,
IS, judge-FID / judge-FVD analogue, content stability, depth-colour consistency)."""

from pyro_videossm.evaluation.condition_accuracy import condition_accuracy
from pyro_videossm.evaluation.content_stability import content_stability
from pyro_videossm.evaluation.disentanglement import (
    balanced_subset,
    classification_scores,
    evaluate_disentanglement,
    summary_row,
)
from pyro_videossm.evaluation.frechet import (
    frechet_distance,
    frechet_distance_of_features,
    gaussian_statistics,
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
    "condition_accuracy",
    "content_stability",
    "evaluate_disentanglement",
    "frechet_distance",
    "frechet_distance_of_features",
    "gaussian_statistics",
    "judge_accuracy",
    "load_judge",
    "save_judge",
    "summary_row",
    "train_judge",
]
