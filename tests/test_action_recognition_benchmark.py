"""benchmarks/action_recognition.py: the paired-by-seed comparison of its table."""

from __future__ import annotations

import pytest
from script_loader import load_script


def _record(model: str, seed: int, accuracy: dict[float, float]) -> dict:
    return {"metrics": {"model": model, "seed": seed, "test_clips": 1000,
                        "runs": [{"fraction": f, "accuracy": a} for f, a in accuracy.items()]}}


def test_paired_rows_are_per_seed_differences_sign_counts_and_wrong_clips():
    ar = load_script("benchmarks/action_recognition.py")
    records = [_record("latent", 0, {0.01: 0.999, 0.1: 1.0}),
               _record("latent", 1, {0.01: 0.990, 0.1: 1.0}),
               _record("latent", 2, {0.01: 0.995}),
               _record("supervised", 0, {0.01: 0.995, 0.1: 1.0}),
               _record("supervised", 1, {0.01: 0.990, 0.1: 0.998}),
               _record("supervised", 3, {0.01: 0.5})]  # seed 3: no latent run, left out
    rows = ar.paired_rows(records, [0.01, 0.1])
    assert [r[0] for r in rows] == ["1 %", "10 %"]
    one = rows[0]
    assert one[1] == "2 (0–1)"
    # differences in points: +0.4 and 0.0 -> mean 0.2, s.e. 0.2
    assert one[2] == "+0.20 ± 0.20"
    assert one[3] == "1 / 1 / 0"
    assert (one[4], one[5]) == ("11", "15")  # 1 + 10 and 5 + 10 wrong clips of 1000
    assert rows[1][2] == "+0.10 ± 0.10" and rows[1][3] == "1 / 1 / 0"
    # a fraction with fewer than two common seeds gives no row
    assert ar.paired_rows(records, [0.5]) == []
    assert float(one[2].split()[0]) == pytest.approx(0.2)
