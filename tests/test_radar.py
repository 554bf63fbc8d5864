"""KNMI radar composites -> rain rate netCDF, on the real KNMI files in tests/data (one full
composite and 20 consecutive ones cut to a 100 x 100 km window; see tests/data/README.md)."""

from __future__ import annotations

import math
from pathlib import Path

import netCDF4
import numpy as np
import pytest
import xarray as xr
from script_loader import load_script

from pyro_videossm.data.radar import coarsen_block_mean, load_knmi, read_knmi_file
from pyro_videossm.errors import InputError

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tests" / "data"
#: One original composite, 765 x 700 pixels (03:00 UTC).
FULL = DATA / "knmi_full" / "RAD_NL25_RAP_5min_201008260300.h5"
#: Rows and columns of the full grid kept in the cropped files.
ROWS, COLS = slice(380, 480), slice(320, 420)


@pytest.fixture(scope="module")
def knmi_dir() -> Path:
    """20 composites, 02:20 .. 03:55 UTC, cut to rows ROWS and columns COLS."""
    return DATA / "knmi_crop"


@pytest.fixture(scope="module")
def knmi_4km(knmi_dir) -> xr.Dataset:
    return load_knmi(knmi_dir, resolution_km=4)


def _script():
    return load_script("data_scripts/knmi_to_netcdf.py")


def test_values_as_documented():
    path = FULL
    t, rate, grid, _ = read_knmi_file(path)
    assert t == np.datetime64("2010-08-26T03:00")
    assert rate.shape == (765, 700) and rate.dtype == np.float32
    with netCDF4.Dataset(path) as f:
        f.set_auto_mask(False)
        raw = f["image1"]["image_data"][:]
    np.testing.assert_array_equal(np.isnan(rate), raw == 65535)
    ok = raw != 65535
    np.testing.assert_allclose(rate[ok], 12 * 0.01 * raw[ok], rtol=1e-6)
    valid = rate[~np.isnan(rate)]
    assert 0.2 < valid.size / rate.size < 0.3          # about a quarter in range
    assert 0.06 < np.mean(valid > 1.0) < 0.10           # ~8% above 1 mm/h at 03:00
    assert 7.0 < valid.max() < 10.0                     # up to ~9 mm/h
    assert valid.min() >= 0


def _polar_stereo(lon: float, lat: float, a=6378.137, b=6356.752, lat_ts=60.0):
    """Snyder (1987) eq. 21-33/21-34: ellipsoidal north polar stereographic, km."""
    e = math.sqrt(1 - (b / a) ** 2)

    def t(phi):
        return math.tan(math.pi / 4 - phi / 2) / ((1 - e * math.sin(phi))
                                                   / (1 + e * math.sin(phi))) ** (e / 2)

    pc = math.radians(lat_ts)
    mc = math.cos(pc) / math.sqrt(1 - (e * math.sin(pc)) ** 2)
    rho = a * mc * t(math.radians(lat)) / t(pc)
    lam = math.radians(lon)
    return rho * math.sin(lam), -rho * math.cos(lam)


def test_cropped_file_is_a_window_of_the_full_composite(knmi_dir):
    t, rate, grid, meta = read_knmi_file(knmi_dir / FULL.name)
    t0, full, grid0, meta0 = read_knmi_file(FULL)
    assert t == t0 and meta == meta0 and rate.shape == (100, 100)
    np.testing.assert_array_equal(rate, full[ROWS, COLS])
    np.testing.assert_array_equal(grid.x, grid0.x[COLS])
    np.testing.assert_array_equal(grid.y, grid0.y[ROWS])
    assert grid.proj4 == grid0.proj4


@pytest.mark.parametrize("name", ["full", "crop"])
def test_projection_coordinates_match_corners(knmi_dir, name):
    path = FULL if name == "full" else knmi_dir / "RAD_NL25_RAP_5min_201008260220.h5"
    _, _, grid, _ = read_knmi_file(path)
    with netCDF4.Dataset(path) as f:
        c = f["geographic"].getncattr("geo_product_corners")
    # corners (lon, lat): lower-left, upper-left, upper-right, lower-right
    ll, ul, ur, lr = (_polar_stereo(c[i], c[i + 1]) for i in (0, 2, 4, 6))
    edges_x = (grid.x[0] - 0.5, grid.x[-1] + 0.5)
    edges_y = (grid.y[0] + 0.5, grid.y[-1] - 0.5)   # rows go south: y decreases
    for (x, y), (ex, ey) in zip((ul, ur, ll, lr), ((0, 0), (1, 0), (0, 1), (1, 1))):
        assert abs(x - edges_x[ex]) < 2.0 and abs(y - edges_y[ey]) < 2.0


def test_times_every_five_minutes(knmi_4km):
    t = knmi_4km["time"].values
    assert t.size == 20
    assert t[0] == np.datetime64("2010-08-26T02:20") and t[-1] == np.datetime64(
        "2010-08-26T03:55")
    assert (np.diff(t) == np.timedelta64(5, "m")).all()
    r = knmi_4km["rain_rate"]
    assert r.dims == ("time", "y", "x") and r.attrs["units"] == "mm/h"
    assert r.shape[1:] == (100 // 4, 100 // 4)
    assert knmi_4km["x"].attrs["units"] == "km"
    np.testing.assert_allclose(np.diff(knmi_4km["x"].values), 4.0)


def test_coarsening_conserves_the_mean(knmi_dir, knmi_4km):
    _, fine, _, _ = read_knmi_file(knmi_dir / "RAD_NL25_RAP_5min_201008260300.h5")
    coarse = knmi_4km["rain_rate"].sel(time="2010-08-26T03:00").values
    count = (~np.isnan(fine)).reshape(25, 4, 25, 4).sum(axis=(1, 3))
    np.testing.assert_array_equal(np.isnan(coarse), count == 0)
    weighted = np.nansum(coarse * count) / count.sum()
    assert weighted == pytest.approx(float(np.nanmean(fine)), rel=1e-5)
    if count.min() == 16:                   # no missing pixel: plain 4 x 4 block means
        np.testing.assert_allclose(coarse, fine.reshape(25, 4, 25, 4).mean(axis=(1, 3)),
                                   rtol=1e-5)


def test_block_mean_by_hand():
    a = np.arange(16, dtype=np.float64).reshape(4, 4)
    np.testing.assert_array_equal(coarsen_block_mean(a, 2), [[2.5, 4.5], [10.5, 12.5]])
    a[0, 0] = np.nan
    got = coarsen_block_mean(a, 2)
    assert got[0, 0] == pytest.approx((1 + 4 + 5) / 3)
    assert np.isnan(coarsen_block_mean(a, 2, min_valid=0.8)[0, 0])
    b = np.full((5, 5), np.nan)
    assert coarsen_block_mean(b, 2).shape == (2, 2) and np.isnan(coarsen_block_mean(b, 2)).all()


def test_crop_and_cli(knmi_dir, tmp_path):
    files = sorted(knmi_dir.glob("*.h5"))[8:11]
    out = tmp_path / "knmi.nc"
    mod = _script()
    assert mod.main([*map(str, files), "-o", str(out), "--resolution", "2",
                     "--crop-x", "330", "410", "--crop-y", "-4120", "-4040",
                     "--no-progress"]) == 0
    with xr.open_dataset(out) as ds:
        assert ds["rain_rate"].shape == (3, 40, 40)
        assert ds["x"].values.min() >= 330 and ds["x"].values.max() <= 410
        assert ds["crs"].attrs["grid_mapping_name"] == "polar_stereographic"
        assert ds.attrs["coarsening_factor"] == 2
    bad = tmp_path / "bad.nc"
    assert mod.main([str(tmp_path / "nothing"), "-o", str(bad), "--no-progress"]) == 2
    assert mod.main([*map(str, files), "-o", str(bad), "--resolution", "2.5",
                     "--no-progress"]) == 2
    assert mod.main([*map(str, files), "-o", str(bad), "--crop-x", "5000", "6000",
                     "--no-progress"]) == 2
    (tmp_path / "fake.h5").write_text("not hdf5")
    assert mod.main([str(tmp_path / "fake.h5"), "-o", str(bad), "--no-progress"]) == 2
    assert not bad.exists()
    with pytest.raises(InputError, match="same valid time"):
        load_knmi([files[0], files[0]])
