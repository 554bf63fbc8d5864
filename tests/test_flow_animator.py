"""The flow animator: warping closed forms, accumulated flows, networks, baselines."""

import numpy as np
import pytest
import torch
from flow_animator_fixture import fit_tiny_animator, tiny_clouds

from pyro_videossm.data.clouds import simulate_clouds, warp_backward
from pyro_videossm.errors import InputError
from pyro_videossm.models.video.flow_animator import (
    FlowAnimationObjective,
    FlowAnimator,
    VideoDiscriminator,
    accumulate_flows,
    animate,
    semi_lagrangian_animation,
    still_animation,
    warp,
)


def test_warp_by_an_integer_flow_is_a_shift_inside():
    img = torch.rand(2, 1, 12, 14, generator=torch.Generator().manual_seed(0))
    flow = torch.zeros(2, 2, 12, 14)
    flow[:, 0], flow[:, 1] = 2.0, -1.0  # 2 px right, 1 px up
    for mode in ("bilinear", "bicubic"):
        out = warp(img, flow, mode)
        torch.testing.assert_close(out[..., :-1, 2:], img[..., 1:, :-2], atol=1e-5, rtol=0)


def test_warp_matches_the_simulator_warp_away_from_the_edges():
    rng = np.random.default_rng(1)
    img = np.random.default_rng(2).random((20, 20))
    flow = rng.normal(0, 0.7, (2, 1, 1)) * np.ones((2, 20, 20))
    ref = warp_backward(img, flow, order=1)
    out = warp(torch.tensor(img)[None, None], torch.tensor(flow)[None], "bilinear")[0, 0]
    np.testing.assert_allclose(out.numpy()[3:-3, 3:-3], ref[3:-3, 3:-3], atol=1e-10)


def test_sequential_and_accumulated_warps_agree_on_integer_translations():
    source = torch.rand(1, 1, 16, 16, generator=torch.Generator().manual_seed(9))
    flows = torch.zeros(1, 3, 2, 16, 16)
    flows[:, 1:, 0] = 1.0
    flows[:, 2, 1] = -1.0
    a = FlowAnimator(refine=False, warping="accumulated")(source, flows)
    b = FlowAnimator(refine=False, warping="sequential")(source, flows)
    inner = (slice(None), slice(None), slice(0, 14), slice(3, None))
    torch.testing.assert_close(a[inner], b[inner], atol=1e-5, rtol=0)
    torch.testing.assert_close(b[0, 2, :-1, 2:], source[0, 0, 1:, :-2], atol=1e-5, rtol=0)
    with pytest.raises(InputError):
        FlowAnimator(warping="forward")


def test_accumulated_translations_add_up():
    flows = torch.zeros(1, 4, 2, 8, 8)
    flows[:, 1:, 0] = 0.5
    flows[:, 1:, 1] = torch.tensor([0.25, -0.5, 1.0]).view(3, 1, 1)
    acc = accumulate_flows(flows)
    assert torch.all(acc[:, 0] == 0)
    torch.testing.assert_close(acc[0, :, 0, 4, 4], torch.tensor([0.0, 0.5, 1.0, 1.5]))
    torch.testing.assert_close(acc[0, :, 1, 4, 4], torch.tensor([0.0, 0.25, -0.25, 0.75]))


@pytest.mark.parametrize("warping", ["accumulated", "sequential"])
def test_untrained_generator_is_the_pure_warp_and_refine_off_too(warping):
    g = torch.Generator().manual_seed(3)
    source, flows = torch.rand(2, 1, 12, 12, generator=g), torch.randn(2, 3, 2, 12, 12,
                                                                        generator=g)
    warped = FlowAnimator(refine=False, warping=warping)(source, flows)
    # 12: not a multiple of 4
    refined = FlowAnimator(channels=4, levels=2, warping=warping)(source, flows)
    assert refined.shape == (2, 3, 12, 12)
    torch.testing.assert_close(refined, warped)
    torch.testing.assert_close(warped[:, 0], source[:, 0])  # frame 0 is the source
    with pytest.raises(InputError):
        FlowAnimator()(source[:, 0], flows)


def test_refinement_gets_gradients_and_discriminator_is_spectrally_normalised():
    gen, disc = FlowAnimator(channels=4, levels=1), VideoDiscriminator(channels=4, layers=2)
    obj = FlowAnimationObjective(gen, disc)
    g = torch.Generator().manual_seed(4)
    batch = {"source": torch.rand(2, 1, 8, 8, generator=g),
             "flows": torch.randn(2, 5, 2, 8, 8, generator=g),
             "target": torch.rand(2, 5, 8, 8, generator=g)}
    loss, logs = obj.generator_loss(batch)
    loss.backward()
    assert gen.refiner.out.weight.grad.abs().sum() > 0
    assert {"l1", "g_adv"} <= set(logs)
    assert disc(batch["target"]).shape == (2,)
    assert any("parametrizations" in name for name, _ in disc.named_parameters())
    d_loss, d_logs = obj.discriminator_loss(batch)
    assert torch.isfinite(d_loss) and {"d_real", "d_fake"} <= set(d_logs)


def test_baselines_on_clouds_without_growth():
    ds = simulate_clouds(clips=2, frames=5, size=32, seed=5, growth=0.0, speed=0.5)
    frames, flows = ds.frames.values, ds.flow.values
    still = still_animation(frames[:, 0], 5)
    assert still.shape == frames.shape and np.all(still[:, 3] == frames[:, 0])
    sl = semi_lagrangian_animation(frames[:, 0], flows)
    # the simulator is exactly a semi-Lagrangian advection (periodic edges): the interior
    # agrees closely, far better than the still source does
    inner = (slice(None), slice(1, None), slice(6, -6), slice(6, -6))
    err_sl = np.abs(sl - frames)[inner].mean()
    err_still = np.abs(still - frames)[inner].mean()
    assert err_sl < 1e-3 < err_still
    model = animate(FlowAnimator(channels=4), frames[:, 0], flows)
    assert model.shape == frames.shape and model.min() >= 0 and model.max() <= 1


# -- metrics -------------------------------------------------------------------------------
def test_metrics_closed_forms():
    from pyro_videossm.metrics.animation import (
        radial_power_spectrum,
        reconstruction_fss,
        reconstruction_l1,
        reconstruction_ssim,
        score_animation,
        spectrum_distance,
    )

    ds = simulate_clouds(clips=2, frames=4, size=32, seed=6)
    clips, flows = ds.frames.values, ds.flow.values
    assert reconstruction_l1(clips, clips) == 0
    assert reconstruction_ssim(clips, clips) == pytest.approx(1.0)
    assert reconstruction_fss(clips, clips) == pytest.approx(1.0)
    shifted = clips + 0.1
    assert reconstruction_l1(shifted, clips) == pytest.approx(0.1)
    # NaN pixels of the real clips are left out
    holes = clips.copy()
    holes[:, 1:, :4] = np.nan
    assert reconstruction_l1(clips, holes) == 0
    # a plane wave of 3 cycles across the frame: all power at radius 3
    y, x = np.meshgrid(np.arange(32), np.arange(32), indexing="ij")
    wave = np.cos(2 * np.pi * 3 * x / 32)
    spec = radial_power_spectrum(wave)
    assert spec.argmax() == 2 and spec.shape == (16,)
    # doubling the contrast multiplies the power by 4: distance log10(4) at every radius
    still = still_animation(clips[:, 0], 4)
    assert spectrum_distance(still, clips[:, 0]) == pytest.approx(0.0, abs=1e-12)
    assert spectrum_distance(2 * still, clips[:, 0]) == pytest.approx(np.log10(4), rel=1e-9)
    pytest.importorskip("cv2")
    scores = score_animation(still, flows, clips[:, 0], clips)
    assert set(scores) == {"motion_epe", "spectrum_distance", "l1", "ssim", "fss"}
    # the still source has no motion: its end-point error is the driving speed
    speed = np.sqrt((flows[:, 1:] ** 2).sum(axis=2)).mean()
    assert scores["motion_epe"] == pytest.approx(speed, rel=0.2)
    with pytest.raises(InputError):
        reconstruction_l1(clips[:, :1], clips[:, :1])


# -- recipe and command line -------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    pytest.importorskip("cv2")
    from pyro_videossm.cli import main
    from pyro_videossm.data.conventions import write_netcdf

    folder = tmp_path_factory.mktemp("anim")
    data = folder / "clouds.nc"
    write_netcdf(simulate_clouds(clips=4, frames=4, size=16, seed=0), data)
    model = folder / "m.pt"
    assert main(["train", "flow-animator", str(data), "-o", str(model), "--epochs", "1",
                 "--batch-size", "2", "--channels", "4", "--disc-channels", "4",
                 "--disc-layers", "2", "--levels", "1", "--no-progress"]) == 0
    return folder, data, model


def test_train_writes_a_model_file_with_history(trained):
    from pyro_videossm.experiments.animation_recipe import load_flow_animator
    from pyro_videossm.infer import load_model_file

    _, _, model = trained
    content = load_model_file(model, expected_name="flow-animator")
    assert len(content["extra"]["history"]) == 1 and content["config"]["flow_method"] == "dis"
    gen, config = load_flow_animator(model)
    assert config["channels"] == 4 and gen.refiner is not None


def test_animate_command_writes_netcdf_and_gif(trained, tmp_path):
    pytest.importorskip("imageio")
    from pyro_videossm.cli import main
    from pyro_videossm.data.conventions import open_dataset, write_netcdf

    _, data, model = trained
    still = simulate_clouds(clips=2, frames=2, size=16, seed=7)
    still["frames"][0, 0, :3, :3] = np.nan  # masked pixels of a source are filled
    write_netcdf(still, tmp_path / "still.nc")
    out, gif = tmp_path / "anim.nc", tmp_path / "anim.gif"
    assert main(["animate", str(tmp_path / "still.nc"), "--driving", str(data),
                 "--driving-clip", "1", "--model", str(model), "-o", str(out),
                 "--gif", str(gif)]) == 0
    ds = open_dataset(out)
    assert ds.frames.dims == ("clip", "time", "y", "x") and ds.frames.shape == (2, 4, 16, 16)
    assert np.isfinite(ds.frames.values).all()
    assert ds.flow.shape == (2, 4, 2, 16, 16)
    # frame 0 is the source (its filled pixels aside)
    np.testing.assert_allclose(ds.frames.values[1, 0], still.frames.values[1, 0], atol=1e-6)
    import imageio.v2 as imageio

    assert len(imageio.mimread(gif)) == 4


@pytest.mark.parametrize("case, message", [
    ("size", "resample one of them"),
    ("short", "at least 2 frames"),
    ("clip", "no clip 9"),
])
def test_animate_bad_input_is_one_line(trained, tmp_path, capsys, case, message):
    from pyro_videossm.cli import main
    from pyro_videossm.data.conventions import write_netcdf

    _, data, model = trained
    driving = data
    still = simulate_clouds(clips=1, frames=2, size=16, seed=8)
    args = []
    if case == "size":
        still = simulate_clouds(clips=1, frames=2, size=32, seed=8)
    elif case == "short":
        driving = tmp_path / "short.nc"
        write_netcdf(simulate_clouds(clips=1, frames=2, size=16).isel(time=[0]), driving)
    else:
        args = ["--driving-clip", "9"]
    write_netcdf(still, tmp_path / "still.nc")
    out = tmp_path / "anim.nc"
    assert main(["animate", str(tmp_path / "still.nc"), "--driving", str(driving),
                 "--model", str(model), "-o", str(out), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not out.exists()


def test_keep_best_stores_the_ema_generator_of_the_best_validation_epoch(tmp_path):
    pytest.importorskip("cv2")
    from pyro_videossm.experiments.animation_recipe import (
        animation_batch,
        driving_flows,
        load_flow_animator,
    )
    from pyro_videossm.infer import load_model_file
    from pyro_videossm.models.video.flow_animator import FlowAnimationObjective

    data = tiny_clouds()
    model = tmp_path / "best.pt"
    # a learning rate that makes validation jump: the best epoch (1) is not the last
    history = fit_tiny_animator(data, model, keep="best", epochs=4, lr=0.1,
                                spectral_weight=0.03)
    kept = load_model_file(model)["extra"]["kept_epoch"]
    valid = [h["valid"] for h in history]
    assert kept == 1 + int(np.argmin(valid)) and valid[-1] > valid[kept - 1]
    # the stored generator scores the kept epoch's validation L1 on the validation clips
    clips = data.frames.values[-2:]
    batch = animation_batch(clips, driving_flows(clips))
    gen, _ = load_flow_animator(model)
    objective = FlowAnimationObjective(gen, None)
    with torch.no_grad():
        assert float(objective.evaluate(gen, batch)) == pytest.approx(valid[kept - 1], rel=1e-5)
    # without validation clips the last generator is kept
    history = fit_tiny_animator(data, model, keep="best", epochs=1, lr=0.1,
                                spectral_weight=0.03, valid_fraction=0.0)
    assert history[0]["valid"] is None and load_model_file(model)["extra"]["kept_epoch"] == 1
