"""CF compliance of every kind of netCDF the toolkit writes, and CF-aware reading.

Each file is checked with the IOOS compliance checker (``compliance-checker``, CF-1.8 suite,
offline: it ships the standard-name table and cf-units bundles UDUNITS-2); a file passes when
the checker reports no error (its "high priority" results). One checker heuristic is stricter
than CF and is answered instead by a check of our own: the checker takes any variable named
``time`` for a CF time coordinate, while CF section 4.4 identifies one by its units
(``"<unit> since <date>"``). Files in dimensionless model time (simulators, posteriors) keep a
``time`` dimension in units ``1`` without ``axis: T`` or ``standard_name: time``, which is not
a CF time coordinate (docs/CONVENTIONS.md); for those files only that message is allowed, and
the test asserts the time variable really is plain model time.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from pyro_videossm.cli import main
from pyro_videossm.data.conventions import open_dataset, write_netcdf
from pyro_videossm.data.fields import FieldWindows, check_field
from pyro_videossm.data.precip import convert_rate, open_precip, rate_standard_name
from pyro_videossm.data.selection import spatial_axes
from pyro_videossm.errors import InputError
from pyro_videossm.forecast import get_forecaster

DATA = Path(__file__).parent / "data"

#: the checker's name heuristic for 'time' (see the module doc)
MODEL_TIME_MESSAGE = "Coordinate variable 'time' should have standard_name='time'"


def cf_errors(path: Path) -> list[str]:
    """The CF-1.8 errors ("high priority" results) of the IOOS compliance checker."""
    runner = pytest.importorskip("compliance_checker.runner")
    runner.CheckSuite.load_all_available_checkers()
    report = path.with_suffix(".cf.json")
    runner.ComplianceChecker.run_checker(str(path), ["cf:1.8"], 0, "normal",
                                         output_filename=str(report), output_format="json")
    result = json.loads(report.read_text())["cf:1.8"]
    return [f"{item['name']}: {msg}" for item in result.get("high_priorities", [])
            for msg in item["msgs"]]


def assert_cf(path: Path, *, model_time: bool = False) -> None:
    errors = cf_errors(path)
    if model_time:
        with xr.open_dataset(path, decode_times=False) as ds:
            t = ds["time"]
            assert t.attrs.get("units") == "1"
            assert "axis" not in t.attrs and "standard_name" not in t.attrs
        errors = [e for e in errors if MODEL_TIME_MESSAGE not in e]
    assert errors == [], f"{path.name}: {errors}"
    with xr.open_dataset(path, decode_times=False) as ds:
        assert ds.attrs["Conventions"].startswith("CF-")


def simulate(kind: str, path: Path, *args: str) -> Path:
    assert main(["simulate", kind, *args, "--output", str(path), "--no-progress"]) == 0
    return path


def test_checker_finds_errors(tmp_path):
    """The check can fail: a time axis in units '1' and a made-up standard name are errors."""
    ds = xr.Dataset({"v": ("time", np.zeros(3), {"units": "1", "standard_name": "not_a_name"})},
                    coords={"time": ("time", np.arange(3.0), {"units": "1", "axis": "T"})},
                    attrs={"Conventions": "CF-1.8"})
    path = write_netcdf(ds, tmp_path / "bad.nc")
    errors = cf_errors(path)
    assert any("time units" in e for e in errors)
    assert any("not_a_name" in e for e in errors)


@pytest.mark.parametrize("kind,args", [
    ("lorenz63", ["--cycles", "12"]),
    ("lorenz96", ["--cycles", "12"]),
    ("heat", ["--samples", "2", "--steps", "4", "--grid", "8"]),
    ("moving-digits", ["--clips", "2", "--frames", "3", "--canvas", "32"]),
    ("sprites", ["--characters", "1", "--frames", "2", "--size", "16"]),
    ("eating", ["--clips", "1", "--seconds", "0.5", "--size", "32"]),
])
def test_simulators_write_cf(tmp_path, kind, args):
    assert_cf(simulate(kind, tmp_path / f"{kind}.nc", *args), model_time=True)


def test_posterior_is_cf(tmp_path):
    obs = simulate("lorenz63", tmp_path / "l63.nc", "--cycles", "12")
    out = tmp_path / "post.nc"
    assert main(["assimilate", str(obs), "--method", "enkf", "--members", "8", "-o", str(out),
                 "--no-progress"]) == 0
    assert_cf(out, model_time=True)


def test_field_forecast_is_cf(tmp_path):
    data = simulate("heat", tmp_path / "heat.nc", "--samples", "2", "--steps", "5",
                    "--grid", "8")
    out = tmp_path / "fc.nc"
    assert main(["forecast", str(data), "--model", "persistence", "--context", "2",
                 "--leads", "2", "-o", str(out), "--no-progress"]) == 0
    assert_cf(out)
    fc = open_dataset(out)
    # model time (units "1"): the lead time is no CF forecast_period, the member is a realization
    assert "standard_name" not in fc["lead_time"].attrs
    assert fc.cf["realization"].name == "member"


def test_radar_and_its_forecast_are_cf(tmp_path):
    from pyro_videossm.data.radar import load_knmi

    ds = load_knmi(DATA / "knmi_crop", resolution_km=4)
    assert_cf(write_netcdf(ds, tmp_path / "radar.nc"))
    fc = get_forecaster("persistence").forecast(ds, 3)
    assert_cf(write_netcdf(fc, tmp_path / "fc.nc"))
    back = open_dataset(tmp_path / "fc.nc")
    assert back.cf["forecast_period"].name == "lead_time"
    assert back.cf["forecast_reference_time"].name == "init_time"
    assert back.cf["realization"].name == "member"
    np.testing.assert_array_equal(back["lead_time"].values,
                                  np.arange(1, 4) * np.timedelta64(5, "m"))
    assert back["init_time"].values == ds["time"].values[-1]
    assert back["forecast"].attrs["grid_mapping"] == "crs"
    assert back["crs"].attrs["grid_mapping_name"] == "polar_stereographic"


# -- rotated-pole fields: spatial axes found by CF attributes ----------------------------------
def rotated_pole(nt: int = 6, ny: int = 5, nx: int = 7) -> xr.Dataset:
    """``pr(time, rlat, rlon)`` in kg m-2 s-1 on a rotated-pole grid (2D lat/lon aux coords)."""
    rng = np.random.default_rng(0)
    rlat, rlon = np.linspace(-4.0, 4.0, ny), np.linspace(-9.0, 9.0, nx)
    t = np.datetime64("2020-01-01T00", "ns") + np.arange(nt) * np.timedelta64(1, "h")
    lat, lon = np.meshgrid(50.0 + rlat, 5.0 + rlon, indexing="ij")
    return xr.Dataset(
        {"pr": (("time", "rlat", "rlon"), rng.gamma(1.0, 1e-4, (nt, ny, nx)),
                {"units": "kg m-2 s-1", "standard_name": "precipitation_flux",
                 "long_name": "precipitation", "grid_mapping": "rotated_pole"}),
         "rotated_pole": ((), np.int32(0), {
             "grid_mapping_name": "rotated_latitude_longitude",
             "grid_north_pole_latitude": 39.25, "grid_north_pole_longitude": -162.0})},
        coords={"time": ("time", t, {"standard_name": "time", "axis": "T"}),
                "rlat": ("rlat", rlat, {"standard_name": "grid_latitude", "units": "degrees",
                                        "axis": "Y"}),
                "rlon": ("rlon", rlon, {"standard_name": "grid_longitude", "units": "degrees",
                                        "axis": "X"}),
                "lat": (("rlat", "rlon"), lat, {"standard_name": "latitude",
                                                "units": "degrees_north"}),
                "lon": (("rlat", "rlon"), lon, {"standard_name": "longitude",
                                                "units": "degrees_east"})},
        attrs={"Conventions": "CF-1.8", "title": "rotated-pole test field"})


def test_rotated_pole_forecast_end_to_end(tmp_path):
    src = write_netcdf(rotated_pole(), tmp_path / "rot.nc")
    assert_cf(src)
    out = tmp_path / "fc.nc"
    assert main(["forecast", str(src), "--model", "persistence", "--context", "3",
                 "--leads", "2", "--init-index", "-1", "-o", str(out), "--no-progress"]) == 0
    assert_cf(out)
    fc, ds = open_dataset(out), open_dataset(src)
    assert fc["forecast"].dims == ("lead_time", "member", "rlat", "rlon")
    for name in ("rlat", "rlon", "lat", "lon"):
        xr.testing.assert_identical(fc[name].reset_coords(drop=True),
                                    ds[name].reset_coords(drop=True))
    assert fc["forecast"].attrs["grid_mapping"] == "rotated_pole"
    assert fc["rotated_pole"].attrs == ds["rotated_pole"].attrs
    # persistence: every lead is the last context frame
    for k in range(2):
        np.testing.assert_array_equal(fc["forecast"].values[k, 0], ds["pr"].values[-1])
    assert fc.cf["forecast_period"].name == "lead_time"


def test_rotated_pole_axes_by_cf_attributes():
    da = rotated_pole()["pr"]
    assert spatial_axes(da) == ("rlat", "rlon")
    check_field(da)
    windows = FieldWindows(da, context=2, leads=1)
    assert windows.spatial_dims == ("rlat", "rlon") and len(windows) == 4
    with pytest.raises(InputError, match=r"\('rlat', 'rlon'\) \(transpose it\)"):
        check_field(da.transpose("time", "rlon", "rlat"))
    bare = da.drop_vars(["rlat", "rlon", "lat", "lon"])
    with pytest.raises(InputError, match="CF axis"):
        check_field(bare)


def test_open_precip_rotated_pole(tmp_path):
    path = write_netcdf(rotated_pole(), tmp_path / "rot.nc")
    da = open_precip(path, y=(-1.0, 4.0), x=(-9.0, 0.0))
    raw = rotated_pole()["pr"]
    assert da.dims == ("time", "rlat", "rlon") and da.shape == (6, 3, 4)
    np.testing.assert_allclose(da.values, raw.values[:, 2:, :4] * 3600.0)
    assert da.attrs["units"] == "mm/h"
    assert da.attrs["standard_name"] == "lwe_precipitation_rate"
    assert da["rotated_pole"].attrs["grid_mapping_name"] == "rotated_latitude_longitude"


# -- standard names follow unit conversions --------------------------------------------------
def test_standard_name_follows_unit_conversion():
    flux = xr.DataArray(np.array([1e-4, 2e-4]), name="pr",
                        attrs={"units": "kg m-2 s-1", "standard_name": "precipitation_flux"})
    rate = convert_rate(flux, "mm/h")
    assert flux.attrs["standard_name"] == "precipitation_flux"  # the input is left alone
    np.testing.assert_allclose(rate.values, [0.36, 0.72])
    assert rate.attrs["standard_name"] == "lwe_precipitation_rate"
    back = convert_rate(rate, "kg m-2 s-1")
    np.testing.assert_allclose(back.values, flux.values)
    assert back.attrs["standard_name"] == "precipitation_flux"
    # between two depth rates (or two mass fluxes) the name stays
    assert convert_rate(rate, "mm/day").attrs["standard_name"] == "lwe_precipitation_rate"
    assert rate_standard_name("rainfall_flux", "kg/m2/s", "mm/h") == "rainfall_rate"
    assert rate_standard_name("rainfall_rate", "mm/h", "kg m-2 s-1") == "rainfall_flux"
    assert (rate_standard_name("precipitation_amount", "kg m-2 s-1", "mm/h")
            == "lwe_thickness_of_precipitation_amount")
    # a name without a counterpart in the new units is dropped, not kept wrong
    odd = flux.assign_attrs(standard_name="air_temperature")
    assert "standard_name" not in convert_rate(odd, "mm/h").attrs
    same = convert_rate(flux, "kg/m2/s")  # factor 1: a new object, the input untouched
    assert same.attrs["units"] == "kg/m2/s" and flux.attrs["units"] == "kg m-2 s-1"


def test_lwe_names_are_in_the_cf_table():
    """Each pair maps a kg m-2 [s-1] name to an m [s-1] name of the CF standard-name table."""
    util = pytest.importorskip("compliance_checker.cf.util")
    from pyro_videossm.data.precip import LWE_STANDARD_NAMES

    table = util.StandardNameTable()
    for mass, depth in LWE_STANDARD_NAMES.items():
        assert table[mass].canonical_units in ("kg m-2 s-1", "kg m-2")
        assert table[depth].canonical_units == (
            "m s-1" if table[mass].canonical_units == "kg m-2 s-1" else "m")


def test_cf_encoding_keeps_values(tmp_path):
    """int32 only where the values fit: a datetime span too long for int32 stays exact."""
    t = np.array(["1900-01-01T00:00:00.5", "2100-01-01"], dtype="datetime64[ns]")
    ds = xr.Dataset({"v": ("time", np.array([1, 2**40]))}, coords={"time": t})
    back = open_dataset(write_netcdf(ds, tmp_path / "t.nc")).load()
    np.testing.assert_array_equal(back["time"].values, t)
    np.testing.assert_array_equal(back["v"].values, [1, 2**40])


def test_forecast_named_the_cf_way_scores_the_same(tmp_path):
    """A forecast whose coordinates are named forecast_period / realization /
    forecast_reference_time scores (and plots) like the toolkit's own."""
    from pyro_videossm.data.forecast_names import toolkit_forecast_names
    from pyro_videossm.metrics.fields import score_forecast
    from pyro_videossm.plots.fields import plot_forecast_strip

    ds = rotated_pole(nt=8)
    fc = get_forecaster("persistence").forecast(ds.isel(time=slice(0, 5)), 3)
    cf = fc.rename(lead_time="forecast_period", member="realization",
                   init_time="forecast_reference_time")
    assert toolkit_forecast_names(cf)["forecast"].dims == fc["forecast"].dims
    ours = score_forecast(fc, ds, with_ssim=False)
    theirs = score_forecast(cf, ds, with_ssim=False)
    xr.testing.assert_allclose(ours, theirs)
    np.testing.assert_allclose(ours["mae"].values, [
        np.abs(ds["pr"].values[5 + k] - ds["pr"].values[4]).mean() for k in range(3)])
    import matplotlib.pyplot as plt

    plt.close(plot_forecast_strip(cf, ds))
    # found by standard_name whatever the variable is called
    other = fc.rename(member="number")
    assert "member" in toolkit_forecast_names(other).dims
