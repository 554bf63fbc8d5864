"""shapes-rgbd: exact depth against closed forms, actions that move the way they say, labels,
files."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pyro_videossm.cli import main
from pyro_videossm.data.conventions import open_dataset
from pyro_videossm.data.shapes_rgbd import (
    ACTIONS,
    COLOURS,
    DEPTH_FAR,
    DEPTH_NEAR,
    PLANE_DISTANCE,
    PLANE_TILT,
    SHAPES,
    camera_rays,
    depth_from_unit,
    depth_tensor,
    make_shapes_rgbd,
    render_scenes,
    sample_scenes,
)
from pyro_videossm.errors import InputError

SIZE = 24


def _scene(shape: int, centre, scale: float = 0.8, rotation=None, frames: int = 1) -> dict:
    """One clip, one object still at ``centre``."""
    R = np.eye(3) if rotation is None else np.asarray(rotation, float)
    return {"present": np.array([[True, False]]), "shapes": np.array([[shape, 0]]),
            "colours": np.array([[0, 1]]), "scale": np.array([[scale, 0.5]]),
            "position": np.broadcast_to(np.array(centre, float), (1, 2, frames, 3)).copy(),
            "rotation": np.broadcast_to(R, (1, 2, frames, 3, 3)).copy()}


def _plane_depth(ray):
    return PLANE_DISTANCE * ray[2] / (ray[2] - PLANE_TILT * ray[1])


def test_sphere_depth_on_a_pixel_ray_is_the_analytic_distance():
    rays = camera_rays(SIZE)
    row, col = 7, 15
    ray = rays[row * SIZE + col]
    distance, radius = 6.0, 0.8
    _, depth = render_scenes(_scene(0, distance * ray, radius), SIZE)
    # the ray passes through the centre: it enters the sphere at distance - radius along the
    # ray, at camera depth (distance - radius) * cos(angle to the axis)
    assert depth[0, 0, row, col] == pytest.approx((distance - radius) * ray[2], abs=1e-5)
    # a pixel far from the sphere sees the background plane
    assert depth[0, 0, 0, 0] == pytest.approx(_plane_depth(rays[0]), abs=1e-4)


def test_cube_cylinder_and_torus_depths_in_closed_form():
    c = SIZE // 2  # pixel just below and right of the optical axis
    rays = camera_rays(SIZE)
    z, s = 6.0, 0.8
    _, d_cube = render_scenes(_scene(1, (0, 0, z), s), SIZE)
    assert d_cube[0, 0, c, c] == pytest.approx(z - 0.75 * s, abs=1e-5)  # the front face
    axis_to_z = [[1, 0, 0], [0, 0, -1], [0, 1, 0]]  # object y axis -> camera -z
    _, d_cyl = render_scenes(_scene(2, (0, 0, z), s, axis_to_z), SIZE)
    assert d_cyl[0, 0, c, c] == pytest.approx(z - 0.8 * s, abs=1e-5)  # the front cap
    _, d_torus = render_scenes(_scene(3, (0, 0, z), s), SIZE)
    # through the hole: the plane behind; on the tube's crest (ring radius 0.65 s): its front
    assert d_torus[0, 0, c, c] == pytest.approx(_plane_depth(rays[c * SIZE + c]), abs=1e-4)
    ray = np.array([0.65 * s, 0.0, z])
    col = int(np.argmin(np.abs(rays[c * SIZE:(c + 1) * SIZE, 0] / rays[c * SIZE:(c + 1) * SIZE,
                                                                              2]
                               - ray[0] / ray[2])))
    assert d_torus[0, 0, c, col] == pytest.approx(z - 0.3 * s, abs=0.02)


def test_shapes_are_distinguishable():
    sil = []
    for shape in range(4):
        frames, depth = render_scenes(_scene(shape, (0.1, 0.2, 5.0), 0.9,
                                             [[0.8, -0.36, 0.48], [0.6, 0.48, -0.64],
                                              [0, 0.8, 0.6]]), SIZE)
        sil.append(depth[0, 0] < 8.0)
        assert sil[-1].sum() > 40
    for a in range(4):
        for b in range(a + 1, 4):
            assert (sil[a] != sil[b]).sum() >= 10, (SHAPES[a], SHAPES[b])


def _object_mask(ds, clip):
    return ds["depth"].values[clip] < 8.0  # (T, y, x): nearer than the plane (z >= 8.9)


def test_actions_move_the_object_as_named():
    ds = make_shapes_rgbd(clips=28, frames=5, size=SIZE, max_objects=1, seed=2)
    ys, xs = np.mgrid[:SIZE, :SIZE]
    checked = set()
    for i, a in enumerate(ds["action"].values):
        m = _object_mask(ds, i)
        area = m.sum((1, 2))
        cx, cy = (m * xs).sum((1, 2)) / area, (m * ys).sum((1, 2)) / area
        nearest = ds["depth"].values[i].min((1, 2))
        name = ACTIONS[a]
        if name == "translate_right":
            assert (np.diff(cx) > 0).all()
        elif name == "translate_left":
            assert (np.diff(cx) < 0).all()
        elif name == "translate_up":
            assert (np.diff(cy) < 0).all()  # rows count downwards
        elif name == "translate_down":
            assert (np.diff(cy) > 0).all()
        elif name == "approach":
            assert (np.diff(nearest) < 0).all() and area[-1] > area[0]
        elif name == "recede":
            assert (np.diff(nearest) > 0).all() and area[-1] < area[0]
        else:  # rotate: the object stays put, its pixels change
            assert np.allclose(ds["position"].values[i], ds["position"].values[i, :1])
            assert np.abs(np.diff(ds["frames"].values[i], axis=0)).sum() > 1.0
        checked.add(name)
    assert checked == set(ACTIONS)


def test_labels_balanced_and_file_round_trip(tmp_path):
    sc = sample_scenes(168, 2, seed=0)
    combos = set(zip(sc["action"], sc["shape"], sc["colour"]))
    assert len(combos) == 168  # every (action, shape, colour) once per block of 168
    out = tmp_path / "s.nc"
    assert main(["simulate", "shapes-rgbd", "--clips", "8", "--frames", "3", "--size", "8",
                 "-o", str(out), "--no-progress"]) == 0
    ds = open_dataset(out)
    assert ds["frames"].dims == ("clip", "time", "channel", "y", "x")
    assert ds["depth"].dims == ("clip", "time", "y", "x") and ds["frames"].shape == (8, 3, 3, 8, 8)
    assert ds["action"].attrs["flag_meanings"].split() == list(ACTIONS)
    assert ds["colour"].attrs["flag_meanings"].split() == list(COLOURS)
    assert ds["distractor_shape"].attrs["flag_meanings"].split()[-1] == "none"
    assert list(ds["split"].values) == [0] * 6 + [1] * 2
    d = ds["depth"].values
    assert np.isfinite(d).all() and DEPTH_NEAR <= d.min() and d.max() <= DEPTH_FAR
    unit = depth_tensor(ds)
    assert unit.shape == (8, 3, 1, 8, 8)
    np.testing.assert_allclose(depth_from_unit(unit[:, :, 0].numpy()), d, rtol=1e-5)
    f = ds["frames"].values
    assert 0 <= f.min() and f.max() <= 1 and np.allclose(f * 255, np.round(f * 255), atol=1e-3)
    with pytest.raises(InputError, match="max_objects"):
        sample_scenes(2, 2, max_objects=3)
    assert math.isclose(ds.attrs["depth_far"], DEPTH_FAR)
