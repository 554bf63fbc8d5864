"""Procedural sprites with a zero-shot split of (motion, character attribute) combinations.

A conditional generator of sprites is conditioned on an *action* (the ``motion``, 9 classes:
3 actions x 3 directions, chance 1/9 = 11.1 %) and a *content* attribute (by default the
``top`` colour, 6 classes, chance 1/6 = 16.7 %). Of the 9 x 6 = 54 (motion, attribute)
combinations, a fixed third (18) is **unseen**: no training clip shows it. The rule is

    unseen(motion, value)  <=>  (value + action + 2 * direction) % 3 == 0

with ``action = motion // 3`` and ``direction = motion % 3``
(:data:`~pyro_videossm.data.sprites.MOTIONS` order). It is balanced: every motion has 2 unseen
values, every value 3 unseen motions, every (action, value) pair is seen in 2 of the 3
directions and every (direction, value) pair with 2 of the 3 actions, so each factor of an
unseen combination is shown in training, only the combination is not. The pairs depend on
no seed.

Clips come from :func:`~pyro_videossm.data.sprites.make_sprites`'s character split (1000
training characters, 296 test characters, shuffled with ``seed``): the **training** set is the
training characters' clips of seen combinations only (2/3 of them: 6000 clips at full size);
**test-seen** and **test-unseen** are the test characters' clips of seen (1776) and unseen
(888) combinations. No test character appears in training. One Dataset holds all three
(variables ``split``, 0 train / 1 test, and ``unseen``, 0 seen / 1 unseen, on ``clip``);
:func:`zero_shot_splits` cuts it into the three.

The judge that scores generated clips is trained on *all* combinations of real clips
(``videossm simulate sprites --split all``): it is the referee, not the model under test.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from pyro_videossm.data.sprites import (
    DIRECTIONS,
    MOTIONS,
    STATIC_FACTORS,
    add_sprite_frames,
    sprite_labels,
)
from pyro_videossm.errors import InputError

#: The action label of the split (the condition a generator gets as its action).
ACTION_LABEL = "motion"
#: The default content attribute paired with the motion.
DEFAULT_ATTRIBUTE = "top"
#: The three parts of the split, the keys of :func:`zero_shot_splits`.
PARTS = ("train", "test_seen", "test_unseen")
#: Chance accuracies: the action (9 motions) and any 6-valued content attribute.
CHANCE = {"motion": 1 / len(MOTIONS), **{k: 1 / len(v) for k, v in STATIC_FACTORS.items()}}


def _check_attribute(attribute: str) -> int:
    if attribute not in STATIC_FACTORS:
        raise InputError(f"unknown sprite attribute {attribute!r} (choose from "
                         f"{', '.join(STATIC_FACTORS)})")
    return len(STATIC_FACTORS[attribute])


def unseen_mask(motion, value) -> np.ndarray:
    """Whether each (motion, attribute value) combination is unseen in training (bool array,
    broadcast shape of the two integer arrays)."""
    motion, value = np.asarray(motion, np.int64), np.asarray(value, np.int64)
    action, direction = motion // len(DIRECTIONS), motion % len(DIRECTIONS)
    return (value + action + 2 * direction) % 3 == 0


def unseen_pairs(attribute: str = DEFAULT_ATTRIBUTE) -> np.ndarray:
    """The table ``(9 motions, K values)`` of unseen combinations (bool; 18 of 54 are True)."""
    k = _check_attribute(attribute)
    return unseen_mask(np.arange(len(MOTIONS))[:, None], np.arange(k)[None, :])


def unseen_pair_names(attribute: str = DEFAULT_ATTRIBUTE) -> list[tuple[str, str]]:
    """The unseen combinations as ``(motion name, value name)``, motion-major."""
    table = unseen_pairs(attribute)
    values = STATIC_FACTORS[attribute]
    return [(MOTIONS[m], values[v]) for m, v in zip(*np.nonzero(table))]


def _unseen_variable(flags: np.ndarray, attribute: str) -> tuple:
    return (("clip",), flags.astype(np.int8),
            {"long_name": f"(motion, {attribute}) combination never shown in training",
             "units": "1", "flag_values": np.arange(2, dtype=np.int8),
             "flag_meanings": "seen unseen"})


def zero_shot_labels(*, characters: int | None = None, seed: int = 0,
                     attribute: str = DEFAULT_ATTRIBUTE) -> xr.Dataset:
    """Labels (no pixels) of the zero-shot sprites:
    :func:`~pyro_videossm.data.sprites.sprite_labels` of the ``all`` split without the training
    clips of unseen combinations, plus ``unseen``.

    ``characters`` keeps the first characters of the shuffled split (1000 : 296 train : test).
    """
    _check_attribute(attribute)
    ds = sprite_labels("all", characters=characters, seed=seed)
    unseen = unseen_mask(ds[ACTION_LABEL].values, ds[attribute].values)
    keep = ~(unseen & (ds["split"].values == 0))
    ds = ds.isel(clip=np.flatnonzero(keep))
    ds = ds.assign_coords(clip=np.arange(ds.sizes["clip"]))
    ds["unseen"] = _unseen_variable(unseen[keep], attribute)
    table = unseen_pairs(attribute)
    ds.attrs.update({
        "title": "procedural sprites, zero-shot split",
        "action_label": ACTION_LABEL, "content_label": attribute,
        "chance_action": CHANCE[ACTION_LABEL], "chance_content": CHANCE[attribute],
        "unseen_rule": "(value + action + 2 * direction) % 3 == 0",
        "unseen_pairs": " ".join(f"{m}:{v}" for m, v in unseen_pair_names(attribute)),
        "n_unseen_pairs": int(table.sum()), "n_pairs": int(table.size),
    })
    return ds


def make_zero_shot_sprites(*, size: int = 64, frames: int = 8, characters: int | None = None,
                           seed: int = 0, attribute: str = DEFAULT_ATTRIBUTE,
                           lazy: bool = False, chunk: int = 64) -> xr.Dataset:
    """The zero-shot sprites as one Dataset: the labels of :func:`zero_shot_labels` and
    ``frames(clip, time, channel, y, x)`` in [0, 1] (``size`` x ``size`` pixels, ``frames``
    frames; see :func:`~pyro_videossm.data.sprites.make_sprites`)."""
    ds = zero_shot_labels(characters=characters, seed=seed, attribute=attribute)
    return add_sprite_frames(ds, size=size, frames=frames, lazy=lazy, chunk=chunk)


def zero_shot_splits(ds: xr.Dataset) -> dict[str, xr.Dataset]:
    """``{"train", "test_seen", "test_unseen"}``: the parts of a zero-shot sprites Dataset
    (from :func:`make_zero_shot_sprites` or a file written by ``videossm simulate
    sprites-zero-shot``), each with all label variables."""
    for name in ("split", "unseen"):
        if name not in ds.data_vars:
            raise InputError(f"not a zero-shot sprites dataset: missing variable {name!r} "
                             "(make it with videossm simulate sprites-zero-shot)")
    split, unseen = np.asarray(ds["split"].values), np.asarray(ds["unseen"].values)
    if np.any((split == 0) & (unseen == 1)):
        raise InputError("not a zero-shot split: some training clips show unseen combinations")
    masks = {"train": split == 0, "test_seen": (split == 1) & (unseen == 0),
             "test_unseen": (split == 1) & (unseen == 1)}
    return {k: ds.isel(clip=np.flatnonzero(m)) for k, m in masks.items()}


def zero_shot_sprites(*, size: int = 64, frames: int = 8, characters: int | None = None,
                      seed: int = 0, attribute: str = DEFAULT_ATTRIBUTE) -> dict[str, xr.Dataset]:
    """The three parts of :data:`PARTS` drawn now (not lazily): ``{"train": ..., "test_seen":
    ..., "test_unseen": ...}``, each with ``frames(clip, time, channel, y, x)``, the action
    label ``motion``, the content label (``attribute``) and the other sprite labels."""
    return zero_shot_splits(make_zero_shot_sprites(size=size, frames=frames,
                                                   characters=characters, seed=seed,
                                                   attribute=attribute))


def mark_unseen(ds: xr.Dataset, attribute: str = DEFAULT_ATTRIBUTE) -> xr.Dataset:
    """``ds`` with the ``unseen`` variable computed from its ``motion`` and ``attribute`` labels
    (e.g. generated clips labelled with their conditions, before scoring them seen/unseen)."""
    _check_attribute(attribute)
    for name in (ACTION_LABEL, attribute):
        if name not in ds.data_vars:
            raise InputError(f"missing label variable {name!r} to tell unseen combinations")
    flags = unseen_mask(ds[ACTION_LABEL].values, ds[attribute].values)
    return ds.assign(unseen=_unseen_variable(flags, attribute))
