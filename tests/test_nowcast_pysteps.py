"""The nowcasting family on pysteps: radar importers -> CF Dataset (``videossm convert-radar``),
the ``extrapolation``/``sprog``/``steps`` forecasters, and our verification scores checked
against ``pysteps.verification`` on the same arrays."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

pytest.importorskip("pysteps")

from pyro_videossm.cli import main  # noqa: E402
from pyro_videossm.data.radar import load_knmi  # noqa: E402
from pyro_videossm.data.radar_importers import load_radar, time_from_name  # noqa: E402
from pyro_videossm.errors import InputError  # noqa: E402
from pyro_videossm.forecast import get_forecaster  # noqa: E402

DATA = Path(__file__).resolve().parent / "data"
KNMI = sorted((DATA / "knmi_crop").glob("*.h5"))


def _one_line_exit_2(argv, capsys) -> str:
    assert main([str(a) for a in argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err and "\n" not in err, err
    return err


# -- radar input ------------------------------------------------------------------------------
def test_knmi_through_pysteps_equals_the_knmi_reader(tmp_path, capsys):
    files = KNMI[8:12]
    out = tmp_path / "radar.nc"
    assert main(["convert-radar", "--source", "knmi", *map(str, files), "-o", str(out),
                 "--resolution", "4", "--no-progress"]) == 0
    ref = load_knmi(files, resolution_km=4)
    with xr.open_dataset(out) as ds:
        r = ds["rain_rate"]
        assert r.attrs["units"] == "mm/h" and r.attrs["standard_name"] == "rainfall_rate"
        assert r.attrs["grid_mapping"] == "crs"
        np.testing.assert_allclose(r.values, ref["rain_rate"].values, rtol=1e-6)
        for c in ("time", "x", "y"):
            np.testing.assert_array_equal(ds[c].values, ref[c].values)
        assert ds["crs"].attrs == ref["crs"].attrs
        assert ds["crs"].attrs["grid_mapping_name"] == "polar_stereographic"
        assert ds.attrs["radar_source"] == "knmi"


def _bom_file(path: Path, values: np.ndarray, projection: bool = True) -> Path:
    """A Rainfields3-like netCDF: 6-minute accumulation in mm on an Albers grid of 2 km (with
    ``projection=False`` a grid mapping the importer turns into no projection)."""
    import netCDF4

    ny, nx = values.shape
    with netCDF4.Dataset(path, "w") as f:
        f.createDimension("y", ny)
        f.createDimension("x", nx)
        x = f.createVariable("x", "f8", ("x",))
        y = f.createVariable("y", "f8", ("y",))
        x[:] = 100.0 + 2.0 * np.arange(nx) + 1.0
        y[:] = -500.0 - 2.0 * np.arange(ny) - 1.0
        for v, lo, hi in ((x, 100.0, 100.0 + 2 * nx), (y, -500.0 - 2 * ny, -500.0)):
            v.units, v.valid_min, v.valid_max = "km", lo, hi
        p = f.createVariable("proj", "i4")
        p.grid_mapping_name = "albers_conical_equal_area" if projection else "unknown"
        if projection:
            p.longitude_of_central_meridian = 151.0
            p.latitude_of_projection_origin = -34.0
            p.standard_parallel = np.array([-18.0, -36.0])
        for name, minutes in (("valid_time", 6), ("start_time", 0)):
            t = f.createVariable(name, "i8")
            t.units = "seconds since 2020-01-01 00:00:00"
            t[...] = 60 * minutes
        pr = f.createVariable("precipitation", "f4", ("y", "x"))
        pr.units = "mm"
        pr[:] = values
    return path


def test_bom_through_pysteps_and_a_missing_projection(tmp_path, capsys):
    rng = np.random.default_rng(0)
    vals = [rng.gamma(0.5, 0.4, (6, 8)).astype(np.float32) for _ in range(2)]
    files = [_bom_file(tmp_path / f"2_20200101_{hm}00.prcp-cscn.nc", v)
             for hm, v in zip(("0000", "0006"), vals)]
    ds = load_radar(files, "bom")
    r = ds["rain_rate"]
    np.testing.assert_allclose(r.values, np.stack(vals) * 60.0 / 6.0, rtol=1e-5)
    assert (np.diff(ds["time"].values) == np.timedelta64(6, "m")).all()
    np.testing.assert_allclose(ds["x"].values, 101.0 + 2.0 * np.arange(8))
    np.testing.assert_allclose(ds["y"].values, -501.0 - 2.0 * np.arange(6))
    assert ds["crs"].attrs["grid_mapping_name"] == "albers_conical_equal_area"
    assert ds["crs"].attrs["longitude_of_central_meridian"] == pytest.approx(151.0)
    bad = _bom_file(tmp_path / "2_20200101_001200.prcp-cscn.nc", vals[0], projection=False)
    out = tmp_path / "bad.nc"
    err = _one_line_exit_2(["convert-radar", "--source", "bom", bad, "-o", out], capsys)
    assert "projection" in err and not out.exists()


def test_bad_radar_input_is_one_line(tmp_path, capsys):
    out = tmp_path / "out.nc"
    text = tmp_path / "RAD_NL25_RAP_5min_201008260300.h5"
    text.write_text("not a radar file")
    assert "not a knmi radar file" in _one_line_exit_2(
        ["convert-radar", "--source", "knmi", text, "-o", out], capsys)
    assert "not a opera radar file" in _one_line_exit_2(
        ["convert-radar", "--source", "opera", KNMI[0], "--time-format", "%Y%m%d%H%M",
         "-o", out], capsys)
    nameless = tmp_path / "radar.h5"
    shutil.copy(KNMI[0], nameless)
    assert "holds no time" in _one_line_exit_2(
        ["convert-radar", "--source", "knmi", nameless, "-o", out], capsys)
    _one_line_exit_2(["convert-radar", "--source", "knmi", KNMI[0], "-o", KNMI[0]], capsys)
    with pytest.raises(SystemExit, match="2"):  # argparse: one line, exit 2
        main(["convert-radar", "--source", "nosuchsource", str(KNMI[0]), "-o", str(out)])
    assert "invalid choice" in capsys.readouterr().err
    assert not out.exists()
    # a KNMI composite without its projection string
    import h5py

    noproj = tmp_path / KNMI[0].name
    shutil.copy(KNMI[0], noproj)
    with h5py.File(noproj, "r+") as f:
        f["geographic"]["map_projection"].attrs["projection_proj4_params"] = np.bytes_(b" ")
    assert "projection" in _one_line_exit_2(
        ["convert-radar", "--source", "knmi", noproj, "-o", out], capsys)
    assert not out.exists()


def test_time_from_file_names():
    # MeteoSwiss: two-digit year and day of the year (131 of 2016, a leap year: 10 May)
    assert time_from_name("AQC161311205F_00005.801.gif", "AQC%y%j%H%M?_00005.801") == \
        np.datetime64("2016-05-10T12:05")
    assert time_from_name("x_201008260355.h5", "%Y%m%d%H%M") == np.datetime64("2010-08-26T03:55")
    with pytest.raises(InputError, match="holds no time"):
        time_from_name("radar.h5", "%Y%m%d%H%M")


# -- forecasters ------------------------------------------------------------------------------
def _moving_blob(frames: int, size: int = 32, speed: float = 1.0) -> xr.Dataset:
    """A Gaussian rain cell (peak 8 mm/h) moving ``speed`` px per 5 min to +x, on 1 km px."""
    yy, xx = np.mgrid[0:size, 0:size].astype(float)
    rain = np.stack([8.0 * np.exp(-((xx - 8 - speed * t) ** 2 + (yy - 16) ** 2) / 18.0)
                     for t in range(frames)])
    time = np.datetime64("2020-01-01T00:00") + np.arange(frames) * np.timedelta64(5, "m")
    return xr.Dataset({"rain_rate": (("time", "y", "x"), rain, {"units": "mm/h"})},
                      coords={"time": time, "y": ("y", np.arange(size) + 0.5, {"units": "km"}),
                              "x": ("x", np.arange(size) + 0.5, {"units": "km"})})


def _centroid_x(field: np.ndarray) -> float:
    w = np.clip(field, 0, None)
    return float((w * np.arange(field.shape[-1])).sum() / w.sum())


def test_extrapolation_moves_the_cell_with_the_flow():
    ds = _moving_blob(10)
    ctx = ds.isel(time=slice(0, 4))
    fc = get_forecaster("extrapolation").forecast(ctx, 4)
    f = fc["forecast"].values[:, 0]
    for k in range(4):  # lead k+1: the cell centre at 8 + 3 + (k + 1) px
        assert _centroid_x(f[k]) == pytest.approx(8 + 3 + k + 1, abs=0.35)
    truth = ds["rain_rate"].values[4:8]
    persistence = np.abs(ctx["rain_rate"].values[-1] - truth).mean()
    assert np.abs(f - truth).mean() < 0.5 * persistence
    assert fc.attrs["model"] == "extrapolation" and fc.sizes["member"] == 1


def test_sprog_and_steps_shapes_seeds_and_bounds():
    ctx = _moving_blob(4)
    sprog = get_forecaster("sprog").forecast(ctx, 3, 5)
    assert sprog.sizes["member"] == 1 and (sprog["forecast"].values >= 0).all()
    steps = get_forecaster("steps", n_cascade_levels=4)
    a = steps.forecast(ctx, 3, 4, seed=3)["forecast"].values
    b = steps.forecast(ctx, 3, 4, seed=3)["forecast"].values
    c = steps.forecast(ctx, 3, 4, seed=4)["forecast"].values
    assert a.shape == (3, 4, 32, 32) and (a >= 0).all() and np.isfinite(a).all()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c) and a[:, 0].std() > 0 and not np.allclose(a[:, 0], a[:, 1])


def test_dry_context_gives_zeros_and_short_context_one_line(tmp_path, capsys):
    dry = _moving_blob(4)
    dry["rain_rate"][:] = 0.0
    for name in ("extrapolation", "sprog", "steps"):
        fc = get_forecaster(name).forecast(dry, 2, 3)
        assert (fc["forecast"].values == 0).all()
    with pytest.raises(InputError, match="at least 3 context frames"):
        get_forecaster("sprog").forecast(_moving_blob(2), 2)
    with pytest.raises(InputError, match="at least 6 context frames"):
        get_forecaster("extrapolation", motion="darts").forecast(_moving_blob(4), 2)
    data = tmp_path / "blob.nc"
    _moving_blob(6).to_netcdf(data)
    out = tmp_path / "f.nc"
    assert "context frames" in _one_line_exit_2(
        ["forecast", data, "--model", "extrapolation", "--context", "1", "--leads", "2",
         "-o", out], capsys)
    assert not out.exists()


# -- verification against pysteps --------------------------------------------------------------
def _forecast_arrays(members: int, seed: int = 0):
    """An ensemble ``(L, M, H, W)`` and truth ``(L, H, W)`` of rain-like values."""
    rng = np.random.default_rng(seed)
    truth = rng.gamma(0.6, 2.0, (3, 20, 24)) * (rng.uniform(size=(3, 20, 24)) > 0.4)
    fc = truth[:, None] * rng.lognormal(0, 0.5, (3, members, 20, 24)) + rng.normal(
        0, 0.3, (3, members, 20, 24))
    return np.clip(fc, 0, None), truth


def _as_xarray(fc: np.ndarray, truth: np.ndarray):
    f = xr.DataArray(fc, dims=("lead_time", "member", "y", "x"),
                     coords={"lead_time": np.arange(1, fc.shape[0] + 1)})
    return f, xr.DataArray(truth, dims=("lead_time", "y", "x"))


def test_csi_fss_crps_equal_pysteps_verification():
    from pysteps.verification.detcatscores import det_cat_fct
    from pysteps.verification.probscores import CRPS
    from pysteps.verification.spatialscores import fss_accum, fss_compute, fss_init

    from pyro_videossm.metrics.fields import crps, csi, fss

    fc, truth = _forecast_arrays(8)
    f, o = _as_xarray(fc, truth)
    mean = fc.mean(axis=1)
    ours_csi = csi(f, o, [0.5, 2.0]).values
    ours_fss = fss(f, o, [0.5, 2.0], [1, 3, 8]).values
    ours_crps = crps(f, o).values
    for k in range(3):
        for i, thr in enumerate((0.5, 2.0)):
            ref = det_cat_fct(mean[k], truth[k], thr, ["CSI"])["CSI"]
            assert ours_csi[i, k] == pytest.approx(ref, rel=1e-12)
            for j, scale in enumerate((1, 3, 8)):
                acc = fss_init(thr, scale)
                fss_accum(acc, mean[k], truth[k])
                assert ours_fss[i, j, k] == pytest.approx(fss_compute(acc), rel=1e-10)
        # pysteps' Hersbach decomposition drops the interval an observation ties with a member
        # (rain: exact zeros), so the CRPS is compared where no value ties
        tie_free = fc[k] + 1e-3 * np.arange(8)[:, None, None] + 1e-4
        c = crps(_as_xarray(tie_free[None], truth[k][None])[0],
                 _as_xarray(tie_free[None], truth[k][None])[1]).values[0]
        assert c == pytest.approx(CRPS(tie_free, truth[k]), rel=1e-10)
        assert ours_crps[k] >= CRPS(fc[k], truth[k])  # ties only ever lower pysteps' value
    # pooled over several fields (our sum over samples = pysteps' accumulation)
    acc = fss_init(0.5, 3)
    for k in range(3):
        fss_accum(acc, mean[k], truth[k])
    f3 = xr.DataArray(fc[:, None], dims=("sample", "lead_time", "member", "y", "x"),
                      coords={"lead_time": [1]})
    o3 = xr.DataArray(truth[:, None], dims=("sample", "lead_time", "y", "x"))
    pooled = float(fss(f3, o3, [0.5], [3]).values[0, 0, 0])
    assert pooled == pytest.approx(fss_compute(acc), rel=1e-10)


def test_rank_histogram_and_reliability_equal_pysteps():
    from pysteps.postprocessing.ensemblestats import excprob
    from pysteps.verification.ensscores import rankhist
    from pysteps.verification.probscores import reldiag

    from pyro_videossm.metrics.calibration import (
        exceedance_probability,
        rank_histogram,
        reliability,
    )

    rng = np.random.default_rng(1)
    members = rng.normal(size=(7, 30, 40))
    obs = rng.normal(size=(30, 40)) * 1.3
    ours = rank_histogram(members, obs)
    np.testing.assert_array_equal(ours, rankhist(members, obs, normalize=False))
    assert ours.sum() == obs.size and ours[0] + ours[-1] > 2 * obs.size / 8  # too narrow: U
    fc, truth = _forecast_arrays(10, seed=2)
    prob = exceedance_probability(fc[0], 1.0)
    np.testing.assert_allclose(prob, excprob(fc[0], 1.0))
    r, freq, count = reliability(prob, truth[0], 1.0, n_bins=10, min_count=5)
    ref_r, ref_f = reldiag(prob, truth[0], 1.0, n_bins=10, min_count=5)
    np.testing.assert_allclose(r, np.where(count >= 5, ref_r, np.nan), equal_nan=True)
    np.testing.assert_allclose(freq, np.where(count >= 5, ref_f, np.nan), equal_nan=True)
    # ties below x_min: every pair counted once, and none where all are dry
    dry = np.zeros((4, 10))
    counts = rank_histogram(np.zeros((3, 4, 10)), dry, x_min=0.1)
    assert counts.sum() == 0


def test_calibration_plot_from_evaluate(tmp_path, capsys):
    data = tmp_path / "blob.nc"
    _moving_blob(8).to_netcdf(data)
    fc = tmp_path / "steps.nc"
    assert main(["forecast", str(data), "--model", "steps", "--context", "4", "--leads", "3",
                 "--members", "4", "--init-index", "3", "-o", str(fc)]) == 0
    png = tmp_path / "calib.png"
    assert main(["evaluate", str(fc), "--truth", str(data), "--thresholds", "1",
                 "--calibration-plot", str(png)]) == 0
    assert png.stat().st_size > 10_000
    assert "crps" in capsys.readouterr().out


def test_albers_radar_and_its_steps_forecast_are_cf(tmp_path):
    from test_cf_compliance import assert_cf

    from pyro_videossm.data.conventions import write_netcdf

    rng = np.random.default_rng(3)
    files = [_bom_file(tmp_path / f"2_20200101_{hm}00.prcp-cscn.nc",
                       rng.gamma(0.5, 0.6, (16, 16)).astype(np.float32))
             for hm in ("0000", "0006", "0012")]
    ds = load_radar(files, "bom")
    assert_cf(write_netcdf(ds, tmp_path / "radar.nc"))
    fc = get_forecaster("steps", n_cascade_levels=3).forecast(ds, 2, 3)
    assert fc["crs"].attrs["grid_mapping_name"] == "albers_conical_equal_area"
    assert_cf(write_netcdf(fc, tmp_path / "fc.nc"))


def test_pysteps_is_imported_without_its_banner_on_standard_output():
    """pysteps prints its configuration file's path when first imported; a command's standard
    output carries its results, so the toolkit's import keeps it quiet."""
    import subprocess
    import sys

    code = ("from pyro_videossm.data.pysteps_module import import_pysteps; "
            "m = import_pysteps('test'); import sys; print(m.__name__, file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout == "" and done.stderr.strip().endswith("pysteps")
