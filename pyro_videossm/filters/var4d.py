"""Strong-constraint 4D-Var over sliding windows, with autograd through the batched RK4.

A window starts at a state ``x_s`` (``s = -1``: the prior time, one cycle before the first
observation) and covers the ``W`` observation cycles ``s+1 .. s+W``. With the background
``x_b`` and its covariance ``B = L L^T`` the analysis minimises, over ``v`` with
``x_s = x_b + L v``::

    J(v) = 1/2 |v|^2 + 1/2 sum_k |y_k - H M_{s->k}(x_b + L v)|^2_R

(perfect model: the trajectory is the model run of ``x_s``; process noise is ignored). Two
minimisers:

- ``gauss-newton`` (default): each iteration runs the trajectory and its tangent linear
  model ``M'_k`` (reverse-mode autodiff through the window's batched RK4 steps, see
  :func:`linearised_trajectory`) and solves ``(I + sum_k G_k^T G_k) dv = -grad`` with
  ``G_k = R^{-1/2} H M'_k L``; it stops when ``|dv|^2 < tolerance * D``. A step that raises
  ``J`` by more than round-off (:data:`ROUNDOFF`) is halved (backtracking). For a linear
  model one step is exact;
- ``lbfgs``: ``torch.optim.LBFGS`` (strong Wolfe line search) on ``J`` with reverse-mode
  gradients through the integrator.

The analysis error covariance is the inverse Gauss-Newton Hessian at the optimum, moved
along the window by ``M'_k``. The window then slides by ``shift`` cycles: the next
background is the analysis trajectory at the new start (the forecast of the analysis) with
covariance ``B``, and each window reports its first ``shift`` cycles (the last window all of
its cycles). The first window's background is the problem's prior
``N(prior_mean, diag(prior_std^2))``; later ones use the static ``B`` (climatological times
``scale``, or a user matrix), optionally hybrid: ``(1 - beta) B + beta P_ens`` with
``P_ens`` the covariance of an ETKF analysis ensemble at the window start.

With ``observations="newest"`` (:func:`run_var4d_newest`) only the last cycle's observations
of each window enter its cost and the window slides by one cycle, as DAPPER's ``Var4D``;
the posterior is then the analysis at the window starts and the window ends are kept as a
filter estimate.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor
from tqdm.auto import tqdm

from pyro_videossm.assimilate import (
    AssimilationMethod,
    AssimilationProblem,
    Estimate,
    register_method,
)
from pyro_videossm.assimilate.consistency import gaussian_nis
from pyro_videossm.errors import InputError
from pyro_videossm.filters.enkf import run_etkf
from pyro_videossm.filters.ensemble import obs_error_variance
from pyro_videossm.filters.options import as_float, as_int
from pyro_videossm.filters.var3d import background_covariance, checked_covariance

OPTIMIZERS = ("gauss-newton", "lbfgs")
#: which observations of a window enter its cost: all, or only those of its last cycle
OBSERVATIONS = ("all", "newest")
#: a Gauss-Newton step is backtracked only when it raises the cost by more than this many
#: machine epsilons (relative to the cost, at least 1)
ROUNDOFF = 1000


def trajectory(problem: AssimilationProblem, x0: Tensor, cycles: int) -> Tensor:
    """Model run of ``x0 (..., D)`` over ``cycles`` cycles: the states ``(cycles, ..., D)``
    at the observation times (no model noise)."""
    states = []
    x = x0
    for _ in range(cycles):
        x = problem.forecast(x)
        states.append(x)
    return torch.stack(states)


def linearised_trajectory(problem: AssimilationProblem, x0: Tensor, cycles: int
                          ) -> tuple[Tensor, Tensor]:
    """The trajectory ``(W, D)`` of ``x0 (D,)`` and its Jacobians ``(W, D, D)`` with respect
    to ``x0``, by reverse-mode autodiff through the RK4 steps.

    One batched model run moves ``W * D`` copies of ``x0``; copy ``(k, i)`` is read at cycle
    ``k``, component ``i``, so a single backward pass gives row ``i`` of ``M'_k`` on it
    (forward-mode autodiff was 50 times slower than the plain run on Lorenz-63, this about 4).
    """
    D = x0.shape[-1]
    k = torch.arange(cycles, device=x0.device)
    with torch.enable_grad():
        copies = x0.detach().expand(cycles, D, D).clone().requires_grad_(True)
        path = trajectory(problem, copies, cycles)  # (W, W, D, D): cycle, copy (k, i), state
        seen = path[k, k]  # (W, D, D): [k, i] is copy (k, i) at cycle k
        (jac,) = torch.autograd.grad(torch.diagonal(seen, dim1=-2, dim2=-1).sum(), copies)
    return path[:, 0, 0].detach(), jac


def _gauss_newton_terms(path, jac, L, v, obs, precision):
    root = precision.sqrt()  # (W, D)
    G = root.unsqueeze(-1) * (jac @ L)  # (W, D, D)
    r = root * (obs - path)
    eye = torch.eye(L.shape[-1], dtype=L.dtype, device=L.device)
    hessian = eye + torch.einsum("wpi,wpj->ij", G, G)
    grad = v - torch.einsum("wpi,wp->i", G, r)
    return hessian, grad


class WindowAnalysis(NamedTuple):
    """One window's 4D-Var analysis (``W`` cycles, ``D`` components)."""

    #: the analysis at the window start ``(D,)``
    start: Tensor
    #: its trajectory at the window's cycles ``(W, D)``
    path: Tensor
    #: the trajectory's error covariances ``(W, D, D)``
    covs: Tensor
    #: Gauss-Newton/L-BFGS iterations done
    iterations: int
    #: the background's trajectory ``(W, D)`` and its tangent-linear covariances
    #: ``M'_k B M'_k^T`` ``(W, D, D)``: the forecast the window's observations are innovations of
    background: tuple[Tensor, Tensor]
    #: the error covariance of the analysis at the window start ``(D, D)``
    start_cov: Tensor


def var4d_window(problem: AssimilationProblem, background: Tensor, B: Tensor, obs: Tensor,
                 mask: Tensor, *, optimizer: str = "gauss-newton", iterations: int = 10,
                 tolerance: float = 1e-6) -> WindowAnalysis:
    """Analyse one window of ``W = obs.shape[0]`` cycles starting one cycle before ``obs[0]``.

    Args:
        background: ``x_b (D,)`` at the window start; B: its covariance ``(D, D)``.
        obs: ``(W, D)`` (ignored where ``mask`` is False); mask: ``(W, D)`` bool.
        optimizer: ``"gauss-newton"`` or ``"lbfgs"``; iterations: most iterations.
        tolerance: Gauss-Newton stops at ``|dv|^2 < tolerance * D``; L-BFGS at a gradient
            below ``tolerance`` (max norm).

    Returns:
        a :class:`WindowAnalysis`.
    """
    W, D = obs.shape
    L = torch.linalg.cholesky(B)
    precision = mask.to(B.dtype) / obs_error_variance(problem)
    obs = torch.where(mask, obs, torch.zeros((), dtype=obs.dtype, device=obs.device))
    v = torch.zeros(D, dtype=B.dtype, device=B.device)
    done = 0

    def cost(v, path):
        return 0.5 * (v @ v) + 0.5 * (precision * (obs - path) ** 2).sum()

    if optimizer == "gauss-newton":
        path, jac = linearised_trajectory(problem, background + L @ v, W)
        first = (path, jac)  # v = 0: the background
        J = cost(v, path)
        for _ in range(iterations):
            hessian, grad = _gauss_newton_terms(path, jac, L, v, obs, precision)
            dv = torch.linalg.solve(hessian, grad)
            if float(dv @ dv) < tolerance * D:
                break
            # the full step, linearised at once (kept when accepted); backtracking when it
            # raises the cost, as a full step can overshoot on a nonlinear model
            v_try = v - dv
            path_try, jac_try = linearised_trajectory(problem, background + L @ v_try, W)
            J_try, step = cost(v_try, path_try), 1.0
            # a rise within round-off (at a converged iterate, where ``dv`` is round-off) is
            # no rise: halving it would only re-run the model ten times to move by round-off
            slack = ROUNDOFF * torch.finfo(B.dtype).eps * max(abs(float(J)), 1.0)
            while float(J_try) > float(J) + slack and step > 1e-3:
                step *= 0.5
                v_try = v - step * dv
                jac_try = None
                J_try = cost(v_try, trajectory(problem, background + L @ v_try, W))
            v = v_try
            done += 1
            if jac_try is None:
                path, jac = linearised_trajectory(problem, background + L @ v, W)
            else:
                path, jac = path_try, jac_try
            J = cost(v, path)
        hessian, _ = _gauss_newton_terms(path, jac, L, v, obs, precision)
    else:
        first = linearised_trajectory(problem, background, W)
        v = v.clone().requires_grad_(True)
        opt = torch.optim.LBFGS([v], lr=1.0, max_iter=iterations, tolerance_grad=tolerance,
                                tolerance_change=1e-15, history_size=20,
                                line_search_fn="strong_wolfe")

        def closure():
            opt.zero_grad()
            J = cost(v, trajectory(problem, background + L @ v, W))
            J.backward()
            return J

        with torch.enable_grad():
            opt.step(closure)
        done = int(opt.state[v].get("n_iter", 0))
        v = v.detach()
        path, jac = linearised_trajectory(problem, background + L @ v, W)
        hessian, _ = _gauss_newton_terms(path, jac, L, v, obs, precision)
    cov0 = L @ torch.linalg.solve(hessian, L.T)
    covs = jac @ cov0 @ jac.transpose(-1, -2)
    bg_path, bg_jac = first
    bg_covs = bg_jac @ B @ bg_jac.transpose(-1, -2)
    return WindowAnalysis(background + L @ v, path, _symmetric(covs), done,
                          (bg_path, _symmetric(bg_covs)), _symmetric(cov0))


def _symmetric(C: Tensor) -> Tensor:
    return 0.5 * (C + C.transpose(-1, -2))


def run_var4d(problem: AssimilationProblem, B: Tensor, *, window: int, shift: int,
              optimizer: str = "gauss-newton", iterations: int = 10, tolerance: float = 1e-6,
              ensemble_covs: Tensor | None = None, hybrid_weight: float = 0.0,
              progress: bool = False
              ) -> tuple[Tensor, Tensor, list[int], tuple[Tensor, Tensor]]:
    """Sliding-window 4D-Var over all cycles: means ``(T, D)``, stds ``(T, D)``, the
    iterations of each window, and the background forecasts of each cycle with their
    covariances ``((T, D), (T, D, D))`` (for the innovation statistics). ``ensemble_covs``
    ``(T, D, D)`` (covariances at the cycles) make the background covariance of a window
    starting at cycle ``s >= 0`` hybrid."""
    T, D = problem.n_cycles, problem.state_dim
    if window > T:
        raise InputError(f"the 4D-Var window ({window} cycles) is longer than the record "
                         f"({T} cycles)")
    means = torch.empty(T, D, dtype=problem.dtype, device=problem.device)
    stds = torch.empty_like(means)
    fc_mean = torch.empty_like(means)
    fc_cov = torch.empty(T, D, D, dtype=problem.dtype, device=problem.device)
    iterations_done = []
    s = -1
    background, cov = problem.prior_mean, torch.diag(problem.prior_std**2)
    with tqdm(total=T, disable=not progress, desc="4dvar", leave=False) as bar:
        while True:
            end = min(s + window, T - 1)
            _, path, covs, done, (bg_path, bg_covs), _ = var4d_window(
                problem, background, cov, problem.obs[s + 1:end + 1],
                problem.mask[s + 1:end + 1], optimizer=optimizer, iterations=iterations,
                tolerance=tolerance)
            iterations_done.append(done)
            last = end == T - 1
            owned = end - s if last else min(shift, end - s)
            means[s + 1:s + 1 + owned] = path[:owned]
            fc_mean[s + 1:s + 1 + owned] = bg_path[:owned]
            fc_cov[s + 1:s + 1 + owned] = bg_covs[:owned]
            stds[s + 1:s + 1 + owned] = torch.diagonal(covs[:owned], dim1=-2,
                                                       dim2=-1).clamp_min(0).sqrt()
            bar.update(owned)
            if last:
                break
            s += shift
            background = path[shift - 1]
            cov = B
            if ensemble_covs is not None and hybrid_weight > 0:
                cov = (1.0 - hybrid_weight) * B + hybrid_weight * ensemble_covs[s]
    return means, stds, iterations_done, (fc_mean, fc_cov)


def run_var4d_newest(problem: AssimilationProblem, B: Tensor, *, window: int,
                     optimizer: str = "gauss-newton", iterations: int = 10,
                     tolerance: float = 1e-6, ensemble_covs: Tensor | None = None,
                     hybrid_weight: float = 0.0, progress: bool = False
                     ) -> tuple[Estimate, Estimate, list[int], tuple[Tensor, Tensor]]:
    """4D-Var with each observation assimilated once, in the window where it is the newest:
    the cycling of DAPPER's ``Var4D`` (and of the iEnKS with single assimilation).

    For each cycle ``t`` the window starts at ``c = max(t - window, -1)`` (``-1``: the prior
    time) and ends at ``t``; only the observations of cycle ``t`` enter its cost, the earlier
    ones only through the background. The background at ``c`` is the previous window's
    analysis trajectory at ``c`` (its start moved one cycle; while the windows still start at
    the prior time, the previous analysis there), with covariance ``B`` (optionally hybrid);
    the first window's background is the prior mean with covariance ``B``, as in DAPPER.

    Returns:
        the smoothed estimate ``(T, D)`` (cycle ``c``: the analysis at the start of the window
        ending at ``c + window``, DAPPER's ``'s'`` statistic; the last ``window`` cycles: the
        last window's trajectory), the filter estimate ``(T, D)`` (cycle ``t``: the end of the
        window ending at ``t``, DAPPER's ``'a'``), the iterations of each window and the
        background forecasts of each cycle with their covariances ``((T, D), (T, D, D))``.
    """
    T, D = problem.n_cycles, problem.state_dim
    if window > T:
        raise InputError(f"the 4D-Var window ({window} cycles) is longer than the record "
                         f"({T} cycles)")
    empty = torch.empty(T, D, dtype=problem.dtype, device=problem.device)
    means, stds, f_means, f_stds, fc_mean = (empty.clone() for _ in range(5))
    fc_cov = torch.empty(T, D, D, dtype=problem.dtype, device=problem.device)
    iterations_done = []
    start, background, cov = -1, problem.prior_mean, B
    res: WindowAnalysis | None = None
    for t in tqdm(range(T), disable=not progress, desc="4dvar", leave=False):
        c = max(t - window, -1)
        if res is not None:  # the background: the last analysis, moved to c
            background = res.start if c == start else res.path[0]
            start, cov = c, B
            if ensemble_covs is not None and hybrid_weight > 0 and c >= 0:
                cov = (1.0 - hybrid_weight) * B + hybrid_weight * ensemble_covs[c]
        newest = torch.zeros_like(problem.mask[c + 1:t + 1])
        newest[-1] = problem.mask[t]
        res = var4d_window(problem, background, cov, problem.obs[c + 1:t + 1], newest,
                           optimizer=optimizer, iterations=iterations, tolerance=tolerance)
        iterations_done.append(res.iterations)
        f_means[t], f_stds[t] = res.path[-1], _std(res.covs[-1])
        fc_mean[t], fc_cov[t] = res.background[0][-1], res.background[1][-1]
        if c >= 0:
            means[c], stds[c] = res.start, _std(res.start_cov)
    means[c + 1:], stds[c + 1:] = res.path, _std(res.covs)
    return (Estimate(mean=means, std=stds), Estimate(mean=f_means, std=f_stds),
            iterations_done, (fc_mean, fc_cov))


def _std(cov: Tensor) -> Tensor:
    return torch.diagonal(cov, dim1=-2, dim2=-1).clamp_min(0).sqrt()


def check_optimizer(optimizer: str) -> str:
    if optimizer not in OPTIMIZERS:
        raise InputError(f"option 'optimizer' must be one of {', '.join(OPTIMIZERS)}, "
                         f"got {optimizer!r}")
    return optimizer


@register_method
class Var4DMethod(AssimilationMethod):
    """``4dvar``: strong-constraint 4D-Var over sliding windows.

    Options:
        window: cycles per window ``W`` (>= 1, at most the record length).
        shift: cycles the window slides (1 to ``W``; default ``W``: disjoint windows; with
            ``observations="newest"`` it must be 1, the default there).
        observations: ``"all"`` (every observation of the window enters its cost) or
            ``"newest"`` (only the window's last cycle: each observation is assimilated
            once, the window slides by one cycle and the posterior is the analysis at the
            window start, DAPPER's ``Var4D`` with ``Lag = W``; see :func:`run_var4d_newest`).
        optimizer: ``"gauss-newton"`` or ``"lbfgs"``.
        iterations: most iterations per window (default 10 Gauss-Newton, 200 L-BFGS).
        tolerance: stopping tolerance (see :func:`var4d_window`).
        background_cov, scale: the static ``B`` (as ``3dvar``).
        hybrid_weight: ``beta`` in ``(1 - beta) B + beta P_ens`` (0: static B only).
        hybrid_members, hybrid_inflation: the ETKF giving ``P_ens``.

    Defaults: disjoint windows of 2 cycles (0.5 time units on the standard Lorenz-63
    setting), B the climatological covariance times 0.03 (the best of the few settings
    measured in docs/VARIATIONAL.md; windows of 4 cycles did better on some records and fell
    into wrong minima on others).
    """

    name = "4dvar"
    kind = "smoother"

    def __init__(self, window: int = 2, shift: int | None = None,
                 optimizer: str = "gauss-newton", iterations: int | None = None,
                 tolerance: float = 1e-6, background_cov=None, scale: float = 0.03,
                 hybrid_weight: float = 0.0, hybrid_members: int = 20,
                 hybrid_inflation: float = 1.02, observations: str = "all"):
        self.window = as_int("window", window, minimum=1)
        if observations not in OBSERVATIONS:
            raise InputError(f"option 'observations' must be one of {', '.join(OBSERVATIONS)}, "
                             f"got {observations!r}")
        self.observations = observations
        newest = observations == "newest"
        default_shift = 1 if newest else self.window
        self.shift = as_int("shift", default_shift if shift is None else shift, minimum=1)
        if self.shift > self.window:
            raise InputError(f"option 'shift' ({self.shift}) must not exceed 'window' "
                             f"({self.window})")
        if newest and self.shift != 1:
            raise InputError(f"option 'shift' must be 1 with observations='newest' (each "
                             f"observation is assimilated once), got {self.shift}")
        self.optimizer = check_optimizer(optimizer)
        default = 10 if self.optimizer == "gauss-newton" else 200
        self.iterations = as_int("iterations", default if iterations is None else iterations,
                                 minimum=1)
        self.tolerance = as_float("tolerance", tolerance, minimum=0)
        self._B = None if background_cov is None else checked_covariance("background_cov",
                                                                         background_cov)
        self.background_cov = None if self._B is None else self._B.tolist()
        self.scale = as_float("scale", scale, minimum=0, exclusive=True)
        self.hybrid_weight = as_float("hybrid_weight", hybrid_weight, minimum=0)
        if self.hybrid_weight > 1:
            raise InputError(f"option 'hybrid_weight' must be in [0, 1], got {hybrid_weight!r}")
        self.hybrid_members = as_int("hybrid_members", hybrid_members, minimum=2)
        self.hybrid_inflation = as_float("hybrid_inflation", hybrid_inflation, minimum=0,
                                         exclusive=True)
        #: iterations done in each window of the last run
        self.iterations_done: list[int] = []
        #: with ``observations="newest"``: the window-end analyses of the last run (a filter)
        self.filter_estimate: Estimate | None = None

    def run(self, problem: AssimilationProblem, *, generator: torch.Generator,
            progress: bool = False) -> Estimate:
        B = background_covariance(problem, self._B, self.scale)
        ensemble_covs = None
        with torch.no_grad():
            if self.hybrid_weight > 0:
                ens = run_etkf(problem, members=self.hybrid_members,
                               inflation=self.hybrid_inflation, rotate=True,
                               static_start=True, spinup=100, generator=generator).analysis
                A = ens - ens.mean(1, keepdim=True)
                ensemble_covs = A.transpose(1, 2) @ A / (self.hybrid_members - 1)
            if self.observations == "newest":
                est, self.filter_estimate, self.iterations_done, (fc_mean, fc_cov) = \
                    run_var4d_newest(problem, B, window=self.window, optimizer=self.optimizer,
                                     iterations=self.iterations, tolerance=self.tolerance,
                                     ensemble_covs=ensemble_covs,
                                     hybrid_weight=self.hybrid_weight, progress=progress)
            else:
                mean, std, self.iterations_done, (fc_mean, fc_cov) = run_var4d(
                    problem, B, window=self.window, shift=self.shift,
                    optimizer=self.optimizer, iterations=self.iterations,
                    tolerance=self.tolerance, ensemble_covs=ensemble_covs,
                    hybrid_weight=self.hybrid_weight, progress=progress)
                est = Estimate(mean=mean, std=std)
        est.nis, est.nis_dof = gaussian_nis(fc_mean, fc_cov, problem.obs, problem.mask,
                                            obs_error_variance(problem))
        return est
