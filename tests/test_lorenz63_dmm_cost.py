"""The amortised-cost benchmark of the hybrid DMM against the iEnKS (benchmarks/
lorenz63_dmm_cost.py) and the lorenz63_dmm setting's rows."""

from __future__ import annotations

import math

import pytest
from script_loader import load_script

from assimilation.run import load_setting
from pyro_videossm.experiments.records import read_records
from pyro_videossm.experiments.results import regenerate_text, section_records


def cost_script():
    return load_script("benchmarks/lorenz63_dmm_cost.py")


def test_break_even_is_training_over_the_saving_per_cycle():
    cost = cost_script()
    # 10 s of training, 1 ms against 11 ms per cycle: 10 s / 10 ms = 1000 cycles
    assert cost.break_even_cycles(10.0, 0.001, 0.011) == pytest.approx(1000.0)
    assert cost.break_even_cycles(10.0, 0.02, 0.011) == math.inf


def test_setting_compares_the_dmm_with_the_best_classical_rows():
    setting = load_setting("lorenz63_dmm")
    methods = [e.method for e in setting.methods]
    assert methods[0] == "dmm" and setting.methods[0].relative_bound == 1.0
    assert {"enks", "ienks", "pf", "4dvar"} <= set(methods)
    lags = sorted(e.options["lag"] for e in setting.methods if e.method == "enks")
    assert len(lags) >= 3


def test_cost_run_writes_a_record_the_section_regenerates_from(tmp_path, capsys):
    cost = cost_script()
    docs = tmp_path / "docs" / "X.md"
    docs.parent.mkdir()
    docs.write_text("# X\n")
    code = cost.main(["--train-cycles", "60", "--epochs", "1", "--cycles", "30",
                      "--repeats", "1", "--samples", "4", "--docs", str(docs),
                      "--write-docs"])
    assert code == 0
    folder = tmp_path / "docs" / "benchmarks" / "results"
    (record,) = read_records(folder)
    m = record["metrics"]
    per = m["seconds_per_1000_cycles"]
    dmm, ienks = per["hybrid DMM"]["cpu"], per["iEnKS N=10 (lag 1)"]["cpu"]
    assert m["break_even_cycles"]["cpu"] == pytest.approx(
        cost.break_even_cycles(m["training"]["cpu_seconds"], dmm / 1000, ienks / 1000))
    assert m["speed_up"]["cpu"] == pytest.approx(ienks / dmm)
    text = docs.read_text()
    sections = section_records([folder])
    assert regenerate_text(text, next(iter(sections.values()))) == text


def test_cost_run_refuses_bad_counts(tmp_path, capsys):
    cost = cost_script()
    assert cost.main(["--repeats", "0"]) == 2
    assert "--repeats must be >= 1" in capsys.readouterr().err


def test_recipe_rows_change_one_thing_and_train_off_the_scored_seeds():
    setting = load_setting("lorenz63_dmm_recipes")
    assert setting.simulate == load_setting("lorenz63_dmm").simulate
    base = setting.methods[0]
    for row in setting.methods:
        assert row.method == "dmm" and row.model.options["seed"] == 1001
        changed = {k for k in {**row.model.options, **base.model.options}
                   if row.model.options.get(k) != base.model.options.get(k)}
        changed |= {k for k in row.options if row.options[k] != base.options.get(k)}
        assert len(changed) <= 1, (row.label, changed)


def test_a_trained_model_is_timed_with_the_training_seconds_its_file_records(tmp_path, capsys):
    from assimilation.dmm_training import train_for_setting
    from pyro_videossm.infer.model_file import load_model_file

    cost = cost_script()
    model = tmp_path / "m.pt"
    train_for_setting(model, setting="lorenz63_dmm", cycles=60, epochs=1)
    recorded = load_model_file(model)["extra"]["training"]["cpu_seconds"]
    docs = tmp_path / "docs" / "X.md"
    docs.parent.mkdir()
    docs.write_text("# X\n")
    assert cost.main(["--model", str(model), "--tag", "t", "--cycles", "30", "--repeats", "1",
                      "--samples", "4", "--docs", str(docs), "--write-docs"]) == 0
    (record,) = read_records(tmp_path / "docs" / "benchmarks" / "results")
    assert record["_path"].endswith("cost-t.json")
    assert record["metrics"]["training"]["cpu_seconds"] == pytest.approx(recorded)
    assert "<!-- BEGIN lorenz63_dmm:cost-t -->" in docs.read_text()
    assert cost.main(["--model", str(tmp_path / "none.pt")]) == 2
