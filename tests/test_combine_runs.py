"""assimilation/combine_runs.py: per-seed runs combined give the rows of one run over all
the seeds."""

from __future__ import annotations

import json

import pytest

from assimilation import combine_runs
from assimilation.run import main as run_main
from pyro_videossm.experiments.records import read_records

BASE = ["lorenz63_sakov2012", "--cycles", "30", "--burn-in", "10", "--methods", "etkf", "enks"]


def test_combined_seeds_equal_one_run_over_all_seeds(tmp_path, capsys):
    for seed in (0, 1):
        run_main([*BASE, "--seeds", "1", "--first-seed", str(seed), "--json",
                  str(tmp_path / f"seed{seed}.json")])
    run_main([*BASE, "--seeds", "2", "--json", str(tmp_path / "both.json")])
    docs = tmp_path / "docs" / "R.md"
    docs.parent.mkdir()
    code = combine_runs.main(["lorenz63_sakov2012", str(tmp_path / "seed1.json"),
                              str(tmp_path / "seed0.json"), "--cycles", "30", "--burn-in",
                              "10", "--docs", str(docs), "--write-docs"])
    assert code in (0, 1)
    (record,) = read_records(tmp_path / "docs" / "assimilation" / "results")
    both = json.loads((tmp_path / "both.json").read_text())
    combined = {r["label"]: r["runs"] for r in record["metrics"]["runs"]}
    for row in both:
        assert [r["seed"] for r in combined[row["label"]]] == [0, 1]
        for one, ref in zip(combined[row["label"]], row["runs"]):
            assert one["rmse"] == pytest.approx(ref["rmse"], rel=1e-12)
            assert one["crps"] == pytest.approx(ref["crps"], rel=1e-12)
    assert "--seeds 2" in record["command"] and "--methods 'ETKF N=10'" in record["command"]
    assert "classical:lorenz63_sakov2012" in docs.read_text()


def test_a_seed_given_twice_is_refused(tmp_path, capsys):
    run_main([*BASE, "--seeds", "1", "--json", str(tmp_path / "s.json")])
    code = combine_runs.main(["lorenz63_sakov2012", str(tmp_path / "s.json"),
                              str(tmp_path / "s.json")])
    assert code == 2 and "each seed once" in capsys.readouterr().err
