"""``videossm demo``: the standard Lorenz-63 benchmark end to end, with embedded defaults.

Simulates the standard setting, runs the classical methods (and the DMM when available),
writes every posterior as netCDF, prints and saves a markdown table, and draws two PNGs:
``posterior.png`` (the best method's posterior over the last 100 cycles) and
``comparison.png`` (:func:`~pyro_videossm.plots.comparison.plot_comparison`: RMSE over time of
every method, the DMM's and the EnKS's posterior bands side by side, bars of RMSE, CRPS and
coverage).
"""

from __future__ import annotations

import time
from pathlib import Path

from pyro_videossm.assimilate import available_methods, get_method
from pyro_videossm.cli.common import add_progress_flag, say
from pyro_videossm.data.chaotic import simulate
from pyro_videossm.data.conventions import write_netcdf
from pyro_videossm.errors import InputError
from pyro_videossm.metrics.posterior import markdown_table, score_posterior

#: (label, method name, options): the standard Lorenz-63 benchmark configurations.
DEMO_METHODS: tuple[tuple[str, str, dict], ...] = (
    ("ETKF N=10", "etkf", {"members": 10, "inflation": 1.02}),
    ("EnKS N=10", "enks", {"members": 10, "inflation": 1.02}),
    ("PF N=800", "pf", {"members": 800}),
)
#: the methods whose posterior bands ``comparison.png`` shows side by side, by preference
BANDS = ("hybrid DMM", "EnKS N=10", "PF N=800")


def register(sub) -> None:
    p = sub.add_parser("demo", help="run the standard Lorenz-63 benchmark end to end")
    p.add_argument("-o", "--output-dir", type=Path, default=Path("demo"),
                   help="folder for the files (default ./demo)")
    p.add_argument("--seed", type=int, default=1, help="simulation seed (default 1)")
    p.add_argument("--cycles", type=int, default=1000, help="observation cycles (default 1000)")
    p.add_argument("--burn-in", type=int, default=100, help="cycles before scoring (default 100)")
    p.add_argument("--no-dmm", dest="dmm", action="store_false",
                   help="skip training and running the Deep Markov Model")
    p.add_argument("--dmm-epochs", type=int, default=None,
                   help="DMM training epochs (default: the demo's budget)")
    p.add_argument("--dmm-cycles", type=int, default=None,
                   help="cycles of the DMM's training record (default: the demo's budget)")
    p.add_argument("--dmm-smoother-iterations", type=int, default=None,
                   help="Gauss-Newton iterations of the DMM's smoothing guide (default: the "
                        "demo's 5; 3: the earlier demo recipe)")
    add_progress_flag(p)
    p.set_defaults(func=run)


def check_demo_arguments(args) -> None:
    """Refuse bad settings before anything is simulated or written."""
    for flag, value in (("--cycles", args.cycles), ("--dmm-epochs", args.dmm_epochs),
                        ("--dmm-cycles", args.dmm_cycles),
                        ("--dmm-smoother-iterations", args.dmm_smoother_iterations)):
        if value is not None and value < 1:
            raise InputError(f"{flag} must be >= 1, got {value}")
    if not 0 <= args.burn_in < args.cycles:
        raise InputError(f"--burn-in must be in [0, {args.cycles}) (the cycles), got "
                         f"{args.burn_in}")
    out = Path(args.output_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"--output-dir {out} is a file, not a folder")


def run(args) -> int:
    check_demo_arguments(args)
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    obs = simulate("lorenz63", cycles=args.cycles, seed=args.seed)
    write_netcdf(obs, out / "obs.nc")
    say(f"simulated Lorenz-63 (standard setting, {args.cycles} cycles) -> {out / 'obs.nc'}")
    known = set(available_methods())
    rows, posteriors = [], {}
    runs = [(label, name, opts) for label, name, opts in DEMO_METHODS if name in known]
    if args.dmm and "dmm" in known:
        runs.append(_dmm_run(args, out))
    for label, name, options in runs:
        post = get_method(name, **options)(obs, seed=args.seed, progress=args.progress)
        path = out / f"posterior_{name}.nc"
        write_netcdf(post, path)
        posteriors[label] = post
        scores = score_posterior(post, obs["truth"], burn_in=args.burn_in)
        rows.append({"method": label, "estimate": post.attrs["estimate"], **scores,
                     "ms/cycle": 1e3 * post.attrs["seconds_per_cycle"]})
        say(f"{label}: RMSE {scores['rmse']:.3f} -> {path}")
    table = markdown_table(rows)
    (out / "results.md").write_text(
        f"Lorenz-63 standard setting, seed {args.seed}, {args.cycles} cycles, "
        f"RMSE after {args.burn_in} cycles of burn-in (observation noise std 1.41).\n\n"
        + table + "\n"
    )
    if posteriors:
        from pyro_videossm.plots import plot_comparison, plot_posterior, save_figure

        scores = {row["method"]: row for row in rows}
        label = min(scores, key=lambda k: float(scores[k]["rmse"]))
        save_figure(plot_posterior(posteriors[label], obs, time_slice=slice(-100, None)),
                    out / "posterior.png")
        save_figure(plot_comparison(
            posteriors, obs, burn_in=args.burn_in, bands=band_labels(list(posteriors)),
            scores=scores, zoom=slice(-min(24, args.cycles), None),
            title=f"Lorenz-63 standard setting, seed {args.seed}, {args.cycles} cycles"),
            out / "comparison.png")
    print(table)
    say(f"wrote {out}/ (obs.nc, posterior_*.nc, results.md, posterior.png, comparison.png) in "
        f"{time.perf_counter() - start:.0f} s")
    return 0


def band_labels(labels: list[str]) -> list[str]:
    """The two methods whose posterior bands the comparison figure shows side by side: the
    DMM and the EnKS when both ran, else the first of :data:`BANDS` present, then the rest."""
    preferred = [k for k in BANDS if k in labels]
    return (preferred + [k for k in labels if k not in preferred])[:2]


def _dmm_run(args, out: Path) -> tuple[str, str, dict]:
    """Train a hybrid-physics DMM on a separate simulation; return its demo run entry."""
    from pyro_videossm.experiments.dmm import train_demo_model

    path = out / "dmm.pt"
    say("training the hybrid DMM on its own Lorenz-63 record ...")
    train_demo_model(path, seed=args.seed + 1000, epochs=args.dmm_epochs,
                     cycles=args.dmm_cycles, smoother_iterations=args.dmm_smoother_iterations,
                     progress=args.progress)
    return ("hybrid DMM", "dmm", {"model": str(path)})
