"""Calibration figure of ensemble forecasters: rank histogram, reliability diagram, CRPS by lead.

::

    from pyro_videossm.metrics.calibration import calibration_summary
    from pyro_videossm.plots.calibration import plot_calibration
    fig = plot_calibration([calibration_summary(fcs, truths, threshold=1.0), ...])

Three panels, one colour per forecaster: (1) the rank histogram as relative frequency per
rank (a flat line at ``1 / (M + 1)`` is a calibrated ensemble; U-shaped: too little spread),
(2) the reliability diagram of ``P(rain >= threshold)`` (the diagonal is perfect reliability;
bins with too few pairs are left out), (3) the CRPS per lead time (lower is better).
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np

from pyro_videossm.errors import InputError
from pyro_videossm.metrics.calibration import CalibrationSummary


def plot_calibration(summaries: Sequence[CalibrationSummary], *, title: str | None = None):
    """The figure for one or more forecasters' :class:`CalibrationSummary`."""
    if not summaries:
        raise InputError("no calibration summaries to plot")
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    rank_ax, rel_ax, crps_ax = axes
    for i, s in enumerate(summaries):
        c = colors[i % len(colors)]
        label = f"{s.model} ({s.members} members)"
        total = s.rank_counts.sum()
        if total and s.members > 1:
            freq = s.rank_counts / total
            rank_ax.step(np.arange(s.members + 1), freq, where="mid", color=c, label=label)
            rank_ax.axhline(1.0 / (s.members + 1), color=c, lw=0.8, ls=":")
        ok = np.isfinite(s.forecast_probability) & np.isfinite(s.observed_frequency)
        rel_ax.plot(s.forecast_probability[ok], s.observed_frequency[ok], "o-", color=c,
                    label=label, ms=4)
        crps_ax.plot(s.lead_minutes, s.crps, "o-", color=c, label=s.model, ms=3)
    rank_ax.set(title="rank histogram", xlabel="rank of the observation",
                ylabel="relative frequency")
    rel_ax.plot([0, 1], [0, 1], color="0.5", lw=0.8, ls="--")
    thr = summaries[0].threshold
    rel_ax.set(title=f"reliability, rain >= {thr:g} mm/h", xlabel="forecast probability",
               ylabel="observed frequency", xlim=(0, 1), ylim=(0, 1))
    crps_ax.set(title="CRPS by lead time (lower is better)", xlabel="lead time (min)",
                ylabel="CRPS")
    rel_ax.legend(fontsize=7, loc="upper left")
    crps_ax.legend(fontsize=7, loc="best")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


__all__ = ["plot_calibration"]
