"""The experiment layer: windowed training data and training recipes.

* :mod:`~pyro_videossm.experiments.windows`: :func:`build_windows`, one builder of training
  and validation windows for fields, series and video (one batch format, one set of
  normalisation rules, one chronological validation split);
* :mod:`~pyro_videossm.experiments.normalization`: the ``robust|minmax|log|none`` scalings;
* :mod:`~pyro_videossm.experiments.recipes`: :data:`RECIPES`, name -> :class:`Recipe` (model
  builder, objective, forecaster wrapper, defaults), what ``videossm train`` runs.

Importing this package imports nothing heavy: the names below are loaded on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "build_windows": "windows", "WindowData": "windows", "validation_size": "windows",
    "fit_scaling": "normalization", "NORMALIZATIONS": "normalization",
    "RECIPES": "recipes", "Recipe": "recipe", "TrainingRun": "recipe",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
