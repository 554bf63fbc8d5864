"""Write the KNMI test files in ``tests/data`` from the original composites (run once; needs
``h5py``, which the package itself does not use).

    python tests/data/make_knmi_crops.py ../shared/data/radar/knmi_20100826

``knmi_crop/``: 20 consecutive 5-minute composites (02:20 to 03:55 UTC, 26 August 2010), each
cut to the 100 x 100 km window of rows 380..479 and columns 320..419 of the 765 x 700 grid
(x 320..420 km, y -4130..-4030 km: around the centre of the radar range, where
``benchmarks/radar_forecast.py --quick`` crops). Everything else is the original file: the same
groups and attributes, with ``geo_number_rows/columns``, ``geo_column_offset``,
``geo_row_offset``, ``image_size`` and ``geo_product_corners`` (the window's corners, from the
inverse of the file's polar stereographic projection) updated to the window.

``knmi_full/``: one original composite (03:00 UTC), copied byte for byte.
"""

from __future__ import annotations

import math
import shutil
import sys
from pathlib import Path

import h5py
import numpy as np

HERE = Path(__file__).resolve().parent
FIRST, COUNT = 28, 20                    # files 28..47 of the day: 02:20 .. 03:55
ROWS, COLS = slice(380, 480), slice(320, 420)
FULL = "RAD_NL25_RAP_5min_201008260300.h5"


def _inverse_polar_stereo(x: float, y: float, a=6378.137, b=6356.752, lat_ts=60.0):
    """Snyder (1987) eq. 21-36..21-38 (north polar aspect, ellipsoid): km -> (lon, lat) deg."""
    e = math.sqrt(1 - (b / a) ** 2)
    pc = math.radians(lat_ts)
    tc = math.tan(math.pi / 4 - pc / 2) / ((1 - e * math.sin(pc)) / (1 + e * math.sin(pc))) ** (
        e / 2)
    mc = math.cos(pc) / math.sqrt(1 - (e * math.sin(pc)) ** 2)
    t = math.hypot(x, y) * tc / (a * mc)
    phi = math.pi / 2 - 2 * math.atan(t)
    for _ in range(50):
        phi = math.pi / 2 - 2 * math.atan(
            t * ((1 - e * math.sin(phi)) / (1 + e * math.sin(phi))) ** (e / 2))
    return math.degrees(math.atan2(x, -y)), math.degrees(phi)


def _get(group, name: str) -> float:
    return float(np.ravel(group.attrs[name])[0])


def _set(group, name: str, value: float) -> None:
    """Replace a scalar attribute, keeping the original's dtype and shape (1-element arrays)."""
    old = np.asarray(group.attrs[name])
    group.attrs[name] = np.full(old.shape, value, dtype=old.dtype)


def crop(src: Path, dst: Path) -> None:
    with h5py.File(src, "r") as f, h5py.File(dst, "w", libver="latest") as o:
        def copy(gi, go):
            for k, v in gi.attrs.items():
                go.attrs[k] = v
            for name, sub in gi.items():
                if isinstance(sub, h5py.Group):
                    copy(sub, go.create_group(name))
                else:
                    d = go.create_dataset(name, data=sub[ROWS, COLS], compression="gzip",
                                          compression_opts=9, shuffle=True)
                    for k, v in sub.attrs.items():
                        d.attrs[k] = v
        copy(f, o)
        geo = o["geographic"]
        rows, cols = ROWS.stop - ROWS.start, COLS.stop - COLS.start
        col_off = _get(geo, "geo_column_offset") + COLS.start
        row_off = _get(geo, "geo_row_offset") + ROWS.start
        _set(geo, "geo_number_rows", rows)
        _set(geo, "geo_number_columns", cols)
        _set(geo, "geo_column_offset", col_off)
        _set(geo, "geo_row_offset", row_off)
        _set(o["image1"], "image_size", rows * cols * 2)
        psx, psy = _get(geo, "geo_pixel_size_x"), _get(geo, "geo_pixel_size_y")
        left, right = col_off * psx, (col_off + cols) * psx
        top, bottom = row_off * psy, (row_off + rows) * psy
        corners = [_inverse_polar_stereo(x, y) for x, y in
                   ((left, bottom), (left, top), (right, top), (right, bottom))]
        geo.attrs["geo_product_corners"] = np.round(np.ravel(corners), 3).astype(np.float32)


def main(source: str) -> None:
    files = sorted(Path(source).glob("RAD_NL25_RAP_5min_*.h5"))[FIRST:FIRST + COUNT]
    out = HERE / "knmi_crop"
    out.mkdir(exist_ok=True)
    for path in files:
        crop(path, out / path.name)
    (HERE / "knmi_full").mkdir(exist_ok=True)
    shutil.copyfile(Path(source) / FULL, HERE / "knmi_full" / FULL)


if __name__ == "__main__":
    main(sys.argv[1])
