"""The flow animator's texture-restoring unsharp mask and its calibration on validation clips."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from flow_animator_fixture import fit_tiny_animator, tiny_clouds
from scipy.ndimage import gaussian_filter

from pyro_videossm.errors import InputError
from pyro_videossm.experiments.animation_sharpening import (
    AMOUNTS,
    calibrate_sharpening,
    sharpened,
)
from pyro_videossm.metrics.animation import radial_power_spectrum, reconstruction_l1
from pyro_videossm.models.video.flow_animator import FlowAnimator
from pyro_videossm.models.video.unsharp import gaussian_blur, unsharp_mask


@pytest.mark.parametrize("sigma", [0.6, 1.0, 2.3])
def test_gaussian_blur_is_scipys_with_the_edge_value_repeated(sigma):
    x = np.random.default_rng(0).random((3, 2, 17, 12))
    ours = gaussian_blur(torch.from_numpy(x), sigma).numpy()
    ref = gaussian_filter(x, sigma=(0, 0, sigma, sigma), mode="nearest", truncate=4.0)
    np.testing.assert_allclose(ours, ref, atol=1e-12)


def test_unsharp_mask_identity_linearity_and_high_frequency_gain():
    x = torch.from_numpy(np.random.default_rng(1).random((4, 32, 32)))
    assert unsharp_mask(x, 0.0, 1.0) is x
    a = unsharp_mask(x, 0.5, 1.0) - x
    np.testing.assert_allclose((unsharp_mask(x, 1.0, 1.0) - x).numpy(), 2 * a.numpy(),
                               atol=1e-12)
    flat = torch.full((1, 8, 8), 0.3, dtype=torch.float64)
    np.testing.assert_allclose(unsharp_mask(flat, 2.0, 1.0).numpy(), 0.3, atol=1e-12)
    # the power at the highest wavenumbers rises, the lowest nearly not
    p0, p1 = (radial_power_spectrum(v.numpy()[None]) for v in (x, unsharp_mask(x, 0.5, 1.0)))
    assert p1[-1] > 1.5 * p0[-1] and abs(p1[0] / p0[0] - 1) < 0.05
    with pytest.raises(InputError):
        unsharp_mask(x, -0.1, 1.0)
    with pytest.raises(InputError):
        gaussian_blur(x, 0.0)


def test_generator_sharpens_frames_after_the_first_only():
    torch.manual_seed(0)
    source = torch.rand(2, 1, 16, 16)
    flows = 0.4 * torch.randn(2, 5, 2, 16, 16)
    flows[:, 0] = 0
    gen = FlowAnimator(channels=4, levels=1, mode="bspline", warping="recurrent")
    with torch.no_grad():
        gen.refiner.out.weight.normal_(0, 0.1)  # a refiner that does something
        raw = gen(source, flows)
        gen.set_sharpening(0.7, 0.6)
        sharp = gen(source, flows)
    assert gen.config["sharpen_amount"] == 0.7 and gen.config["sharpen_sigma"] == 0.6
    np.testing.assert_array_equal(sharp[:, 0].numpy(), raw[:, 0].numpy())
    expected = unsharp_mask(raw[:, 1:], 0.7, 0.6).clamp(0, 1)
    np.testing.assert_allclose(sharp[:, 1:].numpy(), expected.numpy(), atol=1e-6)
    np.testing.assert_allclose(sharpened(raw.numpy(), 0.7, 0.6), sharp.numpy(), atol=1e-6)
    with pytest.raises(InputError):
        gen.set_sharpening(0.5, 0.0)


def test_calibration_spends_at_most_the_budget_of_the_l1_gain():
    real = np.random.default_rng(2).random((3, 4, 16, 16)).astype(np.float32)
    real = gaussian_filter(real, sigma=(0, 0, 1.5, 1.5))
    generated = real.copy()  # a perfect model: its L1 is 0
    baseline = 0.02
    amount, table = calibrate_sharpening(generated, real, baseline, sigma=1.0,
                                         texture_budget=1 / 3)
    l1 = {row["amount"]: row["l1"] for row in table}
    assert [row["amount"] for row in table] == sorted(AMOUNTS)
    assert l1[0.0] == 0.0
    assert l1[amount] <= baseline / 3 + 1e-12
    bigger = [a for a in l1 if a > amount]
    assert all(l1[a] > baseline / 3 for a in bigger)
    assert 0 < amount < AMOUNTS[-1]
    assert l1[amount] == pytest.approx(reconstruction_l1(sharpened(generated, amount, 1.0),
                                                         real))
    # the whole gain allowed: a larger amount; none: no sharpening
    assert calibrate_sharpening(generated, real, baseline, sigma=1.0, texture_budget=1)[0] > \
        amount
    assert calibrate_sharpening(generated, real, baseline, sigma=1.0, texture_budget=0)[0] == 0
    # no gain over the baseline: no sharpening
    assert calibrate_sharpening(generated, real, 0.0, sigma=1.0)[0] == 0
    with pytest.raises(InputError):
        calibrate_sharpening(generated, real, baseline, sigma=1.0, texture_budget=1.5)


def test_recipe_stores_the_calibrated_or_the_given_amount(tmp_path):
    pytest.importorskip("cv2")
    from pyro_videossm.experiments.animation_recipe import (
        ValidationScorer,
        driving_flows,
        load_flow_animator,
    )
    from pyro_videossm.infer import load_model_file
    from pyro_videossm.models.video.flow_animator import animate

    data = tiny_clouds()
    model = tmp_path / "m.pt"
    fit_tiny_animator(data, model, keep="last", epochs=1, lr=0.01, texture_budget=0.5)
    info = load_model_file(model)["extra"]["sharpening"]
    gen, config = load_flow_animator(model)
    assert info["calibrated"] and config["sharpen_amount"] == info["amount"]
    assert config["sharpen_sigma"] == info["sigma"]
    # the amount is what the calibration gives on the validation clips (the last 2)
    clips = data.frames.values[-2:]
    score = ValidationScorer(clips, driving_flows(clips))
    gen.set_sharpening(0.0, info["sigma"])
    raw = animate(gen, score.source, score.flows)
    expected, _ = calibrate_sharpening(raw, clips, score.baseline["l1"], sigma=info["sigma"],
                                       texture_budget=0.5)
    assert info["amount"] == expected
    fit_tiny_animator(data, model, keep="last", epochs=1, lr=0.01, sharpen_amount=0.3)
    assert load_flow_animator(model)[1]["sharpen_amount"] == 0.3
    assert not load_model_file(model)["extra"]["sharpening"]["calibrated"]
