"""benchmarks/moving_digits.py: per-run rows, resume, --set and the table from stored runs."""

from __future__ import annotations

import json

import pytest
from script_loader import load_script


@pytest.fixture()
def bench():
    return load_script("benchmarks/moving_digits.py", "moving_digits_bench")


def test_runs_are_stored_reused_and_tabled(bench, tmp_path, monkeypatch, capsys):
    runs, results = tmp_path / "runs", tmp_path / "R.md"
    base = ["--quick", "--minutes", "0", "--epochs", "1", "--threads", "1", "--runs", str(runs),
            "--results", str(results)]
    assert bench.main(base + ["--models", "persistence", "spatrans"]) == 0
    files = sorted(p.name for p in runs.glob("*.json"))
    assert len(files) == 2 and files[1].startswith("spatrans_seed0_")
    row = json.loads((runs / files[1]).read_text())
    assert row["epochs"] == pytest.approx(1.0) and row["lr"] == 0.001 and row["valid_history"]
    text = results.read_text()
    assert "| spatrans |" in text and "<!-- BEGIN spatrans -->" in text

    def no_training(*args, **kwargs):
        raise AssertionError("a stored run was trained again")

    monkeypatch.setattr(bench, "run_one", no_training)
    assert bench.main(base + ["--models", "persistence", "spatrans", "--no-write"]) == 0
    # a model without a stored run is listed as missing by --table-only
    assert bench.main(base + ["--models", "spatrans", "lstm", "--table-only",
                              "--no-write"]) == 0
    out = capsys.readouterr().out
    assert "Not run yet: lstm seed 0" in out
    # another setting of a model is another run (its own fingerprint)
    with pytest.raises(AssertionError, match="trained again"):
        bench.main(base + ["--models", "spatrans", "--set", "spatrans.d_model=8",
                           "--no-write"])
    with pytest.raises(SystemExit):
        bench.main(base + ["--set", "nosuchmodel.d_model=8"])
