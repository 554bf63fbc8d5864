"""Rebuild every table of docs/RESULTS.md (and docs/BENCHMARK_DAPPER.md) from the stored run
records, without running anything::

    python benchmarks/results_tables.py            # rewrite the marked sections
    python benchmarks/results_tables.py --check    # exit 1 if a file differs from its records

The records live in ``benchmarks/results/`` and ``assimilation/results/``
(:mod:`pyro_videossm.experiments.records`); see :mod:`pyro_videossm.experiments.results`.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from pyro_videossm.experiments.results import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
