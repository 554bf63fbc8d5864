#!/usr/bin/env python
"""Peak memory of one pass over field windows, as the netCDF file grows.

For each file size (``--frames``) the script writes a netCDF field ``precip(time, y, x)``
(float32, chunk by chunk, so the writer stays small), then in a fresh process makes one pass
over all ``context + leads`` windows and records the process's peak resident set size
(``resource.getrusage(RUSAGE_SELF).ru_maxrss``) and its size right after the imports:

* ``windows``: :class:`pyro_videossm.data.fields.FieldWindows` on the file path (xarray's lazy
  indexing, reads each window's frames only);
* ``dask``: the same over :func:`pyro_videossm.data.precip.open_precip` (dask chunks along time,
  unit conversion mm/day -> mm/h and a log scaling applied lazily);
* ``load``: the naive way, ``xr.open_dataset(path).load()`` then windows from memory.

Streaming is flat if the ``windows`` and ``dask`` peaks do not grow with the file beyond the
HDF5 chunk cache (netCDF-C keeps up to 64 MiB of decoded chunks per variable by default;
``--chunk-cache-mb`` sets it in the reading process).

    nice -n 10 python benchmarks/field_memory.py --frames 400 4000 --grid 128 \
        --markdown docs/field_memory.md
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: kB


def write_field(path: Path, frames: int, grid: int, chunk: int = 200, seed: int = 0) -> None:
    """A random rain-like field, written ``chunk`` frames at a time with netCDF4."""
    import netCDF4
    import numpy as np

    rng = np.random.default_rng(seed)
    with netCDF4.Dataset(path, "w") as f:
        f.createDimension("time", None)
        f.createDimension("y", grid)
        f.createDimension("x", grid)
        t = f.createVariable("time", "f8", ("time",))
        t.units = "minutes since 2010-08-26 00:00:00"
        for name in ("y", "x"):
            v = f.createVariable(name, "f8", (name,))
            v.units = "km"
            v[:] = np.arange(grid) * 4.0
        p = f.createVariable("precip", "f4", ("time", "y", "x"), fill_value=np.float32(-1e30),
                             chunksizes=(1, grid, grid))
        p.units = "mm/day"
        p.long_name = "precipitation rate"
        for t0 in range(0, frames, chunk):
            n = min(chunk, frames - t0)
            block = rng.gamma(0.4, 5.0, size=(n, grid, grid)).astype(np.float32)
            block[:, :4, :4] = np.nan
            p[t0:t0 + n] = block
            t[t0:t0 + n] = 5.0 * np.arange(t0, t0 + n)


def child(path: Path, mode: str, context: int, leads: int,
          chunk_cache_mb: float | None = None) -> dict:
    import netCDF4
    import numpy as np
    import torch
    import xarray as xr

    from pyro_videossm.data.fields import FieldWindows
    from pyro_videossm.data.precip import fit_scaling, open_precip

    torch.set_num_threads(1)
    if chunk_cache_mb is not None:  # HDF5 chunk cache per variable (netCDF-C default 64 MiB)
        netCDF4.set_chunk_cache(int(chunk_cache_mb * 2**20))
    base = _rss_mb()
    start = time.perf_counter()
    if mode == "windows":
        w = FieldWindows(path, "precip", context=context, leads=leads)
    elif mode == "dask":
        da = open_precip(path, chunks=16)
        w = FieldWindows(da, context=context, leads=leads,
                         scaling=fit_scaling(da, "log", eps=0.01))
    elif mode == "load":
        ds = xr.open_dataset(path, engine="netcdf4").load()
        w = FieldWindows(ds, "precip", context=context, leads=leads)
    else:
        raise SystemExit(f"unknown mode {mode}")
    total = 0.0
    for i in range(len(w)):
        total += float(w[i]["x"].sum())
    return {"mode": mode, "windows": len(w), "peak_rss_mb": round(_rss_mb(), 1),
            "rss_after_imports_mb": round(base, 1),
            "seconds": round(time.perf_counter() - start, 2), "checksum": bool(np.isfinite(total))}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, nargs="+", default=[400, 4000])
    ap.add_argument("--grid", type=int, default=128)
    ap.add_argument("--context", type=int, default=6)
    ap.add_argument("--leads", type=int, default=6)
    ap.add_argument("--modes", nargs="+", default=["windows", "dask", "load"])
    ap.add_argument("--chunk-cache-mb", type=float,
                    help="HDF5 chunk cache per variable in the reading process (default: the "
                         "netCDF-C default, 64 MiB)")
    ap.add_argument("--workdir", type=Path, help="where the test files go (default: a temp dir)")
    ap.add_argument("--markdown", type=Path, help="append the result table here")
    ap.add_argument("--child", nargs=2, metavar=("FILE", "MODE"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(child(Path(args.child[0]), args.child[1], args.context, args.leads,
                               args.chunk_cache_mb)))
        return 0
    rows = []
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        for frames in args.frames:
            path = Path(tmp) / f"field_{frames}.nc"
            write_field(path, frames, args.grid)
            size_mb = path.stat().st_size / 2**20
            for mode in args.modes:
                out = subprocess.run(
                    [sys.executable, __file__, "--child", str(path), mode,
                     "--context", str(args.context), "--leads", str(args.leads),
                     *(["--chunk-cache-mb", str(args.chunk_cache_mb)]
                       if args.chunk_cache_mb is not None else [])],
                    check=True, capture_output=True, text=True,
                    env={**os.environ, "OMP_NUM_THREADS": "1"})
                r = json.loads(out.stdout.strip().splitlines()[-1])
                r.update(frames=frames, file_mb=round(size_mb, 1))
                rows.append(r)
                print(json.dumps(r), flush=True)
    lines = ["| frames | file MB | mode | windows | peak RSS MB | RSS after imports MB | s |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    lines += [f"| {r['frames']} | {r['file_mb']} | {r['mode']} | {r['windows']} | "
              f"{r['peak_rss_mb']} | {r['rss_after_imports_mb']} | {r['seconds']} |"
              for r in rows]
    table = "\n".join(lines)
    print(table)
    if args.markdown:
        cmd = "python benchmarks/field_memory.py " + " ".join(argv or sys.argv[1:])
        with open(args.markdown, "a") as f:
            f.write(f"\n```\n{cmd}\n```\n\n{table}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
