"""The forecaster interface: shapes, coordinates, scaling round trip, persistence, registry."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr

from pyro_videossm.errors import InputError
from pyro_videossm.forecast import (
    FieldScaling,
    Forecaster,
    Persistence,
    available_forecasters,
    get_forecaster,
)


def _field(samples: int | None = 2, t: int = 5, h: int = 4, w: int = 6, seed: int = 0,
           datetime: bool = True) -> xr.Dataset:
    rng = np.random.default_rng(seed)
    shape = ((samples,) if samples else ()) + (t, h, w)
    dims = (("sample",) if samples else ()) + ("time", "y", "x")
    time = (pd.date_range("2010-08-26", periods=t, freq="5min") if datetime
            else np.arange(t) * 0.3)
    return xr.Dataset(
        {"precip": (dims, rng.gamma(0.5, 2.0, size=shape),
                    {"units": "mm/h", "long_name": "rain rate"})},
        coords={"time": ("time", time, {} if datetime else {"units": "s"}),
                "y": ("y", np.arange(h) * 4.0, {"units": "km"}),
                "x": ("x", np.arange(w) * 4.0, {"units": "km"})},
    )


def test_persistence_repeats_last_frame_with_coords():
    ds = _field()
    fc = get_forecaster("persistence").forecast(ds, leads=3, members=5)
    assert fc["forecast"].dims == ("sample", "lead_time", "member", "y", "x")
    assert fc["forecast"].shape == (2, 3, 1, 4, 6)  # deterministic: one member
    last = ds["precip"].isel(time=-1).values
    for k in range(3):
        np.testing.assert_array_equal(fc["forecast"].values[:, k, 0], last)
    assert fc.attrs["product"] == "forecast" and fc.attrs["model"] == "persistence"
    assert fc["init_time"].values == ds["time"].values[-1]
    step = ds["time"].values[1] - ds["time"].values[0]
    np.testing.assert_array_equal(fc["lead_time"].values, step * np.arange(1, 4))
    np.testing.assert_array_equal(fc["valid_time"].values,
                                  ds["time"].values[-1] + step * np.arange(1, 4))
    np.testing.assert_array_equal(fc["x"].values, ds["x"].values)
    assert fc["x"].attrs["units"] == "km"
    assert fc["forecast"].attrs["units"] == "mm/h"


def test_persistence_nan_aware():
    ds = _field(samples=None, t=3)
    a = ds["precip"].values
    a[-1, 0, 0] = np.nan          # missing last: take the frame before
    a[-2:, 1, 1] = np.nan         # missing twice: take the first
    a[:, 2, 2] = np.nan           # never seen: NaN
    fc = Persistence().forecast(ds, leads=2)["forecast"].values
    assert fc.shape == (2, 1, 4, 6)
    assert fc[0, 0, 0, 0] == a[-2, 0, 0]
    assert fc[1, 0, 1, 1] == a[0, 1, 1]
    assert np.isnan(fc[0, 0, 2, 2])
    assert Persistence(fill=0.0).forecast(ds, leads=1)["forecast"].values[0, 0, 2, 2] == 0.0


def test_numeric_time_lead_times():
    ds = _field(samples=None, datetime=False)
    fc = Persistence().forecast(ds, leads=4)
    np.testing.assert_allclose(fc["lead_time"].values, 0.3 * np.arange(1, 5))
    assert fc["lead_time"].attrs["units"] == "s"
    np.testing.assert_allclose(fc["valid_time"].values, 1.2 + 0.3 * np.arange(1, 5))


class _Noisy(Forecaster):
    """Stochastic test forecaster: last frame + N(0, 1) per member, in model units."""

    name = "noisy-test"
    deterministic = False

    def __init__(self, scaling: FieldScaling | None = None):
        self.scaling = scaling or FieldScaling()
        self.seen: list[torch.Tensor] = []

    def predict(self, context, mask, leads, members=1, *, generator=None):
        self.seen.append(context)
        b, _, h, w = context.shape
        noise = torch.randn(b, leads, members, h, w, generator=generator,
                            dtype=context.dtype)
        return context[:, -1, None, None] + noise


def test_stochastic_members_seed_and_scaling():
    ds = _field()
    scaling = FieldScaling.fit_minmax(ds["precip"], log=True, eps=0.1)
    f = _Noisy(scaling)
    a = f.forecast(ds, leads=2, members=3, seed=1)
    b = f.forecast(ds, leads=2, members=3, seed=1)
    c = f.forecast(ds, leads=2, members=3, seed=2)
    assert a["forecast"].shape == (2, 2, 3, 4, 6)
    xr.testing.assert_identical(a, b)
    assert not np.allclose(a["forecast"].values, c["forecast"].values)
    # the forecaster saw scaled data in [0, 1]
    seen = f.seen[0]
    assert float(seen.min()) >= -1e-6 and float(seen.max()) <= 1 + 1e-6
    assert json.loads(a.attrs["scaling"])["log"] is True
    assert a["forecast"].attrs["units"] == "mm/h"
    # the ensemble mean is the last frame mapped through scaling.inverse(forward + noise)
    m = scaling.inverse(scaling.forward(ds["precip"].values[:, -1]))
    np.testing.assert_allclose(np.median(a["forecast"].values, axis=(1, 2)).shape, m.shape)


def test_scaling_inverts_exactly():
    x = np.random.default_rng(0).gamma(0.3, 3.0, size=1000)
    x[::17] = np.nan
    for s in (FieldScaling(), FieldScaling.log_transform(0.01),
              FieldScaling.fit_minmax(x), FieldScaling.fit_minmax(x, log=True, eps=0.01)):
        y = s.forward(x)
        np.testing.assert_allclose(s.inverse(y), x, rtol=1e-12, atol=1e-12)
        t = torch.as_tensor(x)
        torch.testing.assert_close(s.inverse(s.forward(t)), t, equal_nan=True)
        assert FieldScaling.from_dict(json.loads(json.dumps(s.to_dict()))) == s
    mm = FieldScaling.fit_minmax(x)
    assert np.nanmin(mm.forward(x)) == 0.0 and np.nanmax(mm.forward(x)) == 1.0
    np.testing.assert_allclose(FieldScaling.log_transform(0.5).forward(np.array([1.5])),
                               [np.log(2.0)])
    with pytest.raises(InputError):
        FieldScaling(log=True, eps=0.0)
    with pytest.raises(InputError):
        FieldScaling.fit_minmax(np.full(3, np.nan))


def test_registry_and_bad_input():
    assert "persistence" in available_forecasters()
    with pytest.raises(InputError, match="unknown forecaster"):
        get_forecaster("nope")
    with pytest.raises(InputError, match="no option"):
        get_forecaster("persistence", members=3)
    ds = _field()
    p = Persistence()
    with pytest.raises(InputError, match="missing variable"):
        p.forecast(ds, 2, variable="rain")
    with pytest.raises(InputError, match="dims"):
        p.forecast(ds.rename(time="t"), 2)
    with pytest.raises(InputError, match="leads"):
        p.forecast(ds, 0)
    with pytest.raises(InputError, match="all missing"):
        p.forecast(ds * np.nan, 2)
    rev = ds.isel(time=slice(None, None, -1))
    with pytest.raises(InputError, match="not increasing"):
        p.forecast(rev, 2)


# -- model files and the command line ---------------------------------------------------
@pytest.fixture(scope="module")
def heat_file(tmp_path_factory):
    from pyro_videossm.data.conventions import write_netcdf
    from pyro_videossm.data.heat import simulate_heat

    path = tmp_path_factory.mktemp("heat") / "heat.nc"
    write_netcdf(simulate_heat(samples=3, steps=12, grid=16, seed=1), path)
    return path


class _Shift(Forecaster):
    """Test forecaster loaded from a model file: last frame + a stored offset."""

    name = "shift-test"
    deterministic = True

    def __init__(self, offset: float = 0.0, scaling: FieldScaling | None = None):
        self.offset = offset
        self.scaling = scaling or FieldScaling()

    def predict(self, context, mask, leads, members=1, *, generator=None):
        last = context[:, -1:, None]
        return (last + self.offset).expand(-1, leads, 1, -1, -1)

    @classmethod
    def from_model_file(cls, ckpt, *, device="cpu"):
        return cls(float(ckpt["state_dict"]["offset"]),
                   FieldScaling.from_dict(ckpt["config"]["scaling"]))


def test_load_forecaster_from_model_file(tmp_path, heat_file):
    from pyro_videossm.cli import main
    from pyro_videossm.forecast import load_forecaster, register_forecaster
    from pyro_videossm.infer import save_model_file

    register_forecaster(_Shift)
    scaling = FieldScaling.log_transform(1.0, units="1")
    path = tmp_path / "shift.pt"
    save_model_file(path, "shift-test", {"scaling": scaling.to_dict()},
                    {"offset": torch.tensor(np.log(2.0))})
    f = load_forecaster(path)
    assert isinstance(f, _Shift) and f.scaling == scaling
    ds = xr.open_dataset(heat_file)
    fc = f.forecast(ds.isel(time=slice(0, 4)), leads=2)
    # log(x + 1) + log 2 inverted: 2 (x + 1) - 1
    x = ds["obs"].values[:, 3].astype(np.float64)
    with np.errstate(invalid="ignore"):
        expect = 2 * (x + 1) - 1
    ok = x > -1
    np.testing.assert_allclose(fc["forecast"].values[:, 0, 0][ok], expect[ok], rtol=1e-5)
    out = tmp_path / "fc.nc"
    assert main(["forecast", str(heat_file), "--model", str(path), "--context", "3",
                 "--leads", "2", "--init-index", "3", "-o", str(out)]) == 0
    assert xr.open_dataset(out).attrs["model"] == "shift-test"
    other = tmp_path / "other.pt"
    save_model_file(other, "not-a-forecaster", {}, {})
    with pytest.raises(InputError, match="not a forecaster"):
        load_forecaster(other)


def test_forecast_evaluate_plot_cli(tmp_path, heat_file, capsys):
    from pyro_videossm.cli import main

    out, png = tmp_path / "fc.nc", tmp_path / "strip.png"
    assert main(["forecast", str(heat_file), "--model", "persistence", "--context", "4",
                 "--leads", "3", "--sample", "0", "2", "-o", str(out),
                 "--plot", str(png)]) == 0
    fc = xr.open_dataset(out)
    assert fc["forecast"].shape == (2, 3, 1, 16, 16)
    np.testing.assert_array_equal(fc["sample"].values, [0, 2])
    assert fc.attrs["init_index"] == 12 - 1 - 3  # latest init whose leads are in the file
    data = xr.open_dataset(heat_file)
    np.testing.assert_array_equal(fc["forecast"].values[:, 0, 0],
                                  data["obs"].values[[0, 2], 8])
    assert png.stat().st_size > 1000
    capsys.readouterr()
    assert main(["evaluate", str(out), "--truth", str(heat_file)]) == 0
    table = capsys.readouterr().out
    rows = [ln for ln in table.splitlines() if ln.startswith("| ")]
    assert "persistence" in table and len(rows) == 2 + 3  # header, rule, one row per lead
    err = fc["forecast"].values[:, 0, 0] - data["truth"].values[[0, 2], 9]
    assert float(rows[2].split("|")[2]) == pytest.approx(np.sqrt((err ** 2).mean()), rel=1e-3)
    strips = tmp_path / "s.png"
    assert main(["plot-forecast", str(out), "--truth", str(heat_file), "-o", str(strips),
                 "--all-samples"]) == 0
    assert (tmp_path / "s_sample0.png").exists() and (tmp_path / "s_sample1.png").exists()


@pytest.mark.parametrize("argv,message", [
    (["--context", "20", "--leads", "2"], "needs 20 frames"),
    (["--context", "3", "--leads", "2", "--variable", "rain"], "missing variable"),
    (["--context", "3", "--leads", "2", "--sample", "7"], "out of range"),
    (["--context", "3", "--leads", "2", "--init-index", "40"], "outside"),
    (["--context", "3", "--leads", "0"], "must be >= 1"),
    (["--context", "3", "--leads", "2", "--model", "nope"], "neither a model file"),
    (["--context", "3", "--leads", "2", "--model", "absent.pt"], "not found"),
])
def test_forecast_cli_bad_input(tmp_path, heat_file, capsys, argv, message):
    from pyro_videossm.cli import main

    out = tmp_path / "fc.nc"
    if "--model" not in argv:
        argv = [*argv, "--model", "persistence"]
    assert main(["forecast", str(heat_file), *argv, "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not out.exists()


def test_evaluate_and_plot_bad_input(tmp_path, heat_file, capsys):
    from pyro_videossm.cli import main

    out = tmp_path / "fc.nc"
    assert main(["forecast", str(heat_file), "--model", "persistence", "--context", "3",
                 "--leads", "2", "--init-index", "-1", "-o", str(out)]) == 0
    # forecast beyond the end of the file: the truth has no such valid times
    assert main(["evaluate", str(out), "--truth", str(heat_file)]) == 2
    assert "no time" in capsys.readouterr().err
    assert main(["plot-forecast", str(heat_file), "-o", str(tmp_path / "p.png")]) == 2
    assert not (tmp_path / "p.png").exists()
