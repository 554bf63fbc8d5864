"""Shared test settings: one torch thread per worker (tests run in parallel processes)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)
os.environ.setdefault("MPLBACKEND", "Agg")

#: Data shipped beside the repo (absent in a user's fresh clone: tests that need it skip).
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.exists():
        pytest.skip(f"shared data not found at {SHARED_DATA} (only beside the team's checkout)")
    return SHARED_DATA
