"""What a forecast setting is: the data, the rolling windows and the forecasters to score.

One module per setting (``forecasting/<name>.py``) defines ``SETTING = ForecastSetting(...)``,
as ``assimilation/<name>.py`` does for assimilation. The runner (``python -m forecasting.run
NAME``) backtests every forecaster on the same windows
(:func:`pyro_videossm.experiments.backtest.backtest`) and tables the pooled scores.

A learned forecaster names its model file with :class:`~assimilation.config.TrainedModel`
(the file, and optionally the recipe that trains and writes it when absent); the runner
loads it with :func:`pyro_videossm.forecast.load_forecaster`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from assimilation.config import TrainedModel

__all__ = ["ForecastSetting", "ForecasterEntry", "TrainedModel"]


@dataclass(frozen=True)
class ForecasterEntry:
    """One row of a forecast table.

    Attributes:
        label: the row name.
        forecaster: a registered forecaster name (``persistence``), or None with ``model``.
        options: its constructor options.
        model: the model file of a learned forecaster (its file names the class).
        note: shown under the table.
    """

    label: str
    forecaster: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    model: TrainedModel | None = None
    note: str = ""


@dataclass(frozen=True)
class ForecastSetting:
    """A forecast benchmark setting.

    Attributes:
        name: the module's name.
        title: heading of its results section.
        description: one paragraph: data, noise, what is scored.
        data: ``{"simulator": "module:function", "options": {...}}`` (called with the options;
            returns a Dataset) or ``{"path": "file.nc"}`` (relative to the repository).
        variable: the field the forecasters see.
        truth: the variable scored against (None: ``variable`` itself).
        context, leads, stride: rolling windows (see :func:`~pyro_videossm.experiments.
            backtest.window_splits`); windows: at most this many per sample (None: all).
        members: ensemble members of stochastic forecasters.
        show_leads: lead times shown in the table (1-based).
        forecasters: the rows.
    """

    name: str
    title: str
    description: str
    data: dict[str, Any]
    variable: str
    context: int
    leads: int
    forecasters: tuple[ForecasterEntry, ...]
    truth: str | None = None
    stride: int = 1
    windows: int | None = None
    members: int = 16
    show_leads: tuple[int, ...] = (1, 5, 10)
