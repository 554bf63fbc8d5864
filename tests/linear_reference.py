"""A linear test system and its exact Kalman filter / RTS smoother references, shared by the
iEnKS, 3D-Var and 4D-Var tests."""

from __future__ import annotations

import dataclasses

import torch

from pyro_videossm.assimilate import AssimilationProblem
from pyro_videossm.data import simulate
from pyro_videossm.dynamics import ODESystem
from pyro_videossm.filters.kalman import (
    KalmanResult,
    kalman_filter,
    linearised_forecast,
    rts_smoother,
)

DT = torch.float64


class Spiral(ODESystem):
    """Linear test system ``dx/dt = A x`` (a slowly decaying spiral plus a third mode)."""

    name = "spiral"
    component_names = ("a", "b", "c")
    default_dt = 0.1

    def __init__(self):
        super().__init__()
        self.register_buffer("A", torch.tensor([[-0.05, 1.0, 0.0], [-1.0, -0.05, 0.3],
                                                [0.0, 0.0, -0.1]]))

    def drift(self, x):
        return x @ self.A.T


def linear_problem(cycles: int = 12, *, process_noise_std: float = 0.0,
                   obs_operator: str = "subset:0,2", missing: tuple[int, ...] = (),
                   prior_mean=(1.0, 0.0, 2.0), prior_std=(1.0, 1.0, 1.0),
                   seed: int = 1) -> AssimilationProblem:
    """The spiral observed every 2 steps of 0.1 with noise 0.5; ``missing`` cycles have no
    observation at all (NaN in the data, masked in the problem)."""
    system = Spiral()
    ds = simulate(system, cycles=cycles, dt=0.1, steps_per_obs=2, obs_noise_std=0.5,
                  process_noise_std=process_noise_std, spinup=0.0, seed=seed,
                  obs_operator=obs_operator)
    if missing:
        ds["obs"][list(missing)] = float("nan")
    problem = AssimilationProblem.from_dataset(ds, system=system)
    return dataclasses.replace(problem, prior_mean=torch.tensor(prior_mean, dtype=DT),
                               prior_std=torch.tensor(prior_std, dtype=DT))


def transition(problem: AssimilationProblem) -> tuple[torch.Tensor, torch.Tensor]:
    """``F``, ``Q`` ``(D, D)`` of one cycle of the linear system (``Q`` of the process noise)."""
    D = problem.state_dim
    _, F, Q = linearised_forecast(problem, torch.zeros(D, dtype=DT))
    return F, Q


def kalman_reference(problem: AssimilationProblem, m0: torch.Tensor, P0: torch.Tensor,
                     last: int | None = None) -> tuple[KalmanResult, torch.Tensor, torch.Tensor]:
    """KF and RTS on the cycles ``0..last`` (all by default): ``(result, means, covs)``."""
    F, Q = transition(problem)
    end = problem.n_cycles if last is None else last + 1
    eye = torch.eye(problem.state_dim, dtype=DT)
    R = torch.diag(problem.obs_noise_std**2)
    res = kalman_filter(problem.obs[:end], F, Q, eye, R, m0, P0, mask=problem.mask[:end])
    means, covs = rts_smoother(res.filtered_means, res.filtered_covs, res.predicted_means,
                               res.predicted_covs, F)
    return res, means, covs
