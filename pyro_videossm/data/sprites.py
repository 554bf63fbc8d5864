"""Procedural sprites: cartoon characters with static factors and motions, drawn by our own code.

A character is one value of each of four static factors (6 values each, so 6**4 = 1296
characters): ``skin`` colour, ``top`` (shirt) colour, ``bottom`` (trousers) colour and
``hair`` (a style with its own colour). A clip shows one character performing one of 3
actions (``walk``, ``cast`` = raise both arms, ``slash`` = swing a sword) seen from one of 3
directions (``front``, ``left``, ``right``): 9 motion classes, ``motion = 3 * action +
direction``. Every clip is ``frames`` (default 8) RGB frames of ``size`` x ``size`` pixels
(default 64) on a black background, values in [0, 1].

The split follows the literature on the LPC sprites (Li & Mandt 2018): the 1296 characters
are shuffled with a seed, the first 1000 are for training and the other 296 for testing,
each in all 9 motions: 9000 training and 2664 test clips.

Drawing is vectorised over clips and frames: every body part is a disk, capsule (a thick
line segment) or rectangle evaluated on a super-sampled pixel grid for a whole chunk of
clips at once, painted back to front, then averaged down to ``size`` (anti-aliasing).
Right-facing clips are the mirror images of left-facing ones; side-view walks advance across
the frame in the facing direction (otherwise a walk to the left would be a walk to the right
mirrored and shifted by half a step cycle, told apart only by the face).

Datasets follow the toolkit's video convention: ``frames(clip, time, channel, y, x)`` in
[0, 1] and one integer label variable per factor on ``clip`` with CF ``flag_values`` /
``flag_meanings``. Intensities are multiples of 1/255 (8-bit levels); on disk they are packed
as compressed ``int16`` counts with ``scale_factor = 1/255`` and ``_FillValue = -1``
(xarray decodes them back to float32).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np
import torch
import xarray as xr
from torch import Tensor

from pyro_videossm import __version__
from pyro_videossm.data.conventions import CONVENTIONS
from pyro_videossm.errors import InputError

#: Static factors and the names of their values (each has 6).
STATIC_FACTORS: dict[str, tuple[str, ...]] = {
    "skin": ("pale", "dark", "green", "blue", "yellow", "lilac"),
    "top": ("red", "green", "blue", "yellow", "purple", "cyan"),
    "bottom": ("brown", "navy", "white", "orange", "pink", "teal"),
    "hair": ("short_brown", "long_blond", "mohawk_red", "bun_white", "bowl_purple",
             "spiky_green"),
}
ACTIONS: tuple[str, ...] = ("walk", "cast", "slash")
DIRECTIONS: tuple[str, ...] = ("front", "left", "right")
MOTIONS: tuple[str, ...] = tuple(f"{a}_{d}" for a in ACTIONS for d in DIRECTIONS)
#: All label variables of a sprites dataset, in a fixed order.
LABELS: tuple[str, ...] = ("action", "direction", "motion", *STATIC_FACTORS)
#: Number of classes of each label.
N_CLASSES: dict[str, int] = {
    "action": len(ACTIONS), "direction": len(DIRECTIONS), "motion": len(MOTIONS),
    **{k: len(v) for k, v in STATIC_FACTORS.items()},
}
N_CHARACTERS = int(np.prod([len(v) for v in STATIC_FACTORS.values()]))  # 1296
N_TRAIN_CHARACTERS = 1000
SPLITS = ("train", "test", "all")

# Colours (RGB in [0, 1]) of each static factor's values.
_SKIN = np.array([(1.0, 0.85, 0.7), (0.45, 0.28, 0.15), (0.35, 0.85, 0.25),
                  (0.35, 0.55, 1.0), (0.95, 0.9, 0.3), (0.8, 0.5, 0.9)], np.float32)
_TOP = np.array([(0.85, 0.15, 0.15), (0.1, 0.6, 0.2), (0.15, 0.3, 0.9),
                 (0.95, 0.85, 0.15), (0.55, 0.2, 0.7), (0.1, 0.8, 0.85)], np.float32)
_BOTTOM = np.array([(0.5, 0.27, 0.05), (0.1, 0.15, 0.6), (0.95, 0.95, 0.95),
                    (1.0, 0.6, 0.0), (1.0, 0.45, 0.75), (0.0, 0.55, 0.5)], np.float32)
_HAIR = np.array([(0.55, 0.3, 0.1), (0.98, 0.88, 0.45), (0.9, 0.1, 0.1),
                  (0.92, 0.92, 0.95), (0.55, 0.2, 0.75), (0.2, 0.85, 0.3)], np.float32)
_EYE = np.zeros(3, np.float32)
_SWORD = np.array((0.78, 0.8, 0.88), np.float32)
_SPARK = np.array((1.0, 1.0, 0.35), np.float32)

# Geometry on the unit canvas (x to the right, y down).
_HEAD_X, _HEAD_Y, _HEAD_R = 0.5, 0.23, 0.12
_SHOULDER_Y, _HIP_Y = 0.40, 0.63
_ARM_LEN, _ARM_R, _HAND_R = 0.23, 0.035, 0.04
_LEG_LEN, _LEG_R = 0.28, 0.045
_SWORD_LEN, _SWORD_R = 0.2, 0.018


def all_characters() -> np.ndarray:
    """All 1296 characters as an ``(1296, 4)`` int array of (skin, top, bottom, hair) values."""
    return np.array(list(itertools.product(*(range(len(v)) for v in STATIC_FACTORS.values()))),
                    dtype=np.int64)


def split_characters(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Character indices (rows of :func:`all_characters`) for training (1000) and testing (296).

    The characters are shuffled with ``seed``; the first 1000 are the training characters.
    """
    perm = np.random.default_rng(seed).permutation(N_CHARACTERS)
    return perm[:N_TRAIN_CHARACTERS], perm[N_TRAIN_CHARACTERS:]


def _chosen_characters(split: str, characters: int | None, seed: int
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Character indices of ``split`` (at most ``characters`` of them) and their split flags."""
    if split not in SPLITS:
        raise InputError(f"unknown split {split!r} (choose from {', '.join(SPLITS)})")
    train, test = split_characters(seed)
    if characters is not None and characters < 1:
        raise InputError(f"characters must be >= 1, got {characters}")
    if split == "all":
        n_train, n_test = len(train), len(test)
        if characters is not None:
            if characters > N_CHARACTERS:
                raise InputError(f"characters must be <= {N_CHARACTERS}, got {characters}")
            n_train = max(1, round(characters * N_TRAIN_CHARACTERS / N_CHARACTERS))
            n_test = characters - n_train
        idx = np.concatenate([train[:n_train], test[:n_test]])
        flags = np.concatenate([np.zeros(n_train, np.int8), np.ones(n_test, np.int8)])
        return idx, flags
    idx = train if split == "train" else test
    if characters is not None:
        if characters > len(idx):
            raise InputError(f"the {split} split has {len(idx)} characters, asked for "
                             f"{characters}")
        idx = idx[:characters]
    return idx, np.full(len(idx), 0 if split == "train" else 1, np.int8)


def _label_attrs(name: str) -> dict:
    names = {"action": ACTIONS, "direction": DIRECTIONS, "motion": MOTIONS,
             "split": ("train", "test"), **STATIC_FACTORS}[name]
    long = {"action": "action", "direction": "viewing direction",
            "motion": "motion class (3 * action + direction)", "split": "data split",
            "skin": "skin colour", "top": "top (shirt) colour",
            "bottom": "bottom (trousers) colour", "hair": "hair style and colour"}[name]
    return {"long_name": long, "units": "1", "flag_values": np.arange(len(names), dtype=np.int8),
            "flag_meanings": " ".join(names)}


def sprite_labels(split: str = "train", *, characters: int | None = None,
                  seed: int = 0) -> xr.Dataset:
    """Labels of the sprite clips of ``split`` without pixels (cheap: for checks and indexing).

    Returns a Dataset on dimension ``clip`` with ``character`` (row of
    :func:`all_characters`), ``split`` (0 train, 1 test), ``action``, ``direction``,
    ``motion`` and one variable per static factor. Clips are ordered character-major
    (all 9 motions of the first character, then the next).
    """
    idx, flags = _chosen_characters(split, characters, seed)
    factors = all_characters()[idx]  # (n_char, 4)
    n_motion = len(MOTIONS)
    motion = np.tile(np.arange(n_motion), len(idx))
    data = {
        "character": (("clip",), np.repeat(idx, n_motion).astype(np.int16),
                      {"long_name": "character index (row of all_characters())", "units": "1"}),
        "split": (("clip",), np.repeat(flags, n_motion), _label_attrs("split")),
        "action": (("clip",), (motion // len(DIRECTIONS)).astype(np.int8), _label_attrs("action")),
        "direction": (("clip",), (motion % len(DIRECTIONS)).astype(np.int8),
                      _label_attrs("direction")),
        "motion": (("clip",), motion.astype(np.int8), _label_attrs("motion")),
    }
    for j, name in enumerate(STATIC_FACTORS):
        data[name] = (("clip",), np.repeat(factors[:, j], n_motion).astype(np.int8),
                      _label_attrs(name))
    ds = xr.Dataset(data, coords={"clip": ("clip", np.arange(len(motion)),
                                           {"long_name": "clip number"})})
    ds.attrs.update({"Conventions": CONVENTIONS, "title": "procedural sprites",
                     "source": f"pyro_videossm {__version__} data.sprites", "seed": seed,
                     "split_name": split, "n_train_characters": int((flags == 0).sum()),
                     "n_test_characters": int((flags == 1).sum())})
    return ds


# ----------------------------------------------------------------------------------------------
# Drawing
# ----------------------------------------------------------------------------------------------


def _disk(X, Y, cx, cy, r):
    return (X - cx) ** 2 + (Y - cy) ** 2 <= r * r


def _rect(X, Y, x0, x1, y0, y1):
    return (X >= x0) & (X <= x1) & (Y >= y0) & (Y <= y1)


def _capsule(X, Y, ax, ay, bx, by, r):
    """Points within ``r`` of the segment from ``(ax, ay)`` to ``(bx, by)``."""
    dx, dy = bx - ax, by - ay
    t = ((X - ax) * dx + (Y - ay) * dy) / np.maximum(dx * dx + dy * dy, 1e-12)
    t = np.clip(t, 0.0, 1.0)
    return (X - ax - t * dx) ** 2 + (Y - ay - t * dy) ** 2 <= r * r


def _supersampling(size: int) -> int:
    return max(1, math.ceil(96 / size))


def render_sprites(factors: np.ndarray, action: np.ndarray, direction: np.ndarray, *,
                   size: int = 64, frames: int = 8) -> np.ndarray:
    """Draw clips of ``factors (N, 4)`` (skin, top, bottom, hair), ``action``, ``direction (N,)``.

    Returns float32 frames ``(N, frames, 3, size, size)`` in [0, 1], quantised to multiples
    of 1/255. All clips are drawn at
    once (vector operations over clips, frames and pixels); call it on chunks of clips to
    bound memory (about ``N * frames * 3 * (size * s)**2 * 4`` bytes, ``s`` the
    super-sampling factor, ``ceil(96 / size)``).
    """
    factors = np.asarray(factors, dtype=np.int64)
    action = np.asarray(action, dtype=np.int64)
    direction = np.asarray(direction, dtype=np.int64)
    n = len(factors)
    if factors.shape != (n, len(STATIC_FACTORS)) or action.shape != (n,) or direction.shape != (n,):
        raise InputError("render_sprites needs factors (N, 4), action (N,), direction (N,)")
    if size < 4 or frames < 1:
        raise InputError(f"size must be >= 4 and frames >= 1, got {size}, {frames}")
    for j, (name, values) in enumerate(STATIC_FACTORS.items()):
        if n and (factors[:, j].min() < 0 or factors[:, j].max() >= len(values)):
            raise InputError(f"factor {name} out of range 0..{len(values) - 1}")
    if n and (action.min() < 0 or action.max() > 2 or direction.min() < 0 or direction.max() > 2):
        raise InputError("action and direction must be in 0..2")
    ss = _supersampling(size)
    R = size * ss
    g = ((np.arange(R, dtype=np.float32) + 0.5) / R)
    X = g[None, None, None, :]  # (1, 1, 1, R)
    Y = g[None, None, :, None]  # (1, 1, R, 1)
    T = frames

    def p(a):  # per-clip or per-(clip, frame) parameter -> (n, T, 1, 1)
        return np.broadcast_to(np.asarray(a, np.float32), (n, T))[..., None, None]

    t = np.arange(T, dtype=np.float32)[None, :]
    phase = 2 * np.pi * (t + 0.5) / T  # (1, T)
    sin = np.sin(phase)
    side = (direction != 0)[:, None]  # (n, 1): left or right (drawn facing left, then mirrored)
    front = ~side
    walk, cast, slash = (action == 0)[:, None], (action == 1)[:, None], (action == 2)[:, None]
    hair = factors[:, 3]

    canvas = np.zeros((n, T, 3, R, R), np.float32)

    def paint(mask, colour):  # mask broadcastable to (n, T, R, R); colour (n, 3) or (3,)
        colour = np.broadcast_to(np.asarray(colour, np.float32), (n, 3))
        for c in range(3):
            canvas[:, :, c] = np.where(mask, colour[:, c, None, None, None], canvas[:, :, c])

    skin_c, top_c = _SKIN[factors[:, 0]], _TOP[factors[:, 1]]
    bottom_c, hair_c = _BOTTOM[factors[:, 2]], _HAIR[hair]
    hx, hy, hr = _HEAD_X, _HEAD_Y, _HEAD_R
    is_style = [p((hair == k)[:, None]) > 0.5 for k in range(6)]
    P_side, P_front = p(side) > 0.5, p(front) > 0.5

    # --- pose: arm angles (0 = hanging, pi/2 = horizontal outward/forward, pi = straight up) --
    cast_a = 0.1 + 2.5 * (1 - np.cos(phase)) / 2
    slash_a = 2.9 - 2.6 * t / max(T - 1, 1)
    # arm 1: screen-left arm (front) / far arm (side); arm 2: screen-right arm / near arm
    a1 = np.where(walk, np.where(side, 0.6 * sin, 0.15), np.where(cast, cast_a + 0.15 * side,
                  np.where(side, 0.0, 0.15)))
    a2 = np.where(walk, np.where(side, -0.6 * sin, 0.15), np.where(cast, cast_a, slash_a))
    # front walk: the swinging arm looks shorter (the hand rises)
    l1 = _ARM_LEN * np.where(walk & front, 1 - 0.3 * np.maximum(0, -sin), 1.0)
    l2 = _ARM_LEN * np.where(walk & front, 1 - 0.3 * np.maximum(0, sin), 1.0)
    # shoulders
    s1x = np.where(side, 0.5, 0.36)
    s2x = np.where(side, 0.5, 0.64)
    # hands: front arms rotate outward (arm 1 to -x, arm 2 to +x); side arms rotate forward (-x)
    h1x = s1x - l1 * np.sin(a1)
    h2x = s2x + np.where(side, -1.0, 1.0) * l2 * np.sin(a2)
    h1y = _SHOULDER_Y + l1 * np.cos(a1)
    h2y = _SHOULDER_Y + l2 * np.cos(a2)

    # --- legs: side views swing (walk) or stand apart; front views lift the feet (walk) ---
    leg_a = np.where(walk, 0.5 * sin, 0.15)
    hip1x = np.where(side, 0.5, 0.45)
    hip2x = np.where(side, 0.5, 0.55)
    f1x = np.where(side, hip1x - _LEG_LEN * np.sin(leg_a), hip1x)
    f2x = np.where(side, hip2x + _LEG_LEN * np.sin(leg_a), hip2x)
    lift1 = np.where(walk & front, 0.08 * np.maximum(0, sin), 0.0)
    lift2 = np.where(walk & front, 0.08 * np.maximum(0, -sin), 0.0)
    f1y = np.where(side, _HIP_Y + _LEG_LEN * np.cos(leg_a), _HIP_Y + _LEG_LEN - lift1)
    f2y = np.where(side, _HIP_Y + _LEG_LEN * np.cos(leg_a), _HIP_Y + _LEG_LEN - lift2)

    # --- side walks advance: the character moves across the frame in the facing direction ---
    x_off = np.where(walk & side, 0.07 - 0.14 * t / max(T - 1, 1), 0.0)
    X = X - p(x_off)  # shapes are drawn at X - x_off: (n, T, 1, R)

    # --- paint, back to front ---
    # long hair behind the head
    back_hair = is_style[1] & np.where(
        P_side, _rect(X, Y, hx, hx + hr + 0.03, hy - 0.02, hy + 0.17),
        _rect(X, Y, hx - hr - 0.025, hx + hr + 0.025, hy - 0.02, hy + 0.17))
    paint(back_hair, hair_c)
    # far arm in side views (behind the body)
    far_arm = P_side & (_capsule(X, Y, p(s1x), _SHOULDER_Y, p(h1x), p(h1y), _ARM_R))
    paint(far_arm, top_c)
    paint(P_side & _disk(X, Y, p(h1x), p(h1y), _HAND_R), skin_c)
    # legs and torso
    legs = (_capsule(X, Y, p(hip1x), _HIP_Y, p(f1x), p(f1y), _LEG_R)
            | _capsule(X, Y, p(hip2x), _HIP_Y, p(f2x), p(f2y), _LEG_R))
    paint(legs, bottom_c)
    torso = np.where(P_side, _rect(X, Y, 0.43, 0.57, 0.37, 0.65), _rect(X, Y, 0.385, 0.615, 0.37,
                                                                         0.65))
    paint(torso, top_c)
    # front arms (both in front views, the near one in side views) and hands
    arm1 = P_front & _capsule(X, Y, p(s1x), _SHOULDER_Y, p(h1x), p(h1y), _ARM_R)
    arm2 = _capsule(X, Y, p(s2x), _SHOULDER_Y, p(h2x), p(h2y), _ARM_R)
    paint(arm1 | arm2, top_c)
    hands = (P_front & _disk(X, Y, p(h1x), p(h1y), _HAND_R)) | _disk(X, Y, p(h2x), p(h2y), _HAND_R)
    paint(hands, skin_c)
    # sword (slash): continues the near / screen-right arm beyond the hand
    ux, uy = (h2x - s2x) / l2, (h2y - _SHOULDER_Y) / l2
    sword = (p(slash) > 0.5) & _capsule(X, Y, p(h2x), p(h2y), p(h2x + _SWORD_LEN * ux),
                                        p(h2y + _SWORD_LEN * uy), _SWORD_R)
    paint(sword, _SWORD)
    # sparks in the hands while casting (grow as the arms rise)
    spark_r = p(np.where(cast, 0.055 * (1 - np.cos(phase)) / 2, 0.0))
    sparks = (P_front & _disk(X, Y, p(h1x), p(h1y) - 0.03, spark_r)) | _disk(
        X, Y, p(h2x), p(h2y) - 0.03, spark_r)
    paint(sparks, _SPARK)
    # head, nose (side views)
    head = _disk(X, Y, hx, hy, hr) | (P_side & _disk(X, Y, hx - hr, hy + 0.035, 0.035))
    paint(head, skin_c)
    # hair on the head
    crown = _disk(X, Y, hx, hy, hr + 0.015)
    cap = crown & (Y < hy - 0.03)
    cap_side = cap | (P_side & crown & (X > hx + 0.03) & (Y < hy + 0.05))
    mohawk = np.where(P_side, _rect(X, Y, hx - 0.09, hx + 0.09, hy - hr - 0.07, hy - hr + 0.05),
                      _rect(X, Y, hx - 0.03, hx + 0.03, hy - hr - 0.1, hy - 0.04))
    bun = cap_side | np.where(P_side, _disk(X, Y, hx + hr - 0.01, hy - hr + 0.02, 0.05),
                              _disk(X, Y, hx, hy - hr - 0.03, 0.05))
    bowl_crown = _disk(X, Y, hx, hy, hr + 0.02)
    bowl = bowl_crown & ((Y < hy + 0.005) | ((Y < hy + 0.07) & np.where(
        P_side, X > hx - 0.02, np.abs(X - hx) > 0.075)))
    tri = np.abs(((X - hx) / 0.045) % 2.0 - 1.0)
    spikes = (Y > hy - hr - 0.09 + 0.09 * tri) & (Y < hy - 0.03) & (np.abs(X - hx) < hr + 0.01)
    on_head = ((is_style[0] | is_style[1]) & cap_side) | (is_style[2] & mohawk) | (
        is_style[3] & bun) | (is_style[4] & bowl) | (is_style[5] & (spikes | cap))
    paint(on_head, hair_c)
    # eyes: two (front) or one looking left (side)
    eyes = np.where(P_side, _disk(X, Y, hx - 0.06, hy + 0.02, 0.02),
                    _disk(X, Y, hx - 0.045, hy + 0.02, 0.018) | _disk(X, Y, hx + 0.045, hy + 0.02,
                                                                         0.018))
    paint(eyes, _EYE)

    right = direction == 2
    canvas[right] = canvas[right][..., ::-1]
    if ss > 1:
        canvas = canvas.reshape(n, T, 3, size, ss, size, ss).mean(axis=(4, 6))
    # quantise to the 256 levels of 8-bit images (stored exactly on disk)
    return (np.round(np.clip(canvas, 0.0, 1.0) * 255) / 255).astype(np.float32)


def make_sprites(split: str = "train", *, size: int = 64, frames: int = 8,
                 characters: int | None = None, seed: int = 0, lazy: bool = False,
                 chunk: int = 64) -> xr.Dataset:
    """Sprite clips of ``split`` (``train``: 9000 clips, ``test``: 2664, ``all``: 11664).

    Returns the labels of :func:`sprite_labels` plus ``frames(clip, time, channel, y, x)``
    (float32 in [0, 1]). ``characters`` keeps only the first characters of the shuffled
    split (with ``all``, split in proportion 1000 : 296). With ``lazy=True`` the frames are a
    dask array drawn ``chunk`` clips at a time when computed or written (the full 64 x 64 set
    is 4.6 GB as float32), otherwise they are drawn now, also in chunks.
    """
    ds = sprite_labels(split, characters=characters, seed=seed)
    return add_sprite_frames(ds, size=size, frames=frames, lazy=lazy, chunk=chunk)


def add_sprite_frames(ds: xr.Dataset, *, size: int = 64, frames: int = 8, lazy: bool = False,
                      chunk: int = 64) -> xr.Dataset:
    """``ds`` (labels as made by :func:`sprite_labels`, possibly a subset of its clips) with
    the drawn ``frames(clip, time, channel, y, x)`` added (see :func:`make_sprites`)."""
    if size < 4:
        raise InputError(f"size must be >= 4, got {size}")
    if frames < 2:
        raise InputError(f"frames must be >= 2, got {frames}")
    ds = ds.copy()
    factors = np.stack([ds[k].values for k in STATIC_FACTORS], axis=1).astype(np.int64)
    action, direction = ds["action"].values.astype(np.int64), ds["direction"].values.astype(
        np.int64)
    n = ds.sizes["clip"]
    shape = (n, frames, 3, size, size)
    if lazy:
        import dask
        import dask.array as da

        blocks = []
        for s in range(0, n, chunk):
            e = min(n, s + chunk)
            d = dask.delayed(render_sprites)(factors[s:e], action[s:e], direction[s:e],
                                             size=size, frames=frames)
            blocks.append(da.from_delayed(d, shape=(e - s, *shape[1:]), dtype=np.float32))
        frames_arr = da.concatenate(blocks, axis=0) if blocks else da.zeros(shape, np.float32)
    else:
        frames_arr = np.empty(shape, np.float32)
        for s in range(0, n, chunk):
            e = min(n, s + chunk)
            frames_arr[s:e] = render_sprites(factors[s:e], action[s:e], direction[s:e],
                                             size=size, frames=frames)
    ds["frames"] = (("clip", "time", "channel", "y", "x"), frames_arr,
                    {"long_name": "RGB intensity", "units": "1", "valid_min": 0.0,
                     "valid_max": 1.0})
    ds["frames"].encoding.update({"dtype": "int16", "scale_factor": np.float32(1 / 255),
                                  "add_offset": np.float32(0.0), "_FillValue": np.int16(-1),
                                  "zlib": True, "complevel": 4,
                                  "chunksizes": (min(max(n, 1), chunk), frames, 3, size, size)})
    ds = ds.assign_coords(time=np.arange(frames), channel=["red", "green", "blue"],
                          y=np.arange(size), x=np.arange(size))
    ds["time"].attrs.update({"long_name": "frame index", "units": "1"})
    ds["y"].attrs.update({"long_name": "pixel row (top to bottom)", "units": "1"})
    ds["x"].attrs.update({"long_name": "pixel column (left to right)", "units": "1"})
    ds.attrs.update({"size": size, "frames": frames})
    return ds


# ----------------------------------------------------------------------------------------------
# From a video Dataset to tensors (any clips in the toolkit's video convention)
# ----------------------------------------------------------------------------------------------

VIDEO_DIMS = ("clip", "time", "channel", "y", "x")
#: Grey-level clips without a channel dimension (e.g. moving digits) are read as 1 channel.
GREY_VIDEO_DIMS = ("clip", "time", "y", "x")


def check_video(ds: xr.Dataset, where: str = "") -> None:
    """Raise :class:`InputError` unless ``ds`` holds ``frames(clip, time, channel, y, x)`` (or
    ``frames(clip, time, y, x)``, read as one channel)."""
    where = f"{where}: " if where else ""
    if not isinstance(ds, xr.Dataset):
        raise InputError(f"{where}expected an xarray.Dataset with a 'frames' variable")
    if "frames" not in ds.data_vars:
        raise InputError(f"{where}missing variable 'frames' (has: "
                         f"{', '.join(map(str, ds.data_vars)) or 'none'})")
    if tuple(ds["frames"].dims) not in (VIDEO_DIMS, GREY_VIDEO_DIMS):
        raise InputError(f"{where}frames has dims {tuple(ds['frames'].dims)}, expected "
                         f"{VIDEO_DIMS}")
    if ds.sizes["clip"] < 1 or ds.sizes["time"] < 2:
        raise InputError(f"{where}need at least 1 clip of at least 2 frames, got "
                         f"{ds.sizes['clip']} clips of {ds.sizes['time']} frames")


def frames_tensor(ds: xr.Dataset, where: str = "", *, channels: int | None = None,
                  size: int | None = None, frames: int | None = None) -> Tensor:
    """``frames`` of a video Dataset as a float32 tensor ``(clip, time, channel, y, x)``.

    Checks the dimensions, that values are finite and in [0, 1], and optionally the number
    of channels, the (square) frame size and the clip length a model expects; each failure
    is one :class:`InputError`.
    """
    check_video(ds, where)
    w = f"{where}: " if where else ""
    shape = {"channel": 1, **ds["frames"].sizes}
    if channels is not None and shape["channel"] != channels:
        raise InputError(f"{w}frames have {shape['channel']} channels, the model expects "
                         f"{channels}")
    if size is not None and (shape["y"], shape["x"]) != (size, size):
        raise InputError(f"{w}frames are {shape['y']}x{shape['x']}, the model expects "
                         f"{size}x{size}")
    if frames is not None and shape["time"] != frames:
        raise InputError(f"{w}clips have {shape['time']} frames, the model expects {frames}")
    x = torch.as_tensor(np.asarray(ds["frames"].values, dtype=np.float32))
    if x.dim() == 4:
        x = x.unsqueeze(2)
    if not torch.isfinite(x).all():
        raise InputError(f"{w}frames contain NaN or infinite values")
    lo, hi = float(x.min()), float(x.max())
    if lo < -1e-6 or hi > 1 + 1e-6:
        raise InputError(f"{w}frames must lie in [0, 1], found values in [{lo:.3g}, {hi:.3g}]")
    return x.clamp_(0.0, 1.0)


def labels_tensor(ds: xr.Dataset, names: Sequence[str], where: str = "",
                  n_classes: dict[str, int] | None = None) -> dict[str, Tensor]:
    """Integer label variables ``names`` (each on ``clip``) as int64 tensors, checked."""
    w = f"{where}: " if where else ""
    out = {}
    for name in names:
        if name not in ds.data_vars:
            raise InputError(f"{w}missing label variable {name!r} (has: "
                             f"{', '.join(map(str, ds.data_vars))})")
        if tuple(ds[name].dims) != ("clip",):
            raise InputError(f"{w}label {name!r} has dims {tuple(ds[name].dims)}, expected "
                             "('clip',)")
        v = np.asarray(ds[name].values)
        if not np.issubdtype(v.dtype, np.integer):
            if not np.all(np.isfinite(v)) or not np.all(v == np.round(v)):
                raise InputError(f"{w}label {name!r} must hold integer class indices")
        y = torch.as_tensor(v.astype(np.int64))
        k = (n_classes or {}).get(name)
        if len(y) and (int(y.min()) < 0 or (k is not None and int(y.max()) >= k)):
            raise InputError(f"{w}label {name!r} out of range 0..{(k or 0) - 1}")
        out[name] = y
    return out


def select_split(ds: xr.Dataset, split: str) -> xr.Dataset:
    """Clips of ``split`` (``train`` or ``test``) when ``ds`` has a ``split`` variable, else all."""
    if "split" not in ds.data_vars:
        return ds
    flag = {"train": 0, "test": 1}[split]
    keep = np.flatnonzero(np.asarray(ds["split"].values) == flag)
    return ds.isel(clip=keep)
