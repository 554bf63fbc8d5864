"""The figure of docs/eating_sounds.md: one simulated eating clip per food class.

Each row: five frames of the clip (the jaw opening and closing, the food at the mouth) and the
spectrogram of its sound (dB, STFT 512 / hop 160 at 16 kHz) with the event times (jaw
closures; solid: bite, dotted: chew)::

    python benchmarks/eating_clips_figure.py -o docs/eating_clips.png
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pyro_videossm.atomic import atomic_path  # noqa: E402
from pyro_videossm.data.eating import FOODS, simulate_eating  # noqa: E402
from pyro_videossm.metrics.audio import stft_magnitude  # noqa: E402
from pyro_videossm.plots.figure import save_figure  # noqa: E402


def _to_palette(path: str) -> None:
    """Rewrite the PNG with a 256-colour palette (a third of the size), atomically."""
    from PIL import Image

    with Image.open(path) as img:
        small = img.convert("RGB").quantize(256, method=Image.Quantize.FASTOCTREE)
    with atomic_path(path, suffix=".png") as tmp:
        small.save(tmp, format="PNG", optimize=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", default="docs/eating_clips.png")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)

    import matplotlib.pyplot as plt

    rows = []
    for food in FOODS:
        ds = simulate_eating(1, seconds=2.0, size=64, seed=args.seed + len(rows), split="test",
                             foods=(food,))
        rows.append(ds)
    fig, axes = plt.subplots(len(FOODS), 2, figsize=(11, 1.9 * len(FOODS)),
                             gridspec_kw={"width_ratios": [5, 4]})
    for r, (food, ds) in enumerate(zip(FOODS, rows, strict=True)):
        frames = ds["frames"].values[0].transpose(0, 2, 3, 1)
        events = ds["event_time"].values[0]
        kinds = ds["event_kind"].values[0]
        picks = np.linspace(0, len(frames) - 1, 5).round().astype(int)
        axes[r, 0].imshow(np.concatenate(list(frames[picks]), axis=1))
        axes[r, 0].set_xticks([])
        axes[r, 0].set_yticks([])
        axes[r, 0].set_ylabel(f"{food}\nface {int(ds['face'].values[0])}", fontsize=9)
        if r == 0:
            axes[r, 0].set_title(f"frames {', '.join(map(str, picks))} (25 fps)", fontsize=9)
        mag = stft_magnitude(ds["audio"].values[0])
        db = 20 * np.log10(np.maximum(mag, 1e-5))
        extent = (0, 2.0, 0, 8.0)
        axes[r, 1].imshow(db, origin="lower", aspect="auto", extent=extent, cmap="magma",
                          vmin=db.max() - 60, vmax=db.max())
        for t, k in zip(events, kinds, strict=True):
            if np.isfinite(t):
                axes[r, 1].axvline(t, color="cyan", lw=1.5 if k == 1 else 1,
                                   ls="-" if k == 1 else ":")
        axes[r, 1].set_ylabel("kHz", fontsize=8)
        if r == 0:
            axes[r, 1].set_title("sound (dB) and events: bite solid, chew dotted", fontsize=9)
        if r == len(FOODS) - 1:
            axes[r, 1].set_xlabel("s", fontsize=8)
    fig.tight_layout()
    save_figure(fig, args.output, dpi=72)
    _to_palette(args.output)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
