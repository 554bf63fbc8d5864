"""The assimilation experiment runner on a tiny setting: table, PASS/FAIL, learned methods
with a model file or a training recipe (the real ``dmm`` included), missing methods, the docs
section it rewrites (and nothing else) and the run record it stores."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from assimilation.config import MethodEntry, Setting, TrainedModel  # noqa: E402
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

    def __init__(self, model: str):
        self.model_file = model

    def run(self, problem, *, generator, progress=False):
        scale = float(Path(self.model_file).read_text())
        std = problem.obs_noise_std.expand_as(problem.obs)
        return Estimate(mean=scale * problem.obs, std=std)


@pytest.fixture
def learned_method():
    register_method(ObsAsEstimate)
    yield ObsAsEstimate.name
    METHODS.unregister(ObsAsEstimate.name)


RECIPE_CALLS: list = []


def write_scale_model(path, *, scale: float = 1.0):
    """A "training recipe": writes the stand-in's model file."""
    RECIPE_CALLS.append((Path(path).name, scale))
    Path(path).write_text(str(scale))


def tiny_setting(calls: list | None = None) -> Setting:
    recipe = TrainedModel("scale.txt", workdir=True, recipe=f"{__name__}:write_scale_model",
                          options={"scale": 1.0})
    return Setting(
        name="tiny", title="Tiny Lorenz-63", description="A short run for the tests.",
        simulate={"system": "lorenz63", "steps_per_obs": 25, "obs_noise_std": 2.0**0.5},
        cycles=40, burn_in=10,
        methods=(
            MethodEntry("PF N=100", "pf", {"members": 100}, published=0.28, bound=50.0,
                        reference="somewhere"),
            MethodEntry("PF impossible bound", "pf", {"members": 50}, bound=1e-6),
            MethodEntry("learned", ObsAsEstimate.name, model=recipe, note="needs a model"),
            MethodEntry("not there yet", "no_such_method"),
        ),
    )


def test_runner_scores_table_and_hooks(tmp_path, learned_method):
    torch.set_num_threads(1)
    RECIPE_CALLS.clear()
    setting = tiny_setting()
    results = run_setting(setting, seeds=[0, 1], workdir=tmp_path, log=lambda s: None)
    assert RECIPE_CALLS == [("scale.txt", 1.0)]  # trained once, before the seeds
    assert (tmp_path / "tiny" / "scale.txt").read_text() == "1.0"
    run_setting(setting, seeds=[0], workdir=tmp_path, log=lambda s: None)
    assert len(RECIPE_CALLS) == 1  # the file is there: no training again
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


def test_a_missing_model_file_is_a_row_error_and_model_overrides(tmp_path, learned_method):
    setting = Setting(
        name="tiny_file", title="t", description="d",
        simulate={"system": "lorenz63", "steps_per_obs": 25, "obs_noise_std": 2.0**0.5},
        cycles=30, burn_in=5,
        methods=(MethodEntry("learned", ObsAsEstimate.name,
                             model=TrainedModel(str(tmp_path / "absent.txt"))),))
    rows = summarize(run_setting(setting, seeds=[0], workdir=tmp_path, log=lambda s: None))
    assert rows[0]["status"] == "not run" and "no model file" in rows[0]["errors"][0]
    half = tmp_path / "half.txt"
    half.write_text("0.5")
    results = run_setting(setting, seeds=[0], workdir=tmp_path, log=lambda s: None,
                          models={"learned": half})
    assert results[0]["model"] == half
    assert results[0]["runs"][0]["rmse"] > 2  # the estimate is half the observations
    missing = run_setting(setting, seeds=[0], workdir=tmp_path, log=lambda s: None,
                          models={"learned": tmp_path / "one.txt"})
    assert "no model file" in missing[0]["runs"][0]["error"]
    with pytest.raises(InputError, match="names no row"):
        run_setting(setting, seeds=[0], workdir=tmp_path, models={"nope": half})


def tiny_dmm_recipe(path, *, seed: int = 1001):
    """The demo recipe at a toy budget (one epoch on 120 cycles)."""
    from pyro_videossm.experiments.dmm import train_demo_model

    train_demo_model(path, seed=seed, epochs=1, cycles=120)


def test_runner_scores_the_dmm_method_from_a_training_recipe(tmp_path, capsys):
    torch.set_num_threads(1)
    setting = load_setting("lorenz63_dmm")
    row = setting.methods[0]
    assert row.method == "dmm" and row.model.recipe.endswith(":train_demo_model")
    toy = Setting(
        name="tiny_dmm", title="Tiny DMM", description="d", simulate=setting.simulate,
        cycles=40, burn_in=10,
        methods=(MethodEntry("hybrid DMM", "dmm", {"samples": 8}, model=TrainedModel(
            "dmm.pt", workdir=True, recipe=f"{__name__}:tiny_dmm_recipe")),))
    results = run_setting(toy, seeds=[0], workdir=tmp_path, log=lambda s: None)
    scores = results[0]["runs"][0]
    assert "error" not in scores, scores
    assert scores["kind"] == "smoother" and 0 < scores["rmse"] < 20
    assert (tmp_path / "tiny_dmm" / "dmm.pt").exists()


def test_write_docs_stores_the_run_record(tmp_path):
    from pyro_videossm.experiments.records import read_records
    from pyro_videossm.experiments.results import regenerate_text, section_records

    docs = tmp_path / "docs" / "RESULTS.md"
    docs.parent.mkdir()
    code = main(["lorenz63_sakov2012", "--seeds", "1", "--cycles", "30", "--burn-in", "10",
                 "--methods", "etkf", "--docs", str(docs), "--write-docs"])
    assert code in (0, 1)
    (record,) = read_records(tmp_path / "docs" / "assimilation" / "results")
    assert record["name"] == "lorenz63_sakov2012" and record["options"]["seeds"] == [0]
    assert record["metrics"]["rows"][0]["label"] == "ETKF N=10"
    assert record["section"]["name"] == "classical:lorenz63_sakov2012"
    text = docs.read_text()
    sections = section_records([tmp_path / "docs" / "assimilation" / "results"])
    assert regenerate_text(text, next(iter(sections.values()))) == text


class RecordsPhysics(AssimilationMethod):
    """Returns the observations and records the forecast system it was given."""

    name = "test_records_physics"
    seen: list = []

    def run(self, problem, *, generator, progress=False):
        RecordsPhysics.seen.append(problem.system.parameters_dict())
        return Estimate(mean=problem.obs, std=problem.obs_noise_std.expand_as(problem.obs))


def test_known_system_reaches_every_method_and_relative_bounds(tmp_path, learned_method):
    """Model error: ``known_system`` is the physics every method gets; a relative bound is
    a factor times the best classical row's mean RMSE."""
    register_method(RecordsPhysics)
    try:
        RecordsPhysics.seen.clear()
        Path(tmp_path / "scale.txt").write_text("1.0")
        model = TrainedModel(str(tmp_path / "scale.txt"))
        setting = Setting(
            name="model_error", title="t", description="d",
            simulate={"system": "lorenz63", "steps_per_obs": 25, "obs_noise_std": 2.0**0.5},
            known_system={"system": "lorenz63", "rho": 24.0}, cycles=30, burn_in=5,
            methods=(
                MethodEntry("obs", RecordsPhysics.name),
                MethodEntry("learned, half", learned_method, model=model, relative_bound=0.5),
                MethodEntry("learned, twice", learned_method, model=model, relative_bound=2.0),
            ))
        rows = {r["label"]: r for r in summarize(
            run_setting(setting, seeds=[0], workdir=tmp_path, log=lambda s: None))}
        assert RecordsPhysics.seen and RecordsPhysics.seen[0]["rho"] == 24.0
        best = rows["obs"]["rmse"]  # the only classical row; the learned rows score the same
        assert rows["learned, half"]["bound"] == pytest.approx(0.5 * best)
        assert rows["learned, half"]["status"] == "FAIL"
        assert rows["learned, twice"]["status"] == "PASS"
        assert "best classical row (obs" in rows["learned, twice"]["bound_text"]
    finally:
        METHODS.unregister(RecordsPhysics.name)


HARDER = ("lorenz63_x_only", "lorenz63_sparse", "lorenz63_rho24", "lorenz63_student_t",
          "lorenz96_every2", "lorenz96_every4", "lorenz96_f7")


@pytest.mark.parametrize("name", HARDER)
def test_harder_settings_name_registered_methods_and_a_dmm_recipe(name):
    from pyro_videossm.assimilate import available_methods
    from pyro_videossm.dynamics import make_system
    from pyro_videossm.registry import import_object

    setting = load_setting(name)
    assert {e.method for e in setting.methods} <= set(available_methods())
    learned = [e for e in setting.methods if e.model is not None]
    # one judged learned row; others (an untrained diagnostic row) carry no bound
    assert len([e for e in learned if e.relative_bound is not None]) == 1
    for entry in learned:
        assert callable(import_object(entry.model.recipe, kind="training recipe"))
        assert entry.model.options["setting"] == name
    if setting.known_system:
        known = dict(setting.known_system)
        system = make_system(known.pop("system"), **known)
        truth = make_system(setting.simulate["system"], **{
            k: v for k, v in setting.simulate.items() if k in ("n", "forcing")})
        assert system.parameters_dict() != truth.parameters_dict()


def test_merge_json_equals_one_run_over_all_seeds(tmp_path, capsys):
    """Runs over parts of the seeds (--first-seed, --json) merged with --merge-json give the
    table of one run over all the seeds; a missing seed is one line, exit 2."""
    base = ["lorenz63_sakov2012", "--cycles", "30", "--burn-in", "10", "--methods", "etkf"]
    parts = []
    for first, count in ((0, 2), (2, 1)):
        parts.append(tmp_path / f"part{first}.json")
        assert main(base + ["--seeds", str(count), "--first-seed", str(first),
                            "--json", str(parts[-1])]) in (0, 1)
    capsys.readouterr()
    assert main(base + ["--seeds", "3"]) in (0, 1)
    whole = capsys.readouterr().out
    docs = tmp_path / "RESULTS.md"
    assert main(base + ["--seeds", "3", "--merge-json", *map(str, parts), "--docs", str(docs),
                        "--write-docs"]) in (0, 1)
    merged = capsys.readouterr().out
    # the same scores (the ms/cycle column differs between processes)
    def table(out):
        return [line.split("|")[:5] for line in out.splitlines() if line.startswith("|")]

    assert table(merged) == table(whole) and len(table(whole)) == 3
    assert "--seeds 3 --cycles 30" in docs.read_text()
    assert main(base + ["--seeds", "4", "--merge-json", *map(str, parts)]) == 2
    assert "has seeds [0, 1, 2], not [0, 1, 2, 3]" in capsys.readouterr().err
