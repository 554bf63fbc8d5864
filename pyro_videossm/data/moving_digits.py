"""Moving digits: the standard moving-MNIST video recipe, as ``xarray.Dataset``.

Recipe (Srivastava et al. 2015), every size configurable: a 64 × 64 canvas; 2 digits of
28 × 28 (real MNIST digits from an ``.npz`` file with ``images (N, h, w) uint8`` and
``labels (N,)``, or by default scikit-learn's bundled handwritten digits, see
:func:`bundled_digits`); each digit starts at a uniformly drawn position inside the canvas
and moves in a uniformly drawn direction at 3.6 px per frame, reflecting off the borders;
overlapping digits are composited by the pixel-wise maximum; 20 frames = 10 context + 10
target.

Positions are computed in closed form: the unfolded straight line ``p0 + v t`` is folded back
into ``[0, L]`` (``L = canvas - digit``) by the triangle wave ``L - |(p mod 2L) - L|``, which is
exactly specular reflection at both borders. A digit is drawn with its top-left corner at the
rounded position, so it always lies entirely inside the canvas.

The digit set is split once, by class and with a fixed seed, into a training part and a held-out
test part (:data:`TEST_FRACTION` of every class); ``split="test"`` draws digits only from the
held-out part, with the fixed seed :data:`TEST_SEED` unless another is given, so the test set is
the same on every machine.

Digit source: without a file, the 1797 8 × 8 handwritten digits that ship inside the
scikit-learn wheel (``sklearn.datasets.load_digits``: no download) are upscaled to MNIST's
layout (:func:`bundled_digits`), so moving digits work on any installation. They are blurrier
and fewer than MNIST's: the moving-digit benchmark numbers in the docs were made with real MNIST
digits (``--mnist``, the 5000-digit subset at :data:`DEFAULT_MNIST`), and are not comparable
with runs on the bundled digits.

Output (see :func:`moving_digits`): ``frames(clip, time, y, x)`` in [0, 1] (stored in netCDF as
``uint8 / 255``, which is lossless because frames are maxima of ``uint8 / 255`` digits),
``digit_label(clip, digit)``, ``digit_index(clip, digit)`` (index into the digit file),
``position(clip, digit, time, axis)`` (top-left corner, pixels, unrounded),
``velocity(clip, digit, axis)`` (initial velocity, pixels per frame).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import xarray as xr

from pyro_videossm import __version__
from pyro_videossm.data.conventions import CONVENTIONS
from pyro_videossm.errors import InputError

#: Where the team's copy of 5000 MNIST digits lives (beside the repository, not in a fresh
#: clone): the digits of the documented benchmark numbers (``benchmarks/moving_digits.py``).
DEFAULT_MNIST = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "mnist" / (
    "mnist_5k.npz")
#: Fraction of every digit class held out for the test split.
TEST_FRACTION = 0.2
#: Seed of the permutation that splits the digit set (fixed: the split never changes).
SPLIT_SEED = 20150208
#: Default seed of the test clips (fixed, so the test set is the same everywhere).
TEST_SEED = 1_000_003
#: The standard recipe.
STANDARD = {"canvas": 64, "n_digits": 2, "n_frames": 20, "n_context": 10, "speed": 3.6}
#: ``digit_source`` attribute of clips made from :func:`bundled_digits`.
BUNDLED_SOURCE = "scikit-learn load_digits (8 x 8, upscaled)"


def bundled_digits(size: int = 28) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled handwritten digits, laid out like MNIST digits.

    The 1797 digits of ``sklearn.datasets.load_digits`` (8 × 8, intensities 0..16, about 180 per
    class; shipped inside the scikit-learn wheel) are upscaled by bilinear interpolation
    (``scipy.ndimage.zoom``, ``order=1``: the corner pixels keep their values) to an inner box
    of ``round(size * 20 / 28)`` pixels, centred on a ``size × size`` zero background as MNIST
    centres its 20 × 20 digits in 28 × 28, and scaled to uint8 by ``255 / 16``.

    Returns ``images (1797, size, size) uint8`` and ``labels (1797,) int64``. Raises a one-line
    :class:`InputError` when scikit-learn is not installed.
    """
    try:
        from sklearn.datasets import load_digits as sklearn_digits
    except ImportError:
        raise InputError("the bundled digits need scikit-learn (pip install scikit-learn); "
                         "or give an MNIST .npz file") from None
    from scipy.ndimage import zoom

    size = int(size)
    if size < 8:
        raise InputError(f"bundled digit size must be >= 8 px, got {size}")
    found = sklearn_digits()
    small = np.asarray(found.images, dtype=np.float64)              # (N, 8, 8) in 0..16
    inner = max(8, int(round(size * 20 / 28)))
    big = zoom(small, (1, inner / 8, inner / 8), order=1)            # (N, inner, inner)
    lo = (size - inner) // 2
    images = np.zeros((small.shape[0], size, size), dtype=np.uint8)
    images[:, lo:lo + inner, lo:lo + inner] = np.rint(
        np.clip(big, 0.0, 16.0) * (255.0 / 16.0)).astype(np.uint8)
    return images, np.asarray(found.target, dtype=np.int64)


def load_digits(path: str | os.PathLike | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Read digit images and labels from an ``.npz`` file (MNIST, or any digit set); without a
    file, :func:`bundled_digits` (scikit-learn's digits at 28 × 28).

    Returns ``images (N, h, w) uint8`` and ``labels (N,) int64``. Raises :class:`InputError`
    with one line when the file is missing, not an ``.npz`` archive, or malformed.
    """
    if path is None:
        return bundled_digits()
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such digit file (an .npz with 'images' and 'labels')")
    if path.is_dir():
        raise InputError(f"{path}: is a directory, not an .npz digit file")
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in ("images", "labels") if k not in z.files]
            if missing:
                raise InputError(f"{path}: missing array(s) {missing} (has: {z.files})")
            images, labels = z["images"], z["labels"]
    except InputError:
        raise
    except (OSError, ValueError, EOFError) as err:
        raise InputError(f"{path}: not a readable .npz archive ({type(err).__name__})") from None
    return check_digits(images, labels, where=str(path))


def check_digits(images, labels, where: str = "digits") -> tuple[np.ndarray, np.ndarray]:
    """Validate a digit set: ``images (N, h, w)`` uint8 (or floats in [0, 1]), ``labels (N,)``."""
    images, labels = np.asarray(images), np.asarray(labels)
    if images.ndim != 3 or images.shape[0] == 0 or min(images.shape[1:]) == 0:
        raise InputError(f"{where}: 'images' must have shape (N, h, w), got {images.shape}")
    if labels.shape != (images.shape[0],):
        raise InputError(f"{where}: 'labels' must have shape ({images.shape[0]},), "
                         f"got {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise InputError(f"{where}: 'labels' must be integers, got {labels.dtype}")
    if images.dtype != np.uint8:
        if not np.issubdtype(images.dtype, np.floating) or not np.isfinite(images).all() or (
                images.min() < 0 or images.max() > 1):
            raise InputError(f"{where}: 'images' must be uint8 or floats in [0, 1], "
                             f"got {images.dtype}")
        images = np.round(images * 255).astype(np.uint8)
    return images, labels.astype(np.int64)


def split_indices(labels: np.ndarray, split: str, test_fraction: float = TEST_FRACTION
                  ) -> np.ndarray:
    """Indices of the digits in ``split`` (``"train"``, ``"test"`` or ``"all"``).

    Every class is permuted with :data:`SPLIT_SEED` and its last ``test_fraction`` is held out,
    so train and test are disjoint, both contain every class, and the split is the same for
    every clip seed.
    """
    if split == "all":
        return np.arange(len(labels))
    if split not in ("train", "test"):
        raise InputError(f"split must be 'train', 'test' or 'all', got {split!r}")
    if not 0 < test_fraction < 1:
        raise InputError(f"test_fraction must be in (0, 1), got {test_fraction}")
    rng = np.random.default_rng(SPLIT_SEED)
    out = []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        n_test = int(round(test_fraction * len(idx)))
        if len(idx) > 1:
            n_test = min(max(n_test, 1), len(idx) - 1)
        else:
            n_test = 0
        out.append(idx[len(idx) - n_test:] if split == "test" else idx[:len(idx) - n_test])
    sel = np.sort(np.concatenate(out))
    if sel.size == 0:
        raise InputError(f"the digit set has no digits for split {split!r}")
    return sel


def reflect(p: np.ndarray, limit: float) -> np.ndarray:
    """Fold positions of an unbounded straight-line motion into ``[0, limit]``.

    ``limit - |(p mod 2 limit) - limit|`` is the position of a point bouncing specularly
    between walls at 0 and ``limit`` (a triangle wave); ``limit = 0`` pins it at 0.
    """
    if limit <= 0:
        return np.zeros_like(p)
    return limit - np.abs(np.mod(p, 2 * limit) - limit)


def trajectories(n_clips: int, n_digits: int, n_frames: int, limit: float, speed: float,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Top-left positions ``(clip, digit, time, 2)`` and initial velocities ``(clip, digit, 2)``.

    Starts are uniform in ``[0, limit]²``, directions uniform on the circle, speed constant.
    """
    start = rng.uniform(0.0, limit, size=(n_clips, n_digits, 2))
    theta = rng.uniform(0.0, 2 * np.pi, size=(n_clips, n_digits))
    vel = speed * np.stack([np.sin(theta), np.cos(theta)], axis=-1)  # (dy, dx)
    t = np.arange(n_frames, dtype=float)
    unfolded = start[:, :, None, :] + vel[:, :, None, :] * t[None, None, :, None]
    return reflect(unfolded, limit), vel


def render(images: np.ndarray, corners: np.ndarray, canvas: int) -> np.ndarray:
    """Paste digits onto blank canvases, compositing overlaps by the maximum.

    Args:
        images: ``(clip, digit, h, w)`` uint8.
        corners: ``(clip, digit, time, 2)`` integer top-left corners, inside the canvas.
        canvas: canvas side in pixels.

    Returns:
        ``(clip, time, canvas, canvas)`` uint8.
    """
    n_clips, n_digits, h, w = images.shape
    n_frames = corners.shape[2]
    out = np.zeros((n_clips, n_frames, canvas, canvas), dtype=np.uint8)
    # A loop of small slice updates is faster here than one big fancy-index scatter
    # (about 3 µs per paste, no index arrays of size clip x time x h x w).
    for c in range(n_clips):
        for d in range(n_digits):
            img = images[c, d]
            for t in range(n_frames):
                r, q = corners[c, d, t]
                view = out[c, t, r:r + h, q:q + w]
                np.maximum(view, img, out=view)
    return out


def moving_digits(
    n_clips: int = 1000,
    *,
    split: str = "train",
    seed: int | None = None,
    canvas: int = STANDARD["canvas"],
    n_digits: int = STANDARD["n_digits"],
    n_frames: int = STANDARD["n_frames"],
    n_context: int | None = None,
    speed: float = STANDARD["speed"],
    mnist_path: str | os.PathLike | None = None,
    digits: tuple[np.ndarray, np.ndarray] | None = None,
    test_fraction: float = TEST_FRACTION,
) -> xr.Dataset:
    """Simulate ``n_clips`` moving-digit videos.

    Args:
        n_clips: number of clips.
        split: ``"train"`` or ``"test"`` (digits from the disjoint held-out part of the digit
            set), or ``"all"`` (every digit).
        seed: seeds starts, directions and digit choice; default 0 for train,
            :data:`TEST_SEED` for test.
        canvas: canvas side (pixels); must be at least the digit side.
        n_digits: digits per clip.
        n_frames: frames per clip (context + target).
        n_context: frames meant as context (recorded in the attributes; ``n_frames - n_context``
            are the target); default ``n_frames // 2`` (10 of 20).
        speed: pixels per frame.
        mnist_path: ``.npz`` digit file such as MNIST (default: scikit-learn's bundled digits
            upscaled to 28 × 28, :func:`bundled_digits`; the documented benchmark numbers use
            real MNIST).
        digits: ``(images, labels)`` arrays used instead of a file (e.g. synthetic digits).
        test_fraction: fraction of every class held out for ``split="test"``.

    Returns:
        Dataset with ``frames(clip, time, y, x)`` in [0, 1], ``digit_label(clip, digit)``,
        ``digit_index(clip, digit)``, ``position(clip, digit, time, axis)``,
        ``velocity(clip, digit, axis)`` and the settings as attributes.
    """
    if n_context is None:
        n_context = int(n_frames) // 2
    n_clips, n_digits, n_frames, n_context, canvas = map(
        int, (n_clips, n_digits, n_frames, n_context, canvas))
    if n_clips < 1:
        raise InputError(f"number of clips must be >= 1, got {n_clips}")
    if n_digits < 1:
        raise InputError(f"number of digits must be >= 1, got {n_digits}")
    if n_frames < 1:
        raise InputError(f"number of frames must be >= 1, got {n_frames}")
    if not 0 <= n_context <= n_frames:
        raise InputError(f"context frames must be in [0, {n_frames}], got {n_context}")
    if not (np.isfinite(speed) and speed >= 0):
        raise InputError(f"speed must be finite and >= 0, got {speed}")
    if digits is None:
        images, labels = load_digits(mnist_path)
        source = BUNDLED_SOURCE if mnist_path is None else str(Path(mnist_path).name)
    else:
        images, labels = check_digits(*digits)
        source = "user arrays"
    h, w = images.shape[1:]
    if canvas < max(h, w):
        raise InputError(f"canvas {canvas} px is smaller than the digits ({h} x {w} px)")
    if h != w:
        raise InputError(f"digits must be square, got {h} x {w} px")
    pool = split_indices(labels, split, test_fraction)
    seed = (TEST_SEED if split == "test" else 0) if seed is None else int(seed)
    rng = np.random.default_rng(seed)

    chosen = rng.choice(pool, size=(n_clips, n_digits), replace=True)
    limit = float(canvas - h)
    pos, vel = trajectories(n_clips, n_digits, n_frames, limit, float(speed), rng)
    corners = np.clip(np.rint(pos), 0, limit).astype(np.int64)
    frames = render(images[chosen], corners, canvas)
    return _dataset(frames, labels[chosen], chosen, pos, vel, attrs={
        "split": split, "seed": seed, "canvas_size": canvas, "digit_size": h,
        "n_digits": n_digits, "n_context": n_context, "n_target": n_frames - n_context,
        "speed": float(speed), "digit_source": source, "test_fraction": float(test_fraction),
        "split_seed": SPLIT_SEED, "composite": "max", "boundary": "reflect",
    })


def _dataset(frames_u8, label, index, pos, vel, attrs) -> xr.Dataset:
    n_clips, n_frames, canvas, _ = frames_u8.shape
    frames = xr.Variable(("clip", "time", "y", "x"), frames_u8.astype(np.float32) / 255.0, {
        "long_name": "moving digit frames (pixel intensity)", "units": "1",
        "valid_min": 0.0, "valid_max": 1.0})
    # Stored as integers * (1/255): lossless (every value is k / 255) and compressed.
    frames.encoding = {"dtype": "int16", "scale_factor": np.float32(1.0 / 255.0),
                       "_FillValue": np.int16(-1), "zlib": True, "complevel": 1,
                       "chunksizes": (1, n_frames, canvas, canvas)}
    return xr.Dataset(
        {
            "frames": frames,
            "digit_label": (("clip", "digit"), label, {"long_name": "digit class"}),
            "digit_index": (("clip", "digit"), index,
                            {"long_name": "index of the digit image in the digit file"}),
            "position": (("clip", "digit", "time", "axis"), pos.astype(np.float32), {
                "long_name": "top-left corner of the digit (unrounded, pixels)", "units": "1"}),
            "velocity": (("clip", "digit", "axis"), vel.astype(np.float32), {
                "long_name": "initial velocity of the digit (pixels per frame)", "units": "1"}),
        },
        coords={
            "clip": ("clip", np.arange(n_clips), {"long_name": "clip number"}),
            "time": ("time", np.arange(n_frames), {"long_name": "frame number", "units": "1"}),
            "y": ("y", np.arange(canvas), {"long_name": "row (pixels)", "units": "1",
                                           "axis": "Y"}),
            "x": ("x", np.arange(canvas), {"long_name": "column (pixels)", "units": "1",
                                           "axis": "X"}),
            "digit": ("digit", np.arange(label.shape[1]), {"long_name": "digit slot"}),
            "axis": ("axis", np.array(["y", "x"], dtype=object), {"long_name": "image axis"}),
        },
        attrs={
            "Conventions": CONVENTIONS,
            "title": "Moving digits (moving-MNIST recipe)",
            "source": f"pyro-videossm {__version__}",
            "variable": "frames",
            **attrs,
        },
    )
