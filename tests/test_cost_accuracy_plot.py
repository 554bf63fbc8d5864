"""plots.cost_accuracy: points where the costs and RMSEs put them, the amortised marker,
one-line errors for bad input, a PNG through save_figure."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from pyro_videossm.errors import InputError  # noqa: E402
from pyro_videossm.plots import plot_cost_accuracy, save_figure  # noqa: E402
from pyro_videossm.plots.cost_accuracy import amortised_seconds_per_cycle  # noqa: E402

POINTS = {"ETKF": {"seconds_per_cycle": 2e-3, "rmse": 0.57},
          "iEnKS": {"seconds_per_cycle": 4e-2, "rmse": 0.25},
          "DMM": {"seconds_per_cycle": 1e-3, "rmse": 0.30}}


def _offsets(ax) -> list[tuple[float, float, bool]]:
    """(x, y, filled) of every scatter marker."""
    out = []
    for coll in ax.collections:
        filled = len(coll.get_facecolors()) > 0 and coll.get_facecolors()[0][3] > 0
        for x, y in coll.get_offsets():
            out.append((float(x), float(y), bool(filled)))
    return out


def test_points_sit_at_seconds_per_1000_cycles_and_rmse():
    fig = plot_cost_accuracy(POINTS)
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    got = sorted(_offsets(ax))
    want = sorted((1e3 * p["seconds_per_cycle"], p["rmse"], True) for p in POINTS.values())
    np.testing.assert_allclose([g[:2] for g in got], [w[:2] for w in want])
    assert {t.get_text() for t in ax.texts} >= set(POINTS)


def test_training_adds_an_amortised_hollow_marker_and_an_arrow():
    fig = plot_cost_accuracy(POINTS, training_seconds={"DMM": 10.0}, amortise_cycles=500)
    ax = fig.axes[0]
    hollow = [(x, y) for x, y, filled in _offsets(ax) if not filled]
    # 1 ms per cycle + 10 s over 500 cycles = 21 ms per cycle = 21 s per 1000 cycles
    np.testing.assert_allclose(hollow, [(21.0, 0.30)])
    arrows = [t for t in ax.texts if getattr(t, "arrow_patch", None) is not None]
    assert len(arrows) == 1
    np.testing.assert_allclose(arrows[0].xy, (21.0, 0.30))
    assert ax.get_xlim()[0] < 1.0 and ax.get_xlim()[1] > 21.0


def test_amortised_seconds_per_cycle():
    assert amortised_seconds_per_cycle(0.001, 10.0, 500) == pytest.approx(0.021)
    with pytest.raises(InputError):
        amortised_seconds_per_cycle(0.001, 10.0, 0)


@pytest.mark.parametrize("points, kwargs, message", [
    ({}, {}, "at least one"),
    ({"a": {"rmse": 1.0}}, {}, "seconds_per_cycle"),
    ({"a": {"seconds_per_cycle": 0.0, "rmse": 1.0}}, {}, "> 0"),
    ({"a": {"seconds_per_cycle": 1e-3, "rmse": float("nan")}}, {}, "> 0"),
    (POINTS, {"training_seconds": {"b": 1.0}, "amortise_cycles": 10}, "without a point"),
    (POINTS, {"training_seconds": {"DMM": 1.0}}, "amortise_cycles"),
])
def test_bad_input_is_one_line(points, kwargs, message):
    with pytest.raises(InputError, match=message) as err:
        plot_cost_accuracy(points, **kwargs)
    assert "\n" not in str(err.value)


def test_saves_a_png(tmp_path):
    fig = plot_cost_accuracy(POINTS, training_seconds={"DMM": 10.0}, amortise_cycles=500)
    path = save_figure(fig, tmp_path / "cost.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
