"""The DMM's scripts: polyphonic-like data, the speed benchmark, the results section writer."""

from __future__ import annotations

import json

import numpy as np
import pytest
from script_loader import load_script


def test_polyphonic_like_data_has_the_jsb_shapes(tmp_path):
    make = load_script("data_scripts/make_polyphonic_like.py")
    seqs, lengths = make.make_sequences(n=12, max_length=60, min_length=20, seed=1)
    assert seqs.shape == (12, 60, 88) and lengths.shape == (12,)
    assert set(np.unique(seqs)) <= {0.0, 1.0}
    for s, n in zip(seqs, lengths):
        assert s[n:].sum() == 0 and 3 <= s[:n].sum(1).min() and s[:n].sum(1).max() <= 5
        held = (s[1:n] == s[:n - 1]).all(1).mean()  # chords persist over steps
        assert held > 0.3
    out = tmp_path / "p.npz"
    assert make.main(["-o", str(out), "--sequences", "6", "--max-length", "40"]) == 0
    with np.load(out) as f:
        assert f["sequences"].shape == (6, 40, 88)


def test_polyphonic_benchmark_runs_both_paths(tmp_path, capsys):
    make = load_script("data_scripts/make_polyphonic_like.py")
    seqs, lengths = make.make_sequences(n=6, max_length=12, min_length=5, seed=0)
    data = tmp_path / "p.npz"
    np.savez(data, sequences=seqs, lengths=lengths)
    bench = load_script("benchmarks/dmm_polyphonic.py")
    for extra in ([], ["--per-step"]):
        assert bench.main(["--data", str(data), "--small", "--epochs", "1", *extra]) == 0
    out = capsys.readouterr().out
    assert "vectorised:" in out and "per-step:" in out
    assert bench.main(["--data", str(data), "--small", "--profile"]) == 0
    from pyro_videossm.errors import InputError

    with pytest.raises(InputError):
        bench.main(["--data", str(tmp_path / "missing.npz")])


def test_results_section_replaces_only_its_markers(tmp_path, monkeypatch):
    exp = load_script("assimilation/dmm_experiments.py")
    results = tmp_path / "RESULTS.md"
    results.write_text("# Results\n\nothers' table\n\n<!-- BEGIN dmm -->\nold\n<!-- END dmm -->"
                       "\n\nmore of theirs\n")
    monkeypatch.setattr(exp, "RESULTS", results)
    record = {"experiment": "l63", "title": "Lorenz-63", "rows": [
        {"method": "hybrid DMM", "estimate": "smoother", "rmse": 0.3, "spread": 0.2}],
        "training": {"train_cycles": 10, "windows": 2, "window": 5, "epochs": 1, "steps": 1,
                     "batch_size": 2, "lr": 0.01, "lr_decay": 1.0, "wall_seconds": 1.0,
                     "cpu_seconds": 1.0, "threads": 1}}
    (tmp_path / "l63.json").write_text(json.dumps(record))
    results.chmod(0o640)
    exp.write_section(tmp_path)
    text = results.read_text()
    assert "others' table" in text and "more of theirs" in text and "old" not in text
    assert "| hybrid DMM | smoother | 0.300 | 0.200 |" in text
    assert text.count("<!-- BEGIN dmm -->") == 1
    # the shared writer stores the run record the section regenerates from
    from pyro_videossm.experiments.records import read_records
    from pyro_videossm.experiments.results import regenerate_text, section_records

    folder = tmp_path / "assimilation" / "results"
    (stored,) = read_records(folder)
    assert stored["section"]["name"] == "dmm" and stored["metrics"]["experiments"][0] == record
    assert regenerate_text(text, section_records([folder])[str(results)]) == text
    assert (results.stat().st_mode & 0o777) == 0o640  # the file keeps its permissions
    results.write_text("# Results\n")  # no markers yet: the section is appended
    exp.write_section(tmp_path)
    assert results.read_text().startswith("# Results\n\n<!-- BEGIN dmm -->")


def test_polyphonic_benchmark_json_and_figure(tmp_path):
    make = load_script("data_scripts/make_polyphonic_like.py")
    seqs, lengths = make.make_sequences(n=6, max_length=12, min_length=5, seed=0)
    data = tmp_path / "p.npz"
    np.savez(data, sequences=seqs, lengths=lengths)
    bench = load_script("benchmarks/dmm_polyphonic.py")
    runs = []
    for extra in ([], ["--per-step"]):
        runs.append(tmp_path / f"run{len(runs)}.json")
        assert bench.main(["--data", str(data), "--small", "--epochs", "2", "--json",
                           str(runs[-1]), *extra]) == 0
    rows = json.loads(runs[0].read_text())
    assert [r["epoch"] for r in rows] == [1, 2] and len(rows[0]["step_losses"]) == 1
    png = tmp_path / "fig.png"
    assert bench.main(["--figure", str(png), "--from", *map(str, runs)]) == 0
    assert png.read_bytes()[:4] == b"\x89PNG"
    from pyro_videossm.errors import InputError

    (tmp_path / "bad.json").write_text("[]")
    with pytest.raises(InputError, match="per-step losses"):
        bench.main(["--figure", str(png), "--from", str(tmp_path / "bad.json")])


def test_speed_table_ratios_pair_each_variant_with_its_own_reference(tmp_path):
    experiments = load_script("assimilation/dmm_experiments.py")

    def run(name, cpu):  # epoch 1 is dropped as warm-up
        rows = [{"epoch": k, "steps": 12, "wall_seconds": c, "cpu_seconds": c,
                 "loss_per_step": 60.0} for k, c in ((1, 99.0), (2, cpu), (3, cpu))]
        (tmp_path / f"polyphonic_{name}.json").write_text(json.dumps(rows))

    run("vectorised", 3.0)
    run("per_step", 10.0)
    run("vectorised_2threads", 4.0)
    run("per_step_2threads", 16.0)
    run("vectorised_r1", 2.0)
    run("per_step_r1", 8.0)
    text = "\n".join(experiments.speed_lines(tmp_path))
    assert "| vectorised (one site per sequence) | 1 | 3.00 | 3.00 | 0.30 |" in text
    assert "| vectorised (one site per sequence) | 2 | 4.00 | 4.00 | 0.25 |" in text
    assert "ratios 0.25, 0.30" in text
    assert experiments.speed_lines(tmp_path / "nothing") == []
