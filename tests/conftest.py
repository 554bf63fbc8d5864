"""Shared test settings: one torch thread per worker (tests run in parallel processes)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)
os.environ.setdefault("MPLBACKEND", "Agg")
# numba (under librosa and pysteps) caches compiled functions beside the installed package;
# two test workers compiling the same function at once can leave a damaged cache there that
# crashes every later process (seen on a fresh CI venv: a segmentation fault in
# librosa.util.peak_pick). Each worker, and the notebooks and commands it starts, gets its own
# cache folder. A worker inherits the environment of the controller, which has loaded this file
# first, so a worker always sets its own folder (``setdefault`` would keep the controller's).
_WORKER = os.environ.get("PYTEST_XDIST_WORKER")
if _WORKER is not None or "NUMBA_CACHE_DIR" not in os.environ:
    os.environ["NUMBA_CACHE_DIR"] = tempfile.mkdtemp(prefix=f"numba-{_WORKER or 'main'}-")

#: Data shipped beside the repo (absent in a user's fresh clone: tests that need it skip).
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.exists():
        pytest.skip(f"shared data not found at {SHARED_DATA} (only beside the team's checkout)")
    return SHARED_DATA
