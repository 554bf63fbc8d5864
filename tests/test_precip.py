"""Gridded precipitation reader and field windows, on small netCDF files written here."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr

from pyro_videossm.data.conventions import write_netcdf
from pyro_videossm.data.fields import FieldWindows, chronological_split
from pyro_videossm.data.precip import crop, fit_scaling, open_precip, rate_factor
from pyro_videossm.errors import InputError


def _cmap_like(path, t: int = 30, units: str = "mm/day", seed: int = 0):
    """A CMAP-pentad-like file: precip(time, lat, lon), lat descending, lon 0..360."""
    rng = np.random.default_rng(seed)
    lat = np.arange(88.75, -90, -2.5)
    lon = np.arange(1.25, 360, 2.5)
    data = rng.gamma(0.4, 5.0, size=(t, lat.size, lon.size)).astype(np.float32)
    data[:, 0, 0] = np.nan
    ds = xr.Dataset(
        {"precip": (("time", "lat", "lon"), data,
                    {"units": units, "long_name": "Average Monthly Rate of Precipitation"})},
        coords={"time": pd.date_range("1979-01-01", periods=t, freq="5D"),
                "lat": ("lat", lat, {"units": "degrees_north"}),
                "lon": ("lon", lon, {"units": "degrees_east"})},
    )
    ds["precip"].encoding.update(_FillValue=np.float32(-9.96921e36))
    write_netcdf(ds, path)
    return ds


def test_lazy_open_units_and_missing(tmp_path):
    path = tmp_path / "cmap.nc"
    src = _cmap_like(path)
    da = open_precip(path, chunks=8)
    assert da.chunks is not None and da.chunks[0][0] == 8  # dask, chunked along time
    assert da.attrs["units"] == "mm/h"
    np.testing.assert_allclose(da.values, src["precip"].values / 24.0, rtol=1e-6)
    assert np.isnan(da.values[:, 0, 0]).all()
    raw = open_precip(path, units=None)
    assert raw.attrs["units"] == "mm/day"
    assert rate_factor("kg m-2 s-1", "mm/h") == 3600.0
    assert rate_factor("mm/h", "mm/day") == 24.0
    assert rate_factor("kg m^-2 s^-1", "mm/day") == pytest.approx(86400.0)
    path2 = tmp_path / "si.nc"
    _cmap_like(path2, units="kg m-2 s-1")
    np.testing.assert_allclose(open_precip(path2, units="mm/day").values,
                               src["precip"].values * 86400.0, rtol=1e-6)
    with pytest.raises(InputError, match="unknown precipitation unit"):
        open_precip(path, units="inch/fortnight")
    with pytest.raises(InputError, match="missing variable"):
        open_precip(path, variable="rain")
    with pytest.raises(InputError, match="no such file"):
        open_precip(tmp_path / "absent.nc")


def test_crop_boxes(tmp_path):
    path = tmp_path / "cmap.nc"
    _cmap_like(path, t=3)
    da = open_precip(path, lat=(30, 60), lon=(-20, 40))
    lat, lon = da["lat"].values, da["lon"].values
    assert (lat >= 30).all() and (lat <= 60).all() and lat.size == 12
    # -20..40 on a 0..360 grid: 340..360 first, then 0..40, contiguous across the meridian
    assert lon[0] == pytest.approx(341.25) and lon[-1] == pytest.approx(38.75)
    assert lon.size == 24
    dl = open_precip(path, lon=(170, -170))  # across the dateline on 0..360 is plain 170..190
    assert dl["lon"].values.min() >= 170 and dl["lon"].values.max() <= 190
    with pytest.raises(InputError, match="selects nothing"):
        open_precip(path, lat=(95, 99))
    with pytest.raises(InputError, match="cannot crop"):
        crop(da, y=(0, 1))


def test_transforms_invert_exactly(tmp_path):
    path = tmp_path / "cmap.nc"
    _cmap_like(path, t=10)
    da = open_precip(path)
    x = da.values.astype(np.float64)  # the windows and forecasters apply scalings in float64
    for kind in ("none", "log", "minmax", "log-minmax"):
        s = fit_scaling(da, kind, eps=0.01)
        y = s.forward(x)
        np.testing.assert_allclose(s.inverse(y), x, rtol=1e-12, atol=1e-14)
        if kind.endswith("minmax"):
            assert np.nanmin(y) == pytest.approx(0.0, abs=1e-6)
            assert np.nanmax(y) == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_allclose(fit_scaling(da, "log", eps=0.5).forward(np.array([0.5])),
                               [0.0], atol=1e-15)
    with pytest.raises(InputError, match="unknown transform"):
        fit_scaling(da, "sqrt")


def test_split_windows_never_straddle(tmp_path):
    path = tmp_path / "cmap.nc"
    _cmap_like(path, t=40)
    blocks = chronological_split(40, (0.6, 0.2, 0.2))
    assert blocks == {"train": slice(0, 24), "valid": slice(24, 32), "test": slice(32, 40)}
    seen = {}
    for name, block in blocks.items():
        w = FieldWindows(path, context=3, leads=2, time_range=block)
        idx = [w.window(i)[1] for i in range(len(w))]
        assert min(idx) == block.start and max(idx) + 5 == block.stop
        seen[name] = {t for s in idx for t in range(s, s + 5)}
        assert all(block.start <= t < block.stop for t in seen[name])
    assert not (seen["train"] & seen["valid"]) and not (seen["valid"] & seen["test"])
    with pytest.raises(InputError, match="sum to 1"):
        chronological_split(40, (0.5, 0.2, 0.2))


def test_field_windows_values_and_mask(tmp_path):
    path = tmp_path / "cmap.nc"
    src = _cmap_like(path, t=12)
    scaling = fit_scaling(open_precip(path, units=None), "log", eps=0.1)
    w = FieldWindows(path, context=4, leads=3, stride=2, scaling=scaling)
    assert len(w) == 3  # starts 0, 2, 4
    item = w[1]
    assert item["x"].shape == (7, 72, 144) and item["x"].dtype == torch.float32
    expect = np.log(src["precip"].values[2:9].astype(np.float64) + 0.1)
    ok = ~np.isnan(expect)
    np.testing.assert_array_equal(item["mask"].numpy(), ok)
    np.testing.assert_allclose(item["x"].numpy()[ok], expect[ok], rtol=1e-6, atol=1e-6)
    assert (item["x"].numpy()[~ok] == 0).all()
    np.testing.assert_array_equal(w.times(1), src["time"].values[2:9])
    batch = w.to_tensors()
    assert batch["x"].shape == (3, 7, 72, 144)
    # with a sample dim, windows run over samples and time
    ds = xr.Dataset({"obs": (("sample", "time", "y", "x"), np.random.rand(2, 6, 3, 4))},
                    coords={"time": np.arange(6.0)})
    w2 = FieldWindows(ds, context=2, leads=1)
    assert len(w2) == 8 and w2.window(5) == (1, 1)
    np.testing.assert_allclose(w2[5]["x"].numpy(), ds["obs"].values[1, 1:4], rtol=1e-6)


def _write(tmp_path, ds, name="f.nc"):
    p = tmp_path / name
    write_netcdf(ds, p)
    return p


def test_field_windows_bad_input(tmp_path):
    t = pd.date_range("2000-01-01", periods=6, freq="h")
    good = xr.Dataset({"precip": (("time", "y", "x"), np.random.rand(6, 3, 4))},
                      coords={"time": t})
    p = _write(tmp_path, good)
    with pytest.raises(InputError, match="missing variable 'rain'"):
        FieldWindows(p, "rain", context=2, leads=1)
    with pytest.raises(InputError, match="no 'time' dim"):
        FieldWindows(_write(tmp_path, good.rename(time="t"), "a.nc"), "precip", context=2,
                     leads=1)
    with pytest.raises(InputError, match="transpose"):
        FieldWindows(good.transpose("time", "x", "y"), context=2, leads=1)
    with pytest.raises(InputError, match="spatial dims"):
        FieldWindows(good.rename(y="north", x="east"), context=2, leads=1)
    with pytest.raises(InputError, match="'time' must come first"):
        FieldWindows(good.transpose("y", "time", "x"), context=2, leads=1)
    with pytest.raises(InputError, match="not increasing"):
        FieldWindows(_write(tmp_path, good.isel(time=[0, 2, 1, 3, 4, 5]), "b.nc"),
                     context=2, leads=1)
    dup = good.assign_coords(time=t[[0, 1, 1, 2, 3, 4]])
    with pytest.raises(InputError, match="duplicate"):
        FieldWindows(_write(tmp_path, dup, "c.nc"), context=2, leads=1)
    with pytest.raises(InputError, match="longer than the data"):
        FieldWindows(p, context=5, leads=2)
    with pytest.raises(InputError, match="longer than the data"):
        FieldWindows(p, context=3, leads=1, time_range=(0, 3))
    holed = good.copy(deep=True)
    holed["precip"][2] = np.nan
    ph = _write(tmp_path, holed, "d.nc")
    with pytest.raises(InputError, match="all missing"):
        FieldWindows(ph, context=2, leads=1)
    # skip: only windows avoiding frame 2 (starts 3) remain
    w = FieldWindows(ph, context=2, leads=1, missing_frames="skip")
    assert [w.window(i)[1] for i in range(len(w))] == [3]
    assert len(FieldWindows(ph, context=2, leads=1, missing_frames="keep")) == 4
    with pytest.raises(InputError, match="is all missing"):
        FieldWindows(good * np.nan, context=2, leads=1)
    with pytest.raises(InputError, match="not a readable netCDF"):
        bad = tmp_path / "x.nc"
        bad.write_text("hello")
        FieldWindows(bad, context=2, leads=1)
