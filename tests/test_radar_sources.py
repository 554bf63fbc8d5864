"""Radar sources other than the KNMI day: synthetic files in each real format
(tests/radar_fixtures.py) -> ``videossm convert-radar`` -> the CF Dataset (units, grid,
projection, times, NaN for no data, zeros for no echo) -> every radar forecaster; the
pipeline follows the data's pixel size and time step (2 km / 10 min KNMI, 2 km / 15 min
OPERA, 1 km / 5 min FMI and MeteoSwiss, 2 km / 6 min BoM); and the bad inputs of issue 14."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr

pytest.importorskip("pysteps")

import radar_fixtures as rf  # noqa: E402
from script_loader import load_script  # noqa: E402

from pyro_videossm.cli import main  # noqa: E402
from pyro_videossm.errors import InputError  # noqa: E402
from pyro_videossm.forecast import FieldScaling, get_forecaster  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
ROWS, COLS, FRAMES = 24, 28, 4
#: MeteoSwiss: the scene sits in rows/columns ROW0.., COL0.. of the fixed 640 x 710 grid
MCH_ROW0, MCH_COL0 = 100, 300


def _one_line_exit_2(argv, capsys) -> str:
    assert main([str(a) for a in argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err and "\n" not in err, err
    return err


def _scene(frames: int = FRAMES, rows: int = ROWS, cols: int = COLS) -> np.ndarray:
    """Rain with a no-data corner (outside radar range)."""
    s = rf.rain_scene(frames, rows, cols)
    s[:, :3, :5] = np.nan
    return s


#: source -> (pixel km, step minutes, CF grid mapping)
SOURCES = {
    "knmi": (2.0, 10.0, "polar_stereographic"),
    "opera": (2.0, 15.0, "lambert_azimuthal_equal_area"),
    "fmi": (1.0, 5.0, "polar_stereographic"),
    "bom": (2.0, 6.0, "albers_conical_equal_area"),
    "mch": (1.0, 5.0, "oblique_mercator"),
}


def write_source(source: str, folder: Path, scene: np.ndarray):
    """The scene written as ``source`` files -> (files, expected mm/h, raw numbers, expected x
    and y pixel centres in km, extra convert-radar arguments)."""
    folder.mkdir(parents=True, exist_ok=True)
    px, minutes, _ = SOURCES[source]
    when = rf.times(len(scene), minutes)
    rows, cols = scene.shape[1:]
    c, r = np.arange(cols) + 0.5, np.arange(rows) + 0.5
    extra: list[str] = []
    if source == "knmi":
        raw = rf.knmi_encode(scene, minutes)
        files = rf.write_knmi(folder, raw, when, pixel_km=px, minutes=minutes)
        exp, x, y = rf.knmi_decode(raw, minutes), (c + 320) * px, -(r + 4030) * px
    elif source == "opera":
        raw = rf.opera_encode(scene)
        files = rf.write_opera(folder, raw, when, pixel_m=px * 1000)
        exp, x, y = rf.opera_decode(raw), 1000.0 + c * px, 3000.0 - r * px
    elif source == "fmi":
        raw = rf.fmi_encode(scene)
        files = rf.write_fmi(folder, raw, when, pixel_m=px * 1000)
        exp, x, y = rf.fmi_decode(raw), 100.0 + c * px, 6700.0 + rows * px - r * px
    elif source == "bom":
        raw = rf.bom_encode(scene, minutes)
        files = rf.write_bom(folder, raw, when, pixel_km=px, minutes=minutes)
        exp, x, y = rf.bom_decode(raw, minutes), -100.0 + c * px, -200.0 - r * px
    else:
        full = np.zeros((len(scene), *rf.MCH_SHAPE))
        full[:, MCH_ROW0:MCH_ROW0 + rows, MCH_COL0:MCH_COL0 + cols] = scene
        full_raw = rf.mch_encode(full)
        files = rf.write_mch(folder, full_raw, when)
        raw = full_raw[:, MCH_ROW0:MCH_ROW0 + rows, MCH_COL0:MCH_COL0 + cols]
        exp = rf.mch_decode(raw)
        x = rf.MCH_X0_KM + MCH_COL0 + c
        y = rf.MCH_Y1_KM - MCH_ROW0 - r
        extra = ["--crop-x", x[0], x[-1], "--crop-y", y[-1], y[0]]
    return files, exp, raw, x, y, extra


@pytest.fixture(scope="module")
def converted(tmp_path_factory) -> dict[str, tuple[xr.Dataset, np.ndarray, np.ndarray]]:
    """Every source's files converted by ``videossm convert-radar``: (Dataset, expected
    mm/h, raw)."""
    root = tmp_path_factory.mktemp("sources")
    out = {}
    for source in SOURCES:
        files, exp, raw, x, y, extra = write_source(source, root / source, _scene())
        nc = root / f"{source}.nc"
        assert main(["convert-radar", "--source", source, *map(str, files), "-o", str(nc),
                     *map(str, extra), "--no-progress"]) == 0
        with xr.open_dataset(nc) as ds:
            out[source] = (ds.load(), exp, raw, x, y)
    return out


@pytest.mark.parametrize("source", list(SOURCES))
def test_conversion_follows_the_file_metadata(converted, source):
    ds, exp, raw, x, y = converted[source]
    px, minutes, mapping = SOURCES[source]
    r = ds["rain_rate"]
    assert r.dims == ("time", "y", "x") and r.shape == (FRAMES, ROWS, COLS)
    assert r.attrs["units"] == "mm/h" and r.attrs["standard_name"] == "rainfall_rate"
    assert r.attrs["grid_mapping"] == "crs"
    assert ds["crs"].attrs["grid_mapping_name"] == mapping
    assert ds["crs"].attrs["proj4_params"]
    # grid: pixel centres in km from the file's own grid metadata
    np.testing.assert_allclose(ds["x"].values, x, rtol=0, atol=1e-6)
    np.testing.assert_allclose(ds["y"].values, y, rtol=0, atol=1e-6)
    assert ds["x"].attrs["units"] == "km" and ds.attrs["pixel_size_km"] == pytest.approx(px)
    # times from the file names, at the source's step
    steps = np.diff(ds["time"].values) / np.timedelta64(1, "m")
    assert (steps == minutes).all()
    assert ds["time"].values[0] == np.datetime64(rf.T0)
    # values: the format's formula; NaN for no data, exactly 0 for no echo
    v = r.values.astype(np.float64)
    assert (np.isnan(v) == np.isnan(exp)).all() and np.isnan(v[:, :3, :5]).all()
    np.testing.assert_allclose(v, exp, rtol=2e-6, equal_nan=True)
    dry = np.nan_to_num(exp, nan=1.0) == 0
    assert dry.any() and (v[dry] == 0).all()
    assert np.nanmax(v) > 5.0  # the cells' cores survive the format's quantisation
    # accumulations say their period; rates and reflectivities are instants
    accumulated = {"knmi": minutes, "bom": minutes, "mch": 5.0}.get(source)
    cell = r.attrs["cell_methods"]
    assert cell == (f"time: mean (interval: {accumulated:g} minutes)" if accumulated
                    else "time: point")
    assert ds.attrs["radar_source"] == source


def test_knmi_2km_10min_through_pysteps_equals_the_knmi_reader(converted, tmp_path):
    from pyro_videossm.data.radar import load_knmi

    files, *_ = write_source("knmi", tmp_path, _scene())
    ref = load_knmi(files)
    ds = converted["knmi"][0]
    np.testing.assert_allclose(ds["rain_rate"].values, ref["rain_rate"].values, rtol=1e-6)
    for c in ("time", "x", "y"):
        np.testing.assert_array_equal(ds[c].values, ref[c].values)
    assert ds["rain_rate"].attrs["cell_methods"] == ref["rain_rate"].attrs["cell_methods"]


def _dry_frame_fmi(tmp_path: Path) -> np.ndarray:
    scene = _scene(2)
    scene[1] = 0.0  # the second frame: no echo anywhere (only the lowest level)
    files, *_ = write_source("fmi", tmp_path, scene)
    from pyro_videossm.data.radar_importers import load_radar

    return load_radar(files, "fmi")["rain_rate"].values


def test_an_all_dry_reflectivity_frame_is_zero_rain(tmp_path):
    """pysteps zeroes only values below the smallest one above the lowest level; a frame at
    the lowest level everywhere is zeroed by the converter too."""
    v = _dry_frame_fmi(tmp_path)
    assert (np.nan_to_num(v[1]) == 0).all() and np.nanmax(v[0]) > 1


@pytest.mark.parametrize("source", list(SOURCES))
def test_pysteps_forecasters_and_persistence_run_on_every_source(converted, source):
    ds = converted[source][0]
    minutes = SOURCES[source][1]
    for name in ("persistence", "extrapolation", "sprog", "steps"):
        fc = get_forecaster(name).forecast(ds, 2, 2, seed=1)["forecast"]
        assert fc.shape == (2, 1 if name != "steps" else 2, ROWS, COLS)
        v = fc.values
        assert np.isfinite(v[:, :, 3:, 5:]).all() and np.nanmin(v) >= 0
        assert (fc["lead_time"].values / np.timedelta64(1, "m") == [minutes, 2 * minutes]).all()
        assert np.nanmax(v) > 1.0  # the rain is carried on
    # STEPS read the grid's km per pixel and minutes per step from the data
    from pyro_videossm.forecast.pysteps_nowcasts import grid_spacing

    assert grid_spacing(ds["rain_rate"]) == pytest.approx(SOURCES[source][:2])


def _bench():
    return load_script("benchmarks/radar_forecast.py")


def test_benchmark_on_a_2km_15min_source(tmp_path):
    """The radar benchmark on converted OPERA composites (2 km, 15 min): models trained and
    scored, the FSS window of 16 km is 8 pixels, leads in 15-minute steps."""
    files, *_ = write_source("opera", tmp_path / "opera",
                             rf.rain_scene(20, 24, 24, speed=(0.3, 0.8)))
    nc = tmp_path / "opera.nc"
    assert main(["convert-radar", "--source", "opera", *map(str, files), "-o", str(nc),
                 "--no-progress"]) == 0
    models = ["persistence", "extrapolation", "sprog", "steps", "convdmm", "advection-convdmm",
              "convlstm"]
    results = tmp_path / "R.md"
    bench = _bench()
    assert bench.main(["--quick", "--data", str(nc), "--source", "opera", "--split", "0.3",
                       "0.3", "0.4", "--out", str(tmp_path / "out"), "--results",
                       str(results), "--models", *models]) == 0
    summary = json.loads((tmp_path / "out" / "radar_summary.json").read_text())
    s = summary["settings"]
    assert s["fss_scales"] == [1, 8] and s["resolution"] == 2.0 and s["box_km"] is None
    assert summary["time_step_minutes"] == 15.0 and summary["grid"] == [24, 24]
    for m in models:
        sc = summary["models"][m]["scores"]
        assert np.isfinite(sc["mse"]).all() and np.isfinite(sc["fss8"]).all()
    text = results.read_text()
    assert "16 km scale (8 px)" in text and "| 45 min |" in text and "`opera` radar" in text
    # the same data coarsened to 4 km: the 16 km window is 4 pixels
    bench.main(["--quick", "--data", str(nc), "--source", "opera", "--split", "0.3", "0.3",
                "0.4", "--resolution", "4", "--out", str(tmp_path / "o4"), "--models",
                "persistence"])
    s4 = json.loads((tmp_path / "o4" / "radar_summary.json").read_text())
    assert s4["settings"]["fss_scales"] == [1, 4] and s4["grid"] == [12, 12]


@pytest.mark.parametrize("minutes, context, leads, shown", [
    (5.0, 6, 12, [1, 3, 6, 9, 12]), (6.0, 5, 10, [1, 2, 5, 8, 10]),
    (10.0, 3, 6, [1, 2, 3, 4, 6]), (15.0, 3, 4, [1, 2, 3, 4])])
def test_benchmark_windows_are_durations_in_the_data_steps(minutes, context, leads, shown):
    """30 min of context (at least 3 frames), 60 min of leads, tables at 5..60 min."""
    from argparse import Namespace

    ds = xr.Dataset(coords={"time": np.array(rf.times(3, minutes), dtype="datetime64[ns]")})
    args = Namespace(context=None, leads=None, show_leads=None)
    _bench().steps_of(args, ds)
    assert (args.context, args.leads, args.show_leads) == (context, leads, shown)


# -- bad input --------------------------------------------------------------------------------
def test_foreign_files_and_missing_projections_are_one_line(tmp_path, capsys):
    out = tmp_path / "out.nc"
    names = {"knmi": "RAD_NL25_RAP_5min_202106011200.h5",
             "opera": "T_PAAH21_C_EUOC_20210601120000.hdf",
             "fmi": "202106011200_fmi.radar.composite.lowest_FIN_SUOMI1.pgm",
             "bom": "2_20210601_120000.prcp-cscn.nc", "mch": "AQC211521200F_00005.801.gif"}
    for source, name in names.items():  # text under a radar file's name
        text = tmp_path / name
        text.write_text("not a radar file\n")
        assert f"not a {source} radar file" in _one_line_exit_2(
            ["convert-radar", "--source", source, text, "-o", out], capsys)
    bom, *_ = write_source("bom", tmp_path / "bom", _scene(1))[0]
    assert "not a opera radar file" in _one_line_exit_2(  # a file of another format
        ["convert-radar", "--source", "opera", bom, "--time-format", "%Y%m%d_%H%M", "-o",
         out], capsys)
    raw = rf.opera_encode(_scene(1))
    (tmp_path / "noproj").mkdir()
    opera = rf.write_opera(tmp_path / "noproj", raw, rf.times(1, 15), proj4=None)
    assert "no projection" in _one_line_exit_2(
        ["convert-radar", "--source", "opera", opera[0], "-o", out], capsys)
    (tmp_path / "fmi").mkdir()
    fmi = rf.write_fmi(tmp_path / "fmi", rf.fmi_encode(_scene(1)), rf.times(1, 5),
                       stereographic=False)
    assert "no projection" in _one_line_exit_2(
        ["convert-radar", "--source", "fmi", fmi[0], "-o", out], capsys)
    assert not out.exists()


def test_mixed_grids_and_duplicate_times_are_one_line(tmp_path, capsys):
    out = tmp_path / "out.nc"
    a = tmp_path / "a"
    b = tmp_path / "b"
    a.mkdir()
    b.mkdir()
    raw = rf.opera_encode(_scene(2))
    fa = rf.write_opera(a, raw[:1], rf.times(1, 15))
    fb = rf.write_opera(b, raw[1:], rf.times(1, 15, rf.T0.replace(minute=15)), pixel_m=4000.0)
    assert "grid differs" in _one_line_exit_2(
        ["convert-radar", "--source", "opera", *fa, *fb, "-o", out], capsys)
    fb = rf.write_opera(b, raw[1:], rf.times(1, 15))  # the same time as fa's file
    assert "same valid time" in _one_line_exit_2(
        ["convert-radar", "--source", "opera", *fa, *fb, "-o", out], capsys)
    assert not out.exists()


def test_times_that_do_not_increase_or_skip_are_refused(converted, tmp_path, capsys):
    from pyro_videossm.experiments.radar_benchmark import radar_field

    ds = converted["bom"][0]
    swapped = ds.isel(time=[0, 2, 1, 3])
    with pytest.raises(InputError, match="not increasing"):
        get_forecaster("persistence").forecast(swapped, 1)
    dup = ds.assign_coords(time=ds["time"].values[[0, 1, 1, 2]])
    with pytest.raises(InputError, match="duplicate"):
        get_forecaster("extrapolation").forecast(dup, 1)
    path = tmp_path / "dup.nc"
    dup.to_netcdf(path)
    fc = tmp_path / "fc.nc"
    assert "duplicate" in _one_line_exit_2(
        ["forecast", path, "--model", "persistence", "--context", "4", "--leads", "1",
         "-o", fc], capsys)
    assert not fc.exists()
    gap = tmp_path / "gap.nc"
    ds.isel(time=[0, 1, 3]).to_netcdf(gap)
    with pytest.raises(InputError, match="not evenly spaced"):
        radar_field(gap, source="bom")
    swapped.to_netcdf(tmp_path / "swapped.nc")
    with pytest.raises(InputError, match="not increasing"):
        radar_field(tmp_path / "swapped.nc", source="bom")


def _learned(name: str):
    """Untrained learned forecasters of the radar benchmark, every one of them (their weights
    do not matter: a dry context never reaches them)."""
    from pyro_videossm.experiments.field_recipes import build_module
    from pyro_videossm.experiments.radar_benchmark import radar_architectures

    arch = radar_architectures(4, (ROWS, COLS))[name]
    if name in SEQUENCE_FORECASTERS:
        from pyro_videossm.experiments.sequence_recipes import build_sequence_model

        return build_sequence_model(name, arch, (ROWS, COLS), 3, 3,
                                    scaling=FieldScaling(scale=10.0, units="mm/h"))
    module = build_module(name, arch, (ROWS, COLS))
    return get_forecaster(name, module=module, scaling=FieldScaling(scale=10.0, units="mm/h"),
                          context_length=3)


FIELD_FORECASTERS = ("convdmm", "advection-convdmm", "convlstm", "dmm-flat")
SEQUENCE_FORECASTERS = ("spatrans", "transformer", "lstm", "seq2seq", "seq2seq-attn")


def test_an_all_dry_context_forecasts_zeros_for_every_forecaster(converted):
    ds = converted["mch"][0]
    dry = ds.isel(time=slice(0, 3)).copy(deep=True)
    dry["rain_rate"].values[:] = np.where(np.isnan(dry["rain_rate"].values), np.nan, 0.0)
    torch.manual_seed(0)
    learned = (*FIELD_FORECASTERS, *SEQUENCE_FORECASTERS)
    for name in ("persistence", "extrapolation", "sprog", "steps", *learned):
        f = _learned(name) if name in learned else get_forecaster(name)
        fc = f.forecast(dry, 3, 4)["forecast"]
        assert fc.sizes["lead_time"] == 3 and (fc.values == 0).all(), name
    # a batch of a dry and a wet context: the dry one zeros, the wet one as alone
    wet = ds["rain_rate"].isel(time=slice(0, 3))
    both = xr.concat([dry["rain_rate"], wet], dim="sample")
    f = _learned("convlstm")
    fc = f.forecast(both, 2)["forecast"].values
    assert (fc[0] == 0).all()
    np.testing.assert_allclose(fc[1], f.forecast(wet, 2)["forecast"].values, rtol=1e-6)
    assert np.abs(fc[1]).max() > 0
    # a field that is not a rain rate is never "dry"
    from pyro_videossm.forecast.dry_context import dry_contexts

    temp = wet.assign_attrs(units="K", standard_name="air_temperature")
    assert not dry_contexts(temp, np.zeros((1, 3, 2, 2))).any()
    assert dry_contexts(wet, np.zeros((1, 3, 2, 2))).all()


def test_fewer_context_frames_than_the_optical_flow_needs(converted, capsys, tmp_path):
    ds = converted["knmi"][0]
    one = ds.isel(time=slice(0, 1))
    for f, match in ((get_forecaster("extrapolation"), "at least 2 context frames"),
                     (get_forecaster("extrapolation", motion="darts"),
                      "at least 6 context frames"),
                     (get_forecaster("steps"), "at least 3 context frames"),
                     (_learned("advection-convdmm"), "at least 2 context frames")):
        with pytest.raises(InputError, match=match):
            f.forecast(one, 2)
        dry = one.copy(deep=True)
        dry["rain_rate"].values[:] = 0.0
        with pytest.raises(InputError, match=match):  # even when dry
            f.forecast(dry, 2)
    path = tmp_path / "one.nc"
    one.to_netcdf(path)
    out = tmp_path / "fc.nc"
    assert "context frames" in _one_line_exit_2(
        ["forecast", path, "--model", "sprog", "--context", "1", "--leads", "2", "-o",
         out], capsys)
    assert not out.exists()
