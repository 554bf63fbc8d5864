"""Small synthetic radar files in the real archive formats pysteps reads, written here (no
downloads): KNMI HDF5, ODIM/OPERA HDF5, FMI PGM (gzipped), BoM Rainfields3 netCDF and
MeteoSwiss AQC GIF. Each writer stores *raw* digital numbers with the format's own metadata
(gain/offset, nodata/undetect codes, accumulation period, projection and grid), following
``pysteps.io.importers``; each ``*_decode`` turns the raw numbers into rain rate (mm/h) by
the format's documented formula, independently of pysteps and of the toolkit, so that the
tests can compare the converter's output with it.

Layout of every writer: ``write_SOURCE(folder, raw (T, rows, cols), times, ...) -> [files]``,
rows in file order (north first for every format here).
"""

from __future__ import annotations

import gzip
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

T0 = datetime(2021, 6, 1, 12, 0)


def times(n: int, minutes: float, start: datetime = T0) -> list[datetime]:
    return [start + timedelta(minutes=minutes * k) for k in range(n)]


def rain_scene(n: int, rows: int, cols: int, *, speed: tuple[float, float] = (0.0, 1.0),
               peak: float = 20.0, seed: int = 0) -> np.ndarray:
    """``(n, rows, cols)`` rain rate in mm/h: two Gaussian cells moving ``speed`` (rows,
    cols) pixels per frame over a dry background, plus faint noise; NaN nowhere."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:rows, 0:cols].astype(float)
    out = np.zeros((n, rows, cols))
    cells = [(rows * 0.4, cols * 0.3, rows / 7, peak), (rows * 0.65, cols * 0.2, rows / 10,
                                                         peak / 3)]
    for t in range(n):
        for cy, cx, s, a in cells:
            cy, cx = cy + speed[0] * t, cx + speed[1] * t
            out[t] += a * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * s * s))
    out += rng.uniform(0, 0.02, out.shape)
    out[out < 0.05] = 0.0
    return out


# -- KNMI HDF5 (RAD_NL25_RAP_5min) -------------------------------------------------------------
KNMI_PROJ = ("+proj=stere +lat_0=90 +lon_0=0.0 +lat_ts=60.0 +a=6378.137 +b=6356.752 +x_0=0 "
             "+y_0=0")


def write_knmi(folder: Path, raw: np.ndarray, when: list[datetime], *, pixel_km: float = 1.0,
               minutes: float = 5.0, col_offset: float = 320.0, row_offset: float = 4030.0,
               proj4: str = KNMI_PROJ) -> list[Path]:
    """uint16 accumulations, ``GEO = 0.01 * PV`` mm over ``minutes``, 65535 missing; pixel
    ``(r, c)``'s upper-left corner at ``x = (c + col_offset) * pixel_km``, ``y = -(r +
    row_offset) * pixel_km`` km (polar stereographic)."""
    import h5py

    files = []
    for t, frame in zip(when, raw):
        path = folder / f"RAD_NL25_RAP_5min_{t:%Y%m%d%H%M}.h5"
        rows, cols = frame.shape
        with h5py.File(path, "w") as f:
            g = f.create_group("geographic")
            for k, v in (("geo_column_offset", [col_offset]), ("geo_row_offset", [row_offset]),
                         ("geo_pixel_size_x", [pixel_km]), ("geo_pixel_size_y", [-pixel_km])):
                g.attrs[k] = np.array(v, dtype=np.float32)
            g.attrs["geo_number_columns"] = np.array([cols], dtype=np.int32)
            g.attrs["geo_number_rows"] = np.array([rows], dtype=np.int32)
            g.attrs["geo_dim_pixel"] = np.bytes_(b"KM,KM")
            g.attrs["geo_pixel_def"] = np.bytes_(b"LU")
            m = g.create_group("map_projection")
            m.attrs["projection_proj4_params"] = np.bytes_(proj4.encode())
            img = f.create_group("image1")
            img.attrs["image_product_name"] = np.bytes_(b"RAD_NL25_RAU_SYNTHETIC")
            img.create_dataset("image_data", data=frame.astype(np.uint16))
            cal = img.create_group("calibration")
            cal.attrs["calibration_formulas"] = np.bytes_(b"GEO=0.01*PV+0.0")
            cal.attrs["calibration_missing_data"] = np.array([65535], dtype=np.int32)
            cal.attrs["calibration_out_of_image"] = np.array([65535], dtype=np.int32)
            ov = f.create_group("overview")
            start = t - timedelta(minutes=minutes)
            for k, v in (("product_datetime_start", start), ("product_datetime_end", t)):
                ov.attrs[k] = np.array([v.strftime("%d-%b-%Y;%H:%M:%S.000").upper().encode()])
        files.append(path)
    return files


def knmi_encode(rate: np.ndarray, minutes: float) -> np.ndarray:
    return np.where(np.isnan(rate), 65535, np.round(rate * minutes / 60.0 / 0.01)).astype(int)


def knmi_decode(raw: np.ndarray, minutes: float) -> np.ndarray:
    return np.where(raw == 65535, np.nan, raw * 0.01 * 60.0 / minutes)


# -- ODIM / OPERA HDF5 -------------------------------------------------------------------------
OPERA_PROJ = ("+proj=laea +lat_0=55.0 +lon_0=10.0 +x_0=1950000.0 +y_0=-2100000.0 +units=m "
              "+ellps=WGS84")
#: OPERA's float32 RATE product: nodata and undetect codes
OPERA_NODATA, OPERA_UNDETECT = -9999000.0, -8888000.0


def write_opera(folder: Path, raw: np.ndarray, when: list[datetime], *, pixel_m: float = 2000.0,
                x1: float = 1000000.0, y2: float = 3000000.0, proj4: str | None = OPERA_PROJ
                ) -> list[Path]:
    """ODIM composites: ``dataset1/data1/data`` float32 rain rate (quantity ``RATE``, gain 1,
    offset 0, the OPERA nodata/undetect codes), ``where`` with ``projdef``, the four corner
    longitudes/latitudes and ``xscale``/``yscale``; the grid's upper-left corner at ``(x1,
    y2)`` m (``proj4=None``: no ``projdef``)."""
    import h5py
    import pyproj

    files = []
    rows, cols = raw.shape[1:]
    x2, y1 = x1 + cols * pixel_m, y2 - rows * pixel_m
    pr = pyproj.Proj(OPERA_PROJ if proj4 is None else proj4)
    corners = {"LL": (x1, y1), "UL": (x1, y2), "UR": (x2, y2), "LR": (x2, y1)}
    for t, frame in zip(when, raw):
        path = folder / f"T_PAAH21_C_EUOC_{t:%Y%m%d%H%M%S}.hdf"
        with h5py.File(path, "w") as f:
            f.attrs["Conventions"] = np.bytes_(b"ODIM_H5/V2_2")
            what = f.create_group("what")
            what.attrs["object"] = np.bytes_(b"COMP")
            what.attrs["date"] = np.bytes_(t.strftime("%Y%m%d").encode())
            what.attrs["time"] = np.bytes_(t.strftime("%H%M%S").encode())
            where = f.create_group("where")
            if proj4 is not None:
                where.attrs["projdef"] = np.bytes_(proj4.encode())
            for k, (x, y) in corners.items():
                lon, lat = pr(x, y, inverse=True)
                where.attrs[f"{k}_lon"], where.attrs[f"{k}_lat"] = lon, lat
            where.attrs["xscale"], where.attrs["yscale"] = pixel_m, pixel_m
            where.attrs["xsize"], where.attrs["ysize"] = cols, rows
            d = f.create_group("dataset1").create_group("data1")
            d.create_dataset("data", data=frame.astype(np.float32))
            w = d.create_group("what")
            w.attrs["quantity"] = np.bytes_(b"RATE")
            w.attrs["gain"], w.attrs["offset"] = 1.0, 0.0
            w.attrs["nodata"], w.attrs["undetect"] = OPERA_NODATA, OPERA_UNDETECT
        files.append(path)
    return files


def opera_encode(rate: np.ndarray) -> np.ndarray:
    return np.where(np.isnan(rate), OPERA_NODATA, np.where(rate == 0, OPERA_UNDETECT, rate))


def opera_decode(raw: np.ndarray) -> np.ndarray:
    return np.where(raw == OPERA_NODATA, np.nan, np.where(raw == OPERA_UNDETECT, 0.0, raw))


# -- FMI PGM -----------------------------------------------------------------------------------
FMI_PROJ = ("+proj=stere +lon_0=25E +lat_0=90N +lat_ts=60 +a=6371288 +x_0=380886.310 "
            "+y_0=3395677.920 +no_defs")


def write_fmi(folder: Path, raw: np.ndarray, when: list[datetime], *, pixel_m: float = 1000.0,
              x1: float = 100000.0, y1: float = 6700000.0, stereographic: bool = True
              ) -> list[Path]:
    """Gzipped 8-bit PGM reflectivity composites: ``dBZ = (PV - 64) / 2``, 255 missing (the
    header's maximum value), 0 the lowest level (no echo); the header comments give the
    stereographic projection's parameters, the lower-left and upper-right corners
    (longitude, latitude; outer edges, ``(x1, y1)`` m the lower-left one) and the pixel size
    (``stereographic=False``: another ``type``, for which pysteps gives no projection)."""
    import pyproj

    rows, cols = raw.shape[1:]
    pr = pyproj.Proj(FMI_PROJ)
    ll = pr(x1, y1, inverse=True)
    ur = pr(x1 + cols * pixel_m, y1 + rows * pixel_m, inverse=True)
    header = [f"type {'stereographic' if stereographic else 'mercator'}",
              "centrallongitude 25", "centrallatitude 90", "truelatitude 60",
              f"bottomleft {ll[0]!r} {ll[1]!r}", f"topright {ur[0]!r} {ur[1]!r}",
              f"metersperpixel_x {pixel_m:f}", f"metersperpixel_y {pixel_m:f}"]
    files = []
    for t, frame in zip(when, raw):
        path = folder / f"{t:%Y%m%d%H%M}_fmi.radar.composite.lowest_FIN_SUOMI1.pgm.gz"
        head = "P5\n" + "".join(f"# {h}\n" for h in header) + f"{cols} {rows}\n255\n"
        with gzip.open(path, "wb") as f:
            f.write(head.encode() + frame.astype(np.uint8).tobytes())
        files.append(path)
    return files


def fmi_encode(rate: np.ndarray) -> np.ndarray:
    """Rain rate -> PGM levels (Z = 223 R^1.53), 0 for dry pixels, 255 for NaN."""
    with np.errstate(divide="ignore"):
        dbz = 10.0 * np.log10(223.0 * np.where(rate > 0, rate, np.nan) ** 1.53)
    pv = np.clip(np.round(2.0 * dbz + 64.0), 1, 254)
    return np.where(np.isnan(rate), 255, np.where(rate > 0, pv, 0)).astype(int)


def fmi_decode(raw: np.ndarray) -> np.ndarray:
    dbz = (raw - 64.0) / 2.0
    rate = (10.0 ** (dbz / 10.0) / 223.0) ** (1.0 / 1.53)
    return np.where(raw == 255, np.nan, np.where(raw == 0, 0.0, rate))


# -- BoM Rainfields3 netCDF --------------------------------------------------------------------
BOM_FILL = -9999.0


def write_bom(folder: Path, raw: np.ndarray, when: list[datetime], *, pixel_km: float = 2.0,
              minutes: float = 6.0, x1: float = -100.0, y2: float = -200.0,
              projection: bool = True) -> list[Path]:
    """Rainfields3 accumulations: ``precipitation`` float32 mm over ``minutes`` (``_FillValue``
    missing), ``x``/``y`` pixel centres in km with ``valid_min``/``valid_max`` edges, an Albers
    ``proj`` grid mapping (``projection=False``: an unknown one), ``valid_time`` and
    ``start_time``."""
    import netCDF4

    rows, cols = raw.shape[1:]
    files = []
    for t, frame in zip(when, raw):
        path = folder / f"2_{t:%Y%m%d_%H%M}00.prcp-cscn.nc"
        with netCDF4.Dataset(path, "w") as f:
            f.createDimension("y", rows)
            f.createDimension("x", cols)
            x = f.createVariable("x", "f8", ("x",))
            y = f.createVariable("y", "f8", ("y",))
            x[:] = x1 + pixel_km * (np.arange(cols) + 0.5)
            y[:] = y2 - pixel_km * (np.arange(rows) + 0.5)
            for v, lo, hi in ((x, x1, x1 + pixel_km * cols), (y, y2 - pixel_km * rows, y2)):
                v.units, v.valid_min, v.valid_max = "km", lo, hi
            p = f.createVariable("proj", "i4")
            p.grid_mapping_name = "albers_conical_equal_area" if projection else "unknown"
            p.longitude_of_central_meridian = 151.0
            p.latitude_of_projection_origin = -34.0
            p.standard_parallel = np.array([-18.0, -36.0])
            epoch = datetime(1970, 1, 1)
            for name, when_ in (("valid_time", t), ("start_time", t - timedelta(
                    minutes=minutes))):
                v = f.createVariable(name, "i8")
                v.units = "seconds since 1970-01-01 00:00:00"
                v[...] = int((when_ - epoch).total_seconds())
            pr = f.createVariable("precipitation", "f4", ("y", "x"), fill_value=BOM_FILL)
            pr.units = "mm"
            pr.grid_mapping = "proj"
            pr[:] = frame.astype(np.float32)
        files.append(path)
    return files


def bom_encode(rate: np.ndarray, minutes: float) -> np.ndarray:
    return np.where(np.isnan(rate), BOM_FILL, np.round(rate * minutes / 60.0, 2))


def bom_decode(raw: np.ndarray, minutes: float) -> np.ndarray:
    return np.where(raw == BOM_FILL, np.nan, raw.astype(np.float32) * 60.0 / minutes)


# -- MeteoSwiss AQC GIF ------------------------------------------------------------------------
#: the CCS4 grid pysteps assumes for every MeteoSwiss GIF: 640 rows x 710 columns of 1 km,
#: x 255..965 km, y -160..480 km (Swiss LV03), first row at the top
MCH_SHAPE = (640, 710)
MCH_X0_KM, MCH_Y1_KM = 255.0, 480.0


def write_mch(folder: Path, raw: np.ndarray, when: list[datetime]) -> list[Path]:
    """8-bit palette GIFs of the AQC product's digital numbers (``raw`` ``(T, 640, 710)``)."""
    from PIL import Image

    files = []
    palette = bytes(np.repeat(np.arange(256, dtype=np.uint8), 3))
    for t, frame in zip(when, raw):
        path = folder / f"AQC{t:%y%j%H%M}0_00005.801.gif"
        im = Image.frombytes("P", (frame.shape[1], frame.shape[0]),
                             frame.astype(np.uint8).tobytes())
        im.putpalette(palette)
        im.save(path, optimize=False)
        files.append(path)
    return files


def mch_encode(rate: np.ndarray) -> np.ndarray:
    """Rain rate (mm/h) -> AQC levels: 5-minute sums in mm, ``mm = (10^((DN - 71.5) / 20) /
    316)^(1/1.5)``; 0 for dry, 255 for NaN."""
    mm = rate * 5.0 / 60.0
    with np.errstate(divide="ignore"):
        dn = np.round(20.0 * np.log10(316.0 * np.where(mm > 0, mm, np.nan) ** 1.5) + 71.5)
    dn = np.clip(dn, 2, 250)
    return np.where(np.isnan(rate), 255, np.where(rate > 0, dn, 0)).astype(int)


def mch_decode(raw: np.ndarray) -> np.ndarray:
    mm = (10.0 ** ((raw - 71.5) / 20.0) / 316.0) ** (1.0 / 1.5)
    dry = (raw < 2) | ((raw > 250) & (raw < 255))
    return np.where(raw == 255, np.nan, np.where(dry, 0.0, mm * 60.0 / 5.0))
