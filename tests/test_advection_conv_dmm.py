"""The advection-aware ConvDMM: semi-Lagrangian steps against exact shifts, the rain transform,
the forecast cap, the context's optical flow, the forecaster interface and the recipe
(train, resume, forecast through the command line)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr

from pyro_videossm.errors import InputError
from pyro_videossm.models.ssm.advection_conv_dmm import (
    AdvectionConvDMM,
    AdvectionConvDMMForecaster,
    ConditionedChainPrior,
)
from pyro_videossm.nn.advection import context_motion, semi_lagrangian_step
from pyro_videossm.nn.advection_blocks import AdvectionTransition
from pyro_videossm.nn.rain_transform import (
    CAP_MARGIN,
    RainTransform,
    cap_forecast,
    context_cap,
)

pytest.importorskip("cv2")


def blob_frames(T: int, B: int = 2, H: int = 24, W: int = 24, u: float = 1.0, v: float = 0.5,
                amplitude: float = 0.8) -> torch.Tensor:
    """``(B, T, H, W)``: Gaussian blobs moving ``(u, v)`` pixels per step."""
    yy, xx = torch.meshgrid(torch.arange(H, dtype=torch.float32),
                            torch.arange(W, dtype=torch.float32), indexing="ij")
    out = torch.zeros(B, T, H, W)
    for b in range(B):
        cy, cx = 7.0 + 2 * b, 5.0 + b
        for t in range(T):
            out[b, t] = amplitude * torch.exp(-((yy - cy - v * t) ** 2
                                                + (xx - cx - u * t) ** 2) / 8.0)
    return out


def tiny(**overrides) -> AdvectionConvDMM:
    options = dict(latent_channels=2, hidden_channels=4, rnn_channels=4, encoder_channels=4,
                   n_down=1)
    return AdvectionConvDMM(**{**options, **overrides})


@pytest.mark.parametrize("mode", ["bilinear", "bicubic"])
def test_semi_lagrangian_step_is_an_exact_integer_shift(mode):
    field = torch.zeros(2, 3, 16, 20)
    field[:, :, 4:8, 5:9] = torch.rand(2, 3, 4, 4)
    flow = torch.zeros(2, 2, 16, 20)
    flow[0, 0], flow[0, 1] = 3.0, 2.0     # sequence 0: 3 px along x, 2 along y
    flow[1, 0], flow[1, 1] = -2.0, 1.0
    out = semi_lagrangian_step(field, flow, mode)
    torch.testing.assert_close(out[0], torch.roll(field[0], (2, 3), dims=(1, 2)))
    torch.testing.assert_close(out[1], torch.roll(field[1], (1, -2), dims=(1, 2)))
    with pytest.raises(InputError, match="interpolation"):
        semi_lagrangian_step(field, flow, "nearest-ish")
    # half a pixel: the mean of the two neighbours (bilinear); nothing flows in from outside
    half = semi_lagrangian_step(field[:1, :1], torch.tensor([0.5, 0.0]).reshape(1, 2, 1, 1)
                                .expand(1, 2, 16, 20))
    torch.testing.assert_close(half[0, 0, :, 1:], 0.5 * (field[0, 0, :, 1:] + field[0, 0, :, :-1]))
    torch.testing.assert_close(half[0, 0, :, 0], 0.5 * field[0, 0, :, 0])


def test_untrained_transition_is_pure_advection():
    """Zero correction: the transition's mean moves a blob by the flow, exactly, and its
    scale is the initial one everywhere."""
    trans = AdvectionTransition(3, 8, init_scale=0.07)
    z = torch.zeros(1, 3, 20, 20)
    z[0, 0, 5:9, 6:10] = 1.0
    flow = torch.zeros(1, 2, 20, 20)
    flow[:, 0], flow[:, 1] = 2.0, -1.0
    loc, scale = trans(z, flow)
    torch.testing.assert_close(loc, torch.roll(z, (-1, 2), dims=(2, 3)))
    torch.testing.assert_close(scale, torch.full_like(scale, 0.07))
    # rolled twice through the model's chain: two shifts
    m = tiny(latent_channels=3, init_scale=0.07)
    loc2, _ = m.transition(m.transition(z, flow)[0], flow)
    torch.testing.assert_close(loc2, torch.roll(z, (-2, 4), dims=(2, 3)))


def test_conditioned_prior_density_matches_its_draws():
    """The batched density (all steps in one call) equals the density accumulated while
    drawing, with a different flow per sequence and several samples: the conditions are
    lined up with the right sequences."""
    torch.manual_seed(0)
    m = tiny()
    with torch.no_grad():
        m.trans.change_out.weight.normal_(0, 0.1)
        m.trans.scale_out.weight.normal_(0, 0.1)
    flow = torch.randn(3, 2, 8, 8)
    z0 = torch.randn(3, 2, 8, 8)
    prior = ConditionedChainPrior(m.transition, z0, 4, flow)
    with torch.no_grad():
        z = prior.rsample((2,))
        cached = prior.log_prob(z)
        batched = prior.log_prob(z.clone())
    assert z.shape == (2, 3, 4, 2, 8, 8)
    torch.testing.assert_close(batched, cached, rtol=1e-4, atol=1e-2)


def test_rain_transform_round_trip_threshold_and_closed_form():
    tr = RainTransform("log", offset=0.01, threshold=0.02)
    x = torch.tensor([0.0, 0.01, 0.019, 0.02, 0.1, 0.5, 1.0, 3.0, -0.3])
    t = tr.forward(x)
    expected = torch.log1p(torch.tensor([0.0, 0, 0, 2, 10, 50, 100, 300, 0]))
    torch.testing.assert_close(t, expected / math.log(101.0))
    assert t[0] == 0 and abs(float(t[6]) - 1.0) < 1e-6
    back = tr.inverse(t)
    keep = x >= 0.02
    torch.testing.assert_close(back[keep], x[keep])
    assert (back[~keep] == 0).all()
    assert (tr.inverse(torch.tensor([-5.0, -0.1])) == 0).all()      # never negative
    ident = RainTransform("none")
    assert torch.equal(ident.inverse(ident.forward(x)), x)
    for bad in (dict(kind="boxcox"), dict(offset=0.0), dict(threshold=-1.0)):
        with pytest.raises(InputError):
            RainTransform(**bad)


def test_cap_and_non_negativity():
    ctx = torch.zeros(2, 3, 4, 4)
    ctx[0, 1, 2, 2] = 0.5
    ctx[1, 0, 0, 0] = -3.0                    # |value| for signed fields
    mask = torch.ones_like(ctx, dtype=torch.bool)
    cap = context_cap(ctx, mask, 2.0)
    torch.testing.assert_close(cap, torch.tensor([1.0, 6.0]) * (1 - CAP_MARGIN))
    assert (cap < torch.tensor([1.0, 6.0])).all()          # strictly under 2x after rounding
    cap = torch.tensor([1.0, 6.0])
    frames = torch.tensor([-1.0, 0.3, 5.0, 9.0]).expand(2, 4)
    torch.testing.assert_close(cap_forecast(frames, cap, True),
                               torch.tensor([[0.0, 0.3, 1.0, 1.0], [0.0, 0.3, 5.0, 6.0]]))
    torch.testing.assert_close(cap_forecast(frames, cap, False),
                               torch.tensor([[-1.0, 0.3, 1.0, 1.0], [-1.0, 0.3, 5.0, 6.0]]))


def test_forecast_is_non_negative_capped_and_zero_when_dry():
    torch.manual_seed(0)
    m = tiny(init_scale=1.0)                  # wild noise: the cap has to hold it
    x = blob_frames(4)
    mask = torch.ones_like(x, dtype=torch.bool)
    fc = m.forecast(x, mask, leads=5, members=6)
    assert fc.shape == (2, 5, 6, 24, 24)
    top = 2.0 * x.flatten(1).amax(1)
    assert (fc >= 0).all() and (fc <= top.reshape(2, 1, 1, 1, 1) + 1e-6).all()
    assert fc.amax() > 0.5 * float(top.min())     # not trivially zero
    dry = m.forecast(torch.zeros(2, 3, 24, 24), mask[:, :3], leads=3, members=2)
    assert (dry == 0).all()
    with pytest.raises(InputError, match="at least 2 context frames"):
        m.forecast(x[:, :1], mask[:, :1], leads=2, members=2)
    for bad in (dict(motion="wind"), dict(flow_frames=1), dict(cap_factor=0.0),
                dict(transform="sqrt")):
        with pytest.raises(InputError):
            tiny(**bad)


def test_context_motion_recovers_a_translation():
    x = blob_frames(5, u=1.0, v=0.5)
    flow = context_motion(x, frames_used=3)
    core = x[:, -1] > 0.4
    assert abs(float(flow[:, 0][core].mean()) - 1.0) < 0.25
    assert abs(float(flow[:, 1][core].mean()) - 0.5) < 0.25
    assert (context_motion(torch.zeros(1, 3, 8, 8)) == 0).all()
    with pytest.raises(InputError, match="at least 2"):
        context_motion(x[:, :1])


def test_forecaster_interface_returns_members_and_reloads(tmp_path):
    from pyro_videossm.forecast import get_forecaster, load_forecaster

    torch.manual_seed(0)
    m = tiny()
    fc = get_forecaster("advection-convdmm", module=m, context_length=3)
    assert isinstance(fc, AdvectionConvDMMForecaster) and not fc.deterministic
    x = blob_frames(3)
    out = fc.predict(x, torch.ones_like(x, dtype=torch.bool), 4, 5,
                     generator=torch.Generator().manual_seed(1))
    assert out.shape == (2, 4, 5, 24, 24)
    fc.save(tmp_path / "m.pt")
    again = load_forecaster(tmp_path / "m.pt")
    assert again.module.architecture() == m.architecture()
    da = xr.DataArray(x.numpy(), dims=("sample", "time", "y", "x"), name="rain_rate",
                      attrs={"units": "mm/h"})
    ds = again.forecast(da, 3, 4, seed=2)
    assert ds.sizes["member"] == 4 and ds.sizes["lead_time"] == 3
    assert float(ds["forecast"].min()) >= 0


def rain_dataset(frames: int = 14, size: int = 16) -> xr.Dataset:
    x = blob_frames(frames, B=1, H=size, W=size, amplitude=6.0)[0].numpy()
    time = pd.date_range("2010-08-26", periods=frames, freq="5min")
    da = xr.DataArray(x, dims=("time", "y", "x"),
                      coords={"time": time, "y": np.arange(size) * 4.0,
                              "x": np.arange(size) * 4.0},
                      attrs={"units": "mm/h", "long_name": "rain rate"}, name="rain_rate")
    da["x"].attrs.update(units="km", axis="X")
    da["y"].attrs.update(units="km", axis="Y")
    return da.to_dataset()


def test_recipe_trains_resumes_and_forecasts_through_the_cli(tmp_path):
    from pyro_videossm.cli import main
    from pyro_videossm.data.conventions import write_netcdf

    data = tmp_path / "rain.nc"
    write_netcdf(rain_dataset(), data)
    base = ["train", "advection-convdmm", str(data), "--context", "3", "--leads", "2",
            "--batch-size", "4", "--normalize", "minmax", "--latent-channels", "2",
            "--hidden-channels", "4", "--rnn-channels", "4", "--encoder-channels", "4",
            "--n-down", "1", "--no-progress"]
    assert main([*base, "--epochs", "2", "-o", str(tmp_path / "full.pt")]) == 0
    ck = tmp_path / "ck.pt"
    assert main([*base, "--epochs", "1", "--checkpoint", str(ck),
                 "-o", str(tmp_path / "one.pt")]) == 0
    assert main([*base, "--epochs", "2", "--checkpoint", str(ck), "--resume",
                 "-o", str(tmp_path / "resumed.pt")]) == 0
    full = torch.load(tmp_path / "full.pt", weights_only=True)["state_dict"]
    resumed = torch.load(tmp_path / "resumed.pt", weights_only=True)["state_dict"]
    assert all(torch.equal(v, resumed[k]) for k, v in full.items())
    assert main(["forecast", str(data), "--model", str(tmp_path / "resumed.pt"),
                 "--context", "3", "--leads", "3", "--members", "3", "--no-progress",
                 "-o", str(tmp_path / "fc.nc")]) == 0
    with xr.open_dataset(tmp_path / "fc.nc") as fc:
        assert fc.attrs["model"] == "advection-convdmm"
        assert fc["forecast"].sizes["member"] == 3
        v = fc["forecast"].values
        top = float(rain_dataset()["rain_rate"].max())
        assert np.nanmin(v) >= 0 and np.nanmax(v) <= 2 * top * (1 + 1e-5)


def test_max_over_context_max_is_the_worst_window_ratio():
    from pyro_videossm.experiments.forecast_benchmark import max_over_context_max

    time = pd.date_range("2010-08-26", periods=6, freq="5min")
    values = np.zeros((6, 2, 2))
    values[1, 0, 0], values[3, 1, 1] = 2.0, 4.0           # context maxima
    da = xr.DataArray(values, dims=("time", "y", "x"), coords={"time": time})

    def fc(init, top):
        f = np.zeros((2, 3, 2, 2))
        f[1, 2, 0, 1] = top
        return xr.Dataset({"forecast": (("lead_time", "member", "y", "x"), f)},
                          coords={"init_time": time[init]})

    # contexts of 2 frames: [1, 2] (max 2) and [2, 3] (max 4)
    assert max_over_context_max([fc(2, 3.0), fc(3, 6.0)], da, 2) == pytest.approx(1.5)
    assert max_over_context_max([fc(2, 1.0), fc(3, 10.0)], da, 2) == pytest.approx(2.5)
    dry = xr.zeros_like(da)
    assert max_over_context_max([fc(2, 0.0)], dry, 2) == 0.0
    assert max_over_context_max([fc(2, 0.1)], dry, 2) == np.inf
