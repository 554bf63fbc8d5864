"""Run records (experiments/records.py) and the one results-section writer
(experiments/results.py)."""

import json
import os
import stat

import pytest

from pyro_videossm.errors import InputError
from pyro_videossm.experiments import records as rec
from pyro_videossm.experiments import results as res


def test_record_has_the_fingerprints_and_round_trips(tmp_path):
    data = tmp_path / "data.bin"
    data.write_bytes(b"abc")
    record = rec.make_record("toy", command="python toy.py --n 3", options={"n": 3},
                             data=rec.data_fingerprint([data]), metrics={"rmse": 0.5},
                             timings={"total": 1.0})
    # sha256 of b"abc" (a published test vector)
    assert record["data"][str(data)] == ("sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9c"
                                         "b410ff61f20015ad")
    assert record["code"]["commit"] is None or len(record["code"]["commit"]) == 40
    assert record["machine"]["cpus"] == os.cpu_count()
    assert record["load"] is None or len(record["load"]) == 3
    assert isinstance(record["threads"], int)
    path = rec.write_record(tmp_path / "out" / "toy.json", record)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    (tmp_path / "out" / "other.json").write_text(json.dumps({"not": "a record"}))
    (tmp_path / "out" / "broken.json").write_text("{")
    got = rec.read_records(tmp_path / "out")
    assert len(got) == 1 and got[0]["metrics"] == {"rmse": 0.5}
    assert got[0]["_path"] == str(path)
    with pytest.raises(InputError):
        rec.write_record(tmp_path / "x.json", {"name": "no format"})
    with pytest.raises(InputError):
        rec.read_records(tmp_path / "missing")


def test_folder_hash_depends_on_names_and_bytes(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x").write_text("1")
    h1 = rec.file_hash(tmp_path / "a")
    (tmp_path / "a" / "x").rename(tmp_path / "a" / "y")
    assert rec.file_hash(tmp_path / "a") != h1


def test_write_section_keeps_everything_else_and_the_permissions(tmp_path):
    path = tmp_path / "RESULTS.md"
    head = "# Results\n\nintro ✓\n\n"
    other = "<!-- BEGIN other -->\nkeep | me\n<!-- END other -->\n\ntail\n"
    path.write_text(head + "<!-- BEGIN mine -->\nold\n<!-- END mine -->\n\n" + other)
    os.chmod(path, 0o640)
    res.write_section(path, "mine", "new body\n\n")
    assert path.read_text() == (head + "<!-- BEGIN mine -->\nnew body\n<!-- END mine -->\n\n"
                                + other)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    res.write_section(path, "mine", "more", append=True)
    assert "<!-- BEGIN mine -->\nnew body\n\nmore\n<!-- END mine -->" in path.read_text()
    res.write_section(path, "added", "x")
    assert path.read_text().endswith("tail\n\n<!-- BEGIN added -->\nx\n<!-- END added -->\n")
    fresh = tmp_path / "new.md"
    res.write_section(fresh, "s", "t", header="# H\n")
    assert fresh.read_text() == "# H\n\n<!-- BEGIN s -->\nt\n<!-- END s -->\n"
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o644
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left


def test_section_record_prints_the_body_back(tmp_path):
    body = ("### T\n\ntext `a|b`\n\n| model | n | mse | note |\n|---|---:|---:|---|\n"
            "| a | 1,234 | 1.8e+04 | x \\| y |\n| b | 0 | 0.0100 |  |\n\nend")
    path = tmp_path / "RESULTS.md"
    res.write_section(path, "t", body, record=rec.make_record("t", command="c"),
                      record_path=tmp_path / "records" / "t.json")
    stored = rec.read_records(tmp_path / "records")[0]
    table = next(b["table"] for b in stored["section"]["blocks"] if "table" in b)
    assert table["rows"][0][1:3] == [1234, {"value": 18000.0, "format": ".4g"}]
    assert table["rows"][1][2] == 0.01
    assert table["rows"][0][3] == "x \\| y"
    assert res.render_section([stored]) == body
    path.write_text(res.replace_section(path.read_text(), "t", "emptied"))
    assert res.regenerate_text(path.read_text(), {"t": [stored]}) == (
        f"<!-- BEGIN t -->\n{body}\n<!-- END t -->\n")


def test_parts_are_joined_in_order_and_must_differ():
    def part(i, text):
        return {"section": {"name": "s", "part": i, "blocks": [{"text": text}]}}

    assert res.render_section([part(1, "second"), part(0, "first")]) == "first\n\nsecond"
    with pytest.raises(InputError, match="share a part"):
        res.render_section([part(0, "a"), part(0, "b")])


def test_remove_section_records_keeps_the_new_one(tmp_path):
    for name in ("a", "b"):
        res.store_section_record(tmp_path / f"{name}.json", rec.make_record(name, command="c"),
                                 "s", name, part=0 if name == "a" else 1)
    gone = res.remove_section_records(tmp_path, "s", keep=[tmp_path / "a.json"])
    assert [p.name for p in gone] == ["b.json"]
    assert [r["name"] for r in rec.read_records(tmp_path)] == ["a"]
