"""The cloud judge of the flow-animation benchmark and its clip Fréchet distance."""

from __future__ import annotations

import numpy as np
import pytest

from pyro_videossm.data.clouds import simulate_clouds
from pyro_videossm.errors import InputError
from pyro_videossm.experiments.animation_judge import (
    APPEARANCE_CLASSES,
    clip_frechet_distance,
    judge_clips,
    train_cloud_judge,
)


def test_judge_clips_label_every_combination_of_the_appearance_classes():
    ds = judge_clips(2, seed=3, size=16, frames=4)
    n = len(APPEARANCE_CLASSES["exponent"]) * len(APPEARANCE_CLASSES["cover"])
    assert ds.frames.shape == (2 * n, 4, 16, 16)
    pairs = {(int(e), int(c)) for e, c in zip(ds.exponent.values, ds.cover.values)}
    assert pairs == {(i, j) for i in range(3) for j in range(3)}
    # each class is the simulator run with that parameter: exponent 2, cover 0.3 first
    first = simulate_clouds(clips=2, frames=4, size=16, exponent=2.0, cover=0.3, seed=3)
    np.testing.assert_array_equal(ds.frames.values[:2], first.frames.values)
    with pytest.raises(InputError):
        judge_clips(0, seed=0)


@pytest.fixture(scope="module")
def tiny_judge():
    judge, accuracy = train_cloud_judge(clips_per_class=2, test_clips_per_class=1, epochs=1,
                                        size=16, frames=4, width=8)
    return judge, accuracy


def test_clip_frechet_distance_is_zero_for_the_same_clips_and_positive_otherwise(tiny_judge):
    judge, accuracy = tiny_judge
    assert set(accuracy) == set(APPEARANCE_CLASSES)
    real = simulate_clouds(clips=12, frames=4, size=16, seed=1).frames.values
    assert clip_frechet_distance(judge, real, real) == pytest.approx(0.0, abs=1e-6)
    still = np.repeat(real[:, :1], 4, axis=1)
    assert clip_frechet_distance(judge, still, real) > 0
    # NaN pixels are read as 0, values outside [0, 1] clipped
    holes = real.copy()
    holes[:, :, 0, 0] = np.nan
    filled = real.copy()
    filled[:, :, 0, 0] = 0
    assert clip_frechet_distance(judge, holes, real) == pytest.approx(
        clip_frechet_distance(judge, filled, real))
    with pytest.raises(InputError):
        clip_frechet_distance(judge, real[0], real)


def test_evaluate_animation_adds_the_clip_distance_of_every_method(tiny_judge, tmp_path):
    pytest.importorskip("cv2")
    from flow_animator_fixture import fit_tiny_animator, tiny_clouds

    from pyro_videossm.experiments.animation_recipe import evaluate_animation

    model = tmp_path / "m.pt"
    fit_tiny_animator(tiny_clouds(), model, keep="last", epochs=1, lr=0.01)
    clips = simulate_clouds(clips=3, frames=4, size=16, seed=5).frames.values
    judge, _ = tiny_judge
    scores, generated = evaluate_animation(model, clips, judge=judge)
    for name, g in generated.items():
        assert scores[name]["clip_fd"] == pytest.approx(clip_frechet_distance(judge, g, clips))
    assert "clip_fd" not in evaluate_animation(model, clips)[0]["still"]
