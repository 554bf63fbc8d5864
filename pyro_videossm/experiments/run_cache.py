"""Finished runs of a benchmark kept as one JSON file each, so that a benchmark resumes where it
stopped and several processes can share its runs: :class:`RunCache`.

A run is named by what it is (e.g. model and seed) and a *fingerprint*: the first 10 hex digits
of the SHA-256 of its settings as sorted JSON (:func:`fingerprint`), so a run made with other
settings is another file. Files are written atomically: a killed run leaves none.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pyro_videossm.atomic import atomic_path


def fingerprint(settings: Mapping[str, Any]) -> str:
    """Short hash of ``settings`` (everything that changes a run's result)."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:10]


class RunCache:
    """The runs stored in ``folder``: ``{name}_{fingerprint(settings)}.json``."""

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)

    def path(self, name: str, settings: Mapping[str, Any]) -> Path:
        return self.folder / f"{name}_{fingerprint(settings)}.json"

    @staticmethod
    def load(path: str | os.PathLike) -> dict:
        return json.loads(Path(path).read_text())

    @staticmethod
    def save(path: str | os.PathLike, row: Mapping[str, Any]) -> None:
        """Write one run's row atomically."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(row, indent=1))


__all__ = ["RunCache", "fingerprint"]
