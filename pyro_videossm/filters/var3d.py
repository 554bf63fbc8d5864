"""3D-Var: each cycle's analysis with a static background error covariance ``B``.

The analysis minimises::

    J(x) = 1/2 (x - x_b)^T B^{-1} (x - x_b) + 1/2 (y - H x)^T R^{-1} (y - H x)

with ``H`` selecting the observed components (``problem.mask``) and ``R`` diagonal
(:func:`obs_error_variance`). Its minimiser is the Kalman analysis with ``B`` in place of the
forecast covariance: computed in closed form (Cholesky of ``H B H^T + R``; the default), or
by conjugate gradients on the preconditioned cost in ``v`` with ``x = x_b + L v``,
``B = L L^T`` (Hessian ``I + L^T H^T R^{-1} H L``). The background of the next cycle is the
model run of the analysis. ``B`` is the climatological covariance of the system (a long free
run) times ``scale``, or a user matrix times ``scale``.
"""

from __future__ import annotations

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
from pyro_videossm.assimilate.problem import climatological_states
from pyro_videossm.dynamics import ODESystem
from pyro_videossm.errors import InputError
from pyro_videossm.filters.ensemble import obs_error_variance
from pyro_videossm.filters.kalman import kalman_update
from pyro_videossm.filters.options import as_float

SOLVERS = ("cholesky", "cg")

_COVARIANCE_CACHE: dict = {}


def climatological_covariance(system: ODESystem, dt: float, *, members: int = 32,
                              spinup: int = 2000, steps: int = 4000, every: int = 10) -> Tensor:
    """Covariance ``(D, D)`` (float64, CPU) of the states of a long free run of ``system``.

    The sample is :func:`pyro_videossm.assimilate.problem.climatological_states`, the one
    behind :func:`pyro_videossm.assimilate.climatology`'s mean and std (``members`` runs,
    ``spinup`` steps discarded, every ``every``-th of ``steps`` kept).
    Cached per system class, parameters and step.
    """
    key = (type(system), tuple(sorted(system.parameters_dict().items())), float(dt),
           members, spinup, steps, every)
    if key not in _COVARIANCE_CACHE:
        flat = climatological_states(system, dt, members=members, spinup=spinup, steps=steps,
                                     every=every)
        _COVARIANCE_CACHE[key] = torch.cov(flat.T).reshape(flat.shape[-1], flat.shape[-1])
    return _COVARIANCE_CACHE[key]


def checked_covariance(name: str, matrix) -> Tensor:
    """``matrix`` as a float64 ``(D, D)`` tensor; InputError unless symmetric positive
    definite (Cholesky)."""
    try:
        B = torch.as_tensor(matrix, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError):
        raise InputError(f"option {name!r} must be a square matrix of numbers") from None
    if B.dim() != 2 or B.shape[0] != B.shape[1] or B.shape[0] == 0:
        raise InputError(f"option {name!r} must be a square matrix, got shape {tuple(B.shape)}")
    if not torch.isfinite(B).all():
        raise InputError(f"option {name!r} must be finite")
    if not torch.allclose(B, B.T, rtol=1e-10, atol=1e-12 * float(B.abs().max())):
        raise InputError(f"option {name!r} must be symmetric")
    _, info = torch.linalg.cholesky_ex(B)
    if int(info) != 0:
        raise InputError(f"option {name!r} is not positive definite (Cholesky failed)")
    return B


def background_covariance(problem: AssimilationProblem, matrix: Tensor | None,
                          scale: float) -> Tensor:
    """``scale * B`` ``(D, D)`` on the problem's device: the user's ``matrix`` (checked by
    :func:`checked_covariance`) or the climatological covariance of the problem's system."""
    D = problem.state_dim
    if matrix is None:
        B = climatological_covariance(problem.system, problem.dt)
    else:
        B = matrix
        if B.shape != (D, D):
            raise InputError(f"the background covariance is {tuple(B.shape)} but the state has "
                             f"{D} components")
    return (scale * B).to(device=problem.device, dtype=problem.dtype)


def conjugate_gradient(apply_A, b: Tensor, *, tol: float = 1e-12,
                       max_iter: int | None = None) -> Tensor:
    """Solve ``A x = b`` for symmetric positive definite ``A`` given as ``apply_A(x)``
    (vectors ``(D,)``); stops at ``|r| <= tol |b|`` or after ``max_iter`` (default ``2 D``)."""
    x = torch.zeros_like(b)
    r = b.clone()
    p = r.clone()
    rr = r @ r
    stop = tol**2 * rr
    for _ in range(max_iter or 2 * b.shape[-1]):
        if rr <= stop:
            break
        Ap = apply_A(p)
        alpha = rr / (p @ Ap)
        x = x + alpha * p
        r = r - alpha * Ap
        rr_new = r @ r
        p = r + (rr_new / rr) * p
        rr = rr_new
    return x


def var3d_analysis(background: Tensor, B: Tensor, obs: Tensor, mask: Tensor,
                   obs_var: Tensor, *, solver: str = "cholesky") -> tuple[Tensor, Tensor]:
    """The 3D-Var analysis mean ``(D,)`` and its error covariance ``(D, D)``.

    Args:
        background: ``x_b (D,)``; B: ``(D, D)``; obs: ``(D,)`` (ignored where ``mask`` is
            False, NaN allowed); mask: ``(D,)`` bool; obs_var: ``R`` diagonal ``(D,)``.
        solver: ``"cholesky"`` (closed form) or ``"cg"`` (conjugate gradients for the mean).

    The covariance ``(I - K H) B`` is the inverse Hessian of the cost (closed form either way).
    """
    eye = torch.eye(B.shape[-1], dtype=B.dtype, device=B.device)
    mean, cov, _ = kalman_update(background, B, obs, mask, eye, torch.diag(obs_var))
    if solver == "cholesky":
        return mean, cov
    L = torch.linalg.cholesky(B)
    precision = mask.to(B.dtype) / obs_var
    d = torch.where(mask, obs - background, torch.zeros_like(background))
    v = conjugate_gradient(lambda u: u + L.T @ (precision * (L @ u)), L.T @ (precision * d))
    return background + L @ v, cov


def run_var3d(problem: AssimilationProblem, B: Tensor, *, solver: str = "cholesky",
              progress: bool = False) -> tuple[Tensor, Tensor, Tensor]:
    """3D-Var over all cycles: analysis means and standard deviations ``(T, D)``, and the
    backgrounds ``(T, D)`` (for the innovation statistics, with ``B`` their covariance).

    The first background is the model run of ``problem.prior_mean``; each next one the model
    run of the analysis (no model noise).
    """
    T, D = problem.n_cycles, problem.state_dim
    obs_var = obs_error_variance(problem)
    means = torch.empty(T, D, dtype=problem.dtype, device=problem.device)
    stds = torch.empty_like(means)
    backgrounds = torch.empty_like(means)
    x = problem.prior_mean
    for t in tqdm(range(T), disable=not progress, desc="3dvar", leave=False):
        x = problem.forecast(x)
        backgrounds[t] = x
        x, cov = var3d_analysis(x, B, problem.obs[t], problem.mask[t], obs_var, solver=solver)
        means[t] = x
        stds[t] = torch.diagonal(cov).clamp_min(0).sqrt()
    return means, stds, backgrounds


def check_solver(solver: str) -> str:
    if solver not in SOLVERS:
        raise InputError(f"option 'solver' must be one of {', '.join(SOLVERS)}, got {solver!r}")
    return solver


@register_method
class Var3DMethod(AssimilationMethod):
    """``3dvar``: 3D-Var with a static background covariance.

    Options:
        background_cov: ``B`` as a ``D x D`` matrix (nested lists); default: the
            climatological covariance of the system (:func:`climatological_covariance`).
        scale: multiplies ``B`` (> 0). Default 0.1, the best of 0.005-0.2 on the standard
            Lorenz-63 setting (see docs/VARIATIONAL.md).
        solver: ``"cholesky"`` (closed form) or ``"cg"``.
    """

    name = "3dvar"
    kind = "filter"

    def __init__(self, background_cov=None, scale: float = 0.1, solver: str = "cholesky"):
        self._B = None if background_cov is None else checked_covariance("background_cov",
                                                                         background_cov)
        self.background_cov = None if self._B is None else self._B.tolist()
        self.scale = as_float("scale", scale, minimum=0, exclusive=True)
        self.solver = check_solver(solver)

    def run(self, problem: AssimilationProblem, *, generator: torch.Generator,
            progress: bool = False) -> Estimate:
        B = background_covariance(problem, self._B, self.scale)
        with torch.no_grad():
            mean, std, backgrounds = run_var3d(problem, B, solver=self.solver,
                                               progress=progress)
        est = Estimate(mean=mean, std=std)
        est.nis, est.nis_dof = gaussian_nis(backgrounds, B.expand(len(backgrounds), -1, -1),
                                            problem.obs, problem.mask,
                                            obs_error_variance(problem))
        return est
