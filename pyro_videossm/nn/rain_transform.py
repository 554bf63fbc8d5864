"""Rain rate to and from a transformed space where Gaussian noise suits it (as pysteps does
with its dB transform), and the cap that keeps forecasts bounded.

:class:`RainTransform` (``kind="log"``)::

    t = log1p(r / c) / log1p(1 / c),  r = max(x, 0), 0 where x < threshold
    x = c · expm1(t · log1p(1 / c)), clamped to >= 0

so ``t(0) = 0`` (dry) and ``t(1) = 1`` (the top of the ``[0, 1]`` model units); ``c`` is the
offset and ``threshold`` the rain/no-rain threshold, both in model units. ``kind="none"`` is the
identity (fields that may be negative, e.g. temperatures).

:func:`cap_forecast` clamps forecast values to ``cap_factor`` times the largest observed
absolute value of the context (per sequence; ``[0, cap]`` for rain), less a relative
:data:`CAP_MARGIN` so that the capped values stay within the cap after a round trip through
float32 and the unscaling: an all-dry context forecasts zeros.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from pyro_videossm.errors import InputError

TRANSFORMS = ("log", "none")
#: relative margin under the cap (float32 rounding of model units and their unscaling)
CAP_MARGIN = 1e-6


class RainTransform:
    """``forward`` (model units -> transformed) and ``inverse`` (module doc)."""

    def __init__(self, kind: str = "log", offset: float = 0.01, threshold: float = 0.0) -> None:
        if kind not in TRANSFORMS:
            raise InputError(f"transform must be one of {', '.join(TRANSFORMS)}, got {kind!r}")
        if not offset > 0:
            raise InputError(f"transform offset must be > 0, got {offset}")
        if not threshold >= 0:
            raise InputError(f"transform threshold must be >= 0, got {threshold}")
        self.kind, self.offset, self.threshold = kind, float(offset), float(threshold)
        self._norm = math.log1p(1.0 / self.offset)

    @property
    def non_negative(self) -> bool:
        """Whether the field is a rate (>= 0) in this transform."""
        return self.kind == "log"

    def forward(self, x: Tensor) -> Tensor:
        if self.kind == "none":
            return x
        r = x.clamp(min=0.0)
        r = torch.where(r < self.threshold, torch.zeros_like(r), r)
        return torch.log1p(r / self.offset) / self._norm

    def inverse(self, t: Tensor) -> Tensor:
        if self.kind == "none":
            return t
        # beyond t = 50 the rate is astronomically large anyway; the cap handles it
        return (self.offset * torch.expm1(t.clamp(max=50.0) * self._norm)).clamp(min=0.0)


def context_cap(context: Tensor, mask: Tensor, cap_factor: float) -> Tensor:
    """``cap_factor · (1 - CAP_MARGIN)`` times the largest observed ``|value|`` of each
    sequence of ``context`` ``(B, T, H, W)`` (0 where nothing is observed) -> ``(B,)``."""
    observed = torch.where(mask.bool(), context.abs(), torch.zeros_like(context))
    return cap_factor * (1.0 - CAP_MARGIN) * observed.flatten(1).amax(dim=1)


def cap_forecast(frames: Tensor, cap: Tensor, non_negative: bool) -> Tensor:
    """``frames`` ``(B, ...)`` clamped to ``[0, cap_b]`` (``non_negative``) or
    ``[-cap_b, cap_b]`` per sequence ``b``."""
    c = cap.reshape(-1, *([1] * (frames.dim() - 1)))
    low = torch.zeros_like(c) if non_negative else -c
    return torch.maximum(torch.minimum(frames, c), low)


__all__ = ["CAP_MARGIN", "TRANSFORMS", "RainTransform", "cap_forecast", "context_cap"]
