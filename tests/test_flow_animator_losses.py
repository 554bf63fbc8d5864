"""The flow animator's B-spline warp, recurrent warping, texture and motion losses, radar
driving clips and masked (NaN) pixels."""

from pathlib import Path

import numpy as np
import pytest
import torch

from pyro_videossm.errors import InputError
from pyro_videossm.metrics.animation import spectrum_distance
from pyro_videossm.models.video.flow_animator import (
    FlowAnimationObjective,
    FlowAnimator,
    VideoDiscriminator,
    animate,
    bspline_warp,
    flow_consistency_loss,
    semi_lagrangian_animation,
    spectral_loss,
)

KNMI_CROP = Path(__file__).parent / "data" / "knmi_crop"


def test_bspline_warp_is_scipy_cubic_spline_interpolation():
    from scipy.ndimage import map_coordinates

    rng = np.random.default_rng(0)
    image = rng.random((2, 1, 11, 14))
    flow = 2.5 * rng.standard_normal((2, 2, 11, 14))  # some departure points leave the grid
    out = bspline_warp(torch.from_numpy(image), torch.from_numpy(flow)).numpy()
    yy, xx = np.meshgrid(np.arange(11.0), np.arange(14.0), indexing="ij")
    for i in range(2):
        ref = map_coordinates(image[i, 0], [yy - flow[i, 1], xx - flow[i, 0]], order=3,
                              mode="nearest")
        np.testing.assert_allclose(out[i, 0], ref, atol=1e-9)
    # an integer shift inside the grid is exact
    shift = torch.zeros(1, 2, 11, 14, dtype=torch.float64)
    shift[:, 0] = 1.0
    moved = bspline_warp(torch.from_numpy(image[:1]), shift).numpy()
    np.testing.assert_allclose(moved[0, 0, :, 1:], image[0, 0, :, :-1], atol=1e-12)


def test_sequential_bspline_warp_is_the_semi_lagrangian_baseline():
    rng = np.random.default_rng(1)
    source = rng.random((2, 16, 16)).astype(np.float32)
    flows = (0.7 * rng.standard_normal((2, 5, 2, 16, 16))).astype(np.float32)
    flows[:, 0] = 0
    warped = animate(FlowAnimator(refine=False, warping="sequential", mode="bspline"), source,
                     flows)
    np.testing.assert_allclose(warped, semi_lagrangian_animation(source, flows), atol=1e-5)
    with pytest.raises(InputError):
        FlowAnimator(mode="lanczos")


def test_untrained_recurrent_generator_is_the_semi_lagrangian_warp():
    g = torch.Generator().manual_seed(2)
    source = torch.rand(2, 1, 12, 12, generator=g)
    flows = torch.randn(2, 4, 2, 12, 12, generator=g)
    recurrent = FlowAnimator(channels=4, warping="recurrent", mode="bspline")(source, flows)
    sequential = FlowAnimator(refine=False, warping="sequential", mode="bspline")(source, flows)
    torch.testing.assert_close(recurrent, sequential)
    # and its refinement is trained through the recurrence
    (recurrent - 0.5).abs().mean().backward()
    gen = FlowAnimator(channels=4, warping="recurrent", mode="bspline")
    with torch.no_grad():
        gen.refiner.out.bias.fill_(0.01)
    gen(source, flows).sum().backward()
    assert gen.refiner.out.weight.grad.abs().sum() > 0


def test_spectral_loss_is_the_spectrum_distance_score():
    rng = np.random.default_rng(3)
    source = rng.random((3, 16, 20))
    fake = rng.random((3, 5, 16, 20))
    loss = spectral_loss(torch.from_numpy(fake), torch.from_numpy(source[:, None]))
    assert loss.item() == pytest.approx(spectrum_distance(fake, source), rel=1e-9)
    still = np.repeat(source[:, None], 5, axis=1)
    assert spectral_loss(torch.from_numpy(still),
                         torch.from_numpy(source[:, None])).item() == pytest.approx(0, abs=1e-9)


def test_flow_consistency_loss_is_zero_for_frames_moved_by_the_flow():
    rng = np.random.default_rng(4)
    source = rng.random((2, 16, 16))
    flows = 0.6 * rng.standard_normal((2, 4, 2, 16, 16))
    flows[:, 0] = 0
    moved = [torch.from_numpy(source[:, None])]
    for t in range(1, 4):
        moved.append(bspline_warp(moved[-1], torch.from_numpy(flows[:, t])))
    clip = torch.cat(moved, dim=1)
    flows = torch.from_numpy(flows)
    assert flow_consistency_loss(clip, flows).item() == pytest.approx(0.0, abs=1e-12)
    jitter = clip.clone()
    jitter[:, 2] += 0.1
    # frame 2 differs from frame 1 moved and frame 3 from frame 2 moved, each by 0.1
    assert flow_consistency_loss(jitter, flows).item() == pytest.approx(2 * 0.1 / 3, rel=1e-6)


def test_objective_adds_the_weighted_losses_and_masks_missing_pixels():
    from pyro_videossm.experiments.animation_recipe import animation_batch

    rng = np.random.default_rng(5)
    clips = rng.random((2, 4, 8, 8)).astype(np.float32)
    clips[:, 1:, :2, :2] = np.nan  # missing pixels of the real clips
    flows = (0.5 * rng.standard_normal((2, 4, 2, 8, 8))).astype(np.float32)
    batch = animation_batch(clips, flows)
    gen = FlowAnimator(channels=4, levels=1, warping="sequential", mode="bspline")
    disc = VideoDiscriminator(channels=4, layers=2)
    plain = FlowAnimationObjective(gen, disc, adversarial_weight=0.0)
    both = FlowAnimationObjective(gen, disc, adversarial_weight=0.0, spectral_weight=0.5,
                                  consistency_weight=2.0)
    fake = gen(batch["source"], batch["flows"])
    l1, logs = plain.extra_generator_loss(fake, batch)
    total, logs2 = both.extra_generator_loss(fake, batch)
    ok = ~np.isnan(clips)
    ref = np.abs(fake.detach().numpy() - np.nan_to_num(clips))[ok].mean()
    assert l1.item() == pytest.approx(ref, rel=1e-5) and np.isfinite(l1.item())
    assert total.item() == pytest.approx(l1.item() + 0.5 * logs2["spectral"].item()
                                         + 2.0 * logs2["consistency"].item(), rel=1e-6)
    assert "spectral" not in logs


def test_rain_brightness_and_clips():
    from pyro_videossm.experiments.animation_radar import rain_brightness, rain_clips

    r = np.array([[0.0, 2.0], [np.nan, -1.0]])
    np.testing.assert_allclose(rain_brightness(r, 2.0),
                               [[0.0, 1 - np.exp(-1.0)], [np.nan, 0.0]], rtol=1e-6)
    clips = rain_clips(np.zeros((9, 4, 5)), frames=4)
    assert clips.shape == (2, 4, 4, 5)
    for bad in (dict(frames=1), dict(frames=10)):
        with pytest.raises(InputError):
            rain_clips(np.zeros((9, 4, 5)), **bad)


@pytest.mark.skipif(not KNMI_CROP.is_dir(), reason="KNMI test crops not shipped")
def test_radar_clips_read_the_knmi_crops():
    from pyro_videossm.experiments.animation_radar import radar_clips

    clips = radar_clips(KNMI_CROP, frames=8, resolution=4.0, box_km=96.0)
    assert clips.shape[:2] == (2, 8) and clips.dtype == np.float32
    valid = clips[~np.isnan(clips)]
    assert valid.size and valid.min() >= 0 and valid.max() < 1 and valid.max() > 0


def test_nan_pixels_are_masked_and_bad_driving_clips_refused(tmp_path):
    pytest.importorskip("cv2")
    from pyro_videossm.data.clouds import simulate_clouds
    from pyro_videossm.experiments.animation_recipe import (
        animate_clips,
        evaluate_animation,
        save_flow_animator,
    )

    model = tmp_path / "m.pt"
    save_flow_animator(FlowAnimator(channels=4, levels=1, mode="bspline", warping="recurrent"),
                       model, flow_method="dis", frame_shape=(16, 16))
    clips = simulate_clouds(clips=2, frames=4, size=16, seed=3).frames.values
    driving = clips.copy()
    driving[:, :, :4, :4] = np.nan  # e.g. outside the radar range
    source = clips[:, 0].copy()
    source[0, 5:7, 5:7] = np.nan
    frames, flows = animate_clips(model, source, driving)
    assert frames.shape == (2, 4, 16, 16) and np.isfinite(frames).all()
    assert np.isfinite(flows).all()
    scores, _ = evaluate_animation(model, driving)
    assert all(np.isfinite(v) for s in scores.values() for v in s.values())
    with pytest.raises(InputError, match="resample"):
        animate_clips(model, np.zeros((1, 8, 8), np.float32), driving)
    with pytest.raises(InputError, match="at least 2 frames"):
        animate_clips(model, source, driving[:, :1])
