"""Procedural sprites: factors, motions, the literature split, files and bad input."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
import xarray as xr

from pyro_videossm.cli import main
from pyro_videossm.data.conventions import open_dataset, write_netcdf
from pyro_videossm.data.sprites import (
    MOTIONS,
    N_CHARACTERS,
    STATIC_FACTORS,
    all_characters,
    frames_tensor,
    labels_tensor,
    make_sprites,
    render_sprites,
    select_split,
    split_characters,
    sprite_labels,
)
from pyro_videossm.errors import InputError


def test_factors_are_independent_and_characters_distinct():
    chars = all_characters()
    assert chars.shape == (N_CHARACTERS, 4) == (1296, 4)
    assert len({tuple(c) for c in chars}) == 1296
    # independence: every pair of factors takes every pair of values equally often
    for i, j in itertools.combinations(range(4), 2):
        joint = np.zeros((6, 6), int)
        np.add.at(joint, (chars[:, i], chars[:, j]), 1)
        assert (joint == 1296 // 36).all()
    # drawn: all 1296 characters look different (one frame, small size)
    n, k = len(chars), 216
    img = np.concatenate([render_sprites(chars[s:s + k], np.zeros(k, int), np.zeros(k, int),
                                         size=16, frames=1) for s in range(0, n, k)])
    flat = np.round(img.reshape(n, -1) * 255).astype(np.uint8)
    assert len(np.unique(flat, axis=0)) == 1296


@pytest.mark.parametrize("factor", range(4))
def test_each_factor_value_is_visibly_distinct(factor):
    base = np.zeros((6, 4), int)
    base[:, factor] = np.arange(6)
    img = render_sprites(base, np.zeros(6, int), np.ones(6, int), size=16, frames=2)
    for a, b in itertools.combinations(range(6), 2):
        diff = np.abs(img[a] - img[b]).sum(1)  # (T, y, x): colour distance per pixel
        assert (diff > 0.15).sum() >= 4, (list(STATIC_FACTORS)[factor], a, b)


def test_nine_motions_differ_and_move():
    n = len(MOTIONS)
    factors = np.tile([[1, 2, 3, 4]], (n, 1))
    motion = np.arange(n)
    clips = render_sprites(factors, motion // 3, motion % 3, size=16)
    assert clips.shape == (9, 8, 3, 16, 16)
    assert 0 <= clips.min() and clips.max() <= 1
    for a, b in itertools.combinations(range(n), 2):
        assert np.abs(clips[a] - clips[b]).mean() > 0.005, (MOTIONS[a], MOTIONS[b])
    # the pose changes from frame to frame in every motion
    steps = np.abs(np.diff(clips, axis=1)).mean(axis=(2, 3, 4))  # (9, 7)
    assert (steps > 1e-3).sum(1).min() >= 5
    # right is the mirror image of left
    np.testing.assert_array_equal(clips[motion % 3 == 2], clips[motion % 3 == 1][..., ::-1])


def test_split_sizes_and_disjointness_at_literature_sizes():
    train, test = sprite_labels("train"), sprite_labels("test")
    assert train.sizes["clip"] == 9000 and test.sizes["clip"] == 2664
    tr_chars, te_chars = set(train["character"].values), set(test["character"].values)
    assert len(tr_chars) == 1000 and len(te_chars) == 296
    assert not tr_chars & te_chars and len(tr_chars | te_chars) == 1296
    for ds in (train, test):
        assert (ds["motion"] == 3 * ds["action"] + ds["direction"]).all()
        # every character in every motion exactly once
        pairs = set(zip(ds["character"].values.tolist(), ds["motion"].values.tolist()))
        assert len(pairs) == ds.sizes["clip"]
        # the static labels agree with the character table
        chars = all_characters()[ds["character"].values]
        for j, name in enumerate(STATIC_FACTORS):
            np.testing.assert_array_equal(ds[name].values, chars[:, j])
    both = sprite_labels("all")
    assert both.sizes["clip"] == 11664 and int((both["split"] == 1).sum()) == 2664
    # the split depends on the seed only
    a, b = split_characters(0), split_characters(0)
    np.testing.assert_array_equal(a[0], b[0])
    assert set(split_characters(1)[0].tolist()) != set(a[0].tolist())


def test_make_sprites_file_round_trip(tmp_path):
    ds = make_sprites("all", size=16, characters=3)
    assert ds["frames"].dims == ("clip", "time", "channel", "y", "x")
    assert ds.sizes["clip"] == 27 and set(ds["split"].values.tolist()) == {0, 1}
    assert ds["frames"].attrs["units"] == "1" and "flag_meanings" in ds["motion"].attrs
    lazy = make_sprites("all", size=16, characters=3, lazy=True, chunk=5)
    np.testing.assert_array_equal(lazy["frames"].values, ds["frames"].values)
    write_netcdf(lazy, tmp_path / "s.nc")
    back = open_dataset(tmp_path / "s.nc").load()
    np.testing.assert_allclose(back["frames"].values, ds["frames"].values, atol=1e-6)
    for name in ("motion", "skin", "hair", "split"):
        np.testing.assert_array_equal(back[name].values, ds[name].values)
    x = frames_tensor(back)
    assert x.shape == (27, 8, 3, 16, 16) and x.dtype == torch.float32
    assert select_split(back, "test").sizes["clip"] == 9


def test_cli_simulate_sprites(tmp_path):
    out = tmp_path / "sp.nc"
    assert main(["simulate", "sprites", "-o", str(out), "--size", "16", "--characters", "2",
                 "--split", "test", "--no-progress"]) == 0
    ds = open_dataset(out)
    assert ds.sizes["clip"] == 18 and ds.sizes["x"] == 16
    assert main(["simulate", "sprites", "-o", str(tmp_path / "bad.nc"), "--characters",
                 "400", "--split", "test"]) == 2
    assert not (tmp_path / "bad.nc").exists()


def test_bad_input():
    with pytest.raises(InputError, match="split"):
        sprite_labels("valid")
    with pytest.raises(InputError, match="characters"):
        sprite_labels("test", characters=297)
    ds = make_sprites("test", size=8, characters=1)
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        frames_tensor(ds.assign(frames=ds["frames"] * 2))
    nan = ds["frames"].copy()
    nan[0, 0, 0, 0, 0] = np.nan
    with pytest.raises(InputError, match="NaN"):
        frames_tensor(ds.assign(frames=nan))
    with pytest.raises(InputError, match="dims"):
        frames_tensor(ds.assign(frames=ds["frames"].transpose("clip", "channel", "time", "y",
                                                               "x")))
    with pytest.raises(InputError, match="missing variable 'frames'"):
        frames_tensor(xr.Dataset({"x": ("clip", [1])}))
    with pytest.raises(InputError, match="expects 32x32"):
        frames_tensor(ds, size=32)
    with pytest.raises(InputError, match="missing label"):
        labels_tensor(ds.drop_vars("motion"), ["motion"])
    with pytest.raises(InputError, match="out of range"):
        labels_tensor(ds.assign(motion=ds["motion"] + 9), ["motion"], n_classes={"motion": 9})
