"""benchmarks/gpu_smoke.py on CPU at toy sizes: every model steps, the table and the record."""

from __future__ import annotations

import json

import pytest
import torch
from script_loader import load_script

from pyro_videossm.errors import InputError
from pyro_videossm.experiments.recipes import RECIPES


@pytest.fixture()
def smoke():
    return load_script("benchmarks/gpu_smoke.py", "gpu_smoke_bench")


def test_quick_run_on_cpu_steps_every_model(smoke, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(smoke.RECIPE_OPTIONS, "convlstm", {"no_such_option": 1})
    out = tmp_path / "smoke.json"
    assert smoke.main(["--device", "cpu", "--quick", "--json", str(out)]) == 1
    record = json.loads(out.read_text())
    assert record["format"] == "pyro_videossm.run_record/1" and record["name"] == "gpu_smoke"
    rows = {r["step"]: r for r in record["metrics"]["steps"]}
    expected = {"dmm hybrid: 1 SVI step", "dmm neural: 1 SVI step", "assimilate dmm (hybrid)",
                "forecast convdmm", *(f"{n}: 1 step" for n in RECIPES.names()
                                      if RECIPES.get(n).train is not None)}
    assert {"convdmm: 1 step", "dsvae: 1 step", "spatrans: 1 step"} <= set(rows)
    assert expected <= set(rows)
    # the broken recipe is reported, the others still ran
    assert record["metrics"]["failed"] == ["convlstm: 1 step"]
    assert "no_such_option" in rows["convlstm: 1 step"]["error"]
    assert all(r["ok"] and r["seconds"] >= 0 for k, r in rows.items() if not k.startswith("convl"))
    table = capsys.readouterr().out
    assert "| forecast convdmm" in table and "FAILED" in table
    assert f"{len(rows) - 1} of {len(rows)} steps ok on cpu" in table


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is present")
def test_cuda_without_a_device_is_a_one_line_error(smoke, tmp_path):
    with pytest.raises(InputError, match="no CUDA device"):
        smoke.main(["--json", str(tmp_path / "x.json")])
    assert not (tmp_path / "x.json").exists()
