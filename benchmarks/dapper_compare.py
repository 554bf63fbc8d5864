"""pyro-videossm against DAPPER on the very same truth and observations.

    nice -n 10 python benchmarks/dapper_compare.py --seeds 3 --cycles 1000

For each setting (``assimilation/lorenz63_sakov2012.py``, ``assimilation/lorenz96_n40.py``)
and seed, the toolkit simulates truth and observations and writes them as netCDF; both
toolkits then assimilate the observations read back from that file: this toolkit through
``get_method``, DAPPER (in its own virtual environment, ``benchmarks/.venv-dapper``; set-up
in benchmarks/README.md) through ``benchmarks/dapper_run.py``, with a hidden Markov model
built from the same dynamics, noise and climatological prior. Both estimates are scored by
the same function (``pyro_videossm.metrics.posterior.rmse``, time-averaged RMSE after the setting's
burn-in). Time per cycle is the wall time of the assimilation call (DAPPER's includes the
statistics it computes while it runs, as a DAPPER user gets them) divided by the cycles.

Groups (``--group``, each its own section of docs/BENCHMARK_DAPPER.md and its own run record
in benchmarks/results/dapper/): ``classical`` (below), ``variational`` (iEnKS N=10 lag 1,
EnKF-N N=10 and 3D-Var with the settings of DAPPER's ``sakov2012.py``, 3D-Var with the same
``B`` on both sides, and two EnKS checks), ``var4d`` (4D-Var, slow), ``var4d_judged`` (4D-Var
against DAPPER as released only, for the judged protocol), ``ienks_judged`` (the iEnKS pair
alone, for the judged protocol) and ``enks_gap`` (our EnKS with DAPPER's handling of the
rotations, :func:`rotation_as_dapper`).

Classical pairs: ETKF N=10, EnKS N=10 (lag 4) and PF N=800 on Lorenz-63; ETKF N=24 and LETKF N=7
(radius 4) on Lorenz-96. Each toolkit uses its own tuned PF setting (ours: jitter 0.3 and
resampling below ESS 0.5 N; DAPPER's sakov2012.py: reg 0.9, NER 0.2). On Lorenz-63 both
start from the same climatological prior. On Lorenz-96 DAPPER's global ETKF (N=24 < 40
variables) does not converge from climatology, so DAPPER starts as its own sakov2008.py does,
around the true initial state with variance 0.001, while this toolkit starts from climatology
with a full-rank first analysis (``static_start``); the 100 burn-in cycles are left out of
the score.

Prints a markdown table and writes it with the command to ``--out``
(default docs/BENCHMARK_DAPPER.md). Timings taken while other jobs run are not final: the
file says what the load average was.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import os
import shlex
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from unittest.mock import patch

import numpy as np
import torch
import xarray as xr

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from assimilation.run import load_setting  # noqa: E402
from pyro_videossm.assimilate import AssimilationProblem, get_method  # noqa: E402
from pyro_videossm.data import open_dataset, simulate, write_netcdf  # noqa: E402
from pyro_videossm.metrics.posterior import markdown_table, rmse  # noqa: E402

DAPPER_PYTHON = REPO / "benchmarks" / ".venv-dapper" / "bin" / "python"

#: setting -> [(label, our method, our options, DAPPER class, args, kwargs, estimate)]
PAIRS = {
    "lorenz63_sakov2012": [
        ("ETKF N=10", "etkf", {"members": 10, "inflation": 1.02, "rotate": True},
         "EnKF", ["Sqrt"], {"N": 10, "infl": 1.02, "rot": True}, "a"),
        ("EnKS N=10 (lag 4)", "enks",
         {"members": 10, "inflation": 1.02, "lag": 4, "rotate": True},
         "EnKS", ["Sqrt"], {"N": 10, "Lag": 4, "infl": 1.02, "rot": True}, "s"),
        ("PF N=800", "pf", {"members": 800, "jitter": 0.3, "resample_threshold": 0.5},
         "PartFilt", [], {"N": 800, "reg": 0.9, "NER": 0.2}, "a"),
    ],
    "lorenz96_n40": [
        ("ETKF N=24", "etkf", {"members": 24, "inflation": 1.013, "rotate": True},
         "EnKF", ["Sqrt"], {"N": 24, "infl": 1.013, "rot": True}, "a"),
        ("LETKF N=7 (radius 4)", "letkf",
         {"members": 7, "inflation": 1.04, "localization": 4.0, "rotate": True},
         "LETKF", [], {"N": 7, "infl": 1.04, "loc_rad": 4, "rot": True}, "a"),
    ],
}


#: Stands for the background covariance both toolkits' 3D-Var/4D-Var use: the covariance of
#: the seed's truth at the observation times (DAPPER's default ``B="clim"`` is the covariance
#: of the truth, there at every model step); the same matrix goes to both.
TRUTH_COV = "truth covariance"

#: The iEnKS, EnKF-N, 3D-Var and 4D-Var pairs (``--group variational``), with DAPPER's own
#: settings from ``dapper/mods/Lorenz63/sakov2012.py`` (its list of suggested tunings:
#: ``iEnKS('Sqrt', N=10, infl=1.02, rot=True)`` (default Lag=1, nIter=10, wtol=0: always
#: 10 iterations, so ours runs with tolerance 0 too), ``EnKF_N(N=10, rot=True)``,
#: ``Var3D(xB=0.1)``). The list has no Var4D; it is paired with ours at our default scale and
#: DAPPER's cycling (the window shifts by one cycle). The iEnKS also with early stopping on
#: both sides (``wtol``/``tolerance`` 1e-4, same rule ``|dw|^2 < tol N``). The EnKS pairs at
#: lag 1 and without rotations show where the EnKS gap of the classical group comes from
#: (docs/BENCHMARK_DAPPER.md).
VARIATIONAL_PAIRS = {
    "lorenz63_sakov2012": [
        ("iEnKS N=10 (lag 1)", "ienks",
         {"members": 10, "lag": 1, "iterations": 10, "tolerance": 0.0, "inflation": 1.02,
          "rotate": True},
         "iEnKS", ["Sqrt"], {"N": 10, "Lag": 1, "nIter": 10, "wtol": 0, "infl": 1.02,
                             "rot": True}, "s"),
        ("iEnKS N=10 (lag 1), tolerance 1e-4", "ienks",
         {"members": 10, "lag": 1, "iterations": 10, "tolerance": 1e-4, "inflation": 1.02,
          "rotate": True},
         "iEnKS", ["Sqrt"], {"N": 10, "Lag": 1, "nIter": 10, "wtol": 1e-4, "infl": 1.02,
                             "rot": True}, "s"),
        ("EnKF-N N=10", "enkf-n", {"members": 10, "rotate": True},
         "EnKF_N", [], {"N": 10, "rot": True}, "a"),
        ("3D-Var", "3dvar", {"background_cov": TRUTH_COV, "scale": 0.1},
         "Var3D", [], {"B": TRUTH_COV, "xB": 0.1}, "a"),
        ("EnKS N=10 (lag 1)", "enks",
         {"members": 10, "inflation": 1.02, "lag": 1, "rotate": True},
         "EnKS", ["Sqrt"], {"N": 10, "Lag": 1, "infl": 1.02, "rot": True}, "s"),
        ("EnKS N=10 (lag 4), no rotation", "enks",
         {"members": 10, "inflation": 1.02, "lag": 4, "rotate": False},
         "EnKS", ["Sqrt"], {"N": 10, "Lag": 4, "infl": 1.02, "rot": False}, "s"),
    ],
}

#: The iEnKS at issue 13's judged protocol (``--group ienks_judged``, 5 seeds x 1000 cycles):
#: the first pair of ``variational`` alone (DAPPER's suggested ``iEnKS``, 10 iterations every
#: cycle), its RMSE target (<= 0.26) and its time per cycle against DAPPER's.
IENKS_JUDGED_PAIRS = {"lorenz63_sakov2012": VARIATIONAL_PAIRS["lorenz63_sakov2012"][:1]}

#: An option of this script, not of any method: ``"filter"`` scores the method's
#: ``filter_estimate`` (the window-end analyses) instead of its posterior; the method runs
#: once per seed for all rows that differ only in this option.
OUR_ESTIMATE = "our_estimate"

#: A key of a DAPPER ``kwargs`` read by this script, not by DAPPER: ``"exact"`` runs the
#: DAPPER method with the exact Jacobian of its RK4 step (``dapper_run.exact_rk4_jacobian``)
#: in place of its forward-Euler ``dstep_dx``.
DAPPER_TLM = "tlm"


#: 4D-Var (``--group var4d``): ours configured as DAPPER's ``Var4D``. DAPPER's window of
#: ``Lag`` cycles starts ``Lag`` cycles before its one observation (the newest; each
#: observation is assimilated once), slides by one cycle and takes the static ``B`` (times
#: ``xB``) at every window, 10 Gauss-Newton iterations each (``wtol=0``): ours with
#: ``window=Lag, observations="newest"`` (shift 1), ``iterations=10, tolerance=0`` and the same
#: ``B``. Both the smoothed estimate (the analysis at the window start, DAPPER's ``'s'``) and
#: the filter estimate (the window end, DAPPER's ``'a'``) are scored, against DAPPER as
#: released (its tangent linear model is the forward-Euler resolvent ``I + dt J`` of each
#: step) and against DAPPER given the exact Jacobian of its RK4 step (:data:`DAPPER_TLM`).
#: ``xB = 0.1``: DAPPER's tuning of 3D-Var for this setting (it lists no Var4D tuning).
VAR4D_LAG, VAR4D_XB = 1, 0.1
_OURS_VAR4D = {"window": VAR4D_LAG, "observations": "newest", "iterations": 10,
               "tolerance": 0.0, "background_cov": TRUTH_COV, "scale": VAR4D_XB}
_DAPPER_VAR4D = {"B": TRUTH_COV, "xB": VAR4D_XB, "Lag": VAR4D_LAG, "nIter": 10, "wtol": 0}
VAR4D_PAIRS = {
    "lorenz63_sakov2012": [
        (f"4D-Var, window {VAR4D_LAG}{what} ({name})", "4dvar",
         {**_OURS_VAR4D, **({OUR_ESTIMATE: "filter"} if name == "filter" else {})},
         "Var4D", [], {**_DAPPER_VAR4D, **tlm}, estimate)
        for what, tlm in (("", {}), (", DAPPER with the exact RK4 Jacobian",
                                     {DAPPER_TLM: "exact"}))
        for name, estimate in (("smoothed", "s"), ("filter", "a"))
    ],
}

#: 4D-Var at issue 13's judged protocol (``--group var4d_judged``, 5 seeds x 1000 cycles): the
#: pairs of ``var4d`` against DAPPER as released only. The exact-Jacobian pairs, which showed
#: the two implementations equal to round-off on 5 seeds x 400 cycles, would double DAPPER's
#: time.
VAR4D_JUDGED_PAIRS = {name: [p for p in pairs if DAPPER_TLM not in p[5]]
                      for name, pairs in VAR4D_PAIRS.items()}

#: An option of this script, not of ``enks``: run our EnKS with the rotation handled as in
#: DAPPER's ``EnKS`` (see :func:`rotation_as_dapper`).
ROTATION_AS_DAPPER = "rotation_as_dapper"

#: The EnKS gap (``--group enks_gap``): ours as published, and ours with DAPPER's handling of
#: the rotations, against DAPPER's EnKS at lag 4 with rotations.
ENKS_GAP_PAIRS = {
    "lorenz63_sakov2012": [
        ("EnKS N=10 (lag 4)", "enks",
         {"members": 10, "inflation": 1.02, "lag": 4, "rotate": True},
         "EnKS", ["Sqrt"], {"N": 10, "Lag": 4, "infl": 1.02, "rot": True}, "s"),
        ("EnKS N=10 (lag 4), ours with DAPPER's rotation handling", "enks",
         {"members": 10, "inflation": 1.02, "lag": 4, "rotate": True, ROTATION_AS_DAPPER: True},
         "EnKS", ["Sqrt"], {"N": 10, "Lag": 4, "infl": 1.02, "rot": True}, "s"),
    ],
}


@contextmanager
def rotation_as_dapper():
    """Inside: ``enks`` mixes only the current ensemble by each cycle's rotation, as DAPPER's
    ``EnKS`` does (its ``post_process`` rotates ``E[k]``, not the stored past ensembles).

    Ours stores ``X_t R_t^T`` as the transform of cycle ``t`` (``R_t`` the rotation) and
    applies it to past ensembles; here the rotations are recorded as drawn and removed
    (``X_t R_t^T R_t = X_t``) before smoothing. The filter run is unchanged.
    """
    import pyro_videossm.filters.enkf as enkf_module
    import pyro_videossm.filters.enks as enks_module

    rotations = []
    draw, smooth = enkf_module.random_mean_preserving_rotation, enks_module.smooth_ensembles

    def recorded(*args, **kwargs):
        rotations.append(draw(*args, **kwargs))
        return rotations[-1]

    def smooth_as_dapper(analysis, transforms, lag=None):
        T = transforms.shape[0]
        if transforms.dim() != 3 or len(rotations) not in (T, T - 1):
            raise RuntimeError("rotation_as_dapper: global EnKS with one rotation per analysis")
        first = T - len(rotations)  # a static start analyses no cycle 0
        unrotated = transforms.clone()
        for i, R in enumerate(rotations):
            unrotated[first + i] = transforms[first + i] @ R
        return smooth(analysis, unrotated, lag)

    with patch.object(enkf_module, "random_mean_preserving_rotation", recorded), \
            patch.object(enks_module, "smooth_ensembles", smooth_as_dapper):
        yield


def run_ours(method: str, options: dict, obs: xr.Dataset, seed: int,
             cache: dict | None = None) -> tuple[xr.DataArray, float]:
    """Our estimate's mean ``(time, component)`` and the seconds per cycle of the run.

    :data:`ROTATION_AS_DAPPER` in ``options`` runs it inside :func:`rotation_as_dapper`;
    :data:`OUR_ESTIMATE` ``"filter"`` takes the method's ``filter_estimate``. Runs are kept in
    ``cache`` (by method, options and seed), so rows differing only in the estimate share one.
    """
    options = dict(options)
    estimate = options.pop(OUR_ESTIMATE, "posterior")
    key = json.dumps([method, options, seed], sort_keys=True)
    if cache is None or key not in cache:
        instance = get_method(method, **{k: v for k, v in options.items()
                                         if k != ROTATION_AS_DAPPER})
        if options.get(ROTATION_AS_DAPPER, False):
            with rotation_as_dapper():
                post = instance(obs, seed=seed)
        else:
            post = instance(obs, seed=seed)
        if cache is not None:
            cache[key] = (instance, post)
    else:
        instance, post = cache[key]
    seconds = float(post.attrs["seconds_per_cycle"])
    if estimate == "filter":
        mean = instance.filter_estimate.mean.detach().cpu().numpy()
        return xr.DataArray(mean, dims=post["mean"].dims, coords=post["mean"].coords), seconds
    return post["mean"], seconds


#: --group -> (pairs, section of docs/BENCHMARK_DAPPER.md, record under benchmarks/results/)
GROUPS = {
    "classical": (PAIRS, "dapper", "dapper/dapper_compare.json"),
    "variational": (VARIATIONAL_PAIRS, "dapper_variational", "dapper/dapper_variational.json"),
    "var4d": (VAR4D_PAIRS, "dapper_var4d", "dapper/dapper_var4d.json"),
    "var4d_judged": (VAR4D_JUDGED_PAIRS, "dapper_var4d_judged",
                     "dapper/dapper_var4d_judged.json"),
    "ienks_judged": (IENKS_JUDGED_PAIRS, "dapper_ienks_judged",
                     "dapper/dapper_ienks_judged.json"),
    "enks_gap": (ENKS_GAP_PAIRS, "dapper_enks_gap", "dapper/dapper_enks_gap.json"),
}


def with_truth_cov(options: dict, cov: np.ndarray) -> dict:
    """``options`` with :data:`TRUTH_COV` replaced by ``cov`` (nested lists)."""
    return {k: (cov.tolist() if v == TRUTH_COV else v) for k, v in options.items()}


#: How DAPPER's ensemble starts (see dapper_run.py): its own setting files' convention.
DAPPER_PRIOR = {"lorenz63_sakov2012": "climatology", "lorenz96_n40": "truth"}


STARTS_NOTE = (
    "Starts: on Lorenz-63 both toolkits draw their ensembles from the same climatological "
    "prior. On Lorenz-96 DAPPER's global ETKF (N=24 < 40 variables) does not converge from "
    "climatology, so DAPPER starts as its own `sakov2008.py` does, around the true initial "
    "state with variance 0.001, while pyro-videossm starts from climatology with a full-rank "
    "first analysis; the 100 burn-in cycles are not scored. Each toolkit's PF uses its own "
    "tuned options. DAPPER's LETKF uses one local analysis per grid point (batch size 1)."
)


GROUP_NOTES = {
    "variational": (
        "Both toolkits start from the same climatological prior and use DAPPER's settings "
        "for this setting (`dapper/mods/Lorenz63/sakov2012.py`): the iEnKS smoothed "
        "estimate (DAPPER's `'s'` statistic; lag 1: cycle t uses the observations up to "
        "t + 1) with 10 Gauss-Newton iterations every cycle (DAPPER's `wtol=0`, ours "
        "`tolerance=0`), and with early stopping at `wtol`/`tolerance` 1e-4 on both "
        "sides. 3D-Var: both use the same `B`, the covariance of the seed's truth "
        "at the observation times (DAPPER's own default, `B='clim'`, is the truth's "
        "covariance at every model step), times 0.1. The EnKS pairs at lag 1 and without "
        "rotations are the checks of the EnKS gap explained below."),
    "var4d": (
        "Ours is configured as DAPPER's `Var4D` with `Lag=1`: each window starts one cycle "
        "before its only observation (the newest: each observation is assimilated once, "
        "`observations='newest'`), slides by one cycle and starts from the prior mean at "
        "the first; both use the same static `B` (the covariance of the seed's truth at the "
        "observation times, times 0.1, DAPPER's 3D-Var tuning for this setting; it lists no "
        "Var4D tuning) and 10 Gauss-Newton iterations per window. Smoothed: the analysis at "
        "the window start (DAPPER's `'s'`); filter: the window end (DAPPER's `'a'`). The "
        "first two rows are DAPPER as released, whose tangent linear model is the "
        "forward-Euler resolvent `I + dt J(x)` of each RK4 step; the last two give DAPPER "
        "the exact Jacobian of its RK4 step (`tlm='exact'`, an option of `dapper_run.py`), "
        "as ours gets from autograd. `max difference`: the largest difference of the "
        "two estimates over the scored cycles and components, mean over seeds. Seeds ran "
        "in parallel processes (`--jobs`), each seed's pair one after the other in one "
        "process."),
    "var4d_judged": (
        "Ours is configured as DAPPER's `Var4D` with `Lag=1`, as in the 4D-Var section "
        "above: each window starts one cycle before its only observation (the newest), "
        "slides by one cycle and starts from the prior mean at the first; both use the same "
        "static `B` (the covariance of the seed's truth at the observation times, times 0.1) "
        "and 10 Gauss-Newton iterations per window. Smoothed: the analysis at the window "
        "start (DAPPER's `'s'`); filter: the window end (DAPPER's `'a'`). DAPPER as released "
        "(its tangent linear model is the forward-Euler resolvent `I + dt J(x)` of each RK4 "
        "step). `max difference`: the largest difference of the two estimates over the "
        "scored cycles and components, mean over seeds. Seeds ran in parallel processes "
        "(`--jobs`), each seed's pair one after the other in one process."),
    "ienks_judged": (
        "Both toolkits start from the same climatological prior and use DAPPER's suggested "
        "iEnKS for this setting (`dapper/mods/Lorenz63/sakov2012.py`): the smoothed "
        "estimate (DAPPER's `'s'` statistic; lag 1: cycle t uses the observations up to "
        "t + 1) with 10 Gauss-Newton iterations every cycle (DAPPER's default `wtol=0`, ours "
        "`tolerance=0`). Seeds ran in parallel processes (`--jobs`), each seed's pair one "
        "after the other in one process, so both toolkits' times were taken under the same "
        "load."),
    "enks_gap": (
        "Both rows run the same filter on the same data with the same seeds; the second "
        "smooths with the transforms stripped of each cycle's rotation "
        f"(`{ROTATION_AS_DAPPER}=True`, an option of `dapper_compare.py`, not of `enks`), "
        "so each rotation mixes only the current ensemble, as in DAPPER's `EnKS`."),
}


def export_for_dapper(obs: xr.Dataset, path: Path, dapper_prior: str = "climatology") -> None:
    """The arrays DAPPER needs, from the observation Dataset read back from netCDF."""
    problem = AssimilationProblem.from_dataset(obs)
    np.savez(
        path,
        truth=obs["truth"].values, obs=obs["obs"].values,
        dt=float(obs.attrs["integration_step"]), steps_per_obs=int(obs.attrs["steps_per_obs"]),
        obs_std=problem.obs_noise_std.numpy(), prior_mean=problem.prior_mean.numpy(),
        prior_std=problem.prior_std.numpy(), system=str(obs.attrs["system"]),
        system_parameters=str(obs.attrs["system_parameters"]), dapper_prior=dapper_prior,
    )


def dapper_call(cls: str, args: list, kwargs: dict) -> str:
    parts = [repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()]
    return f"`{cls}({', '.join(parts)})`"


def ours_call(method: str, options: dict) -> str:
    return f"`{method}({', '.join(f'{k}={v!r}' for k, v in options.items())})`"


def run_seed(setting_name: str, seed: int, cycles: int, workdir: Path, dapper_python: Path,
             pairs: list, log=print) -> dict[str, dict[str, float]]:
    """One seed of one setting: per label, the RMSEs, seconds per cycle and the largest
    difference of the two estimates after burn-in (``ours``, ``dapper``, ``ours_s``,
    ``dapper_s``, ``diff``). Ours and DAPPER run one after the other in this process."""
    setting = load_setting(setting_name)
    nc = workdir / f"{setting_name}_seed{seed}.nc"
    write_netcdf(simulate(**setting.simulate, cycles=cycles, seed=seed), nc)
    obs = open_dataset(nc).load()  # both toolkits read the same file
    truth = obs["truth"]
    npz = workdir / f"{setting_name}_seed{seed}.npz"
    export_for_dapper(obs, npz, DAPPER_PRIOR[setting_name])
    cov = np.cov(truth.values.T)
    specs = []
    for p in pairs:
        kwargs = with_truth_cov(p[5], cov)
        tlm = kwargs.pop(DAPPER_TLM, "dapper")
        specs.append({"label": p[0], "class": p[3], "args": p[4], "kwargs": kwargs,
                      "estimate": p[6], "seed": 1000 + seed, "tlm": tlm})
    spec_path = workdir / f"{setting_name}_seed{seed}_methods.json"
    spec_path.write_text(json.dumps(specs))
    out_path = workdir / f"{setting_name}_seed{seed}_dapper.npz"
    subprocess.run([str(dapper_python), str(REPO / "benchmarks" / "dapper_run.py"),
                    str(npz), str(spec_path), str(out_path)], check=True)
    dapper_out = np.load(out_path)
    cache, scores = {}, {}
    for label, method, options, *_ in pairs:
        ours, seconds = run_ours(method, with_truth_cov(options, cov), obs, seed, cache)
        mean = xr.DataArray(dapper_out[f"{label}/mean"], dims=("time", "component"),
                            coords={"time": truth["time"], "component": truth["component"]})
        s = scores[label] = {
            "ours": rmse(ours, truth, setting.burn_in), "ours_s": seconds,
            "dapper": rmse(mean, truth, setting.burn_in),
            "dapper_s": float(dapper_out[f"{label}/seconds"]) / cycles,
            # how far apart the two estimates are after burn-in (0 for one algorithm)
            "diff": float(np.abs(ours.values - mean.values)[setting.burn_in:].max())}
        log(f"[{setting_name}] seed {seed} {label}: RMSE ours {s['ours']:.4f}, "
            f"DAPPER {s['dapper']:.4f}, max |ours - DAPPER| {s['diff']:.2e}")
    return scores


def _run_seed_in_worker(*args) -> dict:
    torch.set_num_threads(1)
    return run_seed(*args)


def run(setting_name: str, seeds: list[int], cycles: int, workdir: Path, dapper_python: Path,
        log=print, pairs: dict | None = None, difference: bool = False,
        jobs: int = 1, seed_values: dict | None = None) -> list[dict]:
    """The rows of the table for one setting; ``difference``: add the largest difference of
    the two estimates after burn-in (mean over seeds), which is ~0 for one algorithm;
    ``jobs``: seeds run in that many processes at once (each seed's pair stays in one);
    ``seed_values``: filled with ``{setting: {label: {"ours": [...], ...}}}``, the values of each
    seed in seed order."""
    pairs = (PAIRS if pairs is None else pairs)[setting_name]
    if jobs > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(jobs) as pool:
            per_seed = list(pool.map(_run_seed_in_worker, *zip(*[
                (setting_name, seed, cycles, workdir, dapper_python, pairs) for seed in seeds])))
    else:
        per_seed = [run_seed(setting_name, seed, cycles, workdir, dapper_python, pairs, log)
                    for seed in seeds]
    scores = {p[0]: {key: [one[p[0]][key] for one in per_seed]
                     for key in ("ours", "dapper", "ours_s", "dapper_s", "diff")}
              for p in pairs}
    if seed_values is not None:
        seed_values[setting_name] = scores
    rows = []
    for label, method, options, cls, args, kwargs, _ in pairs:
        s = scores[label]
        ours_ms, dapper_ms = 1000 * np.mean(s["ours_s"]), 1000 * np.mean(s["dapper_s"])
        rows.append({
            "setting": setting_name, "method": label,
            "pyro-videossm": ours_call(method, options), "DAPPER": dapper_call(cls, args, kwargs),
            "RMSE ours": _mean_se(s["ours"]), "RMSE DAPPER": _mean_se(s["dapper"]),
            "ms/cycle ours": f"{ours_ms:.2f}", "ms/cycle DAPPER": f"{dapper_ms:.2f}",
            "DAPPER / ours time": f"{dapper_ms / ours_ms:.1f}×",
        })
        if difference:
            rows[-1]["max difference"] = f"{np.mean(s['diff']):.1e}"
    return rows


def _mean_se(values: list[float]) -> str:
    v = np.asarray(values)
    if len(v) < 2:
        return f"{v.mean():.3f}"
    return f"{v.mean():.3f} ± {v.std(ddof=1) / math.sqrt(len(v)):.3f}"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--cycles", type=int, default=1000)
    p.add_argument("--group", default="classical", choices=list(GROUPS),
                   help="classical: ETKF/EnKS/PF/LETKF (section dapper); variational: iEnKS, "
                        "EnKF-N, 3D-Var, EnKS checks (dapper_variational); var4d: "
                        "4D-Var (dapper_var4d); var4d_judged: 4D-Var against DAPPER as "
                        "released only (dapper_var4d_judged); ienks_judged: the iEnKS pair "
                        "alone (dapper_ienks_judged); enks_gap: our EnKS with DAPPER's "
                        "rotation handling (dapper_enks_gap)")
    p.add_argument("--settings", nargs="+", default=None, choices=list(PAIRS))
    p.add_argument("--out", type=Path, default=REPO / "docs" / "BENCHMARK_DAPPER.md")
    p.add_argument("--dapper-python", type=Path, default=DAPPER_PYTHON)
    p.add_argument("--jobs", type=int, default=1,
                   help="seeds run in this many processes at once (timings are then taken "
                        "with the seeds competing for the cores; each seed's pair runs in "
                        "one process)")
    args = p.parse_args(argv)
    pairs, section, record_file = GROUPS[args.group]
    if args.settings is None:
        args.settings = list(pairs)
    unknown = [name for name in args.settings if name not in pairs]
    if unknown:
        p.error(f"group {args.group} has no pairs for {', '.join(unknown)}")
    torch.set_num_threads(1)
    if not args.dapper_python.exists():
        print(f"error: no DAPPER environment at {args.dapper_python}; see benchmarks/README.md",
              file=sys.stderr)
        return 2
    seeds = list(range(args.seeds))
    rows, seed_values = [], {}
    with tempfile.TemporaryDirectory(prefix="dapper_compare_") as tmp:
        for name in args.settings:
            rows += run(name, seeds, args.cycles, Path(tmp), args.dapper_python, pairs=pairs,
                        difference=args.group.startswith("var4d"), jobs=args.jobs,
                        seed_values=seed_values)
    table = markdown_table(rows)
    print(table)
    version = subprocess.run([str(args.dapper_python), "-c",
                              "import importlib.metadata as m; print(m.version('dapper'))"],
                             capture_output=True, text=True).stdout.strip()
    command = shlex.join(["nice", "-n", "10", "python", "benchmarks/dapper_compare.py",
                          *(["--group", args.group] if args.group != "classical" else []),
                          "--seeds", str(args.seeds), "--cycles", str(args.cycles),
                          "--settings", *args.settings,
                          *(["--jobs", str(args.jobs)] if args.jobs > 1 else [])])
    load = os.getloadavg()[0]
    cores = os.cpu_count() or 1
    text = "\n".join([
        f"Command: `{command}` (DAPPER {version} in `benchmarks/.venv-dapper`, set up as in "
        "benchmarks/README.md).",
        "",
        f"Seeds 0–{args.seeds - 1}: each seed's truth and observations are simulated by "
        "pyro-videossm, written to netCDF, and both toolkits assimilate the same file. RMSE: "
        f"mean ± standard error over seeds of the time-averaged RMSE after the setting's "
        f"burn-in, {args.cycles} cycles, both scored by `pyro_videossm.metrics.posterior.rmse`. "
        "Time: wall seconds of the assimilation call per cycle (DAPPER's includes its "
        "on-line statistics). Measured "
        f"{_dt.date.today().isoformat()} on {cores} CPU cores, torch {torch.__version__} "
        f"(one thread), numpy in DAPPER's environment; load average {load:.1f}"
        + (" — **timings measured under load**; rerun on a quiet machine before quoting "
           "them." if load > 0.5 * cores else "."),
        "",
        table,
        "",
        STARTS_NOTE if args.group == "classical" else GROUP_NOTES[args.group],
        "",
    ])
    from pyro_videossm.experiments.records import make_record
    from pyro_videossm.experiments.results import record_path_for, write_section

    # the table lives between the dapper markers of --out (the file is made if absent)
    write_section(args.out, section, text,
                  header="# pyro-videossm and DAPPER on the same data\n",
                  record=make_record("dapper_compare", command=command, options=vars(args),
                                     data={"seeds": seeds, "dapper": version},
                                     metrics={"rows": rows, "per_seed": seed_values}),
                  record_path=record_path_for(
                      args.out, f"benchmarks/results/{record_file}"))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
