"""Which epoch's EMA generator a flow-animator model file keeps (``--keep``).

Per epoch the trainer scores the EMA generator on the validation clips (never the test
clips) with :func:`~pyro_videossm.metrics.animation.score_animation`: ``l1``,
``spectrum_distance`` and ``motion_epe``; the semi-Lagrangian baseline is scored once on the
same clips. Then:

* ``last``: the last epoch;
* ``best``: the epoch with the lowest validation L1 (the trainer's own validation L1);
* ``targets``: the epoch whose smallest relative margin to the three targets of issue #16 is
  largest (:func:`target_margins`: L1 and spectrum distance below the baseline's, end-point
  error at most ``1.1 ×`` the baseline's), i.e. the epoch that holds all three by the widest
  margin on the validation clips, or that misses them by the least.
"""

from __future__ import annotations

from collections.abc import Mapping

from pyro_videossm.errors import InputError

#: ``--keep`` choices.
KEEP_CHOICES = ("last", "best", "targets")
#: End-point error allowed, as a multiple of the baseline's.
EPE_TOLERANCE = 1.1


def target_margins(scores: Mapping[str, float], baseline: Mapping[str, float],
                   epe_tolerance: float = EPE_TOLERANCE) -> dict[str, float]:
    """Relative margins to the targets (positive: holds): ``(bound - score) / bound`` with
    bound the baseline's ``l1`` and ``spectrum_distance`` and ``epe_tolerance ×`` its
    ``motion_epe``."""
    bounds = {"l1": baseline["l1"], "spectrum_distance": baseline["spectrum_distance"],
              "motion_epe": epe_tolerance * baseline["motion_epe"]}
    return {k: (b - scores[k]) / b for k, b in bounds.items()}


def select_epoch(keep: str, valid_l1: Mapping[int, float],
                 valid_scores: Mapping[int, Mapping[str, float]] | None = None,
                 baseline: Mapping[str, float] | None = None) -> int:
    """The epoch to keep: ``valid_l1`` maps epochs (1-based) to the trainer's validation L1,
    ``valid_scores`` to the scores of the module doc (needed by ``targets``), ``baseline``
    the semi-Lagrangian baseline's scores on the same clips. Ties go to the earlier epoch."""
    if keep not in KEEP_CHOICES:
        raise InputError(f"keep must be one of {', '.join(KEEP_CHOICES)}, got {keep!r}")
    if not valid_l1:
        raise InputError("no validated epoch to select from")
    epochs = sorted(valid_l1)
    if keep == "last":
        return epochs[-1]
    if keep == "best":
        return min(epochs, key=lambda e: (valid_l1[e], e))
    if valid_scores is None or baseline is None:
        raise InputError("--keep targets needs the validation scores and the baseline's")
    worst = {e: min(target_margins(valid_scores[e], baseline).values()) for e in epochs}
    return max(epochs, key=lambda e: (worst[e], -e))
