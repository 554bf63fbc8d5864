"""Moving digits: ranges, reflection, speed, held-out split, seeds, file errors, bundled
digits, CLI."""

from __future__ import annotations

import numpy as np
import pytest

from pyro_videossm.cli import main
from pyro_videossm.data import open_dataset
from pyro_videossm.data.moving_digits import (
    BUNDLED_SOURCE,
    bundled_digits,
    load_digits,
    moving_digits,
    reflect,
    split_indices,
)
from pyro_videossm.errors import InputError


def synthetic_digits(n: int = 40, size: int = 28, seed: int = 0):
    """Filled squares of random size and brightness, 4 classes: enough to test the geometry."""
    rng = np.random.default_rng(seed)
    images = np.zeros((n, size, size), dtype=np.uint8)
    for i in range(n):
        a = rng.integers(2, size // 3)
        images[i, a:size - a, a:size - a] = rng.integers(60, 256)
    return images, np.arange(n) % 4


def test_frames_range_dims_and_attrs():
    ds = moving_digits(6, digits=synthetic_digits(), canvas=48, n_frames=7, n_context=4)
    f = ds["frames"]
    assert f.dims == ("clip", "time", "y", "x") and f.shape == (6, 7, 48, 48)
    assert 0.0 <= float(f.min()) and float(f.max()) <= 1.0 and float(f.max()) > 0.2
    assert ds["digit_label"].dims == ("clip", "digit") and ds.sizes["digit"] == 2
    assert ds["position"].shape == (6, 2, 7, 2)
    assert ds.attrs["n_context"] == 4 and ds.attrs["n_target"] == 3
    assert f.attrs["units"] == "1"


def test_reflection_is_a_triangle_wave():
    p = np.array([-3.0, 0.0, 5.0, 10.0, 13.0, 20.0, 27.0, 41.0])
    np.testing.assert_allclose(reflect(p, 10.0), [3, 0, 5, 10, 7, 0, 7, 1])


def test_digits_stay_inside_and_move_at_the_speed():
    canvas, size = 40, 12
    ds = moving_digits(30, digits=synthetic_digits(size=size), canvas=canvas, n_frames=25,
                       speed=3.6, seed=3)
    pos = ds["position"].values.astype(float)  # (clip, digit, time, 2), top-left
    limit = canvas - size
    assert pos.min() >= 0 and pos.max() <= limit + 1e-4
    step = np.linalg.norm(np.diff(pos, axis=2), axis=-1)  # (clip, digit, time-1)
    # Between reflections the displacement is exactly the speed; with a bounce it is shorter,
    # and the speed of the unfolded motion is the speed.
    np.testing.assert_allclose(np.linalg.norm(ds["velocity"].values, axis=-1), 3.6, rtol=1e-5)
    assert np.all(step <= 3.6 + 1e-4)
    assert np.mean(np.isclose(step, 3.6, atol=1e-4)) > 0.6
    # Some digits did bounce, and the rendered digit is where the position says.
    assert np.mean(step < 3.5) > 0.01
    frames = ds["frames"].values
    one = moving_digits(5, digits=synthetic_digits(size=size), canvas=canvas, n_frames=25,
                        n_digits=1, seed=4)
    f1, p1 = one["frames"].values, one["position"].values[:, 0]
    for c in range(5):
        for t in (0, 12, 24):
            rows, cols = np.nonzero(f1[c, t])
            r0, c0 = np.rint(p1[c, t]).astype(int)
            assert rows.min() >= r0 and rows.max() < r0 + size
            assert cols.min() >= c0 and cols.max() < c0 + size
    assert frames.shape == (30, 25, canvas, canvas)


def test_overlap_is_composited_by_maximum():
    images = np.zeros((2, 4, 4), dtype=np.uint8)
    images[0], images[1] = 100, 200
    ds = moving_digits(3, digits=(images, np.array([0, 1])), split="all", canvas=4,
                       n_frames=2, speed=0.0)
    f = ds["frames"].values
    lab = ds["digit_label"].values
    expect = np.where(lab.max(1) == 1, 200, 100) / 255.0
    np.testing.assert_allclose(f[:, 0, 0, 0], expect, rtol=1e-6)


def test_seeds_are_reproducible_and_differ():
    kw = dict(digits=synthetic_digits(), canvas=40, n_frames=5)
    a, b, c = moving_digits(4, seed=7, **kw), moving_digits(4, seed=7, **kw), moving_digits(
        4, seed=8, **kw)
    np.testing.assert_array_equal(a["frames"].values, b["frames"].values)
    assert not np.array_equal(a["frames"].values, c["frames"].values)
    t1, t2 = moving_digits(3, split="test", **kw), moving_digits(3, split="test", **kw)
    np.testing.assert_array_equal(t1["frames"].values, t2["frames"].values)


def test_split_is_disjoint_and_stratified():
    labels = np.repeat(np.arange(10), 50)
    tr, te = split_indices(labels, "train"), split_indices(labels, "test")
    assert np.intersect1d(tr, te).size == 0 and tr.size + te.size == labels.size
    assert np.all(np.bincount(labels[te]) == 10)
    ds = moving_digits(50, split="test", digits=(np.zeros((500, 8, 8), np.uint8) + 1, labels),
                       canvas=16, n_frames=2)
    assert set(np.unique(ds["digit_index"].values)) <= set(te)


def test_bad_digit_files(tmp_path):
    with pytest.raises(InputError, match="no such digit file"):
        load_digits(tmp_path / "missing.npz")
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip archive at all")
    with pytest.raises(InputError, match="not a readable"):
        load_digits(bad)
    np.savez(tmp_path / "nolabels.npz", images=np.zeros((3, 28, 28), np.uint8))
    with pytest.raises(InputError, match="missing array"):
        load_digits(tmp_path / "nolabels.npz")
    np.savez(tmp_path / "shape.npz", images=np.zeros((3, 28), np.uint8), labels=np.zeros(3, int))
    with pytest.raises(InputError, match="shape"):
        load_digits(tmp_path / "shape.npz")
    with pytest.raises(InputError, match="smaller than the digits"):
        moving_digits(2, digits=synthetic_digits(), canvas=20)


def test_bundled_digits_are_bilinear_upscales_of_sklearn_digits():
    from sklearn.datasets import load_digits as sklearn_digits

    found = sklearn_digits()
    images, labels = bundled_digits()
    assert images.shape == (1797, 28, 28) and images.dtype == np.uint8
    np.testing.assert_array_equal(labels, found.target)
    assert load_digits()[0].shape == images.shape           # no file: the bundled digits
    # reference: separable linear interpolation, output pixel i at input coordinate i * 7 / 19
    # (corners aligned), inner 20 x 20 box centred with a 4 px border, 0..16 -> 0..255
    grid = np.arange(20) * 7 / 19
    for k in (0, 1, 500, 1796):
        src = found.images[k]
        rows = np.stack([np.interp(grid, np.arange(8), src[:, j]) for j in range(8)], axis=1)
        ref = np.stack([np.interp(grid, np.arange(8), rows[i]) for i in range(20)])
        np.testing.assert_allclose(images[k, 4:24, 4:24], ref * 255 / 16, atol=0.51)
        assert not images[k, :4].any() and not images[k, 24:].any()
        assert not images[k, :, :4].any() and not images[k, :, 24:].any()
    assert bundled_digits(size=14)[0].shape == (1797, 14, 14)
    te = split_indices(labels, "test")
    assert np.all(np.abs(np.bincount(labels[te]) - 0.2 * np.bincount(labels)) <= 0.5)


def test_cli_default_digits_and_digit_file(tmp_path, capsys):
    out = tmp_path / "digits.nc"
    assert main(["simulate", "moving-digits", "-o", str(out), "--clips", "3", "--split",
                 "test"]) == 0
    ds = open_dataset(out)
    assert ds["frames"].shape == (3, 20, 64, 64) and ds.attrs["split"] == "test"
    assert ds.attrs["digit_source"] == BUNDLED_SOURCE
    images, labels = bundled_digits()
    assert set(np.unique(ds["digit_index"].values)) <= set(split_indices(labels, "test"))
    ref = moving_digits(3, split="test")
    np.testing.assert_allclose(ds["frames"].values, ref["frames"].values, atol=1e-6)
    # the same digits from a file: the same clips
    npz = tmp_path / "mine.npz"
    np.savez(npz, images=images, labels=labels)
    out2 = tmp_path / "digits2.nc"
    assert main(["simulate", "moving-digits", "-o", str(out2), "--clips", "3", "--split",
                 "test", "--mnist", str(npz)]) == 0
    ds2 = open_dataset(out2)
    assert ds2.attrs["digit_source"] == "mine.npz"
    np.testing.assert_array_equal(ds2["frames"].values, ds["frames"].values)


def test_real_mnist_split_and_cli(shared_data, tmp_path, capsys):
    """The MNIST subset of the benchmarks (beside the team's checkout only: skips elsewhere)."""
    mnist = shared_data / "mnist" / "mnist_5k.npz"
    images, labels = load_digits(mnist)
    assert images.shape == (5000, 28, 28)
    te = split_indices(labels, "test")
    assert te.size == 1000
    out = tmp_path / "digits.nc"
    assert main(["simulate", "moving-digits", "-o", str(out), "--clips", "3", "--split",
                 "test", "--mnist", str(mnist)]) == 0
    ds = open_dataset(out)
    assert ds["frames"].shape == (3, 20, 64, 64) and ds.attrs["split"] == "test"
    assert set(np.unique(ds["digit_index"].values)) <= set(te)
    ref = moving_digits(3, split="test", mnist_path=mnist)
    np.testing.assert_allclose(ds["frames"].values, ref["frames"].values, atol=1e-6)


def test_cli_missing_digit_file(tmp_path, capsys):
    out = tmp_path / "d.nc"
    rc = main(["simulate", "moving-digits", "-o", str(out), "--mnist",
               str(tmp_path / "nope.npz")])
    assert rc == 2 and not out.exists()
    assert "no such digit file" in capsys.readouterr().err
