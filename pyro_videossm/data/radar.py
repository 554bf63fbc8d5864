"""KNMI radar rainfall composites (HDF5, ``RAD_NL25_RAP_5min``) -> one CF Dataset of rain rate.

Each file holds one 5-minute accumulation ``image1/image_data`` (uint16; ``GEO = gain * PV +
offset`` mm from ``image1/calibration``; 65535 = missing / outside radar range) on a polar
stereographic grid of 1 km pixels. :func:`load_knmi` reads a list of files (or a folder) file
by file with ``netCDF4`` (auto-masking off), converts to rain rate in mm/h (``60 / 5`` times
the accumulation), turns missing data into NaN, optionally crops and coarsens each frame
(NaN-aware block mean) and returns::

    rain_rate(time, y, x)  mm/h, float32, NaN outside radar range
    coords: time (datetime64, end of the accumulation), y, x (km, projection coordinates of
            the pixel centres, y decreasing northward-to-south as stored), crs (grid mapping)

The stacking (crop, coarsen, sort by time, one grid, CF attributes) is :func:`stack_frames`,
shared with the readers of other archives through pysteps
(:mod:`pyro_videossm.data.radar_importers`); :func:`grid_mapping_attrs` turns a PROJ.4 string
into CF grid-mapping attributes.

Projection coordinates follow the ``geographic`` attributes: a pixel's upper-left corner is at
``x = (column + geo_column_offset) * geo_pixel_size_x``,
``y = (row + geo_row_offset) * geo_pixel_size_y`` (km, ``+proj=stere +lat_0=90 +lat_ts=60``).
"""

from __future__ import annotations

import math
import os
import re
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import xarray as xr

from pyro_videossm import __version__
from pyro_videossm.data.conventions import CONVENTIONS
from pyro_videossm.errors import InputError

#: File name pattern of the 5-minute composites.
KNMI_PATTERN = "RAD_NL25_RAP_5min_*.h5"


def grid_mapping_attrs(proj4: str) -> dict:
    """CF grid-mapping attributes of a PROJ.4 string (``proj4_params`` keeps the string).

    Polar stereographic (``+proj=stere``, the KNMI composites) is written out here; any other
    projection goes through ``pyproj`` (``CRS.to_cf``; installed with the ``[nowcast]`` extra).
    Ellipsoid axes given in km (``+a=6378.137``, as KNMI writes them) become metres for CF.
    One-line :class:`InputError` for an empty string or one pyproj cannot read.
    """
    proj4 = str(proj4 or "").strip()
    if not proj4:
        raise InputError("the radar file has no projection (no PROJ.4 string in its metadata)")
    p = dict(re.findall(r"\+(\w+)=([^\s]+)", proj4))
    km_axes = "a" in p and _proj_number(p["a"], proj4) < 1.0e5
    if p.get("proj") == "stere":
        def num(key: str, default: float) -> float:
            return _proj_number(p[key], proj4) if key in p else default

        attrs: dict = {"grid_mapping_name": "polar_stereographic",
                       "straight_vertical_longitude_from_pole": num("lon_0", 0.0),
                       "latitude_of_projection_origin": num("lat_0", 90.0),
                       "standard_parallel": num("lat_ts", 60.0),
                       "false_easting": num("x_0", 0.0),
                       "false_northing": num("y_0", 0.0),
                       "proj4_params": proj4, "units_note": "coordinates in km"}
        if "a" in p and "b" in p:  # CF wants metres
            scale = 1000.0 if km_axes else 1.0
            attrs["semi_major_axis"] = _proj_number(p["a"], proj4) * scale
            attrs["semi_minor_axis"] = _proj_number(p["b"], proj4) * scale
        return attrs
    try:
        import pyproj
    except ImportError:
        raise InputError("projection " + repr(proj4) + " needs pyproj: pip install "
                         "'pyro-videossm[nowcast]'") from None
    metric = proj4
    if km_axes:
        for k in ("a", "b"):
            if k in p:
                metric = re.sub(rf"\+{k}=[^\s]+",
                                f"+{k}={_proj_number(p[k], proj4) * 1000.0:g}", metric)
    try:
        with warnings.catch_warnings():  # e.g. "parameter lost in conversion to CF"
            warnings.simplefilter("ignore", UserWarning)
            cf = pyproj.CRS.from_proj4(metric).to_cf()
    except pyproj.exceptions.CRSError as err:
        raise InputError(f"unreadable projection {proj4!r} ({err})".splitlines()[0]) from None
    attrs = {k: v for k, v in cf.items() if isinstance(v, (str, int, float))}
    attrs.update(proj4_params=proj4, units_note="coordinates in km")
    return attrs


def _proj_number(value: str, proj4: str) -> float:
    """A PROJ.4 parameter's number; angles may carry a hemisphere (``25E``, ``60N``; ``S`` and
    ``W`` negative), as FMI's composites write them."""
    v = str(value).strip()
    sign = -1.0 if v[-1:].upper() in ("S", "W") else 1.0
    try:
        return sign * float(v[:-1] if v[-1:].upper() in ("N", "E", "S", "W") else v)
    except ValueError:
        raise InputError(f"unreadable number {value!r} in the projection {proj4!r}") from None


@dataclass(frozen=True)
class RadarGrid:
    """The projection grid of a radar composite: pixel centres ``x`` (columns) and ``y``
    (rows, in file order) and pixel sizes, in ``units`` (``km`` or ``m``), and its PROJ.4
    string."""

    x: np.ndarray  # (columns,)
    y: np.ndarray  # (rows,)
    pixel_size_x: float
    pixel_size_y: float
    proj4: str
    units: str = "km"

    @property
    def km_per_unit(self) -> float:
        return {"km": 1.0, "m": 1.0e-3}[self.units]

    def in_km(self) -> RadarGrid:
        """The same grid with coordinates and pixel sizes in km."""
        k = self.km_per_unit
        return RadarGrid(self.x * k, self.y * k, self.pixel_size_x * k, self.pixel_size_y * k,
                         self.proj4, "km")

    def crs_attrs(self) -> dict:
        """CF grid-mapping attributes of the projection (:func:`grid_mapping_attrs`)."""
        return grid_mapping_attrs(self.proj4)


#: The KNMI reader's grid (the same class).
KnmiGrid = RadarGrid


def _attrs(group) -> dict:
    return {k: group.getncattr(k) for k in group.ncattrs()}


def _parse_time(raw: str, path: Path) -> np.datetime64:
    try:
        t = datetime.strptime(str(raw).strip(), "%d-%b-%Y;%H:%M:%S.%f")
    except ValueError:
        raise InputError(f"{path}: unreadable product_datetime_end {raw!r}") from None
    return np.datetime64(t.replace(microsecond=0), "ns")


def _calibration(cal: dict, path: Path) -> tuple[float, float, set[int]]:
    m = re.fullmatch(r"\s*GEO\s*=\s*([-+0-9.eE]+)\s*\*\s*PV\s*([-+]\s*[0-9.eE]+)?\s*",
                     str(cal.get("calibration_formulas", "")))
    if not m:
        raise InputError(f"{path}: unknown calibration formula "
                         f"{cal.get('calibration_formulas')!r}")
    gain = float(m.group(1))
    offset = float(m.group(2).replace(" ", "")) if m.group(2) else 0.0
    missing = {int(cal[k]) for k in ("calibration_missing_data", "calibration_out_of_image")
               if k in cal}
    return gain, offset, missing or {65535}


def read_knmi_file(path: str | os.PathLike) -> tuple[np.datetime64, np.ndarray, RadarGrid, dict]:
    """Read one composite: ``(valid time, rain rate (rows, cols) mm/h float32 with NaN, grid,
    metadata)``. One-line :class:`InputError` if the file is missing or not a KNMI composite."""
    import netCDF4

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    try:
        f = netCDF4.Dataset(path, "r")
    except OSError:
        raise InputError(f"{path}: not an HDF5/netCDF file") from None
    with f:
        f.set_auto_mask(False)
        try:
            image = f["image1"]
            raw = np.asarray(image["image_data"][:])
            cal = _attrs(image["calibration"])
            geo = _attrs(f["geographic"])
            proj = _attrs(f["geographic"]["map_projection"])
            over = _attrs(f["overview"])
            img_attrs = _attrs(image)
        except (KeyError, IndexError):
            raise InputError(f"{path}: not a KNMI radar composite (no image1/geographic)") from None
    gain, offset, missing = _calibration(cal, path)
    start = over.get("product_datetime_start")
    end = _parse_time(over.get("product_datetime_end", ""), path)
    minutes = 5.0
    if start is not None:
        minutes = float((end - _parse_time(start, path)) / np.timedelta64(1, "m"))
        if minutes <= 0:
            raise InputError(f"{path}: accumulation period is not positive")
    bad = np.isin(raw, list(missing))
    rate = (raw.astype(np.float64) * gain + offset) * (60.0 / minutes)
    rate = np.where(bad, np.nan, rate).astype(np.float32)
    rows, cols = raw.shape
    psx, psy = float(geo["geo_pixel_size_x"]), float(geo["geo_pixel_size_y"])
    col_off, row_off = float(geo["geo_column_offset"]), float(geo["geo_row_offset"])
    grid = RadarGrid(
        x=(np.arange(cols) + 0.5 + col_off) * psx,
        y=(np.arange(rows) + 0.5 + row_off) * psy,
        pixel_size_x=psx, pixel_size_y=psy,
        proj4=str(proj.get("projection_proj4_params", "")),
    )
    meta = {"product": str(img_attrs.get("image_product_name", "")),
            "accumulation_minutes": minutes}
    return end, rate, grid, meta


def coarsen_block_mean(a: np.ndarray, factor: int, min_valid: float = 0.0) -> np.ndarray:
    """NaN-aware ``factor x factor`` block mean over the last two axes (trailing rows/columns
    that do not fill a block are dropped). A block with a valid fraction below ``min_valid``
    (or with no valid pixel) is NaN."""
    if factor == 1:
        return a
    h, w = a.shape[-2] // factor, a.shape[-1] // factor
    if h == 0 or w == 0:
        raise InputError(f"coarsening factor {factor} is larger than the grid {a.shape[-2:]}")
    b = a[..., : h * factor, : w * factor].reshape(*a.shape[:-2], h, factor, w, factor)
    valid = ~np.isnan(b)
    count = valid.sum(axis=(-3, -1))
    total = np.where(valid, b, 0.0).sum(axis=(-3, -1), dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / count
    frac = count / float(factor * factor)
    mean[(count == 0) | (frac < min_valid)] = np.nan
    return mean.astype(a.dtype)


def _coarsen_coord(c: np.ndarray, factor: int) -> np.ndarray:
    n = c.size // factor
    return c[: n * factor].reshape(n, factor).mean(axis=1)


def knmi_files(source: str | os.PathLike | Iterable[str | os.PathLike]) -> list[Path]:
    """The composite files of a folder (sorted by name), or the given files."""
    if isinstance(source, (str, os.PathLike)):
        p = Path(source)
        if p.is_dir():
            files = sorted(p.glob(KNMI_PATTERN)) or sorted(p.glob("*.h5"))
            if not files:
                raise InputError(f"{p}: no KNMI composites ({KNMI_PATTERN}) in this folder")
            return files
        return [p]
    files = [Path(s) for s in source]
    if not files:
        raise InputError("no input files")
    return files


def _crop_slice(coord: np.ndarray, box: Sequence[float] | None, name: str) -> slice:
    if box is None:
        return slice(None)
    lo, hi = sorted(map(float, box))
    idx = np.nonzero((coord >= lo) & (coord <= hi))[0]
    if idx.size == 0:
        raise InputError(f"crop {name}=({lo:g}, {hi:g}) km is outside the grid "
                         f"({coord.min():g} .. {coord.max():g} km)")
    return slice(int(idx[0]), int(idx[-1]) + 1)


def load_knmi(
    source: str | os.PathLike | Iterable[str | os.PathLike],
    *,
    resolution_km: float | None = None,
    crop_x: Sequence[float] | None = None,
    crop_y: Sequence[float] | None = None,
    min_valid: float = 0.0,
    progress: bool = False,
) -> xr.Dataset:
    """Read KNMI composites into ``rain_rate(time, y, x)`` (mm/h; see the module doc).

    Args:
        source: a folder of ``RAD_NL25_RAP_5min_*.h5`` files, or a list of files.
        resolution_km: coarsen to this pixel size (a multiple of the 1 km pixel) with a
            NaN-aware block mean.
        crop_x, crop_y: keep pixels whose centre lies in ``(low, high)`` km (applied before
            coarsening).
        min_valid: blocks with a smaller valid fraction become NaN when coarsening.
    """
    files = knmi_files(source)
    ds = stack_frames(files, read_knmi_file, resolution_km=resolution_km, crop_x=crop_x,
                      crop_y=crop_y, min_valid=min_valid, progress=progress, desc="knmi")
    ds.attrs.update(title="KNMI radar rainfall composite, rain rate",
                    institution="KNMI (Royal Netherlands Meteorological Institute)",
                    source=f"{ds.attrs['source']} HDF5 converted by pyro-videossm {__version__}")
    return ds


#: A frame reader: path -> (valid time, rain rate (rows, cols) mm/h with NaN, grid, metadata
#: with ``accumulation_minutes`` and ``product``).
FrameReader = Callable[[Path], "tuple[np.datetime64, np.ndarray, RadarGrid, dict]"]


def stack_frames(
    files: Sequence[str | os.PathLike],
    read_frame: FrameReader,
    *,
    resolution_km: float | None = None,
    crop_x: Sequence[float] | None = None,
    crop_y: Sequence[float] | None = None,
    min_valid: float = 0.0,
    progress: bool = False,
    desc: str = "radar",
) -> xr.Dataset:
    """Read ``files`` one frame each with ``read_frame`` into ``rain_rate(time, y, x)``
    (mm/h, coordinates in km; the module doc's layout), cropped (box in km, before
    coarsening), coarsened to ``resolution_km`` (NaN-aware block mean) and sorted by time.
    Every frame must share the first one's grid; two frames of one time are refused."""
    from tqdm.auto import tqdm

    files = [Path(f) for f in files]
    if not files:
        raise InputError("no input files")
    times, frames = [], []
    grid0: RadarGrid | None = None
    factor = 1
    sy = sx = slice(None)
    meta0: dict = {}
    for path in tqdm(files, disable=not progress, desc=desc, unit="file"):
        t, rate, grid, meta = read_frame(path)
        grid = grid.in_km()
        if grid0 is None:
            grid0, meta0 = grid, meta
            sy, sx = _crop_slice(grid.y, crop_y, "y"), _crop_slice(grid.x, crop_x, "x")
            if resolution_km is not None:
                ratio = float(resolution_km) / abs(grid.pixel_size_x)
                factor = int(round(ratio))
                if factor < 1 or abs(ratio - factor) > 1e-6 or not math.isclose(
                        abs(grid.pixel_size_x), abs(grid.pixel_size_y), rel_tol=1e-9):
                    raise InputError(f"resolution {resolution_km} km is not a whole multiple of "
                                     f"the {abs(grid.pixel_size_x):g} km pixel")
        elif (grid.x.shape != grid0.x.shape or grid.y.shape != grid0.y.shape
              or not np.allclose(grid.x, grid0.x) or not np.allclose(grid.y, grid0.y)):
            raise InputError(f"{path}: grid differs from {files[0].name}")
        times.append(t)
        frames.append(coarsen_block_mean(rate[sy, sx], factor, min_valid))
    assert grid0 is not None
    order = np.argsort(np.array(times))
    t = np.array(times)[order]
    if t.size > 1 and (np.diff(t) == np.timedelta64(0, "ns")).any():
        dup = t[np.nonzero(np.diff(t) == np.timedelta64(0, "ns"))[0][0]]
        raise InputError(f"two files have the same valid time {dup}")
    data = np.stack([frames[i] for i in order])
    x, y = _coarsen_coord(grid0.x[sx], factor), _coarsen_coord(grid0.y[sy], factor)
    pixel = abs(grid0.pixel_size_x) * factor
    crs = grid0.crs_attrs()
    kind = crs.get("grid_mapping_name", "projection").replace("_", " ")
    minutes = meta0.get("accumulation_minutes")
    cell = (f"time: mean (interval: {minutes:g} minutes)" if minutes else "time: point")
    return xr.Dataset(
        {"rain_rate": (("time", "y", "x"), data,
                       {"units": "mm/h", "long_name": "radar rain rate",
                        "standard_name": "rainfall_rate", "grid_mapping": "crs",
                        "cell_methods": cell + (" area: mean" if factor > 1 else "")}),
         "crs": ((), np.int32(0), crs)},
        coords={"time": ("time", t, {"long_name": "end of the accumulation period"
                                     if minutes else "valid time",
                                     "standard_name": "time", "axis": "T"}),
                "y": ("y", y, {"units": "km", "standard_name": "projection_y_coordinate",
                               "long_name": f"y ({kind})", "axis": "Y"}),
                "x": ("x", x, {"units": "km", "standard_name": "projection_x_coordinate",
                               "long_name": f"x ({kind})", "axis": "X"})},
        attrs={"Conventions": CONVENTIONS,
               "title": "radar rain rate",
               "source": str(meta0.get("product", "")),
               "pixel_size_km": pixel, "coarsening_factor": factor,
               "min_valid_fraction": float(min_valid), "files": len(files)},
    )
