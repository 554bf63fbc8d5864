"""benchmarks/radar_forecast.py end to end on 20 real KNMI composites cut to a small window
(tests/data/knmi_crop, see tests/data/README.md), and its RESULTS.md section writer."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import xarray as xr
from script_loader import load_script

REPO = Path(__file__).resolve().parents[1]
#: 20 consecutive composites (02:20 .. 03:55 UTC) around the --quick crop.
KNMI = REPO / "tests" / "data" / "knmi_crop"
#: Train / valid / test fractions: 6 / 6 / 8 of the 20 frames (one window of 3 + 3 frames in
#: train and valid, three forecasts in test).
SPLIT = (0.3, 0.3, 0.4)


def _bench():
    return load_script("benchmarks/radar_forecast.py")


def _scores(path: Path) -> dict[tuple[str, str], np.ndarray]:
    with open(path) as f:
        rows = list(csv.DictReader(f))
    return {(r["model"], r["score"]): np.array([float(r[k]) for k in r if k.startswith("lead")])
            for r in rows}


def test_end_to_end_on_real_radar(tmp_path):
    bench = _bench()
    results = tmp_path / "RESULTS.md"
    results.write_text("# Results\n\nother section\n")
    strip = tmp_path / "strip.png"
    models = list(bench.ALL_MODELS)
    assert bench.main(["--quick", "--data", str(KNMI), "--split", *map(str, SPLIT),
                       "--out", str(tmp_path),
                       "--results", str(results), "--strip", str(strip),
                       "--calibration", str(tmp_path / "calib.png"),
                       "--models", *models]) == 0
    scores = _scores(tmp_path / "radar_scores.csv")
    # every forecaster, trained, saved, reloaded and scored on real data: finite scores
    for m in models:
        assert np.isfinite(scores[(m, "mse")]).all() and np.isfinite(scores[(m, "crps")]).all()
        assert (tmp_path / f"{m}.pt").exists() or m in ("persistence", *bench.PYSTEPS_MODELS)
    # the ensembles' calibration: every scored pair in one rank, a PNG
    import json

    cal = json.loads((tmp_path / "radar_summary.json").read_text())["calibration"]
    assert {"steps", "convdmm"} <= set(cal) and "extrapolation" not in cal
    assert len(cal["steps"]["rank_counts"]) == 3 and sum(cal["steps"]["rank_counts"]) > 0
    assert (tmp_path / "calib.png").stat().st_size > 10_000

    # persistence recomputed independently from the converted crop, pooled over test windows
    ds = xr.open_dataset(tmp_path / "knmi_crop.nc")
    r = np.asarray(ds["rain_rate"].values, dtype=np.float64)
    n, k, lead = r.shape[0], 3, 3                       # --quick: context 3, leads 3
    assert n == 20
    test0 = int(round((SPLIT[0] + SPLIT[1]) * n))
    inits = range(test0 + k - 1, n - lead)
    assert len(inits) >= 3
    fc = np.stack([np.repeat(r[i][None], lead, 0) for i in inits])       # (S, L, H, W)
    ob = np.stack([r[i + 1:i + 1 + lead] for i in inits])
    np.testing.assert_allclose(scores[("persistence", "mse")],
                               np.nanmean((fc - ob) ** 2, axis=(0, 2, 3)), rtol=1e-5)
    ok = ~(np.isnan(fc) | np.isnan(ob))
    f1, o1 = (fc >= 1) & ok, (ob >= 1) & ok
    hits = (f1 & o1).sum((0, 2, 3))
    csi = hits / (hits + (f1 & ~o1).sum((0, 2, 3)) + (~f1 & o1).sum((0, 2, 3)))
    np.testing.assert_allclose(scores[("persistence", "csi")], csi, rtol=1e-5)
    assert np.all(np.diff(scores[("persistence", "mse")]) > 0)   # persistence decays

    text = results.read_text()
    assert text.startswith("# Results\n\nother section\n")
    assert text.count(bench.BEGIN) == 1 and text.count(bench.END) == 1
    assert "| convdmm |" in text and "| spatrans |" in text
    assert (tmp_path / "strip_convdmm.png").stat().st_size > 0
    assert (tmp_path / "strip_convlstm.png").stat().st_size > 0


def test_section_writer_touches_only_its_section(tmp_path):
    bench = _bench()
    path = tmp_path / "R.md"
    other = "b <!-- BEGIN heat -->x<!-- END heat -->\n"
    path.write_text(f"a\n{bench.BEGIN}\nold\n{bench.END}\n{other}")
    bench.write_section(path, "new table")
    assert path.read_text() == f"a\n{bench.BEGIN}\nnew table\n{bench.END}\n{other}"
    fresh = tmp_path / "fresh.md"
    bench.write_section(fresh, "t")
    assert fresh.read_text() == f"{bench.BEGIN}\nt\n{bench.END}\n"
