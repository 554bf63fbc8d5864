"""Figures people look at, written as PNG atomically.

- :mod:`~pyro_videossm.plots.figure`: :func:`save_figure`;
- :mod:`~pyro_videossm.plots.posterior`: posterior bands against truth and observations;
- :mod:`~pyro_videossm.plots.comparison`: several methods on one record (RMSE over time,
  posterior bands side by side, score bars);
- :mod:`~pyro_videossm.plots.cost_accuracy`: RMSE against seconds per 1000 cycles per method;
- :mod:`~pyro_videossm.plots.fields`: forecast strips of 2D fields;
- :mod:`~pyro_videossm.plots.video`: clip strips and swap grids of video models (imports the
  video models, so it is not loaded here).

No backend is chosen on import; the command line selects ``Agg``.
"""

from pyro_videossm.plots.comparison import plot_comparison
from pyro_videossm.plots.cost_accuracy import plot_cost_accuracy
from pyro_videossm.plots.fields import plot_forecast_strip
from pyro_videossm.plots.figure import save_figure
from pyro_videossm.plots.posterior import plot_posterior

__all__ = ["plot_comparison", "plot_cost_accuracy", "plot_forecast_strip", "plot_posterior",
           "save_figure"]
