"""The text of the docs/RESULTS.md sections the benchmark scripts write (presentation only).

Each function takes the script's parsed arguments (``args``, read by attribute) and the
numbers of the run, and returns the markdown body of the section; the scripts print it and
store it with :func:`~pyro_videossm.experiments.results.write_section` and a run record.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
from collections.abc import Mapping, Sequence


def _torch_version() -> str:
    import torch

    return torch.__version__


def moving_digits_section(args, *, arch: Mapping[str, dict], table: str, n_valid: int,
                          command: str, loads: Sequence[float], absent: Sequence[str],
                          defaults) -> str:
    """The ``spatrans`` section (``benchmarks/moving_digits.py``); ``defaults``: the parser's
    defaults (what counts as a reduced run)."""
    loaded = max(loads) > (os.cpu_count() or 1) + 0.5  # more runnable threads than cores
    d = defaults
    reduced = [] if args.quick else [
        what for what, less in (
            (f"{args.minutes:g} min per run instead of {d.minutes:g}",
             (args.minutes or 0) < (d.minutes or 0)),
            (f"{args.train_clips} training clips instead of {d.train_clips}",
             args.train_clips < d.train_clips),
            (f"{args.test_clips} test clips instead of {d.test_clips}",
             args.test_clips < d.test_clips),
            (f"{len(args.seeds)} seed(s) instead of {len(d.seeds)}",
             len(args.seeds) < len(d.seeds))) if less]
    return "\n".join([
        "## Moving digits: Spatiotemporal Transformer and sequence baselines",
        "",
        f"Command: `{command}` ({_dt.date.today().isoformat()}; "
        f"{args.train_clips} training clips ({n_valid} of them validate), "
        f"{args.test_clips} test clips with held-out digits, 10 context + 10 target frames "
        f"64×64 in [0, 1], "
        + (f"{args.epochs} epochs" if not args.minutes else
           f"{args.minutes:g} min of training (at most {args.epochs} epochs)")
        + f", batch {args.batch_size}, lr {args.lr}, "
        f"seeds {args.seeds}, torch threads {args.threads}).",
        "",
        table,
        "",
        "Settings per model (`--set` overrides; `lr` defaults to `--lr`): "
        + "; ".join(f"{m} " + ", ".join(f"{k} {v}" for k, v in arch[m].items())
                    for m in dict.fromkeys(n.removesuffix("-q") for n in args.models)
                    if m in arch) + ".",
        "",
        "MSE/MAE per pixel and SSIM of the point forecast (the median for `spatrans-q`), mean "
        "over the 10 leads; MSE/frame = per pixel × 4096. ICP: fraction of target pixels inside "
        "the 10–90 % interval (nominal 0.8); MIL: its mean width. ± is the standard error "
        "of the mean over seeds.",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPU(s), torch {_torch_version()}; "
        f"highest load average seen {max(loads):.1f}; runs stored in `{args.runs}` (the "
        "command trains the missing ones; they may be split over processes, see the script's "
        "doc). Findings and the `spatrans` settings tried: [spatrans.md](spatrans.md)."
        + (" **Measured under load: training times are not final.**" if loaded else ""),
        ("" if not args.quick else "\n**`--quick` run: a pipeline check at a tiny budget, "
         "not a result.**"),
        ("" if not reduced else "\n**Smaller than the defaults: " + "; ".join(reduced)
         + ".**"),
        ("" if not absent else "\n**Not run yet: " + ", ".join(absent) + ".**"),
    ])
