"""Run DAPPER's methods on truth and observations exported by ``dapper_compare.py``.

Runs inside DAPPER's own virtual environment (``benchmarks/.venv-dapper``, see
benchmarks/README.md), which has numpy and DAPPER but not this toolkit:

    benchmarks/.venv-dapper/bin/python benchmarks/dapper_run.py DATA.npz METHODS.json OUT.npz

``DATA.npz`` holds the toolkit's truth ``(T, D)`` and observations ``(T, D)`` at the
observation times, the RK4 step, steps per observation, observation noise std ``(D,)``, the
climatological prior mean/std ``(D,)``, the system name and its parameters (JSON).
``METHODS.json`` is a list of ``{"label", "class", "args", "kwargs", "estimate", "seed"}``
(``estimate``: ``"a"`` analysis or ``"s"`` smoothed; a ``"B"`` keyword, nested lists, is
passed as an array). ``OUT.npz`` gets, per label, the mean
``(T, D)`` DAPPER estimated at the observation times and the wall seconds of ``assimilate``.

DAPPER's hidden Markov model is built with the same dynamics (its own Lorenz-63/96 modules:
one RK4 step of ``dt`` per model step, the same parameters), the same observation operator
(identity on every component) and the same Gaussian noise. The ensemble starts from the same
climatological Gaussian prior at time 0 (``dapper_prior = "climatology"``), or, where DAPPER's
own setting file does so (Lorenz-96), around the true initial state (``"truth"``).
DAPPER assesses its statistics against the truth at every model step, so the steps between
observations are filled by integrating the toolkit's truth forward with DAPPER's own step.
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np


def build_hmm(data):
    import dapper.mods as modelling
    from dapper.tools.localization import nd_Id_localization

    system = str(data["system"])
    params = json.loads(str(data["system_parameters"]))
    dt, dko = float(data["dt"]), int(data["steps_per_obs"])
    truth = data["truth"]
    n_obs, nx = truth.shape
    if system == "lorenz63":
        import dapper.mods.Lorenz63 as model

        model.sig, model.rho, model.beta = params["sigma"], params["rho"], params["beta"]
    elif system == "lorenz96":
        import dapper.mods.Lorenz96 as model

        model.Force = params["forcing"]
        if int(params["n"]) != nx:
            raise SystemExit(f"Lorenz-96 with n={params['n']} but data have {nx} components")
    else:
        raise SystemExit(f"no DAPPER model for system {system!r}")
    tseq = modelling.Chronology(dt, dko=dko, Ko=n_obs - 1, BurnIn=0)
    # "linear" (the step's Jacobian) is what DAPPER's Var4D and ExtKF need
    dyn = {"M": nx, "model": model.step, "linear": model.dstep_dx, "noise": 0}

    # Truth at every model step: the stored states at observation times, and DAPPER's own RK4
    # steps in between (at step 0, one cycle integrated backwards: it is only used by DAPPER's
    # statistics at time 0, never by a score we report).
    xx = np.zeros((tseq.K + 1, nx))
    xx[dko::dko] = truth
    x = truth[0].copy()
    for _ in range(dko):
        x = model.step(x, np.nan, -dt)
    xx[0] = x
    for k in range(n_obs):
        x = xx[k * dko]
        for j in range(1, dko):
            x = model.step(x, np.nan, dt)
            xx[k * dko + j] = x
    yy = np.asarray(data["obs"], dtype=float)  # DAPPER's obs index ko runs 0..Ko = T - 1

    if str(data["dapper_prior"]) == "truth":
        # DAPPER's own convention for Lorenz-96 (sakov2008.py): the ensemble starts around the
        # true initial state with variance 0.001 (its rank-deficient global ETKF does not
        # converge from climatology; ours starts with a full-rank climatological analysis).
        x0 = modelling.GaussRV(mu=xx[0], C=0.001)
    else:
        var = np.asarray(data["prior_std"], dtype=float) ** 2
        x0 = modelling.GaussRV(mu=np.asarray(data["prior_mean"], dtype=float),
                               C=modelling.CovMat(var, kind="diag"))
    obs = modelling.partial_Id_Obs(nx, np.arange(nx))
    obs["noise"] = modelling.GaussRV(C=modelling.CovMat(np.asarray(data["obs_std"]) ** 2,
                                                        kind="diag"))
    obs["localizer"] = nd_Id_localization((nx,), (1,), periodic=(system == "lorenz96"))
    hmm = modelling.HiddenMarkovModel(dyn, obs, tseq, x0)
    return hmm, xx, yy


class _OperatorAtIndex:
    """DAPPER 1.7.1's ``Var4D`` takes ``Obs = HMM.Obs(ko)`` and then calls ``Obs(ko).linear(x)``
    and ``Obs(ko)(x)``, i.e. it applies the observation operator to the index ``ko`` and fails
    (IndexError) on any model. This shim makes ``Obs(ko)`` with an integer return the operator
    itself, which is what the code means; nothing else changes (used for Var4D only)."""

    def __init__(self, operator):
        self._operator = operator

    def __call__(self, arg, *args, **kwargs):
        if isinstance(arg, (int, np.integer)) and not args and not kwargs:
            return self._operator
        return self._operator(arg, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._operator, name)


class _Var4DObs:
    """``HMM.Obs`` for DAPPER's Var4D: ``HMM.Obs(ko)`` wrapped in :class:`_OperatorAtIndex`."""

    def __init__(self, obs):
        self._obs = obs

    def __call__(self, ko):
        return _OperatorAtIndex(self._obs(ko))

    def __getattr__(self, name):
        return getattr(self._obs, name)


def main(argv):
    data_path, methods_path, out_path = argv
    data = np.load(data_path, allow_pickle=False)
    if np.isnan(data["obs"]).any():
        raise SystemExit("dapper_run: partially observed data are not supported here")
    import dapper.tools.progressbar as progressbar

    progressbar.disable_progbar = True
    hmm, xx, yy = build_hmm(data)
    import dapper.da_methods as da
    from dapper.tools.seeding import set_seed

    out = {}
    for spec in json.loads(open(methods_path).read()):
        set_seed(int(spec["seed"]))
        kwargs = dict(spec.get("kwargs", {}))
        if "B" in kwargs:  # a background covariance travels as nested lists
            kwargs["B"] = np.asarray(kwargs["B"], dtype=float)
        xp = getattr(da, spec["class"])(*spec.get("args", []), **kwargs)
        obs = hmm.Obs
        if spec["class"] == "Var4D":
            hmm.Obs = _Var4DObs(obs)
        start = time.perf_counter()
        try:
            xp.assimilate(hmm, xx, yy, liveplots=False)
        finally:
            hmm.Obs = obs
        seconds = time.perf_counter() - start
        means = getattr(xp.stats.mu, spec.get("estimate", "a"))
        out[f"{spec['label']}/mean"] = np.asarray(means, dtype=float)
        out[f"{spec['label']}/seconds"] = np.asarray(seconds)
        print(f"dapper {spec['label']}: {seconds:.1f} s", flush=True)
    np.savez(out_path, **out)


if __name__ == "__main__":
    main(sys.argv[1:])
