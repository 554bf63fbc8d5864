"""benchmarks/radar_comparison.py: the moving-digits models on 20 real KNMI composites
(tests/data/knmi_crop), per-run rows, the table from stored runs, and the interval scores."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from script_loader import load_script

REPO = Path(__file__).resolve().parents[1]
KNMI = REPO / "tests" / "data" / "knmi_crop"
#: 6 / 6 / 8 of the 20 frames: one train and one valid window of 3 + 3 frames, 3 test windows
SPLIT = ("0.3", "0.3", "0.4")


@pytest.fixture()
def bench():
    return load_script("benchmarks/radar_comparison.py", "radar_comparison_bench")


def test_end_to_end_rows_table_and_resume(bench, tmp_path, monkeypatch, capsys):
    runs, results, curves = tmp_path / "runs", tmp_path / "R.md", tmp_path / "curves.png"
    results.write_text("# Results\n\nother section\n")
    base = ["--quick", "--data", str(KNMI), "--box-km", "96", "--resolution", "4", "--split",
            *SPLIT, "--runs", str(runs), "--results", str(results), "--patience", "1",
            "--models", "persistence", "convlstm", "spatrans-q"]
    assert bench.main(base + ["--curves", str(curves)]) == 0
    rows = {json.loads(p.read_text())["model"]: json.loads(p.read_text())
            for p in runs.glob("*.json")}
    assert set(rows) == {"persistence", "convlstm", "spatrans-q"}
    # persistence recomputed from the crop: the last context frame, pooled over the test windows
    from pyro_videossm.experiments.radar_benchmark import radar_field

    r = radar_field(KNMI, 4.0, (bench.KNMI_PRESET["center_x"], bench.KNMI_PRESET["center_y"]),
                    96.0)["rain_rate"].values.astype(np.float64)
    k = lead = 3
    inits = range(12 + k - 1, 20 - lead)  # test block from frame 12; t1 - 1 is the last context
    fc = np.stack([np.repeat(r[i][None], lead, 0) for i in inits])
    ob = np.stack([r[i + 1:i + 1 + lead] for i in inits])
    mse = np.nanmean((fc - ob) ** 2, axis=(0, 2, 3))
    assert rows["persistence"]["windows"] == len(inits) == 3
    np.testing.assert_allclose(rows["persistence"]["leads"]["mse"], mse, rtol=1e-5)
    assert rows["persistence"]["mse"] == pytest.approx(mse.mean(), rel=1e-5)
    # the learned models: early-stopping bookkeeping, the quantile model's interval scores
    for m in ("convlstm", "spatrans-q"):
        row = rows[m]
        assert row["epochs"] == len(row["valid_history"]) <= 2
        assert row["best_epoch"] == int(np.argmin(row["valid_history"])) + 1
        assert np.isfinite(row["mse"]) and np.isfinite(row["csi_15"])
    assert 0.0 <= rows["spatrans-q"]["icp"] <= 1.0 and rows["spatrans-q"]["mil"] >= 0.0
    text = results.read_text()
    assert text.startswith("# Results\n\nother section\n")
    assert "<!-- BEGIN radar-comparison -->" in text and "| spatrans-q |" in text
    assert (tmp_path / "benchmarks/results/radar_comparison_section/radar-comparison.json"
            ).exists()
    assert curves.stat().st_size > 0

    def no_training(*args, **kwargs):
        raise AssertionError("a stored run was trained again")

    monkeypatch.setattr(bench, "run_radar_model", no_training)
    capsys.readouterr()
    assert bench.main(base + ["--table-only", "--no-write", "--models", "persistence",
                              "lstm"]) == 0
    assert "Not run yet: lstm seed 0" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="trained again"):  # other settings, another run
        bench.main(base + ["--no-write", "--lr", "0.01"])


def test_interval_scores_count_the_truth_inside_the_interval():
    from pyro_videossm.experiments.radar_comparison import interval_scores

    times = np.array(["2010-08-26T00:00", "2010-08-26T00:05", "2010-08-26T00:10",
                      "2010-08-26T00:15"], dtype="datetime64[ns]")
    truth = np.zeros((4, 1, 2))
    truth[1] = [[0.0, 2.0]]
    truth[2] = [[1.5, np.nan]]
    da = xr.DataArray(truth, dims=("time", "y", "x"), coords={"time": times})
    q = np.zeros((2, 3, 1, 2))                     # (lead, quantile, y, x), levels .1 .5 .9
    q[:, 0], q[:, 1], q[:, 2] = -0.5, 1.0, 1.8     # interval [-0.5, 1.8], width 2.3
    fc = xr.Dataset({"quantiles": (("lead_time", "quantile", "y", "x"), q)},
                    coords={"quantile": [0.1, 0.5, 0.9], "init_time": times[0]})
    s = interval_scores([fc], da, leads=2, threshold=1.0)
    # pixels with a value: 0.0 in, 2.0 out, 1.5 in (the NaN is left out)
    assert s["icp"] == pytest.approx(2 / 3)
    assert s["icp_wet"] == pytest.approx(1 / 2)    # wet: 2.0 out, 1.5 in
    assert s["mil"] == pytest.approx(2.3)
