"""The ``videossm`` command: simulate, assimilate, evaluate, plot; bad input -> exit 2."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import xarray as xr

from pyro_videossm.cli import main
from pyro_videossm.data import simulate, write_netcdf


@pytest.fixture(scope="module")
def obs_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "obs.nc"
    write_netcdf(simulate("lorenz63", cycles=60, seed=2), path)
    return path


def _files(folder):
    return sorted(p.name for p in folder.iterdir())


def test_simulate_writes_standard_setting(tmp_path):
    out = tmp_path / "l96.nc"
    assert main(["simulate", "lorenz96", "-o", str(out), "--cycles", "20", "--seed", "4",
                 "--obs-operator", "every:2", "--obs-noise", "student_t"]) == 0
    ds = xr.open_dataset(out)
    assert ds.sizes == {"time": 20, "component": 40}
    assert ds.attrs["seed"] == 4 and ds.attrs["obs_noise_dist"] == "student_t"
    assert np.isnan(ds["obs"].values[:, 1]).all()


def test_console_script_runs(tmp_path):
    out = tmp_path / "o.nc"
    res = subprocess.run([sys.executable, "-m", "pyro_videossm", "simulate", "lorenz63", "-o",
                          str(out), "--cycles", "5"], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert out.exists()


@pytest.mark.parametrize("argv, message", [
    (["simulate", "lorenz63", "--obs-noise-std", "-1"], "observation noise std must be > 0"),
    (["simulate", "lorenz63", "--process-noise-std", "-1"], "process noise std must be >= 0"),
    (["simulate", "lorenz63", "--obs-operator", "subset:7"], "outside 0..2"),
])
def test_simulate_bad_settings_exit_2_and_no_file(tmp_path, capsys, argv, message):
    out = tmp_path / "x.nc"
    assert main(argv + ["-o", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert _files(tmp_path) == []


def _bad_inputs(tmp_path, obs_file):
    ds = xr.open_dataset(obs_file).load()
    cases = {}
    (tmp_path / "text.nc").write_text("this is not netCDF")
    cases["text.nc"] = "not a readable netCDF file"
    write_netcdf(ds.drop_vars("obs"), tmp_path / "noobs.nc")
    cases["noobs.nc"] = "missing variable 'obs'"
    write_netcdf(ds.rename({"component": "variable"}), tmp_path / "dims.nc")
    cases["dims.nc"] = "expected ('time', 'component')"
    write_netcdf(ds.assign(obs=ds["obs"] * np.nan), tmp_path / "nan.nc")
    cases["nan.nc"] = "all NaN"
    neg = ds.copy()
    neg.attrs["obs_noise_std"] = -1.0
    write_netcdf(neg, tmp_path / "neg.nc")
    cases["neg.nc"] = "obs_noise_std must be > 0"
    cases["missing.nc"] = "no such file"
    return cases


def test_assimilate_bad_input_exit_2_and_no_output(tmp_path, obs_file, capsys):
    for name, message in _bad_inputs(tmp_path, obs_file).items():
        before = _files(tmp_path)
        out = tmp_path / f"post_{name}"
        code = main(["assimilate", str(tmp_path / name), "--method", "etkf", "-o", str(out),
                     "--no-progress"])
        err = capsys.readouterr().err.strip()
        assert code == 2 and message in err, (name, err)
        assert len(err.splitlines()) == 1, err
        assert _files(tmp_path) == before, name


def test_assimilate_unknown_method_and_option(tmp_path, obs_file, capsys):
    out = tmp_path / "p.nc"
    assert main(["assimilate", str(obs_file), "--method", "nosuch", "-o", str(out)]) == 2
    assert "unknown method 'nosuch'" in capsys.readouterr().err
    assert not out.exists()


def test_evaluate_and_plot_reject_bad_files(tmp_path, obs_file, capsys):
    (tmp_path / "text.nc").write_text("x")
    assert main(["evaluate", str(tmp_path / "text.nc"), "--truth", str(obs_file)]) == 2
    assert "not a readable netCDF" in capsys.readouterr().err
    out = tmp_path / "fig.png"
    assert main(["plot", str(obs_file), "--truth", str(obs_file), "-o", str(out)]) == 2
    assert "missing variable 'mean'" in capsys.readouterr().err
    assert not out.exists()


def test_demo_runs_end_to_end_at_small_size(tmp_path, capsys):
    out = tmp_path / "demo"
    code = main(["demo", "-o", str(out), "--cycles", "60", "--burn-in", "10",
                 "--dmm-epochs", "1", "--dmm-cycles", "200", "--no-progress"])
    assert code == 0
    table = capsys.readouterr().out
    for label in ("ETKF N=10", "EnKS N=10", "PF N=800", "hybrid DMM"):
        assert label in table
    names = {p.name for p in out.iterdir()}
    assert {"obs.nc", "results.md", "posterior.png", "dmm.pt", "posterior_dmm.nc",
            "posterior_etkf.nc"} <= names
    # the demo recipe's smoothing guide relinearises 5 times (docs/LORENZ63_DMM.md)
    from pyro_videossm.models.ssm.dmm_file import load_dmm

    assert load_dmm(out / "dmm.pt")[0].config["smoother_iterations"] == 5


def test_demo_refuses_negative_smoother_iterations(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "-o", str(out), "--dmm-smoother-iterations", "0"]) == 2
    assert "--dmm-smoother-iterations must be >= 1" in capsys.readouterr().err
    assert not out.exists()
