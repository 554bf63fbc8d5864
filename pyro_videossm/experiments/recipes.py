"""The training recipes, by name: :data:`RECIPES` (``videossm train NAME`` lists them).

Built in (imported on the first lookup): the field forecasters ``convdmm``, ``convlstm``,
``dmm-flat``, ``advection-convdmm`` (:mod:`~pyro_videossm.experiments.field_recipes`), the
frame forecasters ``spatrans``, ``transformer``, ``lstm``, ``seq2seq``, ``seq2seq-attn``
(:mod:`~pyro_videossm.experiments.sequence_recipes`) and the video models ``dsvae`` and
``judge`` (:mod:`~pyro_videossm.experiments.video_recipes`), ``flow-animator``
(:mod:`~pyro_videossm.experiments.animation_recipe`), the referees of generated clips
``video-judge`` and ``depth-estimator``
(:mod:`~pyro_videossm.experiments.video_evaluation_recipes`), the video GANs ``mocogan``,
``cmocogan``, ``dcvgan`` (:mod:`~pyro_videossm.experiments.video_gan_recipes`), ``recognizer``
(:mod:`~pyro_videossm.experiments.recognition_recipe`) and ``eating-sounds``
(:mod:`~pyro_videossm.experiments.eating_recipe`). Other packages add recipes through
the entry-point group ``pyro_videossm.recipes``; a :class:`~pyro_videossm.experiments.recipe.
Recipe` can also be registered at run time (``RECIPES.register(recipe)``, or
:func:`pyro_videossm.cli.train.register_trainer` for a command-line-only trainer).

    >>> from pyro_videossm.experiments.recipes import RECIPES, TrainingRun
    >>> recipe = RECIPES["convlstm"]
    >>> history = recipe.fit(TrainingRun("heat.nc", "m.pt", epochs=2),
    ...                      recipe.make_options(context=5, leads=5))   # doctest: +SKIP
"""

from __future__ import annotations

from pyro_videossm.experiments.recipe import Recipe, TrainingRun
from pyro_videossm.registry import Registry

RECIPES: Registry[Recipe] = Registry("recipe", builtins=(
    "pyro_videossm.experiments.sequence_recipes",
    "pyro_videossm.experiments.field_recipes",
    "pyro_videossm.experiments.video_recipes",
    "pyro_videossm.experiments.animation_recipe",
    "pyro_videossm.experiments.video_evaluation_recipes",
    "pyro_videossm.experiments.recognition_recipe",
    "pyro_videossm.experiments.eating_recipe",
    "pyro_videossm.experiments.video_gan_recipes",
))

__all__ = ["RECIPES", "Recipe", "TrainingRun"]
