"""Verification by kind of data.

- :mod:`~pyro_videossm.metrics.posterior`: posteriors of chaotic systems (RMSE, spread, CRPS,
  coverage) and markdown tables; its names are re-exported here;
- :mod:`~pyro_videossm.metrics.fields`: field forecasts per lead time (MSE, MAE, CRPS, SSIM,
  CSI, FSS);
- :mod:`~pyro_videossm.metrics.quantile`: quantile forecasts (pinball loss, interval coverage
  and length).
"""

from pyro_videossm.metrics.posterior import (
    coverage,
    crps,
    crps_ensemble,
    crps_gaussian,
    markdown_table,
    rmse,
    rmse_per_time,
    score_posterior,
    spread,
    time_average,
)

__all__ = [
    "coverage",
    "crps",
    "crps_ensemble",
    "crps_gaussian",
    "markdown_table",
    "rmse",
    "rmse_per_time",
    "score_posterior",
    "spread",
    "time_average",
]
