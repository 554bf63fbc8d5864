"""The comparison figure of ``videossm demo`` (:mod:`pyro_videossm.plots.comparison`)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import xarray as xr  # noqa: E402

from pyro_videossm.cli.demo import band_labels  # noqa: E402
from pyro_videossm.errors import InputError  # noqa: E402
from pyro_videossm.metrics.posterior import score_posterior  # noqa: E402
from pyro_videossm.plots import save_figure  # noqa: E402
from pyro_videossm.plots.comparison import _running_mean, plot_comparison  # noqa: E402

T, D = 80, 3
QUANTILES = [0.05, 0.25, 0.5, 0.75, 0.95]


def _record(seed: int = 0) -> xr.Dataset:
    rng = np.random.default_rng(seed)
    truth = np.cumsum(rng.normal(size=(T, D)), axis=0)
    coords = {"time": 0.25 * np.arange(1, T + 1), "component": ["x", "y", "z"]}
    return xr.Dataset({"truth": (("time", "component"), truth),
                       "obs": (("time", "component"), truth + rng.normal(size=(T, D)))},
                      coords=coords)


def _posterior(obs: xr.Dataset, error: float, std: float, seed: int) -> xr.Dataset:
    """A Gaussian posterior whose mean is off the truth by noise of ``error``."""
    from scipy.stats import norm

    rng = np.random.default_rng(seed)
    mean = obs["truth"].values + error * rng.normal(size=(T, D))
    q = np.stack([mean + std * norm.ppf(p) for p in QUANTILES])
    return xr.Dataset({"mean": (("time", "component"), mean),
                       "std": (("time", "component"), np.full((T, D), std)),
                       "quantiles": (("quantile", "time", "component"), q)},
                      coords={**obs.coords, "quantile": QUANTILES})


def _methods(obs):
    return {"good": _posterior(obs, 0.3, 0.3, 1), "bad": _posterior(obs, 1.0, 0.2, 2),
            "so-so": _posterior(obs, 0.6, 0.6, 3)}


def test_running_mean_is_the_centred_average():
    x = np.array([1.0, 2.0, 3.0, 4.0, 10.0])
    np.testing.assert_allclose(_running_mean(x, 3), [1.5, 2.0, 3.0, 17 / 3, 7.0])
    np.testing.assert_allclose(_running_mean(x, 1), x)


def test_figure_panels_and_bars_show_the_scores(tmp_path):
    obs = _record()
    posts = _methods(obs)
    fig = plot_comparison(posts, obs, burn_in=10, bands=("so-so", "good"), title="t")
    axes = fig.get_axes()
    # RMSE over time, 2 bands x (state, minus truth), 3 bar panels
    assert len(axes) == 1 + 4 + 3
    rmse_ax = axes[0]
    assert [line.get_label().split(" (")[0] for line in rmse_ax.get_lines()] == list(posts)
    # each curve is the running mean of the per-cycle RMSE of that method
    per_time = np.sqrt(((posts["bad"]["mean"] - obs["truth"]) ** 2).mean("component")).values
    np.testing.assert_allclose(rmse_ax.get_lines()[1].get_ydata(), _running_mean(per_time, 25))
    # bars: the scores of score_posterior after the burn-in, in the order of the methods
    for ax, key in zip(axes[-3:], ("rmse", "crps", "coverage_90")):
        widths = [p.get_width() for p in ax.patches]
        expected = [score_posterior(p, obs["truth"], burn_in=10)[key] for p in posts.values()]
        np.testing.assert_allclose(widths, expected, rtol=1e-12)
    # the zoomed panels: the requested methods, the band of the right width in "minus truth"
    assert axes[1].get_title().startswith("so-so") and axes[3].get_title().startswith("good")
    band = axes[2].collections[0].get_paths()[0].vertices[:, 1]
    half = 0.6 * 1.6448536269514722
    assert band.max() == pytest.approx(np.max(posts["so-so"]["mean"].values[-24:, 0]
                                              - obs["truth"].values[-24:, 0]) + half)
    # every legend sits outside its axes (to the right or above)
    for ax in axes:
        legend = ax.get_legend()
        if legend is not None:
            anchor = legend.get_bbox_to_anchor().transformed(ax.transAxes.inverted())
            assert anchor.x0 >= 1.0 or anchor.y0 >= 1.0
    path = save_figure(fig, tmp_path / "comparison.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bad_input_is_one_line_input_error():
    obs = _record()
    posts = _methods(obs)
    with pytest.raises(InputError, match="not among"):
        plot_comparison(posts, obs, bands=("nope",))
    with pytest.raises(InputError, match="at least one"):
        plot_comparison({}, obs)
    with pytest.raises(InputError, match="truth"):
        plot_comparison(posts, obs.drop_vars("truth"))


def test_band_labels_prefer_dmm_and_enks():
    assert band_labels(["ETKF N=10", "EnKS N=10", "PF N=800", "hybrid DMM"]) == [
        "hybrid DMM", "EnKS N=10"]
    assert band_labels(["ETKF N=10", "EnKS N=10", "PF N=800"]) == ["EnKS N=10", "PF N=800"]
    assert band_labels(["ETKF N=10"]) == ["ETKF N=10"]


def test_demo_writes_the_comparison_figure(tmp_path, capsys):
    from pyro_videossm.cli import main

    out = tmp_path / "demo"
    assert main(["demo", "-o", str(out), "--cycles", "40", "--burn-in", "5", "--no-dmm",
                 "--no-progress"]) == 0
    assert (out / "comparison.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "comparison.png" in capsys.readouterr().err
