"""The parts a forecasting benchmark is made of: train a model under a budget, forecast through
the forecaster interface, score with :mod:`pyro_videossm.metrics` and the backtest.

* :func:`train_model`: a field model (``convdmm``, ``convlstm``, ``dmm-flat``) or a frame
  forecaster (``spatrans``, ``transformer``, ``lstm``, ``seq2seq``, ``seq2seq-attn``) built
  from its constructor options with the recipes' builders
  (:mod:`~pyro_videossm.experiments.field_recipes`,
  :mod:`~pyro_videossm.experiments.sequence_recipes`), trained on a
  :class:`~pyro_videossm.experiments.windows.WindowData` with the recipe's objective and the
  shared Trainer, for ``config.epochs`` epochs or a time budget
  (:func:`~pyro_videossm.experiments.budget.fit_within_budget`);
* :func:`pooled_window_scores`: every rolling test window of a record forecast (one seed per
  window: ``seed + k`` for the ``k``-th) and scored per lead time, pooled over the windows
  (:func:`~pyro_videossm.experiments.backtest.backtest`): MSE, CRPS, CSI and FSS at one
  threshold;
* :func:`per_lead_scores`: one forecast of many samples scored per lead time against a truth
  array ``(sample, lead, y, x)``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import xarray as xr

from pyro_videossm.errors import InputError
from pyro_videossm.experiments.budget import fit_within_budget
from pyro_videossm.experiments.field_recipes import FIELD_MODELS
from pyro_videossm.experiments.sequence_recipes import SEQUENCE_MODELS
from pyro_videossm.experiments.windows import WindowData

#: models :func:`train_model` builds
TRAINABLE = (*FIELD_MODELS, *SEQUENCE_MODELS)


@dataclass
class TrainedModel:
    """A module trained by :func:`train_model`, with what the benchmark tables report.

    ``epochs_seen``: training items of the steps taken over the training set size.
    """

    name: str
    module: torch.nn.Module
    scaling: Any
    context: int
    history: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    items_seen: int = 0
    n_train: int = 0

    @property
    def parameters(self) -> int:
        return sum(p.numel() for p in self.module.parameters())

    @property
    def epochs_seen(self) -> float:
        return self.items_seen / self.n_train if self.n_train else 0.0

    def forecaster(self, device: str = "cpu"):
        """The trained model as a :class:`~pyro_videossm.forecast.base.Forecaster` (the frame
        forecasters are forecasters themselves; the field models are wrapped)."""
        if self.name in SEQUENCE_MODELS:
            return self.module
        from pyro_videossm.experiments.field_recipes import make_forecaster

        return make_forecaster(self.name, self.module, self.scaling, self.context, device)


def build_model(name: str, architecture: dict, data: WindowData, *, context: int, leads: int,
                quantiles: Sequence[float] | None = None, scaling: Any = "data"):
    """The untrained module ``name`` for ``data``'s frames (``scaling``: stored in a frame
    forecaster; default ``data.scaling``)."""
    if name in FIELD_MODELS:
        from pyro_videossm.experiments.field_recipes import build_module

        return build_module(name, architecture, data.grid)
    if name in SEQUENCE_MODELS:
        from pyro_videossm.experiments.sequence_recipes import build_sequence_model

        return build_sequence_model(name, architecture, data.grid, context, leads,
                                    data.scaling if scaling == "data" else scaling,
                                    None if quantiles is None else tuple(quantiles))
    raise InputError(f"unknown model {name!r} (models: {', '.join(TRAINABLE)})")


def model_objective(name: str, module, context: int,
                    target_clip: tuple[float, float] | None = None):
    """The recipe's objective: ELBO (DMMs), masked MSE of the leads (ConvLSTM, targets clamped
    to ``target_clip``), the frame forecasters' own MSE or pinball loss."""
    if name in FIELD_MODELS:
        from pyro_videossm.experiments.field_recipes import make_objective

        return make_objective(name, module, context, target_clip)
    from pyro_videossm.experiments.sequence_recipes import frame_loss
    from pyro_videossm.infer import LossObjective

    return LossObjective(module, frame_loss)


def train_model(name: str, architecture: dict, data: WindowData, config, *, context: int,
                leads: int, seed: int, seconds: float | None = None,
                target_clip: tuple[float, float] | None = None,
                quantiles: Sequence[float] | None = None, scaling: Any = "data"
                ) -> TrainedModel:
    """Seed torch with ``seed``, build ``name`` with ``architecture`` and fit it on ``data``
    with ``config`` (a :class:`~pyro_videossm.infer.TrainConfig`) for ``config.epochs`` epochs
    or, with ``seconds``, until the first step after that much training time."""
    torch.manual_seed(seed)
    module = build_model(name, architecture, data, context=context, leads=leads,
                         quantiles=quantiles, scaling=scaling)
    objective = model_objective(name, module, context, target_clip)
    fit = fit_within_budget(objective, config, data.train, data.valid, seconds=seconds)
    return TrainedModel(name, module, data.scaling, context, fit.history, fit.seconds,
                        fit.items_seen, data.n_train)


# -- forecasting and scoring ---------------------------------------------------------------
class SeedPerWindow:
    """A forecaster whose ``k``-th :meth:`forecast` call uses ``seed + k`` and whose forecasts
    are kept in :attr:`forecasts` (for strips and extremes)."""

    def __init__(self, forecaster, seed: int) -> None:
        self.forecaster, self.seed, self.forecasts = forecaster, int(seed), []

    def forecast(self, context, leads: int, members: int = 1, *, seed: int = 0,
                 **kwargs) -> xr.Dataset:
        fc = self.forecaster.forecast(context, leads, members,
                                      seed=self.seed + len(self.forecasts), **kwargs)
        self.forecasts.append(fc)
        return fc


def threshold_metrics(threshold: float, scales: Sequence[int]
                      ) -> dict[str, Callable[[xr.DataArray, xr.DataArray], xr.DataArray]]:
    """MSE, CRPS, CSI at ``threshold`` and FSS at ``threshold`` and ``scales`` pixels (the
    last two keep their threshold (and scale) dims)."""
    from pyro_videossm.metrics.fields import crps, csi, fss, mse

    return {"mse": mse, "crps": crps,
            "csi": lambda fc, ob: csi(fc, ob, [threshold]),
            "fss": lambda fc, ob: fss(fc, ob, [threshold], list(scales))}


def pooled_window_scores(forecaster, data: xr.DataArray, *, context: int, leads: int,
                         start: int, stop: int, members: int, seed: int, threshold: float,
                         scales: Sequence[int]) -> tuple[dict[str, np.ndarray],
                                                         list[xr.Dataset]]:
    """Forecast every window of ``data(time, y, x)`` whose first scored frame ``t1`` runs over
    ``start .. stop - leads`` (context ``[t1 - context, t1)``; the ``k``-th window with seed
    ``seed + k``) and score them pooled: ``{"mse", "crps", "csi", "fss{s}"...}`` per lead.
    Returns the scores and the forecasts."""
    from pyro_videossm.experiments.backtest import backtest

    seeded = SeedPerWindow(forecaster, seed)
    run = backtest(seeded, data.isel(time=slice(0, stop)), context=context, leads=leads,
                   start=start, members=members, seed=seed,
                   metrics=threshold_metrics(threshold, scales))
    p = run.pooled
    out = {"mse": p["mse"], "crps": p["crps"], "csi": p["csi"][0]}
    for j, s in enumerate(scales):
        out[f"fss{s}"] = p["fss"][0][j]
    return out, seeded.forecasts


def per_lead_scores(forecast: xr.Dataset, truth: np.ndarray,
                    metric: Callable[[xr.DataArray, xr.DataArray], xr.DataArray] | None = None
                    ) -> np.ndarray:
    """``metric`` (default MSE of the ensemble mean) of ``forecast`` against ``truth``
    ``(sample, lead, y, x)``, per lead."""
    from pyro_videossm.metrics.fields import mse

    fc = forecast["forecast"]
    obs = xr.DataArray(truth, dims=(fc.dims[0], "lead_time", *fc.dims[-2:]))
    return np.asarray((metric or mse)(fc, obs).values)


def per_lead_csv(rows: Mapping[str, Sequence[float]]) -> str:
    """CSV: one line per model, one column per lead (``%.6g``)."""
    n_leads = len(next(iter(rows.values())))
    lines = ["model," + ",".join(f"lead{k}" for k in range(1, n_leads + 1))]
    lines += [f"{n}," + ",".join(f"{v:.6g}" for v in r) for n, r in rows.items()]
    return "\n".join(lines) + "\n"


def max_mean_forecast(forecasts: Sequence[xr.Dataset]) -> float:
    """The largest value of the ensemble-mean forecast over ``forecasts``."""
    return float(max(np.nanmax(f["forecast"].mean("member").values) for f in forecasts))


def max_over_context_max(forecasts: Sequence[xr.Dataset], data: xr.DataArray,
                         context: int) -> float:
    """The largest ratio, over ``forecasts``, of a forecast's maximum (any member, lead or
    pixel) to the largest value of its context in ``data(time, y, x)`` (the ``context``
    frames up to its ``init_time``); 0 for a zero forecast of a dry context, inf for rain
    forecast from a dry one."""
    worst = 0.0
    times = data["time"].values
    for f in forecasts:
        end = int(np.searchsorted(times, f["init_time"].values)) + 1
        ctx = float(np.nanmax(data.isel(time=slice(max(0, end - context), end)).values))
        top = float(np.nanmax(f["forecast"].values))
        worst = max(worst, top / ctx if ctx > 0 else (np.inf if top > 0 else 0.0))
    return worst


__all__ = ["TRAINABLE", "SeedPerWindow", "TrainedModel", "build_model", "max_mean_forecast",
           "max_over_context_max",
           "model_objective", "per_lead_csv", "per_lead_scores", "pooled_window_scores",
           "threshold_metrics", "train_model"]
