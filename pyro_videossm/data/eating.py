"""Procedural eating clips: a rendered face chewing food, with the sound of the bites and chews.

The stand-in for food-ASMR video (none can be downloaded here) of ``videossm simulate eating``.
Each clip is ``seconds`` (default 2) of 25 fps RGB video and 16 kHz mono audio:

- **Face.** A frontal face drawn with OpenCV on a 4x super-sampled canvas and averaged down
  (anti-aliasing): shaded skin oval, hair, eyebrows, eyes, nose, lips, neck and shirt on a
  plain background. Its look is its identity: ``face`` is an integer id, and every feature
  that stays fixed for a person (skin tone, face shape, hair colour and style, eyebrows, eye
  size and spacing, nose, lip and shirt colours) is drawn by a generator seeded with that id
  alone (:func:`face_identity`). Per clip, the face's size, position and the background
  change, and the head moves a little (slow sway and bob).
- **Identities and splits.** Ids ``0 .. N_TRAIN_FACES - 1`` (800) are the training faces,
  ``N_TRAIN_FACES .. N_FACES - 1`` (200) the test faces: a clip of split ``train`` draws its
  face from the first pool, one of split ``test`` from the second, so test faces are never
  seen in training (the pools are disjoint by construction; the appearance is a continuous
  random function of the id, so a test face is a new combination, not a relabelled one).
- **Chewing.** The jaw opens and closes in cycles; closures are the *events*. The opening of
  the cycle that ends at event ``e_k`` is ``A_k sin(pi (t - e_{k-1}) / (e_k - e_{k-1}))``, so
  the jaw is closed exactly at the event times (a kink: the closure is sharp). The tempo (1.2
  to 2.6 closures per second) is drawn per clip, each interval jittered by +-12 %. An event is
  a *bite* (wide opening, the food item comes to the mouth and a piece is bitten off) or a
  *chew* (smaller opening, food visible between the teeth).
- **Food.** One of :data:`FOODS` per clip; it sets what is seen (colour, shape and size of
  the item brought to the mouth and of the food between the teeth) and what is heard.
- **Sound.** Each event is a burst of band-passed noise starting exactly at the event time:
  class-specific band (its spectral envelope), exponential decay, a few crackles (sub-bursts
  in the first 25 ms) for crisp food, tremolo for slurping; bites are louder, longer and
  crackle more. Plus room noise (low-passed white noise, -52 to -42 dB RMS).

Dataset (in memory and on disk, :func:`simulate_eating`):

- ``frames(clip, time, channel, y, x)`` float32 in [0, 1], multiples of 1/255 (8-bit levels;
  on disk packed as compressed ``int16`` counts with ``scale_factor = 1/255``, decoded back to
  float32 by xarray), RGB;
- ``audio(clip, sample)`` float32 in [-1, 1] at ``sample_rate`` (16000) Hz;
- ``food(clip)`` int8 class index, names in the CF ``flag_meanings`` (and :data:`FOODS`);
- ``face(clip)`` int16 identity id; ``split(clip)`` int8 (0 train, 1 test);
- ``event_time(clip, event)`` float32 seconds from the clip start, NaN-padded;
  ``event_kind(clip, event)`` int8, 0 chew, 1 bite, -1 padding;
- ``jaw_opening(clip, time)`` float32 in [0, 1] at each frame (0 = closed);
- ``face_box(clip, time, corner)`` float32 pixel coordinates ``x0, y0, x1, y1`` of a square
  box around the face (the true crop);
- attributes ``fps`` (25), ``sample_rate`` (16000), ``seconds``, ``size``, ``split_name``,
  ``seed``, ``n_train_faces``, ``n_faces``, ``foods``.

``time`` counts frames (frame ``i`` is shown at ``i / fps`` seconds), ``sample`` counts audio
samples (``sample_rate / fps`` = 640 samples per frame).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import xarray as xr

from pyro_videossm import __version__
from pyro_videossm.data.conventions import CONVENTIONS
from pyro_videossm.errors import InputError

FPS = 25
SAMPLE_RATE = 16000
#: Food texture classes, in the order of the ``food`` label.
FOODS: tuple[str, ...] = ("crispy", "crunchy", "soft", "chewy", "slurpy")
EVENT_KINDS: tuple[str, ...] = ("chew", "bite")
N_FACES = 1000
N_TRAIN_FACES = 800
SPLITS = ("train", "test")
_SUPERSAMPLE = 4
_MAX_SECONDS = 10.0
_MIN_SIZE = 32


# ----------------------------------------------------------------------------------------------
# Food: what is seen and what is heard
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FoodLook:
    """The food at the mouth: RGB colour in [0, 1], ``shape`` (``wedge``, ``stick``, ``ball``,
    ``chunk``, ``strands``) and size relative to the face's half-width."""

    colour: tuple[float, float, float]
    shape: str
    size: float


@dataclass(frozen=True)
class FoodSound:
    """One chew of a food: band-passed noise in ``band`` (Hz), exponential ``decay`` (s),
    ``crackles`` sub-bursts within the first 25 ms, peak ``gain``, ``tremolo`` rate (Hz, 0 for
    none). A bite multiplies gain by 1.8, decay by 1.5 and adds 2 crackles."""

    band: tuple[float, float]
    decay: float
    crackles: int
    gain: float
    tremolo: float = 0.0


FOOD_LOOKS: dict[str, FoodLook] = {
    "crispy": FoodLook((0.95, 0.78, 0.30), "wedge", 0.55),
    "crunchy": FoodLook((0.96, 0.45, 0.08), "stick", 0.45),
    "soft": FoodLook((0.98, 0.70, 0.82), "ball", 0.42),
    "chewy": FoodLook((0.42, 0.13, 0.10), "chunk", 0.28),
    "slurpy": FoodLook((0.45, 0.80, 0.30), "strands", 0.50),
}

FOOD_SOUNDS: dict[str, FoodSound] = {
    "crispy": FoodSound((3000.0, 7000.0), 0.010, 5, 0.45),
    "crunchy": FoodSound((900.0, 3500.0), 0.028, 3, 0.55),
    "soft": FoodSound((150.0, 900.0), 0.035, 1, 0.60),
    "chewy": FoodSound((300.0, 1400.0), 0.070, 2, 0.35),
    "slurpy": FoodSound((700.0, 2800.0), 0.110, 1, 0.30, tremolo=35.0),
}


# ----------------------------------------------------------------------------------------------
# Faces
# ----------------------------------------------------------------------------------------------

_SKIN_LIGHT = np.array([0.98, 0.86, 0.75])
_SKIN_DARK = np.array([0.46, 0.30, 0.21])
_HAIR_COLOURS = np.array([(0.08, 0.06, 0.05), (0.30, 0.18, 0.09), (0.55, 0.35, 0.15),
                          (0.85, 0.70, 0.40), (0.60, 0.25, 0.10), (0.65, 0.65, 0.65)])


def face_identity(face: int) -> dict[str, float | np.ndarray]:
    """The fixed look of face ``face`` (a function of the id alone).

    Returns a dict of RGB colours (``skin``, ``hair``, ``lips``, ``shirt``, ``iris``) and
    shape numbers relative to the face's half-width (``aspect`` = half-height / half-width,
    ``eye_spacing``, ``eye_size``, ``brow``, ``nose``, ``mouth_width``, ``hair_style``: 0 short,
    1 long, 2 fringe).
    """
    if not 0 <= int(face) < N_FACES:
        raise InputError(f"face id must be in 0..{N_FACES - 1}, got {face}")
    rng = np.random.default_rng([7919, int(face)])
    tone = rng.uniform(0.0, 1.0)
    skin = (1 - tone) * _SKIN_LIGHT + tone * _SKIN_DARK + rng.normal(0, 0.02, 3)
    hair = _HAIR_COLOURS[rng.integers(len(_HAIR_COLOURS))] * rng.uniform(0.8, 1.1)
    lum = np.array([0.299, 0.587, 0.114])
    if abs(float(hair @ lum - skin @ lum)) < 0.2:  # hair must stand out from the skin
        hair = hair * 0.4
    lips = skin * np.array([0.85, 0.55, 0.55]) + rng.uniform(0.0, 0.06)
    return {
        "skin": np.clip(skin, 0, 1),
        "hair": np.clip(hair, 0, 1),
        "lips": np.clip(lips, 0, 1),
        "shirt": rng.uniform(0.1, 0.9, 3),
        "iris": rng.uniform(0.05, 0.35) * np.array([1.0, rng.uniform(0.8, 1.3),
                                                    rng.uniform(0.8, 1.5)]),
        "aspect": rng.uniform(1.22, 1.42),
        "eye_spacing": rng.uniform(0.36, 0.46),
        "eye_size": rng.uniform(0.14, 0.19),
        "brow": rng.uniform(0.045, 0.075),
        "nose": rng.uniform(0.32, 0.45),
        "mouth_width": rng.uniform(0.36, 0.48),
        "hair_style": int(rng.integers(3)),
    }


def face_pool(split: str) -> np.ndarray:
    """The face ids of ``split``: ``train`` 0..799, ``test`` 800..999 (disjoint)."""
    if split not in SPLITS:
        raise InputError(f"unknown split {split!r} (choose from {', '.join(SPLITS)})")
    return (np.arange(N_TRAIN_FACES) if split == "train"
            else np.arange(N_TRAIN_FACES, N_FACES))


# ----------------------------------------------------------------------------------------------
# A clip's plan: events, jaw, head motion
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClipPlan:
    """Everything random about one clip (drawn by :func:`plan_clip`).

    ``closures`` are all jaw closures, the unseen one before the clip and the one after it
    included; ``amplitudes[k]`` is the opening of the cycle that ends at ``closures[k]``
    (``amplitudes[0]`` unused), ``bites[k]`` whether that closure is a bite. The events are
    the closures inside the clip.
    """

    face: int
    food: int
    seconds: float
    closures: np.ndarray
    amplitudes: np.ndarray
    bites: np.ndarray
    centre: tuple[float, float]
    radius: float
    sway: np.ndarray  # (3, 3): amplitude, frequency (Hz), phase of x, y and scale
    background: np.ndarray
    noise_db: float
    sound_seed: int

    @property
    def inside(self) -> np.ndarray:
        return (self.closures >= 0) & (self.closures < self.seconds)

    @property
    def event_times(self) -> np.ndarray:
        return self.closures[self.inside]

    @property
    def event_kinds(self) -> np.ndarray:
        return self.bites[self.inside].astype(np.int8)


_EDGE = 0.1  # no closure within this many seconds of either end of a clip


def plan_clip(rng: np.random.Generator, face: int, food: int, seconds: float) -> ClipPlan:
    """Draw a clip's events, jaw amplitudes, placement, head motion and noise level."""
    period = 1.0 / rng.uniform(1.2, 2.6)
    closures = [rng.uniform(_EDGE, _EDGE + 0.9 * period)]
    first = max(period * rng.uniform(0.88, 1.12), closures[0] + 0.05)
    closures.insert(0, closures[0] - first)
    while closures[-1] < seconds:
        nxt = closures[-1] + max(0.3, period * rng.uniform(0.88, 1.12))
        if seconds - _EDGE < nxt < seconds + 0.05:
            nxt = seconds + 0.05 + rng.uniform(0, 0.1)  # unseen, after the end
        closures.append(nxt)
    closures = np.asarray(closures)
    bites = np.zeros(len(closures), bool)
    for k in range(1, len(closures)):
        p = 0.5 if k == 1 else (0.05 if bites[k - 1] else 0.2)
        bites[k] = rng.uniform() < p
    amplitudes = np.where(bites, rng.uniform(0.85, 1.0, len(closures)),
                          rng.uniform(0.3, 0.6, len(closures)))
    radius = rng.uniform(0.23, 0.28)
    centre = (0.5 + rng.uniform(-0.06, 0.06), 0.47 + rng.uniform(-0.05, 0.04))
    sway = np.stack([
        rng.uniform(0.0, 0.02, 3) * np.array([1.0, 1.0, 1.5]),
        rng.uniform(0.2, 0.8, 3),
        rng.uniform(0, 2 * np.pi, 3),
    ], axis=1)
    background = rng.uniform(0.15, 0.85, 3) * rng.uniform(0.5, 1.0)
    return ClipPlan(face=int(face), food=int(food), seconds=float(seconds), closures=closures,
                    amplitudes=amplitudes, bites=bites, centre=centre, radius=radius, sway=sway,
                    background=background, noise_db=float(rng.uniform(-52, -42)),
                    sound_seed=int(rng.integers(2**31)))


def jaw_opening(plan: ClipPlan, t: np.ndarray) -> np.ndarray:
    """The jaw's opening in [0, 1] at times ``t`` (s): ``A_k sin(pi u)`` in the cycle that ends
    at closure ``k``, ``u`` the fraction of the cycle gone; exactly 0 at every closure."""
    t = np.asarray(t, dtype=np.float64)
    c = plan.closures
    k = np.clip(np.searchsorted(c, t, side="right"), 1, len(c) - 1)
    u = np.clip((t - c[k - 1]) / (c[k] - c[k - 1]), 0.0, 1.0)
    return plan.amplitudes[k] * np.sin(np.pi * u)


def _head(plan: ClipPlan, t: float) -> tuple[float, float, float]:
    """Face centre (unit coordinates) and half-width at time ``t``."""
    a, f, p = plan.sway[:, 0], plan.sway[:, 1], plan.sway[:, 2]
    s = a * np.sin(2 * np.pi * f * t + p)
    return plan.centre[0] + s[0], plan.centre[1] + s[1], plan.radius * (1 + s[2])


def _food_item(plan: ClipPlan, t: float) -> tuple[float, float] | None:
    """The bitten item's (distance below the mouth in face half-widths, size factor) at ``t``,
    or None when no item is in view: it rises to the lips in the first 60 % of a bite's
    cycle, then a smaller piece drops away during the next cycle."""
    c = plan.closures
    k = int(np.clip(np.searchsorted(c, t, side="right"), 1, len(c) - 1))
    u = float(np.clip((t - c[k - 1]) / (c[k] - c[k - 1]), 0.0, 1.0))
    if plan.bites[k]:
        s = min(1.0, u / 0.6)
        return 2.2 * (1 - s * s * (3 - 2 * s)), 1.0
    if plan.bites[k - 1]:
        s = min(1.0, u / 0.5)
        return 0.25 + 2.0 * s * s * (3 - 2 * s), 0.7
    return None


# ----------------------------------------------------------------------------------------------
# Drawing
# ----------------------------------------------------------------------------------------------

_SHIFT = 4  # OpenCV sub-pixel bits
# the face box: centred this many face half-widths below the face centre, this half-side
# (forehead to below the chin: the mouth and the food brought to it)
_BOX_DOWN, _BOX_HALF = 0.25, 1.45


class _Canvas:
    """An RGB uint8 canvas of ``side`` pixels drawn in unit coordinates (anti-aliased)."""

    def __init__(self, side: int, background: np.ndarray) -> None:
        import cv2

        self.cv2 = cv2
        self.side = side
        self.img = np.empty((side, side, 3), np.uint8)
        self.img[:] = _rgb(background)
        self._k = side * (1 << _SHIFT)

    def _p(self, x: float, y: float) -> tuple[int, int]:
        return int(math.floor(float(x) * self._k + 0.5)), int(math.floor(float(y) * self._k + 0.5))

    def ellipse(self, x, y, ax, ay, colour, start=0.0, end=360.0, thickness=-1.0) -> None:
        th = -1 if thickness < 0 else max(1, int(round(thickness * self.side)))
        self.cv2.ellipse(self.img, self._p(x, y), self._p(max(ax, 1e-4), max(ay, 1e-4)), 0.0,
                         start, end, _rgb(colour), th, self.cv2.LINE_AA, _SHIFT)

    def line(self, x0, y0, x1, y1, colour, thickness) -> None:
        th = max(1, int(round(thickness * self.side)))
        self.cv2.line(self.img, self._p(x0, y0), self._p(x1, y1), _rgb(colour), th,
                      self.cv2.LINE_AA, _SHIFT)

    def polygon(self, points, colour) -> None:
        pts = np.array([self._p(x, y) for x, y in points], np.int32)
        self.cv2.fillPoly(self.img, [pts], _rgb(colour), self.cv2.LINE_AA, _SHIFT)

    def rect(self, x0, y0, x1, y1, colour) -> None:
        self.polygon([(x0, y0), (x1, y0), (x1, y1), (x0, y1)], colour)

    def downsampled(self, size: int) -> np.ndarray:
        return self.cv2.resize(self.img, (size, size), interpolation=self.cv2.INTER_AREA)


def _rgb(colour) -> tuple[int, int, int]:
    c = (np.clip(np.asarray(colour, dtype=np.float64), 0.0, 1.0) * 255.0 + 0.5).astype(int)
    return int(c[0]), int(c[1]), int(c[2])


def _draw_food(cv: _Canvas, look: FoodLook, x: float, y: float, r: float, scale: float) -> None:
    """The food item centred at ``(x, y)`` (unit coordinates), ``r`` the face half-width."""
    s = look.size * r * scale
    col = np.asarray(look.colour)
    if look.shape == "wedge":  # a chip: a flat triangle
        cv.polygon([(x - s, y + 0.5 * s), (x + s, y + 0.6 * s), (x + 0.1 * s, y - 0.5 * s)], col)
        cv.line(x - 0.5 * s, y + 0.3 * s, x + 0.4 * s, y + 0.1 * s, col * 0.8, 0.01)
    elif look.shape == "stick":  # a carrot stick, pointing up at the mouth
        cv.line(x, y - 0.3 * s, x + 0.35 * s, y + 1.6 * s, col, 0.55 * s)
        cv.line(x, y - 0.3 * s, x + 0.35 * s, y + 1.6 * s, col * 0.85, 0.2 * s)
    elif look.shape == "ball":  # a soft cake ball
        cv.ellipse(x, y + 0.6 * s, s, s, col)
        cv.ellipse(x - 0.3 * s, y + 0.3 * s, 0.3 * s, 0.25 * s, np.minimum(col * 1.1, 1.0))
    elif look.shape == "chunk":  # a piece of jerky
        cv.polygon([(x - 0.9 * s, y - 0.2 * s), (x + 0.8 * s, y - 0.4 * s),
                    (x + 1.0 * s, y + 0.7 * s), (x - 0.7 * s, y + 0.9 * s)], col)
    else:  # noodles hanging from the mouth
        for dx in (-0.35, 0.0, 0.35):
            cv.line(x + dx * s, y - 0.1 * s, x + 1.3 * dx * s, y + 2.2 * s, col, 0.18 * s)


def _draw_face(cv: _Canvas, ident: dict, look: FoodLook, x: float, y: float, r: float,
               opening: float, item: tuple[float, float] | None) -> None:
    """One face, centred at ``(x, y)`` with half-width ``r`` (unit coordinates)."""
    skin, hair = ident["skin"], ident["hair"]
    ry = ident["aspect"] * r
    drop = 0.16 * r * opening  # the chin follows the jaw
    # shoulders, neck, hair behind the head
    cv.ellipse(x, y + ry + 0.95 * r, 1.7 * r, 0.8 * r, ident["shirt"])
    cv.rect(x - 0.45 * r, y + 0.3 * ry, x + 0.45 * r, y + ry + 0.5 * r, skin * 0.78)
    if ident["hair_style"] == 1:
        cv.ellipse(x, y - 0.05 * ry, 1.18 * r, 1.08 * ry, hair)
        cv.rect(x - 1.18 * r, y - 0.05 * ry, x + 1.18 * r, y + 0.9 * ry, hair)
    else:
        cv.ellipse(x, y - 0.12 * ry, 1.1 * r, 1.0 * ry, hair, 180, 360)
    # ears, face (shaded rim, then lit skin), jaw
    for side in (-1, 1):
        cv.ellipse(x + side * 0.98 * r, y + 0.05 * ry, 0.14 * r, 0.25 * r, skin * 0.85)
    cv.ellipse(x, y, r, ry, skin * 0.8, 180, 360)
    cv.ellipse(x, y, r, ry + drop, skin * 0.8, 0, 180)
    cv.ellipse(x, y - 0.03 * ry, 0.9 * r, 0.93 * ry, skin, 180, 360)
    cv.ellipse(x, y - 0.03 * ry, 0.9 * r, 0.9 * ry + drop, skin, 0, 180)
    # hairline
    top = {0: 0.5, 1: 0.48, 2: 0.38}[ident["hair_style"]]
    cv.ellipse(x, y - top * ry, 1.02 * r, 0.55 * ry, hair, 180, 360)
    cv.rect(x - 1.02 * r, y - top * ry - 0.01, x + 1.02 * r, y - top * ry + 0.002, hair)
    # light on the forehead, cheeks and the bridge of the nose (brighter than the eyes)
    lit = np.minimum(skin * 1.12 + 0.03, 1.0)
    ey = y - 0.1 * ry
    es, ez = ident["eye_spacing"] * r, ident["eye_size"] * r
    cv.ellipse(x, y - 0.32 * ry, 0.55 * r, 0.14 * ry, lit)
    for side in (-1, 1):
        cv.ellipse(x + side * 0.45 * r, y + 0.22 * ry, 0.22 * r, 0.14 * ry, lit)
    cv.ellipse(x, ey + 0.05 * ry, 0.1 * r, 0.22 * ry, lit)
    # eyes: socket shadow, brow, white, iris, pupil
    for side in (-1, 1):
        ex = x + side * es
        cv.ellipse(ex, ey, 1.5 * ez, 1.05 * ez, skin * 0.6)
        cv.ellipse(ex, ey - 1.2 * ez, 1.35 * ez, 0.45 * ez, hair * 0.6, 195, 345,
                   thickness=ident["brow"] * r)
        cv.ellipse(ex, ey, 0.9 * ez, 0.45 * ez, 0.5 * skin + 0.45)
        cv.ellipse(ex, ey, 0.45 * ez, 0.45 * ez, ident["iris"])
        cv.ellipse(ex, ey, 0.2 * ez, 0.2 * ez, (0.02, 0.02, 0.02))
    # nose: shadow along one side, nostrils, lit tip
    ny = y + ident["nose"] * ry
    cv.line(x + 0.07 * r, ey + 0.15 * ry, x + 0.12 * r, ny - 0.05 * ry, skin * 0.8, 0.03 * r)
    cv.ellipse(x, ny - 0.03 * ry, 0.12 * r, 0.08 * r, np.minimum(skin * 1.06, 1.0))
    for side in (-1, 1):
        cv.ellipse(x + side * 0.08 * r, ny, 0.055 * r, 0.035 * r, skin * 0.45)
    # mouth: dark inside, teeth, food, lips
    my = y + 0.6 * ry + 0.5 * drop
    w = ident["mouth_width"] * r
    h = (0.03 + 0.26 * opening) * r
    if opening > 0.02:
        cv.ellipse(x, my, w * (1 - 0.15 * opening), h, (0.25, 0.04, 0.05))
        cv.ellipse(x, my - 0.75 * h, 0.6 * w, 0.3 * h, (0.95, 0.95, 0.92))
        cv.ellipse(x, my + 0.25 * h, look.size * w, 0.5 * h, look.colour)
    cv.ellipse(x, my, w, h, ident["lips"], 180, 360, thickness=0.08 * r)
    cv.ellipse(x, my, w, h, ident["lips"] * 0.92, 0, 180, thickness=0.11 * r)
    if item is not None:
        below, scale = item
        _draw_food(cv, look, x + 0.1 * r, my + 0.5 * h + below * r, r, scale)


def render_clip(plan: ClipPlan, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The frames of a clip, ``(time, y, x, 3)`` uint8, its jaw opening per frame ``(time,)``
    and face boxes ``(time, 4)`` (``x0, y0, x1, y1`` in pixels)."""
    n = int(round(plan.seconds * FPS))
    t = np.arange(n) / FPS
    opening = jaw_opening(plan, t)
    ident = face_identity(plan.face)
    look = FOOD_LOOKS[FOODS[plan.food]]
    frames = np.empty((n, size, size, 3), np.uint8)
    boxes = np.empty((n, 4), np.float32)
    for i in range(n):
        x, y, r = _head(plan, t[i])
        cv = _Canvas(size * _SUPERSAMPLE, plan.background)
        _draw_face(cv, ident, look, x, y, r, float(opening[i]), _food_item(plan, t[i]))
        frames[i] = cv.downsampled(size)
        half, cy = _BOX_HALF * r, y + _BOX_DOWN * r
        boxes[i] = np.array([x - half, cy - half, x + half, cy + half]) * size
    return frames, opening.astype(np.float32), boxes


# ----------------------------------------------------------------------------------------------
# Sound
# ----------------------------------------------------------------------------------------------


def _band_noise(rng: np.random.Generator, n: int, band: tuple[float, float]) -> np.ndarray:
    """``n`` samples of white noise band-passed to ``band`` (Hz; 4th-order Butterworth),
    scaled to unit RMS."""
    from scipy.signal import butter, sosfilt

    nyq = SAMPLE_RATE / 2
    lo, hi = max(band[0], 20.0) / nyq, min(band[1], 0.95 * nyq) / nyq
    sos = butter(4, [lo, hi], btype="bandpass", output="sos")
    x = sosfilt(sos, rng.standard_normal(n + 512))[512:]
    return x / max(float(np.sqrt(np.mean(x**2))), 1e-12)


def event_sound(rng: np.random.Generator, food: str, bite: bool) -> np.ndarray:
    """One chew or bite of ``food``: band-passed noise under a sum of decaying envelopes (the
    crackles), starting at its first sample with its full attack. Returns float64 samples."""
    spec = FOOD_SOUNDS[food]
    jitter = rng.uniform(0.9, 1.1)
    band = (spec.band[0] * jitter, spec.band[1] * jitter)
    decay = spec.decay * rng.uniform(0.85, 1.15) * (1.5 if bite else 1.0)
    crackles = spec.crackles + (2 if bite else 0)
    gain = spec.gain * rng.uniform(0.8, 1.2) * (1.8 if bite else 1.0)
    n = int((8 * decay + 0.03) * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    envelope = np.zeros(n)
    starts = np.concatenate([[0.0], np.sort(rng.uniform(0.004, 0.025, crackles - 1))])
    heights = np.concatenate([[1.0], rng.uniform(0.3, 0.7, crackles - 1)])
    attack = 0.0015
    for s, a in zip(starts, heights, strict=True):
        u = t - s
        env = np.where(u < 0, 0.0, np.where(u < attack, u / attack,
                                            np.exp(-(u - attack) / decay)))
        envelope = np.maximum(envelope, a * env)
    if spec.tremolo:
        envelope *= 0.65 + 0.35 * np.cos(2 * np.pi * spec.tremolo * t)
    return gain * envelope * _band_noise(rng, n, band) / 3.0


def room_noise(rng: np.random.Generator, n: int, level_db: float) -> np.ndarray:
    """``n`` samples of room noise: white noise through a one-pole low-pass (cut-off ~400 Hz)
    plus a tenth of white noise, at RMS ``level_db`` dB (re full scale)."""
    from scipy.signal import lfilter

    a = math.exp(-2 * math.pi * 400 / SAMPLE_RATE)
    x = lfilter([1 - a], [1, -a], rng.standard_normal(n)) + 0.1 * rng.standard_normal(n)
    return x / max(float(np.sqrt(np.mean(x**2))), 1e-12) * 10 ** (level_db / 20)


def synthesize_audio(plan: ClipPlan) -> np.ndarray:
    """The clip's sound, ``(seconds * SAMPLE_RATE,)`` float32 in [-1, 1]: each event's sound
    starts at the sample of its time (rounded), plus room noise."""
    rng = np.random.default_rng(plan.sound_seed)
    n = int(round(plan.seconds * SAMPLE_RATE))
    audio = room_noise(rng, n, plan.noise_db)
    food = FOODS[plan.food]
    for time, kind in zip(plan.event_times, plan.event_kinds, strict=True):
        burst = event_sound(rng, food, bool(kind))
        start = int(round(time * SAMPLE_RATE))
        end = min(n, start + len(burst))
        audio[start:end] += burst[: end - start]
    return np.clip(audio, -1.0, 1.0).astype(np.float32)


# ----------------------------------------------------------------------------------------------
# The data set
# ----------------------------------------------------------------------------------------------


def _check_options(n_clips: int, seconds: float, size: int, seed: int, split: str) -> None:
    if isinstance(n_clips, bool) or int(n_clips) != n_clips or n_clips < 1:
        raise InputError(f"clips must be a whole number >= 1, got {n_clips}")
    if not (isinstance(seconds, (int, float)) and math.isfinite(seconds)
            and 0.5 <= seconds <= _MAX_SECONDS):
        raise InputError(f"seconds must be in [0.5, {_MAX_SECONDS:g}], got {seconds}")
    if isinstance(size, bool) or int(size) != size or size < _MIN_SIZE or size % 2:
        raise InputError(f"size must be an even number of pixels >= {_MIN_SIZE}, got {size}")
    if isinstance(seed, bool) or int(seed) != seed or seed < 0:
        raise InputError(f"seed must be a whole number >= 0, got {seed}")
    if split not in SPLITS:
        raise InputError(f"unknown split {split!r} (choose from {', '.join(SPLITS)})")


def _flag_attrs(long_name: str, names: tuple[str, ...]) -> dict:
    return {"long_name": long_name, "units": "1",
            "flag_values": np.arange(len(names), dtype=np.int8), "flag_meanings": " ".join(names)}


def simulate_eating(n_clips: int = 64, seconds: float = 2.0, size: int = 64, seed: int = 0,
                    split: str = "train", foods: tuple[str, ...] | None = None) -> xr.Dataset:
    """``n_clips`` procedural eating clips of ``seconds`` each (see the module doc).

    :param n_clips: number of clips.
    :param seconds: clip length in seconds (0.5 to 10; the research used 2 to 4).
    :param size: frame side in pixels (even, >= 32).
    :param seed: random seed; the clips of ``split`` ``train`` and ``test`` with one seed are
        drawn from different streams (and their faces from disjoint pools).
    :param split: ``train`` (faces 0..799) or ``test`` (faces 800..999).
    :param foods: restrict the food classes drawn (names of :data:`FOODS`); the ``food``
        label keeps the index in :data:`FOODS`.
    :return: ``frames(clip, time, channel, y, x)`` float32 in [0, 1], ``audio(clip, sample)``
        float32, ``food``, ``face``, ``split``, ``event_time``, ``event_kind``, ``jaw_opening``,
        ``face_box``; attributes ``fps``, ``sample_rate``.
    """
    _check_options(n_clips, seconds, size, seed, split)
    n_clips, size, seed, seconds = int(n_clips), int(size), int(seed), float(seconds)
    chosen = tuple(FOODS) if foods is None else tuple(foods)
    unknown = [f for f in chosen if f not in FOODS]
    if unknown or not chosen:
        raise InputError(f"unknown food {unknown[0] if unknown else '(none)'!r} "
                         f"(choose from {', '.join(FOODS)})")
    rng = np.random.default_rng([seed, SPLITS.index(split), 61])
    pool = face_pool(split)
    food_index = np.array([FOODS.index(f) for f in chosen])
    plans = [plan_clip(rng, face=int(rng.choice(pool)), food=int(rng.choice(food_index)),
                       seconds=seconds) for _ in range(n_clips)]
    n_frames = int(round(seconds * FPS))
    n_samples = int(round(seconds * SAMPLE_RATE))
    frames = np.empty((n_clips, n_frames, 3, size, size), np.float32)
    opening = np.empty((n_clips, n_frames), np.float32)
    boxes = np.empty((n_clips, n_frames, 4), np.float32)
    audio = np.empty((n_clips, n_samples), np.float32)
    for c, plan in enumerate(plans):
        video, opening[c], boxes[c] = render_clip(plan, size)
        frames[c] = video.transpose(0, 3, 1, 2) / np.float32(255)
        audio[c] = synthesize_audio(plan)
    n_events = max(1, max(len(p.event_times) for p in plans))
    event_time = np.full((n_clips, n_events), np.nan, np.float32)
    event_kind = np.full((n_clips, n_events), -1, np.int8)
    for c, plan in enumerate(plans):
        k = len(plan.event_times)
        event_time[c, :k] = plan.event_times
        event_kind[c, :k] = plan.event_kinds
    clip_dims = ("clip",)
    ds = xr.Dataset(
        {
            "frames": (("clip", "time", "channel", "y", "x"), frames,
                       {"long_name": "RGB intensity", "units": "1", "valid_min": 0.0,
                        "valid_max": 1.0}),
            "audio": (("clip", "sample"), audio,
                      {"long_name": "sound pressure (digital full scale)", "units": "1",
                       "sample_rate": SAMPLE_RATE}),
            "food": (clip_dims, np.array([p.food for p in plans], np.int8),
                     _flag_attrs("food texture class", FOODS)),
            "face": (clip_dims, np.array([p.face for p in plans], np.int16),
                     {"long_name": f"face identity (train 0..{N_TRAIN_FACES - 1}, test "
                                   f"{N_TRAIN_FACES}..{N_FACES - 1})", "units": "1"}),
            "split": (clip_dims, np.full(n_clips, SPLITS.index(split), np.int8),
                      _flag_attrs("data split", SPLITS)),
            "event_time": (("clip", "event"), event_time,
                           {"long_name": "time of a jaw closure with its sound, from the clip "
                                         "start (NaN: no event)", "units": "s"}),
            "event_kind": (("clip", "event"), event_kind,
                           {"long_name": "kind of event", "units": "1",
                            "flag_values": np.array([-1, 0, 1], np.int8),
                            "flag_meanings": "none " + " ".join(EVENT_KINDS)}),
            "jaw_opening": (("clip", "time"), opening,
                            {"long_name": "jaw opening (0 closed, 1 widest)", "units": "1"}),
            "face_box": (("clip", "time", "corner"), boxes,
                         {"long_name": "square box around the face (x0, y0, x1, y1)",
                          "units": "1"}),
        },
        coords={
            "clip": ("clip", np.arange(n_clips), {"long_name": "clip number"}),
            "time": ("time", np.arange(n_frames),
                     {"long_name": "frame index", "units": "1"}),
            "channel": ("channel", ["red", "green", "blue"]),
            "y": ("y", np.arange(size), {"long_name": "pixel row (top to bottom)", "units": "1"}),
            "x": ("x", np.arange(size),
                  {"long_name": "pixel column (left to right)", "units": "1"}),
            "sample": ("sample", np.arange(n_samples),
                       {"long_name": "audio sample index", "units": "1"}),
            "event": ("event", np.arange(n_events), {"long_name": "event number"}),
            "corner": ("corner", ["x0", "y0", "x1", "y1"]),
        },
    )
    ds["frames"].encoding.update({"dtype": "int16", "scale_factor": np.float32(1 / 255),
                                  "add_offset": np.float32(0.0), "_FillValue": np.int16(-1),
                                  "zlib": True, "complevel": 4,
                                  "chunksizes": (1, n_frames, 3, size, size)})
    ds["audio"].encoding.update({"zlib": True, "complevel": 4,
                                 "chunksizes": (1, n_samples)})
    ds.attrs.update({
        "Conventions": CONVENTIONS, "title": "procedural eating clips (face video and sound)",
        "source": f"pyro_videossm {__version__} data.eating", "fps": FPS,
        "sample_rate": SAMPLE_RATE, "seconds": seconds, "size": size, "seed": seed,
        "split_name": split, "n_train_faces": N_TRAIN_FACES, "n_faces": N_FACES,
        "foods": " ".join(FOODS),
    })
    return ds


def write_eating_mp4(ds: xr.Dataset, clip: int, path, *, audio=None, scale: int = 4):
    """Write clip ``clip`` of an eating Dataset as an MP4 with its sound (or ``audio``, e.g. a
    generated track, mono at the Dataset's sample rate), frames enlarged ``scale`` times;
    atomically. Returns the path."""
    from pyro_videossm.data.video_files import write_mp4

    for name in ("frames", "audio"):
        if name not in ds.data_vars:
            raise InputError(f"not an eating Dataset: no variable {name!r}")
    if not 0 <= int(clip) < ds.sizes["clip"]:
        raise InputError(f"clip must be in 0..{ds.sizes['clip'] - 1}, got {clip}")
    frames = ds["frames"].isel(clip=int(clip)).transpose("time", "y", "x", "channel").values
    sound = ds["audio"].isel(clip=int(clip)).values if audio is None else audio
    return write_mp4(path, frames, float(ds.attrs.get("fps", FPS)), sound,
                     int(ds.attrs.get("sample_rate", SAMPLE_RATE)), scale=scale)


def eating_face_crops(ds: xr.Dataset, size: int, *, track: bool = False) -> np.ndarray:
    """Face crops of every clip, ``(clip, time, 3, size, size)`` float32 in [0, 1].

    ``track=False`` cuts the true ``face_box`` (no detection: fast, exact); ``track=True``
    finds and tracks the face with the Haar cascade, as the path from a video file does
    (:func:`pyro_videossm.data.face_tracking.face_crops`).
    """
    from pyro_videossm.data.face_tracking import crop_faces, face_crops

    if "frames" not in ds.data_vars or (not track and "face_box" not in ds.data_vars):
        raise InputError("not an eating Dataset: needs 'frames'"
                         + ("" if track else " and 'face_box'"))
    frames = ds["frames"].transpose("clip", "time", "y", "x", "channel").values
    out = np.empty((len(frames), frames.shape[1], 3, int(size), int(size)), np.float32)
    for c, clip in enumerate(frames):
        if track:
            out[c] = face_crops(clip, size).crops
        else:
            crops = crop_faces(clip, ds["face_box"].values[c], int(size))
            out[c] = crops.transpose(0, 3, 1, 2) / np.float32(255)
    return out
