"""Evaluation of generated clips: Fréchet distance closed forms, seen/unseen accuracy, content
stability, depth consistency, the judge's frame heads and the evaluate-generation command."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from pyro_videossm.cli import main
from pyro_videossm.data.conventions import open_dataset, write_netcdf
from pyro_videossm.data.shapes_rgbd import make_shapes_rgbd
from pyro_videossm.data.sprites_zero_shot import mark_unseen
from pyro_videossm.errors import InputError
from pyro_videossm.evaluation.condition_accuracy import condition_accuracy
from pyro_videossm.evaluation.content_stability import content_stability
from pyro_videossm.evaluation.depth_estimator import (
    DepthEstimator,
    depth_error,
    load_depth_estimator,
)
from pyro_videossm.evaluation.frechet import (
    frechet_distance,
    frechet_distance_of_features,
    gaussian_statistics,
)
from pyro_videossm.evaluation.judge import Judge, load_judge, save_judge
from pyro_videossm.evaluation.judge_space import feature_statistics, judge_frechet_distances


def _sqrt_psd(a):
    w, v = np.linalg.eigh(a)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def test_frechet_distance_closed_forms():
    # 1-D: (m1 - m2)^2 + (s1 - s2)^2
    assert frechet_distance([1.0], [[4.0]], [3.0], [[9.0]]) == pytest.approx(4 + 1)
    # commuting (diagonal) covariances: |dm|^2 + sum (sqrt(a_i) - sqrt(b_i))^2
    a, b = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 0.25])
    dm = np.array([1.0, -2.0, 0.5])
    expected = dm @ dm + ((np.sqrt(a) - np.sqrt(b)) ** 2).sum()
    assert frechet_distance(dm, np.diag(a), np.zeros(3), np.diag(b)) == pytest.approx(expected)
    # general covariances against the symmetric form tr(A + B - 2 (A^1/2 B A^1/2)^1/2)
    rng = np.random.default_rng(0)
    m = rng.normal(size=(4, 4))
    n = rng.normal(size=(4, 4))
    A, B = m @ m.T + 0.1 * np.eye(4), n @ n.T + 0.1 * np.eye(4)
    ra = _sqrt_psd(A)
    ref = np.trace(A + B - 2 * _sqrt_psd(ra @ B @ ra))
    assert frechet_distance(np.zeros(4), A, np.zeros(4), B) == pytest.approx(ref, rel=1e-8)
    # identical feature sets: 0; a shifted copy: the squared shift
    x = rng.normal(size=(500, 6))
    assert frechet_distance_of_features(x, x) == pytest.approx(0.0, abs=1e-8)
    shift = np.arange(6.0)
    assert frechet_distance_of_features(x, x + shift) == pytest.approx(shift @ shift, rel=1e-6)
    # samples of two Gaussians: close to the closed form
    mu, cov = gaussian_statistics(rng.normal(size=(20000, 2)) * [1.0, 2.0])
    assert np.allclose(mu, 0, atol=0.05) and np.allclose(cov, np.diag([1, 4]), atol=0.1)
    with pytest.raises(InputError, match="different dimensions"):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3))


def test_condition_accuracy_splits_seen_and_unseen():
    eye = torch.eye(3)
    probs = {"motion": eye[[0, 1, 2, 0]], "top": eye[[1, 1, 0, 0]], "other": eye[[0, 0, 0, 0]]}
    cond = {"motion": torch.tensor([0, 1, 1, 1]), "top": torch.tensor([1, 1, 0, 2])}
    out = condition_accuracy(probs, cond, torch.tensor([0, 0, 1, 1]))
    assert out["labels"]["motion"] == {"all": 0.5, "seen": 1.0, "unseen": 0.0,
                                       "chance": pytest.approx(1 / 3)}
    assert out["labels"]["top"]["seen"] == 1.0 and out["labels"]["top"]["unseen"] == 0.5
    assert out["joint"] == {"all": 0.5, "seen": 1.0, "unseen": 0.0}
    assert out["counts"] == {"all": 4, "seen": 2, "unseen": 2} and "other" not in out["labels"]
    assert math.isnan(condition_accuracy(probs, cond)["labels"]["motion"]["unseen"])


def test_content_stability_hand_cases():
    eye = torch.eye(4)
    stable = eye[torch.tensor([[2, 2, 2, 2], [1, 1, 1, 1]])]
    flicker = eye[torch.tensor([[2, 3, 2, 3], [0, 0, 1, 0]])]
    s = content_stability({"colour": stable}, {"colour": torch.tensor([2, 0])})["colour"]
    assert s == {"agreement": 1.0, "flip_rate": 0.0, "frame_accuracy": 0.5}
    f = content_stability({"colour": flicker})["colour"]
    assert f["agreement"] == pytest.approx((2 / 4 + 3 / 4) / 2)
    assert f["flip_rate"] == pytest.approx((3 / 3 + 2 / 3) / 2)


def test_depth_error_in_world_units():
    d = torch.rand(2, 3, 1, 8, 8)
    err = depth_error(d + 0.05, d)
    assert err["mae_unit"] == pytest.approx(0.05, rel=1e-5)
    assert err["mae"] == pytest.approx(0.5, rel=1e-5) and err["rmse"] == pytest.approx(0.5,
                                                                                       rel=1e-5)
    est = DepthEstimator(3, 8, 2)
    out = est.estimate(torch.rand(2, 3, 3, 8, 8))
    assert out.shape == (2, 3, 1, 8, 8) and 0 < out.min() and out.max() < 1


def test_judge_frame_heads_features_and_old_files(tmp_path):
    torch.manual_seed(0)
    judge = Judge({"action": 7, "shape": 4}, 3, 8, feature_dim=6, hidden_dim=5,
                  conv_channels=2, frame_labels=["shape"])
    x = torch.rand(3, 4, 3, 8, 8)
    e, summary = judge.features(x)
    assert e.shape == (3, 4, 6) and summary.shape == (3, 10)
    clip, frame = judge.outputs(x)
    assert torch.allclose(clip["action"], judge(x)["action"])
    assert frame["shape"].shape == (3, 4, 4)
    save_judge(judge, tmp_path / "j.pt")
    again, _ = load_judge(tmp_path / "j.pt")
    assert again.frame_labels == ["shape"]
    assert torch.allclose(again.predict_frames_proba(x)["shape"],
                          judge.predict_frames_proba(x)["shape"])
    old = Judge({"motion": 9}, 3, 8, feature_dim=6, hidden_dim=5, conv_channels=2)
    assert "frame_labels" not in old.architecture()  # files of judges without frame heads
    with pytest.raises(InputError, match="no frame heads"):
        old.predict_frames_proba(x)
    with pytest.raises(InputError, match="not one of the judge's labels"):
        Judge({"motion": 9}, 3, 8, frame_labels=["top"])
    # the judge-FID of a set against its own statistics is 0
    ref = feature_statistics(judge, x)
    d = judge_frechet_distances(judge, x, ref)
    assert d["judge_fid"] == pytest.approx(0, abs=1e-6)
    assert d["judge_fvd"] == pytest.approx(0, abs=1e-6)
    assert judge_frechet_distances(judge, x.flip(0) * 0.5, ref)["judge_fid"] > 1e-6


def test_evaluate_generation_end_to_end(tmp_path):
    data, test_file = tmp_path / "s.nc", tmp_path / "test.nc"
    write_netcdf(make_shapes_rgbd(clips=24, frames=3, size=8, seed=1), data)
    tiny = ["--epochs", "1", "--no-progress"]
    assert main(["train", "video-judge", str(data), "-o", str(tmp_path / "j.pt"), *tiny,
                 "--conv-channels", "2", "--hidden-dim", "4", "--feature-dim", "4"]) == 0
    assert main(["train", "depth-estimator", str(data), "-o", str(tmp_path / "d.pt"), *tiny,
                 "--width", "2"]) == 0
    judge, extra = load_judge(tmp_path / "j.pt")
    assert extra["action_label"] == "action" and extra["content_labels"] == ["shape", "colour"]
    assert judge.frame_labels == ["shape", "colour"] and extra["reference_split"] == "test"
    ds = open_dataset(data).load()
    test = ds.isel(clip=np.flatnonzero(ds["split"].values == 1))
    write_netcdf(test.assign(unseen=("clip", np.arange(test.sizes["clip"]) % 2)), test_file)
    out = tmp_path / "o.json"
    assert main(["evaluate-generation", str(test_file), "--judge", str(tmp_path / "j.pt"),
                 "--depth-estimator", str(tmp_path / "d.pt"), "--min-judge-accuracy", "0",
                 "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    # the real test clips are the judge's reference: Fréchet distances 0; the judge's accuracy
    # on them is the one its file records
    assert res["judge_fid"] == pytest.approx(0, abs=1e-4)
    assert res["judge_fvd"] == pytest.approx(0, abs=1e-4)
    for k, v in extra["test_accuracy"].items():
        assert res["accuracy"]["labels"][k]["all"] == pytest.approx(v)
    assert res["accuracy"]["counts"] == {"all": 6, "seen": 3, "unseen": 3}
    assert set(res["content_stability"]) == {"shape", "colour"}
    _, d_extra = load_depth_estimator(tmp_path / "d.pt")
    assert res["depth_consistency"]["mae"] == pytest.approx(d_extra["test_error"]["mae"],
                                                            rel=1e-5)
    # an untrusted judge is refused in one line
    assert main(["evaluate-generation", str(test_file), "--judge",
                 str(tmp_path / "j.pt")]) == 2


def test_mark_unseen_follows_the_rule():
    import xarray as xr

    ds = xr.Dataset({"motion": ("clip", np.array([0, 0, 4, 8])),
                     "top": ("clip", np.array([0, 1, 1, 1]))})
    # walk_front + red unseen; cast_left (4) with green: (1 + 1 + 2) % 3 = 1 -> seen;
    # slash_right (8) with green: (1 + 2 + 4) % 3 = 1 -> seen
    assert list(mark_unseen(ds)["unseen"].values) == [1, 0, 0, 0]


def test_generated_clips_format_round_trip(tmp_path):
    from pyro_videossm.data.generated_clips import generated_clips
    from pyro_videossm.data.shapes_rgbd import ACTIONS, COLOURS, depth_tensor, depth_to_unit
    from pyro_videossm.evaluation.generation import condition_labels, unseen_flags

    frames = torch.rand(3, 2, 3, 8, 8)
    depth = 2 + 10 * torch.rand(3, 2, 8, 8)
    ds = generated_clips(frames, {"action": [0, 6, 2], "colour": [5, 0, 1]},
                         {"action": ACTIONS, "colour": COLOURS}, depth=depth,
                         unseen=[True, False, True], model="test")
    write_netcdf(ds, tmp_path / "g.nc")
    back = open_dataset(tmp_path / "g.nc").load()
    assert back["action"].attrs["flag_meanings"].split() == list(ACTIONS)
    assert list(unseen_flags(back).numpy()) == [True, False, True]
    np.testing.assert_allclose(depth_tensor(back)[:, :, 0].numpy(),
                               depth_to_unit(depth.numpy()), rtol=1e-6)
    judge = Judge({"action": 7, "shape": 4, "colour": 6}, 3, 8)
    assert condition_labels(back, judge) == ["action", "colour"]
    with pytest.raises(InputError, match="condition 'action' must be 3 class indices"):
        generated_clips(frames, {"action": [0, 7, 1]}, {"action": ACTIONS})
