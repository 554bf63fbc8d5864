"""Persistence: tomorrow looks like today. The baseline every field forecaster must beat."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from pyro_videossm.data.scaling import FieldScaling
from pyro_videossm.forecast.base import Forecaster, register_forecaster


@register_forecaster
class Persistence(Forecaster):
    """Repeat, at every pixel, the last value observed in the context (NaN-aware).

    A pixel missing in the last frame takes its most recent observed value; a pixel never
    observed in the context is ``fill`` (NaN by default: no forecast there).
    """

    name = "persistence"
    deterministic = True
    dtype = torch.float64

    def __init__(self, fill: float | None = None) -> None:
        self.fill = fill
        self.scaling = FieldScaling()
        self.device = torch.device("cpu")

    def predict(self, context: Tensor, mask: Tensor, leads: int, members: int = 1, *,
                generator: torch.Generator | None = None) -> Tensor:
        """``(B, T, H, W)`` context and mask -> ``(B, leads, 1, H, W)``."""
        t = context.shape[1]
        steps = torch.arange(1, t + 1, device=context.device).view(1, t, 1, 1)
        last = (mask.to(steps.dtype) * steps).argmax(dim=1, keepdim=True)  # (B, 1, H, W)
        value = torch.gather(context, 1, last)
        seen = mask.any(dim=1, keepdim=True)
        fill = math.nan if self.fill is None else float(self.fill)
        value = torch.where(seen, value, torch.full_like(value, fill))
        return value.unsqueeze(2).expand(-1, leads, 1, -1, -1).contiguous()
