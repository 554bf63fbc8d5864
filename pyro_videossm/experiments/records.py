"""Run records: one JSON file per run of a benchmark, an assimilation setting or a forecast.

A record says what ran and on what, so that a table of docs/RESULTS.md can be rebuilt from it
without running anything again::

    {
      "format": "pyro_videossm.run_record/1",
      "name": "lorenz96_n40",               # what ran (a setting, a benchmark)
      "command": "python -m assimilation.run lorenz96_n40 --seeds 3",
      "options": {...},                     # the run's settings (argparse values, JSON-able)
      "data": {"path": sha256, ...},        # fingerprints of the input files (or a description)
      "code": {"commit": "27d2695...", "dirty": false},
      "machine": {"platform": ..., "machine": "x86_64", "cpus": 2, "torch": "2.13.0+cpu", ...},
      "threads": 1,                          # torch threads
      "load": [1.1, 1.0, 0.9],               # os.getloadavg() when the record was made
      "created": "2026-12-04T21:00:00+00:00",
      "metrics": {...},                      # the numbers
      "timings": {...},                      # seconds
      "section": {...}                       # optional: the docs section this run renders
    }

Records of numbers measured before this format existed say where they come from in
``"source"`` (e.g. ``"transcribed from docs/RESULTS.md at commit 27d2695"``); their
``code``/``machine``/``load`` are then what the docs say, or null.

:func:`write_record` writes atomically (mode 0644); :func:`read_records` reads every record
of a folder tree, ignoring JSON files of other formats.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import platform
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pyro_videossm.atomic import atomic_path
from pyro_videossm.errors import InputError

FORMAT = "pyro_videossm.run_record/1"
#: Permissions of every record and results file written here.
FILE_MODE = 0o644
REPO = Path(__file__).resolve().parents[2]


def file_hash(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """``sha256:<hex>`` of a file's bytes (of every file below it, in name order, for a
    folder)."""
    path = Path(path)
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    if not files and not path.exists():
        raise InputError(f"cannot fingerprint {path}: no such file")
    for f in files:
        if path.is_dir():
            digest.update(str(f.relative_to(path)).encode() + b"\0")
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(chunk), b""):
                digest.update(block)
    return "sha256:" + digest.hexdigest()


def data_fingerprint(paths: Iterable[str | os.PathLike] = (), **described: Any) -> dict:
    """``{str(path): file_hash(path)}`` for input files, plus descriptions of generated data
    (e.g. ``simulate={"system": "lorenz63", "seeds": [0, 1, 2]}``)."""
    out: dict[str, Any] = {str(p): file_hash(p) for p in paths}
    out.update(described)
    return out


def code_fingerprint(repo: str | os.PathLike = REPO) -> dict:
    """The git commit of ``repo`` and whether tracked files differ from it (null outside git)."""
    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True,
                                  text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no") if commit else None
    return {"commit": commit, "dirty": None if status is None else bool(status)}


def machine() -> dict:
    """Platform, architecture, CPU count, Python and torch versions."""
    info = {"platform": platform.platform(), "machine": platform.machine(),
            "cpus": os.cpu_count(), "python": platform.python_version()}
    try:
        import torch

        info["torch"] = torch.__version__
        info["cuda"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    return info


def load_average() -> list[float] | None:
    """``os.getloadavg()`` as a list (None where the platform has none)."""
    return list(os.getloadavg()) if hasattr(os, "getloadavg") else None


def torch_threads() -> int | None:
    try:
        import torch

        return int(torch.get_num_threads())
    except ImportError:  # pragma: no cover
        return None


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, os.PathLike):
        return str(value)
    if hasattr(value, "tolist"):  # numpy / torch scalars and arrays
        return _jsonable(value.tolist())
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def make_record(name: str, *, command: str, options: Mapping[str, Any] | None = None,
                data: Mapping[str, Any] | None = None, metrics: Mapping[str, Any] | None = None,
                timings: Mapping[str, Any] | None = None, **extra: Any) -> dict:
    """A record of a run made now, on this machine, with this checkout."""
    record = {
        "format": FORMAT, "name": name, "command": command,
        "options": dict(options or {}), "data": dict(data or {}),
        "code": code_fingerprint(), "machine": machine(), "threads": torch_threads(),
        "load": load_average(),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "metrics": dict(metrics or {}), "timings": dict(timings or {}),
    }
    record.update(extra)
    return _jsonable(record)


def write_json(path: str | os.PathLike, payload: Any) -> Path:
    """Write ``payload`` as indented JSON atomically, mode 0644."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(_jsonable(payload), indent=1, ensure_ascii=False) + "\n",
                       encoding="utf-8")
    os.chmod(path, FILE_MODE)
    return path


def write_record(path: str | os.PathLike, record: Mapping[str, Any]) -> Path:
    """Write one record (``path`` ends in ``.json``); it must carry the format key."""
    if record.get("format") != FORMAT or not record.get("name"):
        raise InputError(f"not a run record (needs format {FORMAT!r} and a name)")
    return write_json(path, record)


def read_record(path: str | os.PathLike) -> dict:
    path = Path(path)
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise InputError(f"cannot read run record {path}: {err}") from None
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise InputError(f"{path} is not a run record ({FORMAT})")
    return record


def read_records(folder: str | os.PathLike) -> list[dict]:
    """Every run record below ``folder`` (recursively, in path order), each with
    ``"_path"`` set to its file; JSON files of other formats are skipped."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"no records folder {folder}")
    out = []
    for path in sorted(folder.rglob("*.json")):
        try:
            payload = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError, UnicodeDecodeError):
            continue
        if isinstance(payload, dict) and payload.get("format") == FORMAT:
            payload["_path"] = str(path)
            out.append(payload)
    return out
