"""Run DAPPER's methods on truth and observations exported by ``dapper_compare.py``.

Runs inside DAPPER's own virtual environment (``benchmarks/.venv-dapper``, see
benchmarks/README.md), which has numpy and DAPPER but not this toolkit:

    benchmarks/.venv-dapper/bin/python benchmarks/dapper_run.py DATA.npz METHODS.json OUT.npz

``DATA.npz`` holds the toolkit's truth ``(T, D)`` and observations ``(T, D)`` at the
observation times, the RK4 step, steps per observation, observation noise std ``(D,)``, the
climatological prior mean/std ``(D,)``, the system name and its parameters (JSON).
``METHODS.json`` is a list of ``{"label", "class", "args", "kwargs", "estimate", "seed"}``
(``estimate``: ``"a"`` analysis or ``"s"`` smoothed; a ``"B"`` keyword, nested lists, is
passed as an array; an optional ``"tlm": "exact"`` gives the model the exact Jacobian of its
RK4 step, :func:`exact_rk4_jacobian`, instead of DAPPER's forward-Euler ``dstep_dx``).
Entries that differ only in ``label`` and ``estimate`` share one run. ``OUT.npz`` gets, per
label, the mean
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


def exact_rk4_jacobian(model):
    """The Jacobian of ``model.step`` (one RK4 step of DAPPER's Lorenz-63/96), by the chain
    rule through the four stages: ``M = I + dt/6 (K1 + 2 K2 + 2 K3 + K4)`` with
    ``K1 = J(x)``, ``K2 = J(x + dt/2 k1) (I + dt/2 K1)``, ``K3 = J(x + dt/2 k2) (I + dt/2 K2)``,
    ``K4 = J(x + dt k3) (I + dt K3)`` (``J = d2x_dtdx``, ``k_i`` the stages of ``dxdt``).

    DAPPER's own ``dstep_dx`` is ``I + dt J(x)`` (``integrate_TLM(..., method="approx")``,
    the forward-Euler resolvent), which is not the Jacobian of the RK4 step it linearises.
    """

    def dstep_dx(x, t, dt):
        f, J = model.dxdt, model.d2x_dtdx
        eye = np.eye(len(x))
        k1 = f(x)
        k2 = f(x + dt / 2 * k1)
        k3 = f(x + dt / 2 * k2)
        K1 = J(x)
        K2 = J(x + dt / 2 * k1) @ (eye + dt / 2 * K1)
        K3 = J(x + dt / 2 * k2) @ (eye + dt / 2 * K2)
        K4 = J(x + dt * k3) @ (eye + dt * K3)
        return eye + dt / 6 * (K1 + 2 * K2 + 2 * K3 + K4)

    return dstep_dx


def dyn_module(data):
    """DAPPER's model module of the data's system (as configured by :func:`build_hmm`)."""
    if str(data["system"]) == "lorenz63":
        import dapper.mods.Lorenz63 as model
    else:
        import dapper.mods.Lorenz96 as model
    return model


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

    out, done = {}, {}
    linear = hmm.Dyn.linear
    for spec in json.loads(open(methods_path).read()):
        # specs that differ only in the estimate share one run
        key = json.dumps([spec["class"], spec.get("args", []), spec.get("kwargs", {}),
                          spec["seed"], spec.get("tlm", "dapper")], sort_keys=True)
        if key not in done:
            set_seed(int(spec["seed"]))
            kwargs = dict(spec.get("kwargs", {}))
            if "B" in kwargs:  # a background covariance travels as nested lists
                kwargs["B"] = np.asarray(kwargs["B"], dtype=float)
            xp = getattr(da, spec["class"])(*spec.get("args", []), **kwargs)
            obs = hmm.Obs
            if spec["class"] == "Var4D":
                hmm.Obs = _Var4DObs(obs)
            if spec.get("tlm", "dapper") == "exact":
                hmm.Dyn.linear = exact_rk4_jacobian(dyn_module(data))
            start = time.perf_counter()
            try:
                xp.assimilate(hmm, xx, yy, liveplots=False)
            finally:
                hmm.Obs, hmm.Dyn.linear = obs, linear
            done[key] = (xp, time.perf_counter() - start)
        xp, seconds = done[key]
        means = getattr(xp.stats.mu, spec.get("estimate", "a"))
        out[f"{spec['label']}/mean"] = np.asarray(means, dtype=float)
        out[f"{spec['label']}/seconds"] = np.asarray(seconds)
        print(f"dapper {spec['label']}: {seconds:.1f} s", flush=True)
    np.savez(out_path, **out)


if __name__ == "__main__":
    main(sys.argv[1:])
