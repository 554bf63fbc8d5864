"""The one training loop shared by every model of the toolkit.

``Trainer(objective, config).fit(train_data, valid_data)`` trains a Pyro model
(:class:`SVIObjective`) or a plain torch model (:class:`LossObjective`) with ``ClippedAdam``,
KL annealing, validation and early stopping, progress bars, atomic checkpoints with exact
resume, and data-parallel training under ``torchrun``. :func:`save_model_file` and
:func:`load_model_file` read and write the trained-model file. See ``docs/TRAINING.md``.
"""

from pyro_videossm.infer.config import TrainConfig, annealing_factor
from pyro_videossm.infer.model_file import load_model_file, load_state_checked, save_model_file
from pyro_videossm.infer.objectives import LossObjective, Objective, SVIObjective
from pyro_videossm.infer.trainer import Trainer, TrainingDiverged

__all__ = [
    "LossObjective",
    "Objective",
    "SVIObjective",
    "TrainConfig",
    "Trainer",
    "TrainingDiverged",
    "annealing_factor",
    "load_model_file",
    "load_state_checked",
    "save_model_file",
]
