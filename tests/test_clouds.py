"""Procedural clouds: spectrum slope, flow convention, growth, format, command line."""

import numpy as np
import pytest

from pyro_videossm.data.clouds import (
    power_law_field,
    random_flow,
    shade_clouds,
    simulate_clouds,
    warp_backward,
)
from pyro_videossm.data.simulators import simulate_dataset
from pyro_videossm.errors import InputError


def radial_slope(field: np.ndarray, kmin: float = 0.03, kmax: float = 0.3) -> float:
    """Slope of log power against log |k| (cycles per pixel) over ``kmin..kmax``."""
    h, w = field.shape
    power = np.abs(np.fft.fft2(field)) ** 2
    k = np.hypot(*np.meshgrid(np.fft.fftfreq(h), np.fft.fftfreq(w), indexing="ij"))
    keep = (k >= kmin) & (k <= kmax)
    return float(np.polyfit(np.log(k[keep]), np.log(power[keep]), 1)[0])


@pytest.mark.parametrize("exponent", [1.0, 2.0, 3.0])
def test_power_law_spectrum_slope(exponent):
    rng = np.random.default_rng(0)
    slopes = [radial_slope(power_law_field((128, 128), exponent, rng)) for _ in range(4)]
    assert np.mean(slopes) == pytest.approx(-exponent, abs=0.15)


def test_power_law_field_is_standardised():
    f = power_law_field((64, 48), 2.5, np.random.default_rng(1))
    assert f.shape == (64, 48)
    assert abs(f.mean()) < 1e-10 and f.std() == pytest.approx(1.0)


def test_shading_gives_cover_and_range():
    f = power_law_field((64, 64), 3.0, np.random.default_rng(2))
    img = shade_clouds(f, cover=0.3)
    assert img.min() >= 0 and img.max() < 1
    assert (img > 0).mean() == pytest.approx(0.3, abs=0.01)
    with pytest.raises(InputError):
        shade_clouds(f, cover=0.0)


def test_warp_by_integer_flow_is_a_shift():
    img = np.random.default_rng(3).random((16, 20))
    flow = np.zeros((2, 16, 20))
    flow[0], flow[1] = 3.0, -2.0  # 3 px right, 2 px up
    out = warp_backward(img, flow)
    np.testing.assert_allclose(out, np.roll(img, (-2, 3), axis=(0, 1)), atol=1e-12)


def test_stored_flow_reproduces_next_frame_without_growth():
    ds = simulate_clouds(clips=2, frames=6, size=32, seed=4, growth=0.0)
    frames, flow = ds.frames.values.astype(np.float64), ds.flow.values.astype(np.float64)
    assert np.all(flow[:, 0] == 0)
    for c in range(2):
        for t in range(1, 6):
            expected = np.clip(warp_backward(frames[c, t - 1], flow[c, t]), 0, 1)
            np.testing.assert_allclose(frames[c, t], expected, atol=2e-5)
    # the flow moves something: frames differ from the previous ones
    assert np.abs(frames[:, 1:] - frames[:, :-1]).mean() > 1e-3


def test_growth_changes_frames_by_at_most_its_amplitude():
    a = simulate_clouds(clips=1, frames=5, seed=5, growth=0.05)
    frames, flow = a.frames.values.astype(np.float64), a.flow.values.astype(np.float64)
    residual = [frames[0, t] - np.clip(warp_backward(frames[0, t - 1], flow[0, t]), 0, 1)
                for t in range(1, 5)]
    residual = np.abs(np.array(residual))
    assert residual.max() <= 0.05 + 1e-5
    assert residual.mean() > 1e-3


def test_flow_modes_are_smooth_and_rigid_when_asked():
    rng = np.random.default_rng(6)
    flow = random_flow((32, 32), 4, rng, speed=1.0, rotation=0.0, divergence=0.0)
    assert np.all(flow[0] == 0)
    # translation only: constant over the grid at each time
    assert np.allclose(flow[1:].std(axis=(-2, -1)), 0)
    rot = random_flow((33, 33), 3, np.random.default_rng(7), speed=0.0, rotation=0.05,
                      divergence=0.0)
    assert np.allclose(rot[1, :, 16, 16], 0)  # rotation about the centre
    div = np.gradient(rot[1, 0], axis=1) + np.gradient(rot[1, 1], axis=0)
    assert np.allclose(div, 0)  # a rotation has no divergence


def test_dataset_format_and_registry():
    ds = simulate_dataset("clouds", clips=3, frames=4, size=16, seed=1)
    assert ds.frames.dims == ("clip", "time", "y", "x")
    assert ds.flow.dims == ("clip", "time", "component", "y", "x")
    assert list(ds.component.values) == ["u", "v"]
    assert ds.frames.attrs["units"] == "1" and ds.flow.attrs["units"] == "pixel per frame"
    assert float(ds.frames.min()) >= 0 and float(ds.frames.max()) <= 1
    again = simulate_dataset("clouds", clips=3, frames=4, size=16, seed=1)
    np.testing.assert_array_equal(ds.frames.values, again.frames.values)
    with pytest.raises(InputError):
        simulate_clouds(frames=1)


def test_simulate_clouds_command(tmp_path):
    from pyro_videossm.cli import main
    from pyro_videossm.data.conventions import open_dataset

    out = tmp_path / "c.nc"
    assert main(["simulate", "clouds", "-o", str(out), "--clips", "2", "--frames", "3",
                 "--size", "64", "--growth", "0"]) == 0
    ds = open_dataset(out)
    assert ds.frames.shape == (2, 3, 64, 64) and ds.attrs["growth"] == 0.0


# -- optical flow by OpenCV ----------------------------------------------------------------
@pytest.mark.parametrize("method", ["dis", "farneback"])
@pytest.mark.parametrize("shift", [(1.3, -0.7), (2.0, 1.0)])
def test_optical_flow_of_a_rigid_translation(method, shift):
    pytest.importorskip("cv2")
    from pyro_videossm.data.optical_flow import end_point_error, estimate_flow

    img = shade_clouds(power_law_field((32, 32), 3.0, np.random.default_rng(8)), cover=0.7)
    flow = np.zeros((2, 32, 32))
    flow[0], flow[1] = shift
    estimated = estimate_flow(img, warp_backward(img, flow), method)
    assert estimated.shape == (2, 32, 32)
    assert end_point_error(estimated, flow) < 0.5
    # the sign convention: the opposite motion is far off
    assert end_point_error(estimated, -flow) > 1.0


def test_optical_flow_bad_input():
    pytest.importorskip("cv2")
    from pyro_videossm.data.optical_flow import estimate_flow, estimate_flows

    img = np.zeros((16, 16))
    with pytest.raises(InputError, match="unknown optical-flow method"):
        estimate_flow(img, img, "lucas")
    with pytest.raises(InputError, match="different shapes"):
        estimate_flow(img, np.zeros((8, 8)))
    flows = estimate_flows(np.zeros((3, 16, 16)))
    assert flows.shape == (3, 2, 16, 16) and np.all(flows[0] == 0)
