"""Simulated chaotic-system data: layout, attributes, operators, netCDF round trip, windows."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import xarray as xr

from pyro_videossm.data import (
    cut_windows,
    load_observations,
    observed_indices,
    simulate,
    write_netcdf,
)
from pyro_videossm.errors import InputError


def test_lorenz63_standard_setting_layout():
    ds = simulate("lorenz63", cycles=40, seed=3)
    assert ds["truth"].dims == ("time", "component")
    assert ds.sizes == {"time": 40, "component": 3}
    assert list(ds["component"].values) == ["x", "y", "z"]
    np.testing.assert_allclose(ds["time"].values, 0.25 * np.arange(1, 41))
    a = ds.attrs
    assert a["integration_step"] == 0.01 and a["steps_per_obs"] == 25
    assert a["obs_noise_std"] == pytest.approx(2**0.5) and a["process_noise_std"] == 0.0
    assert a["observation_operator"] == "all" and a["seed"] == 3
    for v in ("truth", "obs"):
        assert ds[v].attrs["units"] and ds[v].attrs["long_name"]
    # observation errors have the stated spread
    ds = simulate("lorenz63", cycles=2000, seed=1, spinup=1.0)
    err = (ds["obs"] - ds["truth"]).values
    assert err.std() == pytest.approx(2**0.5, rel=0.05)


def test_truth_follows_the_dynamics():
    from pyro_videossm.dynamics import Lorenz96

    ds = simulate("lorenz96", cycles=5, n=12)
    sys = Lorenz96(n=12)
    x = torch.from_numpy(ds["truth"].values)
    nxt = sys.integrate(x[:-1], 1, 0.05)
    assert torch.allclose(nxt, x[1:], atol=1e-12)


def test_observation_operators_put_nan_where_unobserved():
    ds = simulate("lorenz96", cycles=10, obs_operator="every:4")
    obs = ds["obs"].values
    observed = [0, 4, 8, 12, 16, 20, 24, 28, 32, 36]
    assert list(ds.attrs["observed_components"]) == observed
    assert np.isfinite(obs[:, observed]).all()
    others = [i for i in range(40) if i not in observed]
    assert np.isnan(obs[:, others]).all()
    assert observed_indices("subset:2,0", 3) == [0, 2]
    for bad in ("every:0", "subset:5", "subset:1,1", "odd", "subset:"):
        with pytest.raises(InputError):
            observed_indices(bad, 3)


def test_student_t_noise_is_heavier_tailed_and_seeded():
    g = simulate("lorenz63", cycles=3000, spinup=1.0, seed=0)
    t = simulate("lorenz63", cycles=3000, spinup=1.0, seed=0, obs_noise_dist="student_t",
                 obs_noise_df=3.0)
    eg = (g["obs"] - g["truth"]).values.ravel()
    et = (t["obs"] - t["truth"]).values.ravel()
    kurt = lambda e: np.mean(e**4) / np.mean(e**2) ** 2  # noqa: E731
    assert kurt(eg) < 3.5 < 6 < kurt(et)
    again = simulate("lorenz63", cycles=3000, spinup=1.0, seed=0, obs_noise_dist="student_t",
                     obs_noise_df=3.0)
    assert again.identical(t)


def test_process_noise_changes_truth_and_is_recorded():
    a = simulate("lorenz63", cycles=20, process_noise_std=0.5)
    b = simulate("lorenz63", cycles=20)
    assert a.attrs["process_noise_std"] == 0.5
    assert not np.allclose(a["truth"], b["truth"])


def test_netcdf_round_trip_is_exact(tmp_path):
    ds = simulate("lorenz96", cycles=15, obs_operator="subset:1,3,5", obs_noise_dist="student_t")
    path = write_netcdf(ds, tmp_path / "obs.nc")
    back = xr.open_dataset(path, engine="netcdf4").load()
    assert back.identical(ds)
    assert not list(tmp_path.glob(".*tmp"))  # no temporary file left behind


@pytest.mark.parametrize("kwargs, match", [
    ({"obs_noise_std": -1.0}, "observation noise std must be > 0"),
    ({"process_noise_std": -0.1}, "process noise std must be >= 0"),
    ({"cycles": 0}, "cycles must be >= 1"),
    ({"obs_noise_dist": "cauchy"}, "obs_noise_dist"),
])
def test_bad_settings(kwargs, match):
    with pytest.raises(InputError, match=match):
        simulate("lorenz63", **kwargs)


def test_load_observations_errors(tmp_path):
    ds = simulate("lorenz63", cycles=10)
    (tmp_path / "junk.nc").write_text("not netcdf")
    with pytest.raises(InputError, match="not a readable netCDF"):
        load_observations(tmp_path / "junk.nc")
    with pytest.raises(InputError, match="missing variable 'obs'"):
        load_observations(ds.drop_vars("obs"))
    with pytest.raises(InputError, match="has dims"):
        load_observations(ds.rename({"component": "var"}))
    with pytest.raises(InputError, match="all NaN"):
        load_observations(ds.assign(obs=ds["obs"] * np.nan))
    bad = ds.copy()
    bad.attrs["obs_noise_std"] = -2.0
    with pytest.raises(InputError, match="obs_noise_std must be > 0"):
        load_observations(bad)
    with pytest.raises(InputError, match="duplicate"):
        load_observations(ds.assign_coords(time=np.zeros(10)))


def test_cut_windows_and_masks():
    ds = simulate("lorenz96", cycles=50, n=8, obs_operator="every:2")
    x, m = cut_windows(ds["obs"], length=10, stride=5)
    assert x.shape == m.shape == (9, 10, 8)
    assert m.dtype == torch.bool
    assert not m[..., 1::2].any() and m[..., ::2].all()
    assert (x[~m] == 0).all()
    np.testing.assert_allclose(x[1, 0].numpy(), np.nan_to_num(ds["obs"].values[5]), rtol=1e-6)
    with pytest.raises(InputError, match="longer than the data"):
        cut_windows(ds["obs"], length=51)


def test_load_observations_accepts_own_data_and_checks_any_time_axis():
    ds = simulate("lorenz63", cycles=6)
    assert ds["time"].attrs["units"] == "1" and "axis" not in ds["time"].attrs  # model time
    own = xr.Dataset({"obs": (("time", "component"), ds["obs"].values)})  # no attributes
    assert load_observations(own) is own
    dates = xr.date_range("2001-01-01", periods=6, freq="D", calendar="noleap", use_cftime=True)
    load_observations(own.assign_coords(time=dates))
    with pytest.raises(InputError, match="not increasing"):
        load_observations(own.assign_coords(time=dates[::-1]))
    hours = np.array(["2001-01-01T00", "2001-01-01T01", "2001-01-01T01", "2001-01-01T03",
                      "2001-01-01T04", "2001-01-01T05"], dtype="datetime64[ns]")
    with pytest.raises(InputError, match="duplicate"):
        load_observations(own.assign_coords(time=hours))
    with pytest.raises(InputError, match="must be numbers"):
        load_observations(own.assign_attrs(obs_noise_std="big"))


def test_time_offsets_and_durations():
    from pyro_videossm.data.observation_settings import parse_duration, time_offsets

    hours = np.array(["2001-01-01T00", "2001-01-01T06"], dtype="datetime64[ns]")
    np.testing.assert_array_equal(time_offsets(hours)[0], [0.0, 21600.0])
    dates = xr.date_range("2001-02-28", periods=2, freq="D", calendar="noleap", use_cftime=True)
    offsets, calendar = time_offsets(np.asarray(dates))
    assert calendar and list(offsets) == [0.0, 86400.0]  # no 29 February in noleap
    assert time_offsets(np.array([1.0, 1.5]))[1] is False
    assert parse_duration("5D") == 5 * 86400 and parse_duration("6 hours") == 21600
    for bad in ("soon", "-1h", "0s"):
        with pytest.raises(InputError):
            parse_duration(bad)
