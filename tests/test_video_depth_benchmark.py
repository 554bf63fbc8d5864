"""benchmarks/video_depth.py: the diagnostics of DCVGAN's depth-colour error."""

from __future__ import annotations

import torch
from script_loader import load_script

from pyro_videossm.data.shapes_rgbd import DEPTH_FAR, DEPTH_NEAR, depth_to_unit
from pyro_videossm.evaluation.depth_consistency import depth_consistency
from pyro_videossm.evaluation.depth_estimator import DepthEstimator
from pyro_videossm.experiments.video_gan_recipes import save_video_gan
from pyro_videossm.models.video.dcvgan import DCVGANGenerator


def test_wasserstein_of_a_shift_is_the_shift():
    vd = load_script("benchmarks/video_depth.py")
    a = torch.rand(5000, dtype=torch.float64)
    assert abs(vd._wasserstein(a, a + 0.25) - 0.25) < 1e-9
    assert vd._wasserstein(a, a.flip(0)) < 1e-12  # same values, another order


def test_diagnosis_of_a_dcvgan_matches_direct_computations(tmp_path):
    vd = load_script("benchmarks/video_depth.py")
    torch.manual_seed(0)
    gen = DCVGANGenerator(size=8, frames=3, content_dim=4, motion_dim=4, noise_dim=2,
                          gen_channels=4, colour_dim=3, translator_channels=4).eval()
    lo, hi = 3.0, 11.0
    path = tmp_path / "d.pt"
    save_video_gan(path, "dcvgan", gen, {"depth_range": [lo, hi],
                                         "channel_names": ["red", "green", "blue", "depth"]})
    est = DepthEstimator(3, 8, 4).eval()
    real_d = torch.rand(6, 3, 1, 8, 8)
    out = vd.diagnose_model(path, est, None, real_d, n=5, seed=3)
    torch.manual_seed(3)
    with torch.no_grad():
        clips = gen(5)
    depth = depth_to_unit(lo + clips[:, :, 3:] * (hi - lo))
    want = depth_consistency(est, clips[:, :, :3], depth)["mae"]
    assert abs(out["generated_consistency_mae"] - want) < 1e-9
    span = DEPTH_FAR - DEPTH_NEAR
    assert abs(out["depth_w1"] - span * vd._wasserstein(depth, real_d)) < 1e-9
    assert out["kind"] == "dcvgan" and out["translator_on_real_depth_mae"] >= 0
    assert out["translator_parameters"] + out["depth_generator_parameters"] == out[
        "generator_parameters"]


def test_steps_per_epoch_count_the_training_quarters_batches_and_match_the_data():
    from pyro_videossm.data.shapes_rgbd import make_shapes_rgbd

    vd = load_script("benchmarks/video_depth.py")
    assert vd.steps_per_epoch(512) == 12  # 384 training clips
    assert vd.steps_per_epoch(2048) == 48  # 1536
    assert vd.steps_per_epoch(100) == 3  # 75 training clips: 2 full batches and one of 11
    ds = make_shapes_rgbd(clips=100, frames=2, size=8)
    assert int((ds["split"].values == 0).sum()) == 75
