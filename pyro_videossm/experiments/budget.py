"""Training under a budget: :func:`fit_within_budget` runs the shared
:class:`~pyro_videossm.infer.Trainer` for at most ``config.epochs`` epochs and, with
``seconds``, stops at the first optimiser step after that much wall-clock time.

The deadline is checked before every training step (validation batches are never cut); a
stopped epoch leaves no entry in the history (the history holds finished epochs only), and the
parameters are those after the last step taken. ``items_seen`` counts the training items of
the steps taken, so ``items_seen / len(train)`` is the number of epochs actually trained
(fractional when the deadline falls inside an epoch). The budget applies in one process (not
under ``torchrun``, where the steps go through ``DistributedDataParallel``).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

from pyro_videossm.infer.objectives import batch_items


class _TimeUp(Exception):
    """Raised before a training step once the deadline has passed."""


@dataclass
class BudgetedFit:
    """What :func:`fit_within_budget` returns.

    Attributes:
        history: one dict per finished epoch (:meth:`Trainer.fit`'s history).
        seconds: wall-clock seconds of the fit.
        items_seen: training items of the optimiser steps taken.
        timed_out: whether the deadline stopped training.
    """

    history: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    items_seen: int = 0
    timed_out: bool = False


def fit_within_budget(objective, config, train, valid=None, *,
                      seconds: float | None = None) -> BudgetedFit:
    """Fit ``objective`` (an :class:`~pyro_videossm.infer.Objective`) on ``train`` /
    ``valid`` with ``config`` (a :class:`~pyro_videossm.infer.TrainConfig`) for at most
    ``config.epochs`` epochs and, with ``seconds`` (``None`` or 0: no time limit), stop at the
    first step after ``seconds`` of training."""
    from pyro_videossm.infer import Trainer

    budget = float(seconds) if seconds else math.inf
    out = BudgetedFit()
    step = objective.loss_and_grads

    def timed_step(batch, annealing_factor):
        if time.perf_counter() > deadline:
            raise _TimeUp
        out.items_seen += batch_items(batch)
        return step(batch, annealing_factor)

    trainer = Trainer(objective, config)
    objective.loss_and_grads = timed_step  # this objective only, undone below
    started = time.perf_counter()
    deadline = started + budget
    try:
        trainer.fit(train, valid)
    except _TimeUp:
        out.timed_out = True
    finally:
        del objective.loss_and_grads
        out.seconds = time.perf_counter() - started
    out.history = trainer.history
    return out


__all__ = ["BudgetedFit", "fit_within_budget"]
