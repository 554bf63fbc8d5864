"""docs/shapes_rgbd.png: one shapes-rgbd clip per action, colour frames and their depth.

    python benchmarks/shapes_rgbd_figure.py            # 64 x 64, frames 0, 5, 10, 15
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-o", "--output", type=Path, default=REPO / "docs" / "shapes_rgbd.png")
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--seed", type=int, default=3)
    args = p.parse_args(argv)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from pyro_videossm.data.shapes_rgbd import (
        ACTIONS,
        COLOURS,
        DEPTH_FAR,
        DEPTH_NEAR,
        SHAPES,
        make_shapes_rgbd,
    )
    from pyro_videossm.plots.figure import save_figure

    ds = make_shapes_rgbd(clips=28, frames=16, size=args.size, seed=args.seed)
    picks = [int(np.flatnonzero(ds["action"].values == a)[0]) for a in range(len(ACTIONS))]
    times = (0, 5, 10, 15)
    fig, axes = plt.subplots(len(picks), 2 * len(times), figsize=(2 * len(times) * 1.1,
                                                                  len(picks) * 1.2))
    for r, i in enumerate(picks):
        for c, t in enumerate(times):
            axes[r, c].imshow(ds["frames"].values[i, t].transpose(1, 2, 0))
            axes[r, len(times) + c].imshow(ds["depth"].values[i, t], cmap="viridis_r",
                                           vmin=DEPTH_NEAR, vmax=DEPTH_FAR)
        axes[r, 0].set_ylabel(f"{ACTIONS[ds['action'].values[i]]}\n"
                              f"{COLOURS[ds['colour'].values[i]]} "
                              f"{SHAPES[ds['shape'].values[i]]}", fontsize=7)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    for c, t in enumerate(times):
        axes[0, c].set_title(f"colour t={t}", fontsize=7)
        axes[0, len(times) + c].set_title(f"depth t={t}", fontsize=7)
    fig.tight_layout()
    save_figure(fig, args.output, dpi=90)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
