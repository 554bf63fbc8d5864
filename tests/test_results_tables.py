"""docs/RESULTS.md regenerates byte for byte from the stored run records."""

import json
import shutil
import subprocess
import sys

import pytest

from pyro_videossm.errors import InputError
from pyro_videossm.experiments import results as R
from pyro_videossm.experiments.records import REPO

#: every results file that a stored record renders a section of (RESULTS.md, BENCHMARK_DAPPER.md,
#: family pages such as eating_sounds.md)
RESULTS_FILES = tuple(sorted(set(R.section_records()) | {"docs/RESULTS.md",
                                                         "docs/BENCHMARK_DAPPER.md"}))



def _copy_docs(tmp_path):
    (tmp_path / "docs").mkdir()
    for file in RESULTS_FILES:
        shutil.copy(REPO / file, tmp_path / file)
    return tmp_path


def test_every_marked_section_has_records():
    found = R.section_records()
    for file in RESULTS_FILES:
        names = R.section_names((REPO / file).read_text())
        assert names and set(names) <= set(found[file])


def test_regenerating_on_a_copy_gives_the_committed_files(tmp_path):
    root = _copy_docs(tmp_path)
    committed = {f: (root / f).read_bytes() for f in RESULTS_FILES}
    # blank every section first, so the text can only come back from the records
    for file in committed:
        path = root / file
        text = path.read_text()
        for name in R.section_names(text):
            text = R.replace_section(text, name, "(emptied)")
        path.write_text(text)
    done = R.regenerate(root, R.RECORD_FOLDERS)
    assert set(done) == set(committed)
    for file, data in committed.items():
        assert (root / file).read_bytes() == data


def test_a_changed_number_in_a_record_changes_the_table(tmp_path):
    folder = tmp_path / "records"
    shutil.copytree(REPO / "assimilation" / "results", folder)
    path = folder / "classical" / "lorenz96_n40.json"
    record = json.loads(path.read_text())
    table = next(b["table"] for b in record["section"]["blocks"] if "table" in b)
    assert table["rows"][0][7] == 6.27  # ms/cycle of ETKF N=24, printed with .2f
    table["rows"][0][7] = 6.28
    path.write_text(json.dumps(record))
    text = (REPO / "docs" / "RESULTS.md").read_text()
    sections = R.section_records([REPO / "benchmarks" / "results", folder])["docs/RESULTS.md"]
    new = R.regenerate_text(text, sections)
    assert "| filter | 0.175 ± 0.004 | 0.187 | 0.094 | 0.86 | 6.28 |" in new
    assert new.replace("0.86 | 6.28 |", "0.86 | 6.27 |", 1) == text


def test_a_section_without_records_is_an_input_error():
    text = "# R\n\n<!-- BEGIN nothing -->\nx\n<!-- END nothing -->\n"
    with pytest.raises(InputError, match="nothing"):
        R.regenerate_text(text, {})


def test_check_command_passes_on_the_committed_docs():
    done = subprocess.run([sys.executable, "benchmarks/results_tables.py", "--check"],
                          cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "docs/RESULTS.md: matches its records" in done.stdout
