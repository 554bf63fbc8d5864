"""The test setup itself: parallel workers do not share numba's cache folder."""

from __future__ import annotations

import os
from pathlib import Path


def test_each_worker_has_its_own_numba_cache_folder():
    """Two workers writing one numba cache at once crashed librosa's peak picking on a fresh
    CI venv. Under pytest-xdist the folder is named after this worker (a worker inherits the
    controller's environment, so a folder set only when none is set would be shared)."""
    folder = Path(os.environ["NUMBA_CACHE_DIR"])
    assert folder.is_dir()
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker is not None:
        assert folder.name.startswith(f"numba-{worker}-")
