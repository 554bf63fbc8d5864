"""Heat diffusion generator: FTCS maths, stability, border, seeds, heavy tails, CLI."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import xarray as xr

from pyro_videossm.cli import main
from pyro_videossm.data.heat import (
    RESEARCH_SETTING,
    fourier_mode_factor,
    ftcs_step,
    simulate_heat,
    stable_time_step,
)
from pyro_videossm.errors import InputError


def test_research_time_step():
    # dx = dy = 0.1, D = 4: dt = 1e-4 / (2 * 4 * 0.02)
    dx = RESEARCH_SETTING["length"] / RESEARCH_SETTING["grid"]
    assert dx == pytest.approx(0.1)
    assert stable_time_step(dx, dx, 4.0) == pytest.approx(6.25e-4)


def test_noise_free_heat_non_increasing_and_border_zero():
    ds = simulate_heat(samples=3, steps=15, grid=24, process_noise_scale=0.0,
                       obs_noise_scale=0.0, seed=3)
    u = ds["truth"].values.astype(np.float64)
    total = u.sum(axis=(2, 3))
    assert (np.diff(total, axis=1) <= 1e-3 * total[:, :1]).all()
    assert (np.diff(total, axis=1) < 0).any()  # heat does leave through the border
    for border in (u[..., 0, :], u[..., -1, :], u[..., :, 0], u[..., :, -1]):
        assert (border == 0).all()
    # maximum principle at the stability limit: never hotter than the initial disk
    assert (u.max(axis=(1, 2, 3)) <= ds["hot_temperature"].values + 1e-3).all()
    assert (u >= 0).all()
    np.testing.assert_array_equal(ds["obs"].values, ds["truth"].values)


@pytest.mark.parametrize("p,q", [(1, 1), (2, 3), (7, 1)])
def test_fourier_mode_decays_at_discrete_rate(p, q):
    n, length, d = 20, 10.0, 4.0
    dx = length / n
    dt = stable_time_step(dx, dx, d)
    i = torch.arange(n, dtype=torch.float64)
    mode = (torch.sin(math.pi * p * i / (n - 1))[:, None]
            * torch.sin(math.pi * q * i / (n - 1))[None, :])
    u = mode.clone()
    for _ in range(10):
        u = ftcs_step(u, d, dt, dx, dx)
    factor = fourier_mode_factor(p, q, n, d, dt, dx, dx)
    assert abs(factor) < 1
    torch.testing.assert_close(u[1:-1, 1:-1], factor ** 10 * mode[1:-1, 1:-1],
                               rtol=1e-9, atol=1e-12)


def test_stability_condition():
    n, length, d = 16, 10.0, 4.0
    dx = length / n
    dt = stable_time_step(dx, dx, d)
    # at the limit every mode has |factor| <= 1, the checkerboard one exactly at the edge
    worst = max(abs(fourier_mode_factor(p, q, n, d, dt, dx, dx))
                for p in range(1, n - 1) for q in range(1, n - 1))
    assert worst <= 1.0
    # 30% above the limit the highest mode grows
    i = torch.arange(n, dtype=torch.float64)
    k = n - 2
    mode = torch.sin(math.pi * k * i / (n - 1))[:, None] * torch.sin(math.pi * k * i / (n - 1))
    u = mode.clone()
    for _ in range(20):
        u = ftcs_step(u, d, 1.3 * dt, dx, dx)
    assert u.abs().max() > 10 * mode.abs().max()
    with pytest.raises(InputError, match="unstable"):
        simulate_heat(samples=1, steps=2, grid=8, dt=1.3 * dt * (16 / 8) ** 2)


def test_seeds_reproducible_and_differ():
    a = simulate_heat(samples=2, steps=4, grid=12, seed=5)
    b = simulate_heat(samples=2, steps=4, grid=12, seed=5)
    c = simulate_heat(samples=2, steps=4, grid=12, seed=6)
    xr.testing.assert_identical(a, b)
    assert not np.array_equal(a["obs"].values, c["obs"].values)


def test_heavy_tails_and_clipping():
    ds = simulate_heat(samples=4, steps=6, grid=20, seed=0)
    resid = (ds["obs"] - ds["truth"]).values[..., 1:-1, 1:-1].ravel()
    # Cauchy(10): median |r| = 10, P(|r| > 100) = 1 - 2/pi atan(10) ~ 6.3%
    assert np.median(np.abs(resid)) == pytest.approx(10.0, rel=0.1)
    tail = np.mean(np.abs(resid) > 100)
    assert 0.045 < tail < 0.085
    assert np.abs(resid).max() > 1000  # a Gaussian of this median would never reach 100 sigma
    u = ds["truth"].values
    upper = ds["hot_temperature"].values[:, None, None, None] + 300.0
    assert (u >= 0).all() and (u <= upper + 1e-3).all()
    assert (ds["obs"].values[..., 0, :] == 0).all()
    clipped = simulate_heat(samples=2, steps=3, grid=12, seed=0, clip_obs=True)
    assert (clipped["obs"].values >= 0).all()


def test_coords_attrs_and_cli(tmp_path):
    ds = simulate_heat(samples=2, steps=3, grid=10, length=5.0)
    assert ds["truth"].dims == ("sample", "time", "y", "x")
    np.testing.assert_allclose(ds["x"].values, np.arange(10) * 0.5)
    dt = ds.attrs["integration_step"]
    np.testing.assert_allclose(ds["time"].values, np.arange(3) * 3 * dt)
    for v in ("truth", "obs"):
        assert "units" in ds[v].attrs and "long_name" in ds[v].attrs
    out = tmp_path / "heat.nc"
    assert main(["simulate", "heat", "-o", str(out), "--samples", "2", "--steps", "4",
                 "--grid", "10", "--no-progress"]) == 0
    with xr.open_dataset(out) as f:
        assert f["obs"].shape == (2, 4, 10, 10)
        assert f.attrs["diffusivity"] == 4.0
    bad = tmp_path / "bad.nc"
    assert main(["simulate", "heat", "-o", str(bad), "--grid", "2", "--no-progress"]) == 2
    assert not bad.exists()
