"""How much a trained flow animator sharpens its frames (``--sharpen-amount``; default:
calibrated here).

The refinement network is trained for L1, so it keeps what it can predict and smooths what it
cannot: its frames are closer to the real ones than semi-Lagrangian warping's, by a gain
``g = L1_warping - L1_model`` on the validation clips, but they are smoother (their power
spectrum falls further below the source's at high wavenumbers). An unsharp mask
(:func:`~pyro_videossm.models.video.unsharp.unsharp_mask`) restores that power at a price in
L1. :func:`calibrate_sharpening` spends at most a fraction ``texture_budget`` of the gain on
it: the amount is the largest of a grid (``0, 0.05, ..., 1``) whose validation L1 stays at
or below ``L1_warping - (1 - texture_budget) · g``; 0 when the model has no gain. The
calibration reads the validation clips and the L1 only (never the test clips, never the
spectrum score), so the spectrum is a consequence, not a fitted number.
"""

from __future__ import annotations

import numpy as np
import torch

from pyro_videossm.errors import InputError

#: Sharpening amounts tried, in order.
AMOUNTS = tuple(round(0.05 * i, 2) for i in range(21))
#: Default fraction of the validation L1 gain over warping that sharpening may spend.
TEXTURE_BUDGET = 0.5


def sharpened(generated: np.ndarray, amount: float, sigma: float) -> np.ndarray:
    """Clips ``(N, T, H, W)`` with frames ``1..T-1`` unsharp-masked and clipped to
    ``[0, 1]`` (what :class:`~pyro_videossm.models.video.flow_animator.FlowAnimator` does with
    ``sharpen_amount = amount``)."""
    from pyro_videossm.models.video.unsharp import unsharp_mask

    out = np.array(generated, dtype=np.float32)  # a copy
    out[:, 1:] = unsharp_mask(torch.from_numpy(out[:, 1:]), amount, sigma).clamp(0, 1).numpy()
    return out


def calibrate_sharpening(generated: np.ndarray, real: np.ndarray, baseline_l1: float, *,
                         sigma: float, texture_budget: float = TEXTURE_BUDGET,
                         amounts=AMOUNTS) -> tuple[float, list[dict[str, float]]]:
    """``(amount, table)``: the sharpening amount for a model whose unsharpened validation clips
    are ``generated`` ``(N, T, H, W)`` (the real clips: ``real``; semi-Lagrangian warping's L1
    on them: ``baseline_l1``), by the rule of the module doc; ``table`` lists
    ``{"amount", "l1"}`` for every amount tried."""
    from pyro_videossm.metrics.animation import reconstruction_l1

    if not 0 <= texture_budget <= 1:
        raise InputError(f"texture budget must be in [0, 1], got {texture_budget}")
    amounts = sorted(float(a) for a in amounts)
    if not amounts or amounts[0] != 0:
        raise InputError("the sharpening amounts must start at 0")
    table = [{"amount": a, "l1": reconstruction_l1(sharpened(generated, a, sigma) if a
                                                   else generated, real)} for a in amounts]
    gain = baseline_l1 - table[0]["l1"]
    if not gain > 0:
        return 0.0, table
    bound = baseline_l1 - (1.0 - texture_budget) * gain
    return max(row["amount"] for row in table if row["l1"] <= bound), table
