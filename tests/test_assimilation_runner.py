"""The assimilation experiment runner on a tiny setting: table, PASS/FAIL, prepare hooks for
learned methods, missing methods, and the docs section it rewrites (and nothing else)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from assimilation.config import MethodEntry, Setting  # noqa: E402
from assimilation.run import (  # noqa: E402
    available_settings,
    load_setting,
    main,
    markers,
    render_table,
    run_setting,
    select_methods,
    summarize,
    write_section,
)
from pyro_videossm.assimilate import (  # noqa: E402
    METHODS,
    AssimilationMethod,
    Estimate,
    register_method,
)
from pyro_videossm.errors import InputError  # noqa: E402


class ObsAsEstimate(AssimilationMethod):
    """Stand-in for a learned method: needs a "model file" (a number scaling the obs)."""

    name = "test_obs_as_estimate"

    def __init__(self, model_file: str):
        self.model_file = model_file

    def run(self, problem, *, generator, progress=False):
        scale = float(Path(self.model_file).read_text())
        std = problem.obs_noise_std.expand_as(problem.obs)
        return Estimate(mean=scale * problem.obs, std=std)


@pytest.fixture
def learned_method():
    register_method(ObsAsEstimate)
    yield ObsAsEstimate.name
    METHODS.unregister(ObsAsEstimate.name)


def tiny_setting(calls: list) -> Setting:
    def prepare(ctx):
        calls.append((ctx.seed, ctx.cycles))
        path = ctx.workdir / f"model_seed{ctx.seed}.txt"
        path.write_text("1.0")
        return {"model_file": str(path)}

    return Setting(
        name="tiny", title="Tiny Lorenz-63", description="A short run for the tests.",
        simulate={"system": "lorenz63", "steps_per_obs": 25, "obs_noise_std": 2.0**0.5},
        cycles=40, burn_in=10,
        methods=(
            MethodEntry("PF N=100", "pf", {"members": 100}, published=0.28, bound=50.0,
                        reference="somewhere"),
            MethodEntry("PF impossible bound", "pf", {"members": 50}, bound=1e-6),
            MethodEntry("learned", ObsAsEstimate.name, prepare=prepare, note="needs a model"),
            MethodEntry("not there yet", "no_such_method"),
        ),
    )


def test_runner_scores_table_and_hooks(tmp_path, learned_method):
    torch.set_num_threads(1)
    calls: list = []
    setting = tiny_setting(calls)
    results = run_setting(setting, seeds=[0, 1], workdir=tmp_path, log=lambda s: None)
    assert calls == [(0, 40), (1, 40)]  # the hook ran once per seed, before the method
    rows = {r["label"]: r for r in summarize(results)}
    assert rows["PF N=100"]["status"] == "PASS" and rows["PF N=100"]["n_seeds"] == 2
    assert rows["PF impossible bound"]["status"] == "FAIL"
    assert rows["not there yet"]["status"] == "not run"
    assert "not registered" in rows["not there yet"]["errors"][0]
    learned = rows["learned"]
    # The stand-in returns the observations: its RMSE is the observation noise, ~sqrt(2).
    assert 1.1 < learned["rmse"] < 1.7 and learned["status"] == "—"
    assert rows["PF N=100"]["rmse_se"] > 0
    assert 0 <= rows["PF N=100"]["coverage_90"] <= 1
    table = render_table(list(rows.values()))
    lines = table.splitlines()
    assert lines[0].startswith("| method | call | estimate | RMSE |")
    assert len(lines) == 2 + 4
    assert "`pf(members=100)`" in table and " ± " in table and "| PASS |" in table


def test_write_section_replaces_only_its_block(tmp_path):
    path = tmp_path / "RESULTS.md"
    other = "<!-- BEGIN dsvae -->\nDSVAE table\n<!-- END dsvae -->\n"
    path.write_text("# Results\n\n## Other topic\n\n" + other)
    write_section(path, "tiny", "first version")
    write_section(path, "tiny2", "another setting")
    write_section(path, "tiny", "second version")
    text = path.read_text()
    begin, end = markers("tiny")
    assert text.count(begin) == 1 and text.count(end) == 1
    assert "second version" in text and "first version" not in text
    assert "another setting" in text and other in text
    assert text.count("## Classical data assimilation") == 1
    assert text.startswith("# Results")

    # A new setting goes after the last classical block, never into a later topic's block.
    later = "<!-- BEGIN spatrans -->\n## Moving digits\ntable\n<!-- END spatrans -->\n"
    path.write_text(path.read_text() + "\n" + later)
    write_section(path, "tiny3", "third setting")
    text = path.read_text()
    assert later in text
    assert text.index(markers("tiny2")[1]) < text.index(markers("tiny3")[0])
    assert text.index(markers("tiny3")[1]) < text.index("<!-- BEGIN spatrans -->")

    begun_by_other = tmp_path / "OTHER.md"  # another topic's script created the file first
    begun_by_other.write_text(other)
    write_section(begun_by_other, "tiny", "mine")
    text = begun_by_other.read_text()
    assert text.startswith("# Results") and other in text and "mine" in text


def test_cli_on_a_shipped_config_writes_docs(tmp_path, capsys):
    assert {"lorenz63_sakov2012", "lorenz96_n40"} <= set(available_settings())
    docs = tmp_path / "RESULTS.md"
    code = main(["lorenz63_sakov2012", "--seeds", "1", "--cycles", "30", "--burn-in", "10",
                 "--methods", "pf", "--docs", str(docs), "--write-docs"])
    assert code in (0, 1)  # 1 when a bound fails (30 cycles are too few to judge)
    out = capsys.readouterr().out
    assert "| PF N=800 |" in out
    text = docs.read_text()
    assert markers("lorenz63_sakov2012")[0] in text
    assert "python -m assimilation.run lorenz63_sakov2012 --seeds 1 --cycles 30" in text


def test_bad_input_is_one_line_error(capsys):
    assert main(["no_such_setting"]) == 2
    assert "unknown setting" in capsys.readouterr().err
    with pytest.raises(InputError):
        select_methods(load_setting("lorenz96_n40"), ["nope"])
    assert [e.method for e in select_methods(load_setting("lorenz96_n40"), ["letkf"])] == [
        "letkf"]
