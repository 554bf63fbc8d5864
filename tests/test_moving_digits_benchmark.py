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


def test_cpu_configuration_early_stopping_section_and_curves(bench, tmp_path):
    """The small-canvas configuration: shrunk digits, patience, its own section and curves."""
    runs, results, png = tmp_path / "runs", tmp_path / "R.md", tmp_path / "curves.png"
    argv = ["--quick", "--minutes", "0", "--epochs", "3", "--threads", "1", "--runs", str(runs),
            "--results", str(results), "--canvas", "16", "--digit-size", "8",
            "--digits-per-clip", "1", "--speed", "1.0", "--patience", "1",
            "--models", "persistence", "spatrans-q", "--section", "spatrans-cpu",
            "--curves", str(png)]
    assert bench.main(argv) == 0
    (path,) = runs.glob("spatrans-q_seed0_*.json")
    row = json.loads(path.read_text())
    hist = row["valid_history"]
    assert 1 <= len(hist) <= 3 and row["best_epoch"] == 1 + hist.index(min(hist))
    assert row["converged"] == (len(hist) - row["best_epoch"] >= 1)
    assert 0.0 <= row["icp"] <= 1.0 and png.read_bytes()[:4] == b"\x89PNG"
    text = results.read_text()
    assert "<!-- BEGIN spatrans-cpu -->" in text and "<!-- BEGIN spatrans -->" not in text
    assert "16×16" in text and "best epoch" in text and "patience 1" in text


def test_recipe_shrinks_digits_and_settings_keep_old_fingerprints(bench):
    import argparse

    import numpy as np
    import torch

    from pyro_videossm.data.moving_digits import bundled_digits, moving_digits
    from pyro_videossm.experiments.clip_benchmark import recipe, run_settings, stopping

    sim = recipe(canvas=16, n_digits=1, digit_size=14, speed=1.0)
    images, labels = sim["digits"]
    big, big_labels = bundled_digits()
    assert images.shape == (len(big), 14, 14) and np.array_equal(labels, big_labels)
    # area averaging of 28 -> 14 is the mean of each 2 x 2 block
    blocks = torch.from_numpy(big[:3]).float().reshape(3, 14, 2, 14, 2).mean((2, 4))
    assert np.array_equal(images[:3], blocks.round().numpy().astype(np.uint8))
    frames = moving_digits(2, **sim)["frames"]
    assert frames.shape == (2, 20, 16, 16)
    # the defaults add nothing to a run's fingerprint (stored runs stay valid)
    defaults = bench.main.__globals__["RECIPE_DEFAULTS"]
    args = argparse.Namespace(train_clips=1, test_clips=1, valid_fraction=0.1, data_seed=0,
                              epochs=1, minutes=0, batch_size=1, lr=1e-3, threads=1, mnist=None,
                              quick=False, device="cpu", **defaults)
    assert set(run_settings("lstm", {}, args)) == {
        "model", "arch", "train_clips", "test_clips", "valid_fraction", "data_seed", "epochs",
        "minutes", "batch_size", "lr", "threads", "mnist", "quick"}
    args.canvas, args.patience = 32, 3
    assert run_settings("lstm", {}, args)["canvas"] == 32
    assert stopping([3.0, 2.0, 2.5, 2.1, 2.2], 3) == {
        "best_epoch": 2, "best_valid": 2.0, "converged": True}
    assert stopping([3.0, 2.0, 2.5, 2.1], 3)["converged"] is False
