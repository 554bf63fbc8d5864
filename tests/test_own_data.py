"""A user's own ``obs(time, component)`` data through ``assimilate``: other systems, plug-ins,
datetime and cftime axes, partial observation, noise from an option, variable or attribute.

Each case either assimilates with a posterior RMSE below the observation noise, or fails in
one line naming everything that is missing.
"""

from __future__ import annotations

import warnings

import cftime
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from documented_system import documented_rossler

from pyro_videossm.assimilate import assimilate
from pyro_videossm.cli import main
from pyro_videossm.data import simulate, write_netcdf
from pyro_videossm.data.observation_settings import complete_observations
from pyro_videossm.errors import DataWarning, InputError

#: A plug-in system given by import path (``test_own_data:Rossler``) in the tests: the
#: documented example of :mod:`pyro_videossm.dynamics.base`.
Rossler = documented_rossler(__name__)


CFTIME = xr.coders.CFDatetimeCoder(use_cftime=True)


def bare(sim: xr.Dataset, time=None, **variables) -> xr.Dataset:
    """Only ``obs(time, component)`` (and ``variables``), no attributes: a user's own file."""
    t = sim["time"].values if time is None else time
    return xr.Dataset({"obs": (("time", "component"), sim["obs"].values), **variables},
                      coords={"time": t, "component": sim["component"].values})


def rmse(post: xr.Dataset, sim: xr.Dataset, burn_in: int = 30) -> float:
    err = post["mean"].values[burn_in:] - sim["truth"].values[burn_in:]
    return float(np.sqrt(np.mean(err**2)))


@pytest.fixture(scope="module")
def l96():
    """Lorenz-96 with N=10, F=8, every 0.05 (one RK4 step), noise std 1."""
    return simulate("lorenz96", n=10, cycles=150, seed=3)


def test_lorenz96_n10_without_attributes_through_the_cli(tmp_path, l96, capsys):
    path, out = tmp_path / "obs.nc", tmp_path / "post.nc"
    write_netcdf(bare(l96), path)
    # nothing given: everything missing is named, in one line, and nothing is written
    assert main(["assimilate", str(path), "--method", "etkf", "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and not out.exists()
    assert err.startswith(f"videossm assimilate: error: {path}: cannot assimilate: ")
    assert "no system" in err and "--system" in err and "no observation noise" in err
    # the default Lorenz-96 has 40 components: said so, with the parameter to give
    assert main(["assimilate", str(path), "--method", "etkf", "--system", "lorenz96",
                 "--obs-noise", "1", "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "has 40 components but 'obs' has 10" in err and "n=10" in err
    assert main(["assimilate", str(path), "--method", "etkf", "--members", "20",
                 "--system", "lorenz96", "--system-param", "n=10", "--obs-noise", "1",
                 "-o", str(out)]) == 0
    post = xr.open_dataset(out).load()
    assert post.attrs["system"] == "lorenz96"
    assert post.attrs["integration_step"] == pytest.approx(0.05)
    assert post.attrs["steps_per_obs"] == 1 and post.attrs["obs_noise_std"] == 1.0
    assert rmse(post, l96) < 0.5  # observation noise: 1
    np.testing.assert_allclose(post["time"].values, l96["time"].values)
    assert post["time"].attrs.get("units") != "1"


def test_plugin_system_by_import_path(tmp_path):
    sim = simulate(Rossler(), cycles=200, dt=0.05, steps_per_obs=4, obs_noise_std=0.5,
                   spinup=20.0, seed=1)
    own = bare(sim)
    post = assimilate(own, "etkf", members=10, system="test_own_data:Rossler", obs_noise=0.5)
    # the cycle is the time spacing (0.2) in steps of the system's default_dt (0.05)
    assert post.attrs["steps_per_obs"] == 4
    assert post.attrs["integration_step"] == pytest.approx(0.05)
    assert rmse(post, sim) < 0.5 / 2
    # with a parameter; a parameter it does not take is named
    assimilate(own, "etkf", members=10, system="test_own_data:Rossler",
               system_parameters={"c": 5.7}, obs_noise=0.5)
    with pytest.raises(InputError, match="takes no parameter 'rho'"):
        assimilate(own, "etkf", system="test_own_data:Rossler", system_parameters={"rho": 1},
                   obs_noise=0.5)


def test_hourly_datetimes_keep_values_and_encoding(tmp_path):
    # Lorenz-63 every 0.25 model time units, one observation an hour: one unit is 4 hours
    sim = simulate("lorenz63", cycles=150, seed=2)
    hours = pd.date_range("2024-03-01", periods=150, freq="h")
    path = tmp_path / "obs.nc"
    own = bare(sim, time=hours)
    own["time"].encoding.update(units="hours since 2024-03-01", calendar="proleptic_gregorian")
    write_netcdf(own, path)
    read = xr.open_dataset(path).load()
    with pytest.raises(InputError) as err:
        assimilate(read, "etkf", system="lorenz63", obs_noise=2**0.5)
    assert "'time' holds dates: give --time-unit" in str(err.value)
    assert "\n" not in str(err.value)

    out = tmp_path / "post.nc"
    assert main(["assimilate", str(path), "--method", "etkf", "--system", "lorenz63",
                 "--obs-noise", str(2**0.5), "--time-unit", "4h", "-o", str(out)]) == 0
    post = xr.open_dataset(out).load()
    assert post.attrs["steps_per_obs"] == 25
    assert post.attrs["integration_step"] == pytest.approx(0.01)
    assert rmse(post, sim) < 2**0.5 / 2
    np.testing.assert_array_equal(post["time"].values, hours.values)
    assert post["time"].encoding["units"] == "hours since 2024-03-01"
    raw = xr.open_dataset(out, decode_times=False)
    np.testing.assert_array_equal(raw["time"].values, np.arange(150))
    # the same from an attribute
    read.attrs["model_time_unit"] = "4 hours"
    again = assimilate(read, "etkf", system="lorenz63", obs_noise=2**0.5)
    np.testing.assert_allclose(again["mean"].values, post["mean"].values)


def test_cftime_noleap_axis_round_trips(tmp_path, l96):
    times = xr.date_range("0001-02-27", periods=150, freq="6h", calendar="noleap",
                          use_cftime=True)
    own = bare(l96, time=times)
    own.attrs["model_time_unit"] = "5D"  # Lorenz-96: 0.05 time units are 6 hours
    path = tmp_path / "obs.nc"
    write_netcdf(own, path)
    read = xr.open_dataset(path, decode_times=CFTIME).load()
    post = assimilate(read, "etkf", members=20, system="lorenz96", system_parameters={"n": 10},
                      obs_noise=1.0)
    assert post.attrs["integration_step"] == pytest.approx(0.05)
    assert rmse(post, l96) < 0.5
    out = tmp_path / "post.nc"
    write_netcdf(post, out)
    back = xr.open_dataset(out, decode_times=CFTIME).load()
    assert back["time"].encoding["calendar"] == "noleap"
    assert isinstance(back["time"].values[0], cftime.DatetimeNoLeap)
    assert list(back["time"].values) == list(times)  # Feb 28 is followed by Mar 1


def test_partial_observation_with_a_noise_variable(l96):
    sim = simulate("lorenz96", n=10, cycles=200, seed=4, obs_operator="every:2")
    noise = np.where(np.arange(10) % 2 == 0, 1.0, np.nan)  # NaN where never observed
    own = bare(sim, obs_noise_std=("component", noise))
    post = assimilate(own, "etkf", members=20, inflation=1.05, system="lorenz96",
                      system_parameters={"n": 10})
    assert rmse(post, sim, burn_in=50) < 1.0
    assert post.attrs["nis_median_ratio"] == pytest.approx(1.0, abs=0.6)


def test_noise_precedence_option_variable_attribute(l96):
    own = bare(l96, obs_error_std=("component", np.full(10, 2.0)))
    own.attrs.update(obs_noise_std=3.0, system="lorenz96", system_parameters='{"n": 10}')
    noise = lambda ds, **kw: complete_observations(ds, **kw).attrs["obs_noise_std"]  # noqa: E731
    np.testing.assert_array_equal(noise(own), np.full(10, 2.0))  # variable > attribute
    assert noise(own.drop_vars("obs_error_std")) == 3.0  # the attribute
    assert noise(own, obs_noise=1.5) == 1.5  # option > variable
    np.testing.assert_array_equal(noise(own, obs_noise=[1.0] * 10), np.ones(10))
    # the noise used is the one the filter believes: the posterior spread follows it
    with warnings.catch_warnings():  # both are told the wrong noise level: warned, rightly
        warnings.simplefilter("ignore", DataWarning)
        small = assimilate(own, "etkf", members=20, obs_noise=0.5)
        large = assimilate(own, "etkf", members=20)
    assert small.attrs["obs_noise_std"] == 0.5
    assert float(small["std"][30:].mean()) < float(large["std"][30:].mean())
    with pytest.raises(InputError, match="has 3 values for 10 components"):
        complete_observations(own, obs_noise=[1.0, 1.0, 1.0])
    with pytest.raises(InputError, match="finite and > 0"):
        complete_observations(own, obs_noise=-1.0)


def test_everything_missing_is_reported_in_one_line(l96):
    hours = pd.date_range("2024-01-01", periods=150, freq="h")
    with pytest.raises(InputError) as err:
        assimilate(bare(l96, time=hours), "enks", members=10)
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith("observations: cannot assimilate: ")
    assert msg.count(";") == 2  # three problems: system, noise, time unit
    assert "no system" in msg and "no observation noise" in msg and "--time-unit" in msg
    irregular = np.r_[0.05 * np.arange(1, 101), 10 + 0.05 * np.arange(50)]
    with pytest.raises(InputError, match="not regular"):
        assimilate(bare(l96, time=irregular), "etkf", system="lorenz96",
                   system_parameters={"n": 10}, obs_noise=1.0)


def test_enks_on_own_data_with_attributes_only(l96):
    own = bare(l96)
    own.attrs.update(system="lorenz96", system_parameters='{"n": 10}', obs_noise_std=1.0)
    post = assimilate(own, "enks", members=20, lag=4)
    assert post.attrs["estimate"] == "smoother" and rmse(post, l96) < 0.5


def test_mislabelled_data_warn_and_the_cli_says_so_in_one_line(tmp_path, l96, capsys):
    own = bare(l96).isel(component=slice(0, 3))
    own.attrs.update(system="lorenz63", obs_noise_std=1.0)
    with pytest.warns(DataWarning, match="innovations are .* times larger"):
        assimilate(own, "etkf", members=10)
    path, out = tmp_path / "obs.nc", tmp_path / "post.nc"
    write_netcdf(own, path)
    assert main(["assimilate", str(path), "--method", "etkf", "-o", str(out)]) == 0
    lines = [x for x in capsys.readouterr().err.splitlines() if "warning" in x]
    assert len(lines) == 1
    assert lines[0].startswith("videossm assimilate: warning: etkf: the innovations are")
    truth = tmp_path / "truth.nc"
    write_netcdf(own.assign(truth=(("time", "component"), l96["truth"].values[:, :3])), truth)
    assert main(["evaluate", str(out), "--truth", str(truth), "--burn-in", "10"]) == 0
    captured = capsys.readouterr()
    header = captured.out.splitlines()[0]
    assert "NIS/expected" in header and "ESS" in header
    post = xr.open_dataset(out)
    cells = [c.strip() for c in captured.out.splitlines()[2].split("|")[1:-1]]
    cols = [c.strip() for c in header.split("|")[1:-1]]
    ratio = post.attrs["nis_mean"] / post.attrs["nis_expected"]
    assert float(cells[cols.index("NIS/expected")]) == pytest.approx(ratio, abs=1e-3)
    assert cells[cols.index("ESS")] == ""  # not a particle filter
    assert captured.err.count("videossm evaluate: warning:") == 1
    pf = tmp_path / "pf.nc"
    assert main(["assimilate", str(path), "--method", "pf", "--members", "50", "-o", str(pf)]
                ) == 0
    capsys.readouterr()
    assert main(["evaluate", str(pf), "--truth", str(truth), "--burn-in", "10"]) == 0
    row = [c.strip() for c in capsys.readouterr().out.splitlines()[2].split("|")[1:-1]]
    ess = xr.open_dataset(pf).attrs["ess_median"]
    assert 1 <= ess <= 50 and float(row[cols.index("ESS")]) == pytest.approx(ess, abs=1e-3)


def test_neural_dmm_needs_no_system_attributes(tmp_path, l96):
    from pyro_videossm.experiments.dmm import HybridDMMOptions, train_hybrid_dmm

    own = bare(l96)  # no attributes at all
    options = HybridDMMOptions(physics=False, window=10, epochs=1, batch_size=16, rnn_dim=8)
    trained = train_hybrid_dmm(own, options)
    post = assimilate(own, "dmm", model=trained.dmm, samples=4)
    assert post.sizes == {"time": 150, "component": 10, "quantile": 5}
    assert np.isfinite(post["mean"].values).all()
