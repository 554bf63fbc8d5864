"""Any radar archive pysteps reads -> the toolkit's CF rain-rate Dataset.

:func:`load_radar` reads files of one source (:data:`RADAR_SOURCES`: ``knmi``, ``fmi``,
``bom``, ``opera``, ``mch``) with pysteps' importer for it (``pysteps.io.importers``; the
optional ``[nowcast]`` extra, imported only when called), converts each field to rain rate
in mm/h with ``pysteps.utils.conversion.to_rainrate`` (accumulations divided by their
period, reflectivity through the importer's Z-R relation) and stacks the frames with
:func:`~pyro_videossm.data.radar.stack_frames`, the same code the KNMI reader uses::

    rain_rate(time, y, x)  mm/h, float32, NaN where the importer gives no data
    coords: time (datetime64, from the file name), y, x (km, projection coordinates of the
            pixel centres; rows in file order), crs (CF grid mapping from the importer's
            PROJ.4 string, see :func:`~pyro_videossm.data.radar.grid_mapping_attrs`)

The importers give no time, so, as pysteps' archive does, the valid time comes from the file
name through the source's ``fn_pattern`` (``--time-format`` overrides it). For KNMI the result
equals :func:`~pyro_videossm.data.radar.load_knmi`'s (the tests check it): the accumulation
period and the gain come from the file (:func:`knmi_file_options`; pysteps' importer assumes 5
minutes and 0.01 mm). Reflectivity at the importer's lowest level (no echo) is 0 mm/h, also in
a frame holding nothing else, where pysteps' conversion would leave a tiny rate. Each format
is tested on synthetic files written in it (``tests/radar_fixtures.py``).
"""

from __future__ import annotations

import contextlib
import io
import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from pyro_videossm import __version__
from pyro_videossm.data.pysteps_module import import_pysteps
from pyro_videossm.data.radar import RadarGrid, stack_frames
from pyro_videossm.errors import InputError


@dataclass(frozen=True)
class RadarSource:
    """One archive format: the pysteps importer, its keyword arguments and the file-name time
    pattern (``strftime`` codes, ``?`` one character, ``*`` any; as in pysteps' ``pystepsrc``)."""

    importer: str
    fn_pattern: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    #: the importer takes ``gzipped=`` (set from the file name's ``.gz``)
    gzip_option: bool = False
    #: ``path -> (importer keyword arguments read from the file, factor on its values)``:
    #: what the importer would otherwise assume (KNMI: the accumulation period and gain)
    file_options: Callable[[Path], tuple[dict[str, Any], float]] | None = None


def knmi_file_options(path: Path) -> tuple[dict[str, Any], float]:
    """A KNMI composite's accumulation period (minutes, ``overview/product_datetime_start``
    to ``_end``) and the factor from pysteps' fixed ``0.01 mm`` per count to the file's
    calibration (``GEO = gain * PV + offset``; an offset other than 0 is refused). pysteps
    assumes a 5-minute period and a gain of 0.01; the file says which."""
    from pyro_videossm.data.radar import _calibration, _parse_time

    try:
        import h5py

        with h5py.File(path, "r") as f:
            over = dict(f["overview"].attrs)
            cal = dict(f["image1"]["calibration"].attrs)
    except (OSError, KeyError):
        return {}, 1.0  # not a KNMI file: the importer says so

    def text(v) -> str:
        v = np.asarray(v).ravel()[0] if np.asarray(v).ndim else np.asarray(v).item()
        return v.decode() if isinstance(v, bytes) else str(v)

    gain, offset, _ = _calibration({k: text(v) for k, v in cal.items()}, path)
    if offset != 0.0:
        raise InputError(f"{path}: calibration offset {offset:g} (pysteps reads 0.01 * PV)")
    out: dict[str, Any] = {}
    if "product_datetime_start" in over and "product_datetime_end" in over:
        start, end = (_parse_time(text(over[k]), path)
                      for k in ("product_datetime_start", "product_datetime_end"))
        minutes = float((end - start) / np.timedelta64(1, "m"))
        if not minutes > 0:
            raise InputError(f"{path}: accumulation period is not positive")
        out["accutime"] = minutes
    return out, gain / 0.01


#: The formats ``videossm convert-radar --source`` reads (pysteps' example-data settings).
RADAR_SOURCES: dict[str, RadarSource] = {
    "knmi": RadarSource("import_knmi_hdf5", "RAD_NL25_RAP_5min_%Y%m%d%H%M",
                        {"qty": "ACRR", "accutime": 5.0},
                        "KNMI (Netherlands) HDF5 accumulation composites",
                        file_options=knmi_file_options),
    "fmi": RadarSource("import_fmi_pgm", "%Y%m%d%H%M_fmi.radar.composite.lowest_FIN_SUOMI1", {},
                       "FMI (Finland) PGM reflectivity composites", gzip_option=True),
    "bom": RadarSource("import_bom_rf3", "2_%Y%m%d_%H%M00.prcp-cscn", {},
                       "BoM (Australia) Rainfields3 netCDF", gzip_option=True),
    "opera": RadarSource("import_opera_hdf5", "T_PAAH21_C_EUOC_%Y%m%d%H%M%S", {},
                         "OPERA / ODIM HDF5 composites"),
    "mch": RadarSource("import_mch_gif", "AQC%y%j%H%M?_00005.801",
                       {"product": "AQC", "unit": "mm", "accutime": 5.0},
                       "MeteoSwiss GIF composites"),
}

_CODES = {"%Y": r"(?P<Y>\d{4})", "%y": r"(?P<y>\d{2})", "%m": r"(?P<m>\d{2})",
          "%d": r"(?P<d>\d{2})", "%j": r"(?P<j>\d{3})", "%H": r"(?P<H>\d{2})",
          "%M": r"(?P<M>\d{2})", "%S": r"(?P<S>\d{2})"}


def time_from_name(name: str, pattern: str) -> np.datetime64:
    """The time a file name holds by ``pattern`` (``strftime`` codes ``%Y %y %m %d %j %H %M
    %S``, ``?`` and ``*`` wildcards), searched anywhere in the name; one-line InputError if it
    holds none."""
    regex = ""
    i = 0
    while i < len(pattern):
        two = pattern[i:i + 2]
        if two in _CODES:
            regex += _CODES[two]
            i += 2
            continue
        c = pattern[i]
        regex += "." if c == "?" else ".*?" if c == "*" else re.escape(c)
        i += 1
    m = re.search(regex, name)
    if m is None:
        raise InputError(f"{name}: the file name holds no time of the pattern {pattern!r} "
                         "(give --time-format)")
    g = m.groupdict()
    try:
        year = int(g["Y"]) if "Y" in g else 2000 + int(g["y"])
        if "j" in g:
            day = datetime.strptime(f"{year} {g['j']}", "%Y %j")
            month, dom = day.month, day.day
        else:
            month, dom = int(g.get("m", 1)), int(g.get("d", 1))
        t = datetime(year, month, dom, int(g.get("H", 0)), int(g.get("M", 0)),
                     int(g.get("S", 0)))
    except ValueError:
        raise InputError(f"{name}: not a valid date by the pattern {pattern!r}") from None
    return np.datetime64(t, "ns")


def radar_files(inputs: Iterable[str | os.PathLike]) -> list[Path]:
    """The files given; a folder stands for its files (sorted by name)."""
    out: list[Path] = []
    for s in inputs:
        p = Path(s)
        if p.is_dir():
            files = sorted(f for f in p.iterdir() if f.is_file() and not f.name.startswith("."))
            if not files:
                raise InputError(f"{p}: no files in this folder")
            out.extend(files)
        else:
            out.append(p)
    if not out:
        raise InputError("no input files")
    return out


def _pysteps_importer(name: str):
    import_pysteps("convert-radar")
    from pysteps.io import importers

    return getattr(importers, name)


def _centres(lo: float, hi: float, step: float, n: int, path: Path, what: str,
             units: str) -> np.ndarray:
    """Pixel centres, increasing, from the importer's bounds: the outer edges (``hi - lo =
    n * step``) or, as some importers give them, the first and last centres (``(n - 1) *
    step``)."""
    span = hi - lo
    if np.isclose(span, n * step, rtol=1e-6):
        return lo + (np.arange(n) + 0.5) * step
    if np.isclose(span, (n - 1) * step, rtol=1e-6):
        return lo + np.arange(n) * step
    raise InputError(f"{path}: the grid bounds ({lo:g} .. {hi:g} {units}) do not fit {n} "
                     f"{what} of {step:g} {units}")


def read_radar_file(path: str | os.PathLike, source: str, *,
                    time_format: str | None = None
                    ) -> tuple[np.datetime64, np.ndarray, RadarGrid, dict]:
    """One file of ``source`` through pysteps: ``(time, rain rate (rows, cols) mm/h float32
    with NaN, grid, metadata)``. One-line :class:`InputError` for a missing file, a file the
    importer cannot read, a field that is not precipitation, or no projection."""
    if source not in RADAR_SOURCES:
        raise InputError(f"unknown radar source {source!r} "
                         f"(sources: {', '.join(RADAR_SOURCES)})")
    spec = RADAR_SOURCES[source]
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    t = time_from_name(path.name, time_format or spec.fn_pattern)
    importer = _pysteps_importer(spec.importer)
    from pysteps.utils.conversion import to_rainrate
    kwargs = dict(spec.kwargs)
    if spec.gzip_option:
        kwargs["gzipped"] = path.suffix == ".gz"
    scale = 1.0
    if spec.file_options is not None:
        extra, scale = spec.file_options(path)
        kwargs.update(extra)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            precip, _, meta = importer(str(path), **kwargs)
    except Exception as err:  # every importer fails its own way on a foreign file
        why = str(err).splitlines()[0][:120] if str(err) else type(err).__name__
        if "projdef" in why:  # ODIM: no projection in the file's ``where`` group
            raise InputError(f"{path}: the file has no projection (no where/projdef)") from None
        raise InputError(f"{path}: not a {source} radar file ({why})") from None
    if not str(meta.get("projection") or "").strip():
        raise InputError(f"{path}: the file has no projection (the importer found no PROJ.4 "
                         "string)")
    unit = str(meta.get("unit", ""))
    if unit not in ("mm/h", "mm", "dBZ"):
        raise InputError(f"{path}: the field is in {unit!r}, not rain (mm/h, mm or dBZ)")
    values = np.asarray(precip, dtype=np.float64) * scale
    zero_level = meta.get("zerovalue")  # the importer's no-echo value (before conversion)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            rate, meta = to_rainrate(values, dict(meta))
    except (ValueError, KeyError) as err:
        raise InputError(f"{path}: cannot convert the field to rain rate ({err})") from None
    if unit == "dBZ":
        # pysteps zeroes values below the smallest one above the importer's zero value (the
        # no-echo level); a frame holding only that level (all dry) is zeroed here too
        if zero_level is not None and np.isfinite(zero_level):
            rate[values <= float(zero_level)] = 0.0
    rate = np.where(np.isfinite(rate), rate, np.nan).astype(np.float32)
    rows, cols = rate.shape
    try:
        x1, x2, y1, y2 = (float(meta[k]) for k in ("x1", "x2", "y1", "y2"))
        dx, dy = float(meta["xpixelsize"]), float(meta["ypixelsize"])
    except (KeyError, TypeError, ValueError):
        raise InputError(f"{path}: the importer gives no grid (x1, x2, y1, y2, pixel sizes)") \
            from None
    units = str(meta.get("cartesian_unit", "m"))
    if units not in ("m", "km"):
        raise InputError(f"{path}: grid in {units!r}; only projected grids (m or km) are "
                         "supported")
    x = _centres(x1, x2, dx, cols, path, "columns", units)
    y = _centres(y1, y2, dy, rows, path, "rows", units)
    psy = dy
    if meta.get("yorigin", "upper") == "upper":  # first row at the top
        y, psy = y[::-1], -dy
    grid = RadarGrid(x=x, y=y, pixel_size_x=dx, pixel_size_y=psy,
                     proj4=str(meta["projection"]), units=units)
    accutime = meta.get("accutime")
    info = {"product": str(meta.get("institution", source)),
            "accumulation_minutes": float(accutime) if unit == "mm" and accutime else None}
    return t, rate, grid, info


def load_radar(
    inputs: str | os.PathLike | Iterable[str | os.PathLike],
    source: str,
    *,
    resolution_km: float | None = None,
    crop_x: Sequence[float] | None = None,
    crop_y: Sequence[float] | None = None,
    min_valid: float = 0.0,
    time_format: str | None = None,
    progress: bool = False,
) -> xr.Dataset:
    """Files (or folders) of radar ``source`` -> ``rain_rate(time, y, x)`` (see the module doc;
    cropping and coarsening as :func:`~pyro_videossm.data.radar.load_knmi`)."""
    if source not in RADAR_SOURCES:
        raise InputError(f"unknown radar source {source!r} "
                         f"(sources: {', '.join(RADAR_SOURCES)})")
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    files = radar_files(inputs)

    def read(path: Path):
        return read_radar_file(path, source, time_format=time_format)

    ds = stack_frames(files, read, resolution_km=resolution_km, crop_x=crop_x, crop_y=crop_y,
                      min_valid=min_valid, progress=progress, desc=source)
    ds.attrs.update(title=f"{source} radar rain rate",
                    institution=ds.attrs.get("source", source),
                    source=f"{RADAR_SOURCES[source].description} read by pysteps "
                           f"({RADAR_SOURCES[source].importer}), converted by pyro-videossm "
                           f"{__version__}",
                    radar_source=source)
    return ds


__all__ = ["RADAR_SOURCES", "RadarSource", "knmi_file_options", "load_radar", "radar_files",
           "read_radar_file", "time_from_name"]
