"""forecasting.run: settings, rows by name or model file, pooled table, docs section and the
run record the section regenerates from."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from forecasting.config import ForecasterEntry, ForecastSetting, TrainedModel  # noqa: E402
from forecasting.run import available_settings, load_setting, main, run_setting  # noqa: E402
from pyro_videossm.data.heat import simulate_heat  # noqa: E402
from pyro_videossm.errors import InputError  # noqa: E402

SMALL = {"samples": 2, "steps": 12, "grid": 8, "length": 0.8, "seed": 3}


def small_setting(**changes) -> ForecastSetting:
    base = dict(
        name="small", title="Small heat", description="d",
        data={"simulator": "pyro_videossm.data.heat:simulate_heat", "options": SMALL},
        variable="obs", truth="truth", context=3, leads=2, stride=4,
        forecasters=(ForecasterEntry("persistence", "persistence"),
                     ForecasterEntry("learned", model=TrainedModel("absent.pt"))))
    base.update(changes)
    return ForecastSetting(**base)


def test_persistence_scores_match_a_direct_computation(tmp_path):
    rows, fingerprint = run_setting(small_setting(), workdir=tmp_path, log=lambda s: None)
    assert fingerprint["simulated"]["options"] == SMALL
    assert "no model file" in rows[1]["error"]
    bt = rows[0]["backtest"]
    ds = simulate_heat(**SMALL)
    obs, truth = ds["obs"].values.astype(float), ds["truth"].values.astype(float)
    errors = []  # (window, lead) mean squared error of the last context frame
    for s in range(2):
        for t1 in range(3, 12 - 2 + 1, 4):
            errors.append([np.mean((obs[s, t1 - 1] - truth[s, t1 + k]) ** 2) for k in range(2)])
    assert len(bt.windows) == len(errors) == 4  # splits 3 and 7 of each sample
    np.testing.assert_allclose(bt.pooled["mse"], np.mean(errors, axis=0), rtol=1e-5)


def test_cli_writes_the_section_and_its_record(tmp_path, capsys):
    from pyro_videossm.experiments.records import read_records
    from pyro_videossm.experiments.results import regenerate_text, section_records

    assert "heat" in available_settings()
    assert load_setting("heat").truth == "truth"
    docs = tmp_path / "docs" / "RESULTS.md"
    docs.parent.mkdir()
    docs.write_text("# Results\n\nothers\n")
    assert main(["heat", "--windows", "1", "--docs", str(docs), "--write-docs"]) == 0
    assert "| persistence | mse |" in capsys.readouterr().out
    text = docs.read_text()
    assert text.startswith("# Results\n\nothers\n\n<!-- BEGIN forecast:heat -->")
    assert "python -m forecasting.run heat --windows 1 --write-docs" in text
    folder = tmp_path / "docs" / "benchmarks" / "results" / "forecast"
    (record,) = read_records(folder)
    assert record["options"]["windows"] == 1 and record["data"]["simulated"]
    assert len(record["metrics"]["persistence"]["windows"]) == 8  # one per sample
    sections = section_records([folder])[str(docs)]
    assert regenerate_text(text, sections) == text


def test_bad_input():
    assert main(["nope"]) == 2
    with pytest.raises(InputError, match="names no row"):
        run_setting(small_setting(), models={"other": "x.pt"})
