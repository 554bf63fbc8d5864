"""Base class of the neural frame forecasters: point (MSE) or quantile (pinball) output.

A subclass implements :meth:`FrameForecaster.forward_frames` (context frames in, one output
channel per quantile level out); this class turns it into

* a training loss (:meth:`FrameForecaster.loss`, for the shared Trainer's ``LossObjective``):
  masked MSE for point forecasts, masked pinball loss for quantile forecasts;
* the :class:`~pyro_videossm.forecast.base.Forecaster` interface (``predict``/``forecast``),
  and a model file (:meth:`FrameForecaster.save` / ``from_model_file``).

Quantile forecasts (``quantiles=(0.1, 0.5, 0.9)``) are non-crossing by construction
(:func:`monotone_quantiles`). Behind the Forecaster interface the member dimension carries
*quantile-spaced members*: member ``m`` of ``M`` is the predictive quantile at level
``(m + 0.5) / M``, interpolated linearly between the learned levels (and extrapolated with the
outer slopes): ``members=1`` is the median, ``members=5`` gives levels 0.1, 0.3, 0.5, 0.7, 0.9,
and a large ``M`` is a fair ensemble for the CRPS. :meth:`FrameForecaster.forecast` adds the
learned levels themselves as ``quantiles([sample,] lead_time, quantile, y, x)`` next to the
Forecaster's ``forecast([sample,] lead_time, member, y, x)``; :meth:`predict_quantiles` gives
them as a tensor ``(B, leads, Q, H, W)``.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Sequence
from typing import Any, ClassVar

import torch
import xarray as xr
from torch import Tensor, nn
from torch.nn import functional as F

from pyro_videossm.data.scaling import FieldScaling
from pyro_videossm.errors import InputError
from pyro_videossm.forecast.base import Forecaster
from pyro_videossm.metrics.quantile import check_levels, quantile_loss


def monotone_quantiles(raw: Tensor, levels: Sequence[float], dim: int) -> Tensor:
    """Map unconstrained outputs to non-decreasing quantiles along ``dim``.

    The level closest to 0.5 is the raw value; each level above adds ``softplus`` of its raw
    value to the one below it, each level below subtracts ``softplus`` from the one above, so
    ``q_1 <= ... <= q_Q`` always holds.
    """
    q = len(levels)
    if raw.shape[dim] != q:
        raise ValueError(f"expected {q} channels along dim {dim}, got {raw.shape[dim]}")
    if q == 1:
        return raw
    c = min(range(q), key=lambda k: abs(levels[k] - 0.5))
    parts = raw.unbind(dim)
    out: list[Tensor | None] = [None] * q
    out[c] = parts[c]
    for k in range(c + 1, q):
        out[k] = out[k - 1] + F.softplus(parts[k])
    for k in range(c - 1, -1, -1):
        out[k] = out[k + 1] - F.softplus(parts[k])
    return torch.stack(out, dim)  # type: ignore[arg-type]


def interpolate_quantiles(q: Tensor, levels: Sequence[float], at: Sequence[float],
                          dim: int) -> Tensor:
    """Piecewise-linear quantile function through ``(levels, q)`` evaluated at levels ``at``.

    Outside ``[levels[0], levels[-1]]`` the outer segments are extended linearly. Returns ``q``
    with ``dim`` of size ``len(at)``; monotone in ``at`` when ``q`` is monotone along ``dim``.
    """
    n = len(levels)
    dim = dim % q.dim()
    if n == 1:
        return q.narrow(dim, 0, 1).expand(*[len(at) if i == dim else -1
                                            for i in range(q.dim())]).contiguous()
    lev = torch.as_tensor(levels, dtype=q.dtype, device=q.device)
    u = torch.as_tensor(at, dtype=q.dtype, device=q.device)
    k = (torch.searchsorted(lev, u, right=True) - 1).clamp(0, n - 2)
    w = (u - lev[k]) / (lev[k + 1] - lev[k])
    lo, hi = q.index_select(dim, k), q.index_select(dim, k + 1)
    shape = [1] * q.dim()
    shape[dim] = -1
    w = w.view(shape)
    return lo + w * (hi - lo)


class FrameForecaster(nn.Module, Forecaster):
    """Neural forecaster of 2D frames ``(B, T, H, W)``: point or quantile output.

    Args:
        frame_shape: ``(H, W)`` of the frames.
        context_length: context frames the model reads (a longer context is cut to its last
            ``context_length`` frames; a shorter one is an error).
        leads: the largest number of steps it forecasts (trained on exactly ``leads``).
        quantiles: quantile levels for a quantile forecaster (e.g. ``(0.1, 0.5, 0.9)``);
            ``None`` for a point forecaster trained with MSE.
        scaling: physical units -> model units (a :class:`FieldScaling` or its dict).

    Subclasses set ``name`` and implement :meth:`forward_frames`; their constructor options
    are stored as same-named attributes (they make the model file's ``config``).
    """

    name: ClassVar[str] = ""
    dtype = torch.float32

    def __init__(self, frame_shape: Sequence[int] | None, context_length: int, leads: int,
                 quantiles: Sequence[float] | None = None,
                 scaling: FieldScaling | dict | None = None) -> None:
        nn.Module.__init__(self)
        if frame_shape is None:
            raise InputError(f"forecaster {self.name!r} needs a trained model: pass a model file "
                             f"(videossm train {self.name} ... -o model.pt), or frame_shape=(H, W)"
                             " to build one for training")
        frame_shape = tuple(int(s) for s in frame_shape)
        if len(frame_shape) != 2 or min(frame_shape) < 1:
            raise InputError(f"frame_shape must be (H, W) with H, W >= 1, got {frame_shape}")
        if int(context_length) < 1 or int(leads) < 1:
            raise InputError(f"context_length and leads must be >= 1, got {context_length}, "
                             f"{leads}")
        self.frame_shape = frame_shape
        self.context_length = int(context_length)
        self.leads = int(leads)
        self.quantiles = None if quantiles is None else check_levels(quantiles)
        self.deterministic = self.quantiles is None
        self.scaling = scaling if isinstance(scaling, FieldScaling) else (
            FieldScaling.from_dict(scaling))
        self._member_levels_override: tuple[float, ...] | None = None

    # -- the network ----------------------------------------------------------------------
    @property
    def n_outputs(self) -> int:
        """Output channels per pixel: the number of quantile levels, or 1."""
        return 1 if self.quantiles is None else len(self.quantiles)

    @property
    def device(self) -> torch.device:  # type: ignore[override]
        return next(self.parameters()).device

    def forward_frames(self, context: Tensor, leads: int, target: Tensor | None = None
                       ) -> Tensor:
        """Network: ``context (B, T_ctx, H, W)`` -> raw output ``(B, leads, Q, H, W)``.

        ``target (B, leads, H, W)`` is given while training (teacher forcing, if the model
        uses it); it must not be used when ``None``.
        """
        raise NotImplementedError

    def head(self, raw: Tensor) -> Tensor:
        """Raw ``(B, L, Q, H, W)`` -> forecasts; quantiles made non-crossing."""
        if self.quantiles is None:
            return raw
        return monotone_quantiles(raw, self.quantiles, dim=2)

    def forward(self, context: Tensor, mask: Tensor | None = None, leads: int | None = None,
                target: Tensor | None = None) -> Tensor:
        """``context (B, T, H, W)`` (+ bool mask) -> ``(B, leads, Q, H, W)`` in model units.

        Missing context values (mask False) are set to 0.
        """
        leads = self.leads if leads is None else int(leads)
        context = self._check_context(context, leads)
        if mask is not None:
            mask = mask[:, -self.context_length:]
            context = torch.where(mask, context, torch.zeros_like(context))
        return self.head(self.forward_frames(context, leads, target))

    def _check_context(self, context: Tensor, leads: int) -> Tensor:
        if context.dim() != 4 or tuple(context.shape[-2:]) != self.frame_shape:
            raise InputError(f"{self.name}: context must be (B, T, {self.frame_shape[0]}, "
                             f"{self.frame_shape[1]}), got {tuple(context.shape)}")
        if context.shape[1] < self.context_length:
            raise InputError(f"{self.name}: needs {self.context_length} context frames, got "
                             f"{context.shape[1]}")
        if not 1 <= leads <= self.leads:
            raise InputError(f"{self.name}: trained for 1..{self.leads} leads, asked {leads}")
        return context[:, -self.context_length:]

    # -- training -------------------------------------------------------------------------
    def loss(self, batch: dict[str, Tensor]) -> Tensor:
        """Mean loss of a batch ``{"frames": (B, T_ctx + leads, H, W)[, "mask": bool]}``.

        Point: masked MSE per pixel. Quantile: masked pinball loss, mean over levels.
        """
        frames = batch["frames"]
        c, l = self.context_length, self.leads
        if frames.shape[1] < c + l:
            raise InputError(f"{self.name}: training windows need {c + l} frames "
                             f"({c} context + {l} leads), got {frames.shape[1]}")
        mask = batch.get("mask")
        frames = frames[:, :c + l]
        ctx, tgt = frames[:, :c], frames[:, c:]
        m_ctx = m_tgt = None
        if mask is not None:
            mask = mask[:, :c + l]
            m_ctx, m_tgt = mask[:, :c], mask[:, c:]
            tgt = torch.where(m_tgt, tgt, torch.zeros_like(tgt))
        pred = self(ctx, m_ctx, l, target=tgt)
        if self.quantiles is None:
            se = (pred[:, :, 0] - tgt) ** 2
            if m_tgt is None:
                return se.mean()
            m = m_tgt.to(se.dtype)
            return (se * m).sum() / m.sum().clamp_min(1.0)
        return quantile_loss(pred, tgt, self.quantiles, dim=2, mask=m_tgt)

    # -- Forecaster -----------------------------------------------------------------------
    def member_levels(self, members: int) -> tuple[float, ...]:
        """Quantile levels of the ``members`` members of a quantile forecaster."""
        if self._member_levels_override is not None:
            return self._member_levels_override
        return tuple((m + 0.5) / members for m in range(members))

    def predict(self, context: Tensor, mask: Tensor, leads: int, members: int = 1, *,
                generator: torch.Generator | None = None) -> Tensor:
        """``(B, T_ctx, H, W)`` -> ``(B, leads, M, H, W)``; ``M = 1`` for a point forecaster,
        quantile-spaced members (levels :meth:`member_levels`) for a quantile forecaster."""
        out = self(context.to(self.dtype), mask, leads)
        if self.quantiles is None:
            return out
        return interpolate_quantiles(out, self.quantiles, self.member_levels(members), dim=2)

    def predict_quantiles(self, context: Tensor, mask: Tensor | None, leads: int) -> Tensor:
        """The learned quantile levels: ``(B, leads, Q, H, W)`` in model units."""
        if self.quantiles is None:
            raise InputError(f"{self.name}: a point forecaster has no quantiles")
        return self(context.to(self.dtype), mask, leads)

    def forecast(self, context: xr.Dataset | xr.DataArray, leads: int, members: int = 1, *,
                 variable: str | None = None, seed: int = 0,
                 batch_size: int | None = None) -> xr.Dataset:
        """The Forecaster's Dataset; a quantile forecaster adds ``quantiles`` (see module doc)."""
        kw = {"variable": variable, "seed": seed, "batch_size": batch_size}
        ds = super().forecast(context, leads, members, **kw)
        if self.quantiles is None:
            return ds
        self._member_levels_override = self.quantiles
        try:
            qds = super().forecast(context, leads, len(self.quantiles), **kw)
        finally:
            self._member_levels_override = None
        q = qds["forecast"].rename(member="quantile").assign_coords(
            quantile=("quantile", list(self.quantiles), {"long_name": "quantile level"}))
        q.attrs["long_name"] = "forecast quantiles of " + str(
            ds["forecast"].attrs.get("long_name", "the field")).replace("forecast of ", "")
        ds["quantiles"] = q
        ds.attrs["quantile_levels"] = list(self.quantiles)
        ds.attrs["member_meaning"] = "member m of M is the quantile at level (m + 0.5) / M"
        return ds

    # -- model files ----------------------------------------------------------------------
    def config(self) -> dict[str, Any]:
        """Constructor options as plain Python values (the model file's ``config``)."""
        out = {}
        for k in inspect.signature(type(self).__init__).parameters:
            if k == "self":
                continue
            v = getattr(self, k)
            if isinstance(v, FieldScaling):
                v = v.to_dict()
            elif isinstance(v, tuple):
                v = list(v)
            out[k] = v
        return out

    def save(self, path: str | os.PathLike, extra: dict | None = None) -> None:
        """Write a model file (atomic) that :func:`~pyro_videossm.forecast.load_forecaster`
        reads back."""
        from pyro_videossm.infer import save_model_file

        state = {k: v.detach().cpu() for k, v in self.state_dict().items()}
        save_model_file(path, name=self.name, config=self.config(), state_dict=state,
                        extra=extra)

    @classmethod
    def from_model_file(cls, ckpt: dict[str, Any], *,
                        device: str | torch.device = "cpu") -> FrameForecaster:
        from pyro_videossm.infer.model_file import load_state_checked

        try:
            model = cls(**ckpt["config"])
        except (TypeError, KeyError) as err:
            raise InputError(f"model file does not hold a valid {cls.name!r} configuration "
                             f"({type(err).__name__}: {err})") from None
        load_state_checked(model, ckpt["state_dict"], f"{cls.name} model file")
        return model.to(device).eval()
