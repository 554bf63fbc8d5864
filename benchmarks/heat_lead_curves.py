"""Per-lead MSE curves of the heat benchmark (mean ± standard error over seeds), read from the
per-seed run records of one or more sections; nothing is trained::

    python benchmarks/heat_lead_curves.py --section heat-advection-published heat-rollout \\
        --out docs/heat_lead_curves.png

One curve per model (its seeds pooled over the sections), log-scaled MSE against lead time.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from pyro_videossm.experiments.records import read_records  # noqa: E402


def lead_curves(records: list[dict]) -> dict[str, np.ndarray]:
    """Model -> MSE per lead ``(seeds, leads)``, the records' per-seed rows stacked."""
    runs: dict[str, list[list[float]]] = {}
    for rec in records:
        for name, mse in rec["metrics"]["mse_per_lead"].items():
            runs.setdefault(name, []).append(mse)
    return {name: np.asarray(v, dtype=float) for name, v in runs.items()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--section", nargs="+", required=True, help="per-seed sections")
    p.add_argument("--out", type=Path, required=True, help="PNG to write")
    p.add_argument("--title", default="Heat: MSE against the noise-free truth per lead")
    args = p.parse_args(argv)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from pyro_videossm.plots.figure import save_figure

    records = [r for r in read_records(REPO / "benchmarks" / "results" / "heat")
               if r.get("section", {}).get("name") in args.section]
    if not records:
        raise SystemExit(f"no records of sections {args.section} found")
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for name, runs in lead_curves(records).items():
        lead = np.arange(1, runs.shape[1] + 1)
        mean = runs.mean(0)
        se = runs.std(0, ddof=1) / np.sqrt(len(runs)) if len(runs) > 1 else 0 * mean
        ax.plot(lead, mean, marker="o", ms=3, label=f"{name} ({len(runs)} seeds)")
        ax.fill_between(lead, mean - se, mean + se, alpha=0.25)
    ax.axvspan(14.5, 20.5, color="0.9", zorder=0, label="leads 15–20 (judged)")
    ax.set_yscale("log")
    ax.set_xlabel("lead (frames)")
    ax.set_ylabel("MSE (temperature²)")
    ax.set_title(args.title, fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, which="both")
    save_figure(fig, args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
