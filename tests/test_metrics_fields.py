"""Field forecast scores against hand-computed cases."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr

from pyro_videossm.errors import InputError
from pyro_videossm.forecast import Persistence, forecast_dataset
from pyro_videossm.metrics.fields import (
    align_truth,
    contingency,
    crps,
    csi,
    fss,
    mae,
    mse,
    score_forecast,
    scores_table,
    ssim,
    ssim_frames,
)


def _pair(f: np.ndarray, o: np.ndarray, units: str = "mm/h"):
    """Wrap ``f`` (S, L, M, H, W) and ``o`` (S, L, H, W) as forecast/truth DataArrays."""
    s, lead, m, h, w = f.shape
    coords = {"lead_time": np.arange(1, lead + 1)}
    fc = xr.DataArray(f, dims=("sample", "lead_time", "member", "y", "x"), coords=coords,
                      attrs={"units": units})
    ob = xr.DataArray(o, dims=("sample", "lead_time", "y", "x"), coords=coords)
    return fc, ob


def test_mse_mae_crps_by_hand():
    o = np.zeros((1, 2, 2, 2))
    f = np.zeros((1, 2, 2, 2, 2))
    f[0, 0, :, 0, 0] = [1.0, 3.0]      # lead 1: members 1, 3 at one pixel -> mean 2
    f[0, 1, :, 1, 1] = [-2.0, -2.0]    # lead 2: both -2 at one pixel
    fc, ob = _pair(f, o)
    np.testing.assert_allclose(mse(fc, ob).values, [4 / 4, 4 / 4])
    np.testing.assert_allclose(mae(fc, ob).values, [2 / 4, 2 / 4])
    # CRPS at the pixel: E|X - 0| - 0.5 E|X - X'| = 2 - 0.5 * 1 = 1.5 ; and 2 - 0 = 2
    np.testing.assert_allclose(crps(fc, ob).values, [1.5 / 4, 2 / 4])
    # NaN in the truth is left out
    o2 = o.copy()
    o2[0, 0, 1, 1] = np.nan
    fc, ob = _pair(f, o2)
    np.testing.assert_allclose(mse(fc, ob).values, [4 / 3, 1.0])


def test_contingency_and_csi():
    o = np.array([[[[0, 2, 5, 0.1]]]])          # (S=1, L=1, H=1, W=4)
    f = np.array([[[[[1, 2, 0, 0]]]]])          # (S, L, M=1, H, W)
    c = contingency(f[:, :, 0], o, 1.0)
    assert (c["hits"], c["misses"], c["false_alarms"], c["correct_negatives"]) == (
        [1], [1], [1], [1])
    fc, ob = _pair(f.astype(float), o)
    got = csi(fc, ob, thresholds=(0.5, 1.0, 4.0, 10.0))
    # 0.5: f>= at px0,1 ; o>= at px1,2 -> h=1, m=1, fa=1 -> 1/3
    # 4:   f none; o at px2 -> h=0, m=1 -> 0 ; 10: no event anywhere -> NaN
    np.testing.assert_allclose(got.sel(threshold=0.5).values, [1 / 3])
    np.testing.assert_allclose(got.sel(threshold=1.0).values, [1 / 3])
    np.testing.assert_allclose(got.sel(threshold=4.0).values, [0.0])
    assert np.isnan(got.sel(threshold=10.0).values).all()


def test_fss_identical_and_shifted_blob():
    o = np.zeros((1, 1, 20, 20))
    o[0, 0, 10, 8] = 5.0
    f = np.zeros((1, 1, 1, 20, 20))
    f[0, 0, 0, 10, 9] = 5.0                       # the same event one pixel east
    fc, ob = _pair(f, o)
    got = fss(fc, ob, thresholds=(1.0,), scales=(1, 3, 4))
    # scale 1: no overlap -> 0; scale 3: 6 of 9 neighbourhood pixels shared:
    # 1 - (3 + 3)(1/9)^2 / (9 + 9)(1/9)^2 = 2/3; scale 4: 1 - 8/32 = 3/4
    np.testing.assert_allclose(got.sel(threshold=1.0).values[:, 0], [0.0, 2 / 3, 3 / 4])
    same = fss(_pair(o[:, :, None], o)[0], ob, thresholds=(1.0,), scales=(1, 4, 16))
    np.testing.assert_allclose(same.values, 1.0)
    # the score grows with scale for a displaced field
    rng = np.random.default_rng(0)
    field = rng.gamma(0.5, 2.0, size=(1, 1, 40, 40))
    shifted = np.roll(field, 3, axis=-1)[:, :, None]
    fc, ob = _pair(shifted, field)
    vals = fss(fc, ob, thresholds=(1.0,), scales=(1, 4, 16)).values[0, :, 0]
    assert vals[0] < vals[1] < vals[2] <= 1.0


def test_ssim_identical_and_against_skimage():
    rng = np.random.default_rng(1)
    a = rng.random((2, 24, 30))
    b = a + 0.2 * rng.standard_normal(a.shape)
    one = ssim_frames(torch.from_numpy(a), torch.from_numpy(a), data_range=1.0)
    torch.testing.assert_close(one, torch.ones(2, dtype=torch.float64))
    fc, ob = _pair(a[None, :, None], a[None])
    np.testing.assert_allclose(ssim(fc, ob).values, 1.0)
    got = ssim_frames(torch.from_numpy(a), torch.from_numpy(b), data_range=1.0).numpy()
    assert (got < 0.9).all()
    metrics = pytest.importorskip("skimage.metrics")
    for i in range(2):
        ref = metrics.structural_similarity(a[i], b[i], data_range=1.0, gaussian_weights=True,
                                            sigma=1.5, use_sample_covariance=False)
        assert got[i] == pytest.approx(ref, abs=1e-10)


def test_ssim_with_missing_and_too_small():
    a = np.random.default_rng(2).random((1, 20, 20))
    b = a.copy()
    b[0, 0, 0] = np.nan
    s = ssim_frames(torch.from_numpy(a), torch.from_numpy(b), data_range=1.0)
    assert s.item() == pytest.approx(1.0)
    with pytest.raises(InputError, match="smaller than the SSIM window"):
        ssim_frames(torch.zeros(1, 8, 8), torch.zeros(1, 8, 8), 1.0)


def _rain(t=8, h=16, w=16, samples=None):
    rng = np.random.default_rng(3)
    shape = ((samples,) if samples else ()) + (t, h, w)
    dims = (("sample",) if samples else ()) + ("time", "y", "x")
    return xr.Dataset(
        {"rain_rate": (dims, rng.gamma(0.5, 2.0, size=shape), {"units": "mm/h"})},
        coords={"time": pd.date_range("2010-08-26", periods=t, freq="5min"),
                "y": np.arange(h) * 4.0, "x": np.arange(w) * 4.0})


def test_align_and_score_persistence():
    ds = _rain(samples=2)
    fc = Persistence().forecast(ds.isel(time=slice(0, 5)), leads=3)
    truth = align_truth(fc, ds)
    assert truth.dims == ("sample", "lead_time", "y", "x")
    np.testing.assert_array_equal(truth.values, ds["rain_rate"].values[:, 5:8])
    scores = score_forecast(fc, ds)
    err = fc["forecast"].values[:, :, 0] - ds["rain_rate"].values[:, 5:8]
    np.testing.assert_allclose(scores["mse"].values, (err ** 2).mean(axis=(0, 2, 3)))
    np.testing.assert_allclose(scores["crps"].values, np.abs(err).mean(axis=(0, 2, 3)))
    assert set(scores["csi"].coords["threshold"].values) == {0.5, 1.0, 4.0}
    assert scores["fss"].shape == (3, 3, 3)
    table = scores_table(scores, model="persistence")
    assert table.count("\n") == 2 + 3 - 1 and "5 min" in table and "fss@1/4px" in table
    with pytest.raises(InputError, match="no time"):
        align_truth(fc, ds.isel(time=slice(0, 6)))
    with pytest.raises(InputError, match="grid"):
        align_truth(fc, ds.isel(x=slice(0, 8)))


def test_forecast_dataset_without_time_uses_init_index():
    ds = _rain()
    fcv = np.zeros((2, 1, 16, 16))
    ctx = ds["rain_rate"].isel(time=slice(0, 3)).drop_vars("time")
    fc = forecast_dataset(fcv, ctx, model="zero", deterministic=True,
                          extra_attrs={"init_index": 2})
    truth = align_truth(fc, ds.drop_vars("time"))
    np.testing.assert_array_equal(truth.values, ds["rain_rate"].values[3:5])
