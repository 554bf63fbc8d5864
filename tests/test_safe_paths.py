"""No command overwrites an input, writes onto a folder or leaves temporaries behind."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import numpy as np
import pytest
import xarray as xr

from pyro_videossm.atomic import atomic_path, remove_stale_temporaries
from pyro_videossm.cli import main
from pyro_videossm.cli.common import same_file
from pyro_videossm.data.conventions import write_netcdf


def _digest(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


@pytest.fixture()
def obs_file(tmp_path):
    path = tmp_path / "obs.nc"
    assert main(["simulate", "lorenz63", "-o", str(path), "--cycles", "20", "--no-progress"]) == 0
    return path


@pytest.mark.parametrize("link", ["same", "symlink", "hardlink"])
def test_output_onto_an_input_is_refused_by_any_link(obs_file, tmp_path, capsys, link):
    before = _digest(obs_file)
    target = obs_file
    if link == "symlink":
        target = tmp_path / "alias.nc"
        os.symlink(obs_file, target)
    elif link == "hardlink":
        target = tmp_path / "hard.nc"
        os.link(obs_file, target)
    status = main(["assimilate", str(obs_file), "--method", "etkf", "--members", "5",
                   "-o", str(target), "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1 and "overwrite" in err[0]
    assert _digest(obs_file) == before


def test_model_file_is_an_input_too(obs_file, tmp_path, capsys):
    model = tmp_path / "m.pt"
    model.write_bytes(b"not a model")
    status = main(["assimilate", str(obs_file), "--method", "dmm", "--model", str(model),
                   "-o", str(model), "--no-progress"])
    assert status == 2 and "overwrite" in capsys.readouterr().err
    assert model.read_bytes() == b"not a model"


def test_output_that_is_a_folder_or_in_a_missing_folder(obs_file, tmp_path, capsys):
    assert main(["assimilate", str(obs_file), "--method", "etkf", "-o", str(tmp_path)]) == 2
    assert "directory" in capsys.readouterr().err
    assert main(["assimilate", str(obs_file), "--method", "etkf",
                 "-o", str(tmp_path / "nope" / "p.nc")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_same_file():
    assert same_file("a/../x.nc", "x.nc")
    assert not same_file("x.nc", "y.nc")


def test_progress_is_off_when_stderr_is_not_a_terminal(tmp_path):
    out = tmp_path / "o.nc"
    res = subprocess.run([sys.executable, "-m", "pyro_videossm", "simulate", "lorenz63",
                          "-o", str(out), "--cycles", "10"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0
    assert "it/s" not in res.stderr and "%|" not in res.stderr


def test_stale_temporaries_of_dead_writers_are_removed(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".out.nc.{dead.pid}.abc123.tmp"
    stale.write_text("partial")
    live = tmp_path / f".out.nc.{os.getpid()}.def456.tmp"
    live.write_text("being written")
    other = tmp_path / ".other.nc.1.x.tmp"
    other.write_text("another destination")
    with atomic_path(tmp_path / "out.nc") as tmp:
        assert str(os.getpid()) in tmp.name
        tmp.write_text("whole")
    assert not stale.exists() and live.exists() and other.exists()
    assert (tmp_path / "out.nc").read_text() == "whole"
    assert remove_stale_temporaries(tmp_path / "out.nc") == []


def test_datetime_and_cftime_time_round_trip(tmp_path):
    cftime = pytest.importorskip("cftime")
    t = np.arange("2020-01-01", "2020-01-05", dtype="datetime64[D]").astype("datetime64[ns]")
    ds = xr.Dataset({"obs": (("time", "component"), np.ones((4, 2)))}, coords={"time": t})
    ds.time.attrs.update(units="days since 2020-01-01", axis="T")
    write_netcdf(ds, tmp_path / "a.nc")
    with xr.open_dataset(tmp_path / "a.nc") as back:
        np.testing.assert_array_equal(back.time.values, t)
        assert back.time.attrs.get("axis") == "T"
    ct = [cftime.DatetimeNoLeap(2000, 2, d) for d in range(25, 29)]
    ds2 = ds.assign_coords(time=ct)
    ds2.time.attrs.update(units="days since 2000-01-01", calendar="noleap")
    write_netcdf(ds2, tmp_path / "b.nc")
    with xr.open_dataset(tmp_path / "b.nc", decode_times=xr.coders.CFDatetimeCoder(
            use_cftime=True)) as back:
        assert list(back.time.values) == ct
        assert back.time.encoding["calendar"] == "noleap"


def test_burn_in_outside_the_record_is_refused(obs_file, tmp_path, capsys):
    post = tmp_path / "p.nc"
    assert main(["assimilate", str(obs_file), "--method", "etkf", "--members", "5",
                 "-o", str(post), "--no-progress"]) == 0
    capsys.readouterr()
    for burn_in in ("-1", "20", "500"):
        assert main(["evaluate", str(post), "--truth", str(obs_file), "--burn-in", burn_in]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "burn-in" in err[0]
    assert main(["evaluate", str(post), "--truth", str(obs_file), "--burn-in", "19"]) == 0


def test_missing_obs_is_never_replaced_by_truth():
    from pyro_videossm.data.selection import select_field
    from pyro_videossm.errors import InputError

    field = xr.DataArray(np.zeros((3, 2, 2)), dims=("time", "y", "x"))
    with pytest.raises(InputError, match="missing variable 'obs'"):
        select_field(xr.Dataset({"truth": field}))
    assert select_field(xr.Dataset({"truth": field}), "truth").name == "truth"
    assert select_field(xr.Dataset({"truth": field, "obs": field})).name == "obs"
