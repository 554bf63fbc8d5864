"""Rolling-window backtest: window positions as Pyro's backtest, closed-form persistence
scores per window and pooled."""

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from pyro_videossm.errors import InputError
from pyro_videossm.experiments.backtest import backtest, window_splits
from pyro_videossm.forecast import Persistence
from pyro_videossm.metrics.fields import csi, mse


def field(values_per_time: np.ndarray, shape=(3, 4), name="obs") -> xr.Dataset:
    """``(time, y, x)``: every pixel of frame t equals ``values_per_time[t]``."""
    t = len(values_per_time)
    data = np.broadcast_to(values_per_time[:, None, None], (t, *shape)).copy()
    times = pd.date_range("2020-01-01", periods=t, freq="5min")
    return xr.Dataset({name: (("time", "y", "x"), data)},
                      coords={"time": times, "y": np.arange(shape[0]), "x": np.arange(shape[1])})


def test_window_splits_are_pyros_loop():
    # pyro.contrib.forecast.evaluate.backtest with train_window=context, test_window=leads:
    # for t1 in range(train_window, duration - test_window + 1, stride)
    assert window_splits(20, context=4, leads=3, stride=5) == list(range(4, 18, 5))
    assert window_splits(20, context=4, leads=3, stride=5, windows=2) == [4, 9]
    assert window_splits(7, context=4, leads=3) == [4]
    with pytest.raises(InputError):
        window_splits(6, context=4, leads=3)
    with pytest.raises(InputError):
        window_splits(20, context=4, leads=3, start=2)


def test_persistence_on_a_ramp_has_closed_form_scores():
    slope = 0.5
    ds = field(3.0 + slope * np.arange(30.0))
    leads = 4
    result = backtest(Persistence(), ds, context=5, leads=leads, stride=3)
    k = np.arange(1, leads + 1)
    assert [w["t1"] for w in result.windows] == list(range(5, 27, 3))
    for w in result.windows:  # error at lead k is slope * k at every pixel, every window
        np.testing.assert_allclose(w["mse"], (slope * k) ** 2)
        np.testing.assert_allclose(w["mae"], slope * k)
        np.testing.assert_allclose(w["crps"], slope * k)  # one member: CRPS = MAE
        assert (w["t0"], w["t2"]) == (w["t1"] - 5, w["t1"] + leads)
    np.testing.assert_allclose(result.pooled["mse"], (slope * k) ** 2)
    np.testing.assert_allclose(result.pooled["crps"], slope * k)


def test_pooled_scores_weight_every_window_and_pixel():
    t = np.arange(25.0)
    ds = field(t**2)  # persistence error at lead k from split t1: (t1-1+k)^2 - (t1-1)^2
    result = backtest(Persistence(), ds, context=3, leads=2, stride=4, metrics={
        "mse": mse, "csi": lambda f, o: csi(f, o, [50.0]).isel(threshold=0)})
    splits = np.array([w["t1"] for w in result.windows])
    k = np.array([1, 2])
    err = (splits[:, None] - 1 + k) ** 2 - (splits[:, None] - 1) ** 2  # (windows, leads)
    for w, e in zip(result.windows, err):
        np.testing.assert_allclose(w["mse"], e**2)
    # pooled over every window and pixel: the mean over windows (equal pixels per window)
    np.testing.assert_allclose(result.pooled["mse"], (err**2).mean(axis=0))
    np.testing.assert_allclose(result.mean_over_windows("mse"), (err**2).mean(axis=0))
    # CSI pooled from the contingency counts of all windows: hits / (hits + misses + f.a.)
    last = (splits - 1) ** 2
    truth = (splits[:, None] - 1 + k) ** 2
    hits = ((last[:, None] >= 50) & (truth >= 50)).sum(0)
    misses = ((last[:, None] < 50) & (truth >= 50)).sum(0)
    np.testing.assert_allclose(result.pooled["csi"], hits / (hits + misses))


def test_samples_truth_variable_and_bad_input():
    ramp = 2.0 * np.arange(12.0)
    obs = np.stack([ramp, -ramp])[:, :, None, None] * np.ones((1, 1, 2, 2))
    truth = np.zeros_like(obs)
    ds = xr.Dataset({"obs": (("sample", "time", "y", "x"), obs),
                     "truth": (("sample", "time", "y", "x"), truth)},
                    coords={"time": np.arange(12)})
    result = backtest(Persistence(), ds, context=2, leads=1, variable="obs", truth="truth",
                      windows=3, metrics={"mae": lambda f, o: abs(f.mean("member") - o)
                                          .mean(("y", "x"))})
    assert [(w["sample"], w["t1"]) for w in result.windows] == [
        (s, t) for s in (0, 1) for t in (2, 3, 4)]
    # against a zero truth the error is the last context value: |2 (t1 - 1)|
    np.testing.assert_allclose([w["mae"][0] for w in result.windows],
                               [2.0 * (t - 1) for t in (2, 3, 4)] * 2)
    with pytest.raises(InputError):
        backtest(Persistence(), ds, context=2, leads=1, truth="nope")
    with pytest.raises(InputError):
        backtest(Persistence(), ds, context=2, leads=1, metrics={})


def test_float_time_steps_pool_on_the_same_lead_times():
    # time steps of 0.1: init + k * 0.1 is not exactly the data's time for every window
    ds = field(np.arange(40.0) * 0.3).assign_coords(time=np.arange(40) * 0.1)
    result = backtest(Persistence(), ds, context=4, leads=5, stride=3)
    k = np.arange(1, 6)
    assert result.pooled["mse"].shape == (5,)
    np.testing.assert_allclose(result.pooled["mse"], (0.3 * k) ** 2)
