"""The zero-shot split of the sprites: a fixed, balanced third of the (motion, top) pairs is
never shown in training."""

from __future__ import annotations

import numpy as np
import pytest

from pyro_videossm.cli import main
from pyro_videossm.data.conventions import open_dataset
from pyro_videossm.data.sprites import DIRECTIONS, MOTIONS, make_sprites
from pyro_videossm.data.sprites_zero_shot import (
    CHANCE,
    unseen_pair_names,
    unseen_pairs,
    zero_shot_labels,
    zero_shot_splits,
    zero_shot_sprites,
)
from pyro_videossm.errors import InputError


def test_unseen_pairs_are_a_balanced_third():
    table = unseen_pairs("top")
    assert table.shape == (9, 6) and table.sum() == 18
    assert (table.sum(1) == 2).all() and (table.sum(0) == 3).all()
    # every (action, value) and (direction, value) pair is still shown in training
    t = table.reshape(3, 3, 6)  # (action, direction, value)
    assert (t.sum(1) == 1).all() and (t.sum(0) == 1).all()
    assert unseen_pair_names()[0] == ("walk_front", "red")
    assert CHANCE["motion"] == pytest.approx(1 / 9) and CHANCE["top"] == pytest.approx(1 / 6)
    assert [MOTIONS[m] for m in np.nonzero(table[:, 0])[0]] == ["walk_front", "cast_left",
                                                                 "slash_right"]
    assert len(DIRECTIONS) == 3


def test_full_split_sizes_and_no_unseen_pair_in_training():
    ds = zero_shot_labels()
    parts = zero_shot_splits(ds)
    assert {k: v.sizes["clip"] for k, v in parts.items()} == {
        "train": 6000, "test_seen": 1776, "test_unseen": 888}
    table = unseen_pairs()
    for name, part in parts.items():
        shown = table[part["motion"].values, part["top"].values]
        assert shown.all() if name == "test_unseen" else not shown.any()
    # all 54 pairs are in the test set, only the 36 seen ones in training
    pairs = {(int(m), int(c)) for m, c in zip(parts["train"]["motion"].values,
                                              parts["train"]["top"].values)}
    assert len(pairs) == 36
    test = np.concatenate([parts["test_seen"]["character"].values,
                           parts["test_unseen"]["character"].values])
    assert not set(test) & set(parts["train"]["character"].values)


def test_frames_are_the_sprites_frames():
    parts = zero_shot_sprites(size=8, frames=2, characters=6, seed=3)
    full = make_sprites("all", size=8, frames=2, characters=6, seed=3)
    for part in parts.values():
        for i in range(part.sizes["clip"]):
            j = np.flatnonzero((full["character"].values == part["character"].values[i])
                               & (full["motion"].values == part["motion"].values[i]))
            np.testing.assert_array_equal(part["frames"].values[i], full["frames"].values[j[0]])


def test_cli_and_bad_input(tmp_path):
    out = tmp_path / "z.nc"
    assert main(["simulate", "sprites-zero-shot", "--size", "8", "--frames", "2",
                 "--characters", "4", "-o", str(out), "--no-progress"]) == 0
    ds = open_dataset(out)
    assert ds.attrs["n_unseen_pairs"] == 18 and ds["unseen"].attrs["flag_meanings"] == \
        "seen unseen"
    assert set(zero_shot_splits(ds)) == {"train", "test_seen", "test_unseen"}
    with pytest.raises(InputError, match="unknown sprite attribute"):
        unseen_pairs("hat")
    with pytest.raises(InputError, match="missing variable 'unseen'"):
        zero_shot_splits(ds.drop_vars("unseen"))
