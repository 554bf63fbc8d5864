"""Procedural RGB-D clips: small 3D scenes ray-cast in numpy, with exact per-pixel depth.

A scene is a background plane and one or two objects (sphere, cube, cylinder, torus), seen by a
pinhole camera at the origin looking along ``+z`` (world ``y`` up, ``x`` to the right of the
image). The **main** object performs one of 7 actions over the clip; an optional second object
(the *distractor*, smaller, farther, still) is present in about half the clips when
``max_objects=2``. Each pixel's ray is intersected exactly: spheres, cubes (slabs) and capped
cylinders in closed form, tori by sphere tracing of their signed distance (to ``1e-5`` of the
object's size). The nearest hit gives the pixel's colour by Lambertian shading (one directional
light plus ambient, no shadows) of an albedo that is the object's colour modulated by a 3D
checker pattern fixed to the object (so that rotations are visible on a sphere too) and the
pixel's depth: the ``z`` coordinate of the hit point in camera space (what an RGB-D sensor
reports), in world units. Rendering is vectorised over clips, frames and pixels; there is no
anti-aliasing, so colour and depth describe exactly the same surface point per pixel.

Labels (integer variables on ``clip`` with CF ``flag_values`` / ``flag_meanings``):

* ``action`` (7, chance 14.3 %): :data:`ACTIONS`, the main object translating left, right, up or
  down by 1.6 units, approaching from ``z`` 7.5 to 4.5, receding, or rotating by half a turn
  about the vertical axis;
* ``shape`` (4, chance 25 %): :data:`SHAPES`; ``colour`` (6, chance 16.7 %): :data:`COLOURS`;
* ``distractor_shape`` / ``distractor_colour``: the second object's, with a last class ``none``;
* ``split``: 0 train, 1 test (the last ``test_fraction`` of the clips).

Variables: ``frames(clip, time, channel, y, x)`` RGB in [0, 1] (8-bit levels, stored as
``int16`` counts like the sprites), ``depth(clip, time, y, x)`` in world units (float32; every
pixel hits the plane or an object, so all depths are finite and within
[:data:`DEPTH_NEAR`, :data:`DEPTH_FAR`]) and ``position(clip, time, axis)``, the main
object's centre. Standard configuration: 16 frames of 64 x 64; CPU configuration: 32 x 32.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import xarray as xr
from torch import Tensor

from pyro_videossm import __version__
from pyro_videossm.data.conventions import CONVENTIONS
from pyro_videossm.errors import InputError

ACTIONS: tuple[str, ...] = ("translate_left", "translate_right", "translate_up",
                            "translate_down", "approach", "recede", "rotate")
SHAPES: tuple[str, ...] = ("sphere", "cube", "cylinder", "torus")
COLOURS: tuple[str, ...] = ("red", "green", "blue", "yellow", "magenta", "cyan")
#: Label variables of a shapes-rgbd dataset (``split`` aside).
LABELS: tuple[str, ...] = ("action", "shape", "colour", "distractor_shape", "distractor_colour")
#: Labels a judge learns by default: the action and the main object's content.
JUDGE_LABELS: tuple[str, ...] = ("action", "shape", "colour")
N_CLASSES: dict[str, int] = {"action": len(ACTIONS), "shape": len(SHAPES),
                             "colour": len(COLOURS), "distractor_shape": len(SHAPES) + 1,
                             "distractor_colour": len(COLOURS) + 1}
#: Depth range used to map depth to [0, 1] (:func:`depth_to_unit`); all depths lie inside.
DEPTH_NEAR, DEPTH_FAR = 2.0, 12.0

_RGB = np.array([(0.9, 0.15, 0.12), (0.15, 0.75, 0.2), (0.2, 0.35, 0.95),
                 (0.95, 0.85, 0.15), (0.85, 0.2, 0.8), (0.15, 0.8, 0.85)], np.float32)
#: Horizontal field of view (radians) of the camera; the image is square.
FIELD_OF_VIEW = math.radians(40.0)
_TAN = math.tan(FIELD_OF_VIEW / 2)
#: The background plane: points with ``z - PLANE_TILT * y = PLANE_DISTANCE`` (leaning back).
PLANE_DISTANCE, PLANE_TILT = 10.0, 0.35
_PLANE_ALBEDO = np.array((0.78, 0.76, 0.72), np.float32)
#: Unit vector towards the light (from the upper left, in front of the scene).
LIGHT = np.array((-0.45, 0.6, -0.66), np.float32) / np.linalg.norm((-0.45, 0.6, -0.66))
AMBIENT = 0.3
# Object-space geometry (object scale multiplies all): cube half-side, cylinder radius and
# half-height, torus radii.
_CUBE_H = 0.75
_CYL_R, _CYL_H = 0.7, 0.8
_TORUS_R, _TORUS_r = 0.65, 0.3
_CHECKER = 2.5  # checker cells per object unit
_TRANSLATION, _Z_NEAR, _Z_FAR = 1.6, 4.5, 7.5


def camera_rays(size: int) -> np.ndarray:
    """Unit ray directions ``(size * size, 3)`` through the pixel centres (row-major, row 0 at
    the top)."""
    c = (np.arange(size, dtype=np.float64) + 0.5) / size * 2 - 1
    u, v = np.meshgrid(c * _TAN, -c * _TAN)  # v: world y, up = first row
    d = np.stack([u, v, np.ones_like(u)], -1).reshape(-1, 3)
    return d / np.linalg.norm(d, axis=-1, keepdims=True)


def _rotation_y(angle: np.ndarray) -> np.ndarray:
    """Rotations about the vertical axis: ``angle (...)`` -> ``(..., 3, 3)``."""
    c, s = np.cos(angle), np.sin(angle)
    z, o = np.zeros_like(angle), np.ones_like(angle)
    return np.stack([np.stack([c, z, s], -1), np.stack([z, o, z], -1),
                     np.stack([-s, z, c], -1)], -2)


def _random_rotations(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` uniformly random rotation matrices ``(n, 3, 3)`` (from unit quaternions)."""
    q = rng.normal(size=(n, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    w, x, y, z = q.T
    return np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)], -1),
        np.stack([2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)], -1),
        np.stack([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], -1),
    ], -2)


def sample_scenes(n: int, frames: int, *, seed: int = 0, max_objects: int = 2) -> dict:
    """Random scenes of ``n`` clips: labels and the objects' poses over ``frames`` frames.

    The (action, shape, colour) combinations are balanced: clip ``i`` gets combination
    ``i mod 168`` of a seeded shuffle of each block of 168 clips. Returns a dict with
    ``action``, ``shape``, ``colour`` ``(n,)`` and, per object slot ``k`` (0 main, 1
    distractor), ``present (n, 2)``, ``shapes (n, 2)``, ``colours (n, 2)``, ``scale (n, 2)``,
    ``position (n, 2, frames, 3)`` and ``rotation (n, 2, frames, 3, 3)`` (object to world).
    """
    if n < 1 or frames < 2:
        raise InputError(f"need clips >= 1 and frames >= 2, got {n} and {frames}")
    if max_objects not in (1, 2):
        raise InputError(f"max_objects must be 1 or 2, got {max_objects}")
    rng = np.random.default_rng(seed)
    n_combo = len(ACTIONS) * len(SHAPES) * len(COLOURS)
    combo = np.concatenate([rng.permutation(n_combo) for _ in range(-(-n // n_combo))])[:n]
    action = combo % len(ACTIONS)
    shape = (combo // len(ACTIONS)) % len(SHAPES)
    colour = combo // (len(ACTIONS) * len(SHAPES))
    tau = np.linspace(0.0, 1.0, frames)[None, :]  # (1, T)
    # main object: start jitter, then the action's trajectory
    x0, y0 = rng.uniform(-0.3, 0.3, (2, n, 1))
    z0 = rng.uniform(5.5, 6.5, (n, 1))
    half = _TRANSLATION / 2
    a = action[:, None]
    x = x0 + np.where(a == 0, half - _TRANSLATION * tau, 0) + np.where(
        a == 1, -half + _TRANSLATION * tau, 0)
    y = y0 + np.where(a == 2, -half + _TRANSLATION * tau, 0) + np.where(
        a == 3, half - _TRANSLATION * tau, 0)
    z = np.where(a == 4, _Z_FAR + (_Z_NEAR - _Z_FAR) * tau,
                 np.where(a == 5, _Z_NEAR + (_Z_FAR - _Z_NEAR) * tau, z0 + 0 * tau))
    x, y = np.broadcast_to(x, (n, frames)), np.broadcast_to(y, (n, frames))
    spin = rng.choice([-1.0, 1.0], size=(n, 1)) * math.pi * tau * (a == 6)
    base = _random_rotations(rng, n)
    rot_main = _rotation_y(spin) @ base[:, None]  # (n, T, 3, 3)
    scale_main = rng.uniform(0.75, 0.95, n)
    # distractor: still, smaller, farther, in a corner
    present = rng.random(n) < 0.5 if max_objects == 2 else np.zeros(n, bool)
    d_shape = rng.integers(0, len(SHAPES), n)
    d_colour = (colour + rng.integers(1, len(COLOURS), n)) % len(COLOURS)  # another colour
    corner = rng.integers(0, 4, n)
    dx = np.where(corner % 2 == 0, -1.0, 1.0) * rng.uniform(1.6, 2.0, n)
    dy = np.where(corner < 2, -1.0, 1.0) * rng.uniform(1.0, 1.4, n)
    dz = rng.uniform(8.3, 8.8, n)
    d_pos = np.broadcast_to(np.stack([dx, dy, dz], -1)[:, None], (n, frames, 3))
    d_rot = np.broadcast_to(_random_rotations(rng, n)[:, None], (n, frames, 3, 3))
    return {
        "action": action, "shape": shape, "colour": colour,
        "present": np.stack([np.ones(n, bool), present], 1),
        "shapes": np.stack([shape, d_shape], 1), "colours": np.stack([colour, d_colour], 1),
        "scale": np.stack([scale_main, rng.uniform(0.45, 0.6, n)], 1),
        "position": np.stack([np.stack([x, y, z], -1), d_pos], 1),
        "rotation": np.stack([rot_main, d_rot], 1),
    }


# ----------------------------------------------------------------------------------------------
# Ray-object intersections in object space: o (M, 3) origins, d (M, 3) unit directions.
# Each returns t (M,) (inf where missed) and the object-space normal (M, 3).
# ----------------------------------------------------------------------------------------------


def _hit_sphere(o, d):
    b = (o * d).sum(-1)
    disc = b * b - ((o * o).sum(-1) - 1.0)
    t = -b - np.sqrt(np.maximum(disc, 0.0))
    t = np.where((disc >= 0) & (t > 0), t, np.inf)
    return t, o + np.where(np.isfinite(t), t, 0.0)[:, None] * d


def _hit_cube(o, d):
    d_safe = np.where(np.abs(d) < 1e-12, 1e-12, d)
    t1, t2 = (-_CUBE_H - o) / d_safe, (_CUBE_H - o) / d_safe
    near, far = np.minimum(t1, t2), np.maximum(t1, t2)
    t_in, t_out = near.max(-1), far.min(-1)
    t = np.where((t_out >= t_in) & (t_in > 0), t_in, np.inf)
    axis = near.argmax(-1)
    normal = np.zeros_like(o)
    rows = np.arange(len(o))
    normal[rows, axis] = -np.sign(d_safe[rows, axis])
    return t, normal


def _hit_cylinder(o, d):
    """Capped cylinder about the object's y axis."""
    a = d[:, 0] ** 2 + d[:, 2] ** 2
    b = o[:, 0] * d[:, 0] + o[:, 2] * d[:, 2]
    c = o[:, 0] ** 2 + o[:, 2] ** 2 - _CYL_R ** 2
    disc = b * b - a * c
    a_safe = np.maximum(a, 1e-12)
    t_side = (-b - np.sqrt(np.maximum(disc, 0.0))) / a_safe
    y_side = o[:, 1] + t_side * d[:, 1]
    t_side = np.where((disc >= 0) & (a > 1e-12) & (t_side > 0) & (np.abs(y_side) <= _CYL_H),
                      t_side, np.inf)
    dy = np.where(np.abs(d[:, 1]) < 1e-12, 1e-12, d[:, 1])
    t_caps = np.stack([(_CYL_H - o[:, 1]) / dy, (-_CYL_H - o[:, 1]) / dy], -1)
    px = o[:, 0, None] + t_caps * d[:, 0, None]
    pz = o[:, 2, None] + t_caps * d[:, 2, None]
    t_caps = np.where((t_caps > 0) & (px * px + pz * pz <= _CYL_R ** 2), t_caps, np.inf)
    cap = t_caps.argmin(-1)
    t_cap = t_caps.min(-1)
    t = np.minimum(t_side, t_cap)
    p = o + np.where(np.isfinite(t), t, 0.0)[:, None] * d
    side = t_side <= t_cap
    normal = np.where(side[:, None], p * np.array([1.0, 0.0, 1.0]),
                      np.stack([np.zeros_like(t), np.where(cap == 0, 1.0, -1.0),
                                np.zeros_like(t)], -1))
    return t, normal


def _torus_sdf(p):
    k = np.sqrt(p[:, 0] ** 2 + p[:, 1] ** 2)
    return np.sqrt((k - _TORUS_R) ** 2 + p[:, 2] ** 2) - _TORUS_r


def _hit_torus(o, d, steps: int = 96, tol: float = 1e-5):
    """Torus about the object's z axis, by sphere tracing inside its bounding sphere."""
    bound = _TORUS_R + _TORUS_r
    b = (o * d).sum(-1)
    disc = b * b - ((o * o).sum(-1) - bound * bound)
    sq = np.sqrt(np.maximum(disc, 0.0))
    t_enter, t_exit = np.maximum(-b - sq, 0.0), -b + sq
    idx = np.flatnonzero((disc > 0) & (t_exit > 0))
    t = np.full(len(o), np.inf)
    if len(idx):
        oo, dd, tt, te = o[idx], d[idx], t_enter[idx].copy(), t_exit[idx]
        for _ in range(steps):
            tt = tt + _torus_sdf(oo + tt[:, None] * dd)
        hit = (np.abs(_torus_sdf(oo + tt[:, None] * dd)) < tol) & (tt <= te)
        t[idx] = np.where(hit, tt, np.inf)
    p = o + np.where(np.isfinite(t), t, 0.0)[:, None] * d
    k = np.maximum(np.sqrt(p[:, 0] ** 2 + p[:, 1] ** 2), 1e-12)
    normal = np.stack([p[:, 0] * (1 - _TORUS_R / k), p[:, 1] * (1 - _TORUS_R / k), p[:, 2]], -1)
    return t, normal


_HITS = (_hit_sphere, _hit_cube, _hit_cylinder, _hit_torus)


def _checker(p: np.ndarray) -> np.ndarray:
    """Albedo factor of the object-space checker: 1 or 0.55."""
    cells = np.floor(p * _CHECKER).astype(np.int64).sum(-1)
    return np.where(cells % 2 == 0, 1.0, 0.55)


def render_scenes(scenes: dict, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Ray-cast scenes of :func:`sample_scenes` at ``size`` x ``size`` pixels.

    Returns ``frames (n, T, 3, size, size)`` (float32 in [0, 1], multiples of 1/255) and
    ``depth (n, T, size, size)`` (float32, camera-space ``z`` of the nearest surface).
    Memory: about ``n * T * size**2 * 200`` bytes; call it on chunks of clips.
    """
    if size < 4:
        raise InputError(f"size must be >= 4, got {size}")
    pos, rot = np.asarray(scenes["position"], np.float64), np.asarray(scenes["rotation"],
                                                                      np.float64)
    n, n_obj, T = pos.shape[:3]
    rays = camera_rays(size)  # (P, 3)
    P = len(rays)
    # background plane z - tilt * y = D: t = D / (d_z - tilt * d_y), depth z = t d_z
    z_plane = PLANE_DISTANCE * rays[:, 2] / (rays[:, 2] - PLANE_TILT * rays[:, 1])
    z_best = np.broadcast_to(z_plane, (n, T, P)).copy()
    plane_n = np.array([0.0, PLANE_TILT, -1.0]) / math.hypot(PLANE_TILT, 1.0)
    shade_plane = AMBIENT + (1 - AMBIENT) * max(0.0, float(plane_n @ LIGHT))
    colour = np.broadcast_to(_PLANE_ALBEDO * shade_plane, (n, T, P, 3)).copy()
    for k in range(n_obj):
        present = np.asarray(scenes["present"])[:, k]
        for s_id, hit in enumerate(_HITS):
            clips = np.flatnonzero(present & (np.asarray(scenes["shapes"])[:, k] == s_id))
            if not len(clips):
                continue
            scale = np.asarray(scenes["scale"], np.float64)[clips, k][:, None, None]
            R = rot[clips, k]  # (m, T, 3, 3) object -> world
            # object-space ray: o' = R^T (0 - p) / s, d' = R^T d (unit), t_world = s t'
            o_obj = -np.einsum("mtji,mtj->mti", R, pos[clips, k]) / scale
            d_obj = np.einsum("mtji,pj->mtpi", R, rays)
            o_all = np.broadcast_to(o_obj[:, :, None], d_obj.shape).reshape(-1, 3)
            t_obj, n_obj_space = hit(o_all, d_obj.reshape(-1, 3))
            m = len(clips)
            t_world = (t_obj.reshape(m, T, P) * scale)
            p_obj = o_all + np.where(np.isfinite(t_obj), t_obj, 0.0)[:, None] * d_obj.reshape(
                -1, 3)
            normal = np.einsum("mtij,mtpj->mtpi", R, n_obj_space.reshape(m, T, P, 3))
            normal /= np.maximum(np.linalg.norm(normal, axis=-1, keepdims=True), 1e-12)
            # face the camera (cube edges, torus inside)
            normal *= np.where((normal * rays).sum(-1, keepdims=True) > 0, -1.0, 1.0)
            shade = AMBIENT + (1 - AMBIENT) * np.maximum(0.0, normal @ LIGHT)
            rgb = (_RGB[np.asarray(scenes["colours"])[clips, k]][:, None, None, :]
                   * (_checker(p_obj).reshape(m, T, P) * shade)[..., None])
            z_world = t_world * rays[:, 2]  # camera-space depth of the hit
            z_cur = z_best[clips]
            closer = z_world < z_cur
            z_best[clips] = np.where(closer, z_world, z_cur)
            colour[clips] = np.where(closer[..., None], rgb, colour[clips])
    frames = np.round(np.clip(colour, 0, 1) * 255) / 255
    frames = frames.reshape(n, T, size, size, 3).transpose(0, 1, 4, 2, 3)
    return frames.astype(np.float32), z_best.reshape(n, T, size, size).astype(np.float32)


def _label_attrs(long_name: str, names: tuple[str, ...]) -> dict:
    return {"long_name": long_name, "units": "1",
            "flag_values": np.arange(len(names), dtype=np.int8),
            "flag_meanings": " ".join(names)}


def make_shapes_rgbd(*, clips: int = 256, frames: int = 16, size: int = 64, seed: int = 0,
                     max_objects: int = 2, test_fraction: float = 0.25, chunk: int = 16,
                     progress: bool = False) -> xr.Dataset:
    """RGB-D clips of :func:`sample_scenes` rendered by :func:`render_scenes` (module doc).

    ``test_fraction`` of the clips (the last ones; the combinations are shuffled) get
    ``split = 1``. Rendering runs ``chunk`` clips at a time.
    """
    if clips < 1 or frames < 2 or size < 4:
        raise InputError(f"need clips >= 1, frames >= 2 and size >= 4, got {clips}, {frames}, "
                         f"{size}")
    if not 0 <= test_fraction < 1:
        raise InputError(f"test_fraction must be in [0, 1), got {test_fraction}")
    if chunk < 1:
        raise InputError(f"chunk must be >= 1, got {chunk}")
    sc = sample_scenes(clips, frames, seed=seed, max_objects=max_objects)
    rgb = np.empty((clips, frames, 3, size, size), np.float32)
    depth = np.empty((clips, frames, size, size), np.float32)
    starts = range(0, clips, chunk)
    if progress:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc="rendering", unit="chunk")
    per_clip = ("present", "shapes", "colours", "scale", "position", "rotation")
    for s in starts:
        e = min(clips, s + chunk)
        rgb[s:e], depth[s:e] = render_scenes({k: sc[k][s:e] for k in per_clip}, size)
    n_test = int(round(clips * test_fraction))
    split = np.zeros(clips, np.int8)
    split[clips - n_test:] = 1
    none_shape = np.where(sc["present"][:, 1], sc["shapes"][:, 1], len(SHAPES))
    none_colour = np.where(sc["present"][:, 1], sc["colours"][:, 1], len(COLOURS))
    clip_dim = ("clip",)
    ds = xr.Dataset(
        {
            "frames": (("clip", "time", "channel", "y", "x"), rgb,
                       {"long_name": "RGB intensity", "units": "1", "valid_min": 0.0,
                        "valid_max": 1.0}),
            "depth": (("clip", "time", "y", "x"), depth,
                      {"long_name": "camera-space depth (z) of the surface seen by the pixel",
                       "units": "1", "comment": "world units; the camera is at the origin "
                       "looking along +z", "valid_min": DEPTH_NEAR, "valid_max": DEPTH_FAR}),
            "position": (("clip", "time", "axis"), sc["position"][:, 0].astype(np.float32),
                         {"long_name": "centre of the main object (camera space)",
                          "units": "1"}),
            "action": (clip_dim, sc["action"].astype(np.int8),
                       _label_attrs("action of the main object", ACTIONS)),
            "shape": (clip_dim, sc["shape"].astype(np.int8),
                      _label_attrs("shape of the main object", SHAPES)),
            "colour": (clip_dim, sc["colour"].astype(np.int8),
                       _label_attrs("colour of the main object", COLOURS)),
            "distractor_shape": (clip_dim, none_shape.astype(np.int8),
                                 _label_attrs("shape of the second object", SHAPES + ("none",))),
            "distractor_colour": (clip_dim, none_colour.astype(np.int8),
                                  _label_attrs("colour of the second object",
                                               COLOURS + ("none",))),
            "split": (clip_dim, split, _label_attrs("data split", ("train", "test"))),
        },
        coords={"clip": ("clip", np.arange(clips), {"long_name": "clip number"}),
                "time": ("time", np.arange(frames), {"long_name": "frame index", "units": "1"}),
                "channel": ("channel", ["red", "green", "blue"]),
                "y": ("y", np.arange(size), {"long_name": "pixel row (top to bottom)",
                                             "units": "1"}),
                "x": ("x", np.arange(size), {"long_name": "pixel column (left to right)",
                                             "units": "1"}),
                "axis": ("axis", ["x", "y", "z"])},
    )
    ds["frames"].encoding.update({"dtype": "int16", "scale_factor": np.float32(1 / 255),
                                  "add_offset": np.float32(0.0), "_FillValue": np.int16(-1),
                                  "zlib": True, "complevel": 4,
                                  "chunksizes": (min(clips, chunk), frames, 3, size, size)})
    ds["depth"].encoding.update({"zlib": True, "complevel": 4,
                                 "chunksizes": (min(clips, chunk), frames, size, size)})
    ds.attrs.update({
        "Conventions": CONVENTIONS, "title": "procedural RGB-D shapes",
        "source": f"pyro_videossm {__version__} data.shapes_rgbd", "seed": seed,
        "size": size, "frames": frames, "max_objects": max_objects,
        "action_label": "action", "content_labels": "shape colour",
        "depth_near": DEPTH_NEAR, "depth_far": DEPTH_FAR,
        "field_of_view_degrees": math.degrees(FIELD_OF_VIEW),
    })
    return ds


# ----------------------------------------------------------------------------------------------
# Depth as a network input / output
# ----------------------------------------------------------------------------------------------


def depth_to_unit(depth):
    """Depth in world units -> [0, 1] (``(depth - DEPTH_NEAR) / (DEPTH_FAR - DEPTH_NEAR)``,
    clipped); numpy arrays or tensors."""
    x = (depth - DEPTH_NEAR) / (DEPTH_FAR - DEPTH_NEAR)
    return x.clamp(0, 1) if isinstance(x, Tensor) else np.clip(x, 0, 1)


def depth_from_unit(x):
    """Inverse of :func:`depth_to_unit`: [0, 1] -> world units."""
    return DEPTH_NEAR + x * (DEPTH_FAR - DEPTH_NEAR)


def depth_tensor(ds: xr.Dataset, where: str = "") -> Tensor:
    """``depth(clip, time, y, x)`` of a Dataset as a float32 tensor ``(clip, time, 1, y, x)``
    in [0, 1] (:func:`depth_to_unit`), checked (present, dims, finite)."""
    w = f"{where}: " if where else ""
    if "depth" not in ds.data_vars:
        raise InputError(f"{w}missing variable 'depth' (has: "
                         f"{', '.join(map(str, ds.data_vars)) or 'none'})")
    if tuple(ds["depth"].dims) != ("clip", "time", "y", "x"):
        raise InputError(f"{w}depth has dims {tuple(ds['depth'].dims)}, expected "
                         "('clip', 'time', 'y', 'x')")
    d = np.asarray(ds["depth"].values, np.float32)
    if not np.isfinite(d).all():
        raise InputError(f"{w}depth contains NaN or infinite values")
    return torch.as_tensor(depth_to_unit(d)).unsqueeze(2)
