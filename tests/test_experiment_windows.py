"""experiments/windows.py: the one window builder. The windows the former field and sequence
loaders both produced (written out here), streaming == in memory, normalisation round trips
and is fitted on the training part only, and the validation split never shares a time step
with training."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import xarray as xr

from pyro_videossm.errors import InputError
from pyro_videossm.experiments.normalization import fit_scaling
from pyro_videossm.experiments.windows import build_windows, validation_size


def _field(values: np.ndarray, name: str = "precip") -> xr.Dataset:
    dims = ("time", "y", "x") if values.ndim == 3 else ("sample", "time", "y", "x")
    return xr.Dataset({name: (dims, values, {"units": "mm/h"})})


def _expected(values: np.ndarray, pairs) -> np.ndarray:
    """``values[s, t0:t0 + length]`` for each ``(s, t0)``: the explicit expectation."""
    return np.stack([values[s, t0:t0 + n] for s, t0, n in pairs])


def test_samples_windows_as_both_old_loaders_cut_them():
    # Both former loaders: the last max(1, round(f * S)) samples validate; windows of each
    # sample start every `stride` steps, sample by sample; identity scaling with "none".
    rng = np.random.default_rng(0)
    v = rng.random((5, 8, 4, 3))
    data = build_windows(_field(v), 3, 2, stride=2, valid_fraction=0.2, normalize="none")
    assert data.kind == "field" and data.frame_shape == (4, 3) and data.grid == (4, 3)
    train_pairs = [(s, t, 5) for s in range(4) for t in (0, 2)]
    valid_pairs = [(4, t, 5) for t in (0, 2)]
    np.testing.assert_allclose(data.train["x"].numpy(), _expected(v, train_pairs), rtol=1e-6)
    np.testing.assert_allclose(data.valid["x"].numpy(), _expected(v, valid_pairs), rtol=1e-6)
    assert data.train["mask"].all() and data.train["x"].dtype == torch.float32
    assert data.train_windows.tolist() == [[s, t] for s, t, _ in train_pairs]
    assert data.valid_windows.tolist() == [[s, t] for s, t, _ in valid_pairs]
    assert (data.n_train, data.n_valid) == (8, 2)


def test_one_series_split_where_the_old_loaders_agreed():
    # One long series, T = 100, f = 0.1, length 5: both held out the last 10 steps.
    v = np.arange(100 * 2 * 2, dtype=float).reshape(100, 2, 2)
    data = build_windows(_field(v), 3, 2, valid_fraction=0.1)
    assert data.train_windows[:, 1].tolist() == list(range(0, 86))
    assert data.valid_windows[:, 1].tolist() == list(range(90, 96))
    np.testing.assert_array_equal(data.valid["x"][0].numpy(), v[90:95])
    # a validation part shorter than one window is extended to one window
    assert validation_size(40, 0.05, by="time", length=5) == 5
    assert validation_size(40, 0.0, by="time", length=5) == 0
    assert validation_size(7, 0.1, by="series") == 1


@pytest.mark.parametrize("stride", [1, 3])
@pytest.mark.parametrize("fraction", [0.05, 0.2, 0.5])
def test_validation_never_shares_a_time_step_with_training(stride, fraction):
    v = np.random.default_rng(1).random((60, 3, 3))
    length = 6
    data = build_windows(_field(v), 4, 2, stride=stride, valid_fraction=fraction)
    train_last = (data.train_windows[:, 1] + length - 1).max()
    assert data.valid_windows[:, 1].min() > train_last
    # samples: no sample is in both parts
    s = build_windows(_field(np.random.default_rng(2).random((7, 9, 3, 3))), 4, 2,
                      valid_fraction=fraction)
    assert not set(s.train_windows[:, 0]) & set(s.valid_windows[:, 0])
    assert set(s.valid_windows[:, 0]) == set(range(7 - validation_size(7, fraction,
                                                                         by="series"), 7))


def test_streaming_gives_the_same_windows():
    v = np.random.default_rng(3).random((4, 7, 5, 5))
    v[1, 2] = np.nan  # an all-missing frame: its windows are skipped
    v[0, 0, 0, 0] = np.nan  # one missing pixel: masked
    ds = _field(v)
    mem = build_windows(ds, 2, 1, normalize="robust")
    streamed = build_windows(ds, 2, 1, normalize="robust", in_memory_bytes=0)
    assert isinstance(mem.train, dict) and not isinstance(streamed.train, dict)
    assert len(streamed.train) == mem.n_train and mem.scaling == streamed.scaling
    for i in range(mem.n_train):
        for k in ("x", "mask"):
            torch.testing.assert_close(streamed.train[i][k], mem.train[k][i])
    # no training window of sample 1 contains time 2; the pixel is masked, its value 0
    assert not any(s == 1 and t <= 2 < t + 3 for s, t in mem.train_windows)
    assert not mem.train["mask"][0, 0, 0, 0] and mem.train["x"][0, 0, 0, 0] == 0


@pytest.mark.parametrize("normalize", ["robust", "minmax", "log", "none"])
def test_normalisation_round_trips_and_is_fitted_on_training_only(normalize):
    rng = np.random.default_rng(4)
    v = rng.gamma(2.0, 2.0, size=(6, 5, 3, 3))
    data = build_windows(_field(v), 3, 2, valid_fraction=1 / 3, normalize=normalize)
    back = data.scaling.inverse(data.train["x"].double()).numpy()
    np.testing.assert_allclose(back, v[:4], rtol=1e-5, atol=1e-5)
    # the validation samples do not move the scaling
    w = v.copy()
    w[4:] *= 1000.0
    assert build_windows(_field(w), 3, 2, valid_fraction=1 / 3,
                         normalize=normalize).scaling == data.scaling
    train = v[:4]
    if normalize == "none":
        assert data.scaling.is_identity
    elif normalize == "minmax":
        assert (data.scaling.offset, data.scaling.scale) == pytest.approx(
            (train.min(), train.max() - train.min()))
    elif normalize == "log":
        lo, hi = np.log(train.min() + 0.01), np.log(train.max() + 0.01)
        assert (data.scaling.offset, data.scaling.scale) == pytest.approx((lo, hi - lo))
    else:  # 20 frames < 256: fitted on all training values
        q01, q99 = np.quantile(train, [0.01, 0.99])
        assert (data.scaling.offset, data.scaling.scale) == pytest.approx((q01, q99 - q01))


def test_fit_scaling_rules():
    v = np.concatenate([np.linspace(0.0, 1.0, 1001), [1e9, -1e9, np.nan]])
    s = fit_scaling(v, "robust")
    assert abs(s.offset) < 0.02 and abs(s.scale - 1.0) < 0.04
    assert fit_scaling(v, "none").is_identity
    with pytest.raises(InputError, match="infinite"):
        fit_scaling(np.array([0.0, np.inf]), "minmax")
    with pytest.raises(InputError, match="all missing"):
        fit_scaling(np.array([np.nan]), "robust")
    with pytest.raises(InputError, match="log normalisation"):
        fit_scaling(np.array([-1.0, 2.0]), "log")
    with pytest.raises(InputError, match="--normalize"):
        fit_scaling(v, "zscore")


def test_chaotic_series_windows():
    from pyro_videossm.data.windows import cut_windows

    rng = np.random.default_rng(5)
    obs = rng.normal(size=(40, 3))
    obs[1::2] = np.nan  # observed every other cycle
    obs[10:20] = np.nan  # a gap longer than a window
    ds = xr.Dataset({"obs": (("time", "component"), obs)})
    data = build_windows(ds, 5, valid_fraction=0.25)
    assert data.kind == "series" and data.frame_shape == (3,)
    # the training part: cut_windows of the first 30 cycles, windows without any value dropped
    x, mask = cut_windows(ds["obs"].isel(time=slice(0, 30)), 5, 1)
    keep = mask.flatten(1).any(1)
    torch.testing.assert_close(data.train["x"], x[keep])
    torch.testing.assert_close(data.train["mask"], mask[keep])
    assert data.valid_windows[:, 1].tolist() == list(range(30, 36))
    # validation windows may be cut with their own stride (e.g. not overlapping)
    wide = build_windows(ds, 5, valid_fraction=0.25, valid_stride=5)
    assert wide.valid_windows[:, 1].tolist() == [30, 35]
    torch.testing.assert_close(wide.train["x"], data.train["x"])


def test_video_clips_with_labels():
    from pyro_videossm.data.sprites import frames_tensor, make_sprites

    ds = make_sprites("train", size=8, characters=2)
    data = build_windows(ds, ds.sizes["time"], valid_fraction=0.0, labels=["motion"])
    assert data.kind == "video" and data.valid is None and data.n_valid == 0
    torch.testing.assert_close(data.train["x"], frames_tensor(ds))
    assert data.train["mask"].all()
    np.testing.assert_array_equal(data.train["motion"].numpy(), ds["motion"].values)
    # windows shorter than the clip: 2 per clip of 8 frames with length 4, stride 4
    cut = build_windows(ds, 4, stride=4, valid_fraction=0.0, labels=["motion"])
    assert cut.n_train == 2 * ds.sizes["clip"]
    np.testing.assert_array_equal(cut.train["motion"].numpy(),
                                  np.repeat(ds["motion"].values, 2))


def test_bad_input_is_one_line():
    v = np.random.default_rng(6).random((10, 3, 3))
    with pytest.raises(InputError, match="fewer than context \\+ leads"):
        build_windows(_field(v), 8, 4)
    with pytest.raises(InputError, match="valid-fraction"):
        build_windows(_field(v), 2, 1, valid_fraction=1.0)
    with pytest.raises(InputError, match="no training window"):
        build_windows(_field(v), 4, 2, valid_fraction=0.5)
    with pytest.raises(InputError, match="no training sample"):
        build_windows(_field(np.random.default_rng(7).random((2, 6, 3, 3))), 2, 1,
                      valid_fraction=0.8)
    with pytest.raises(InputError, match="missing variable"):
        build_windows(_field(v), 2, 1, variable="rain")
    with pytest.raises(InputError, match="expected"):
        build_windows(xr.Dataset({"v": (("time", "a", "b", "c"), np.zeros((5, 1, 1, 1)))}), 2)


def test_grey_clips_as_video():
    from pyro_videossm.data.sprites import frames_tensor

    v = np.random.default_rng(8).random((3, 5, 4, 4)).astype(np.float32)
    ds = xr.Dataset({"frames": (("clip", "time", "y", "x"), v)})
    assert build_windows(ds, 5, valid_fraction=0.0).kind == "field"
    data = build_windows(ds, 5, valid_fraction=0.0, kind="video")
    assert data.frame_shape == (1, 4, 4)
    torch.testing.assert_close(data.train["x"], frames_tensor(ds))
    with pytest.raises(InputError, match="not series"):
        build_windows(ds, 5, kind="series")


@pytest.mark.parametrize("chunk", [1, 3, 10, 25, 1000])
def test_frame_validity_reads_in_blocks(chunk):
    from pyro_videossm.data.fields import frame_validity

    v = np.random.default_rng(9).random((7, 10, 3, 3))
    v[v[..., 0, 0] > 0.8] = np.nan
    v[2, 3] = np.nan
    da = xr.DataArray(v, dims=("sample", "time", "y", "x"))
    reference = ~np.isnan(v).all((2, 3))
    np.testing.assert_array_equal(frame_validity(da, chunk), reference)
    np.testing.assert_array_equal(frame_validity(da[2], chunk), reference[2:3])
