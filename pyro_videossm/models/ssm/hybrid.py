"""Hybrid physics DMM: known dynamics plus a learned correction, for data assimilation.

When the dynamics are (partly) known, the DMM's latent is the physical state and::

    z_t | z_{t-1} ~ N(Φ(z_{t-1}) + g(z_{t-1}, Φ(z_{t-1})), diag(s^2))     PhysicsTransition
    x_t | z_t     ~ N(z_t, R)  at the observed components only           ObservationOperator

``Φ`` is one observation interval of the system's RK4 integrator (any
:class:`~pyro_videossm.dynamics.ODESystem`: Lorenz-63/96 or your own), ``g`` a small MLP
whose output layer starts at zero (training starts from pure physics) and which learns what
the physics misses (a wrong parameter, a missing term), ``s`` is learned, and ``R`` is the
dataset's ``obs_noise_std`` (fixed, or learned). ``z_1`` has the system's climatology as
prior. The guide combines the model's forecast from ``z_{t-1}`` with what the observations
say, Kalman-style (:class:`~pyro_videossm.nn.dmm_blocks.GainCombiner`): the current
observation, a learned message from an RNN over the observations and, for the smoothing guide
(default), the message of all later observations of the window through the transition
(physics + correction) linearised along the guide's own mean path, relinearised a few times
(:mod:`~pyro_videossm.nn.linearised_smoother`). For a linear-Gaussian model that guide is
the exact posterior; for chaotic ones it is a Gauss-Newton smoother whose draws move through
the full nonlinear transition.

Build one from an observation dataset with :func:`hybrid_dmm`, or compose the parts yourself::

    dmm = DMM(3, transition=PhysicsTransition(Lorenz63(rho=24), 0.01, 25, loc, scale),
              initial=InitialState(3, loc, scale, learn=False),
              emitter=ObservationOperator(3, observed=[0, 2]),
              likelihood=GaussianLikelihood(3, 2.0, learn_scale=False),
              guide=SmootherGuide(3, rnn_dim=64, x_loc=loc, x_scale=scale, z_loc=loc,
                                  z_scale=scale))
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import xarray as xr
from torch import Tensor, nn

from pyro_videossm.data.chaotic import load_observations, system_from_attrs
from pyro_videossm.data.observation import observed_indices
from pyro_videossm.data.observation_settings import complete_observations
from pyro_videossm.dynamics import ODESystem, make_system
from pyro_videossm.errors import InputError
from pyro_videossm.models.ssm.dmm import DMM, make_likelihood
from pyro_videossm.models.ssm.guides import build_guide
from pyro_videossm.nn.dmm_blocks import MLP, InitialState


class PhysicsTransition(nn.Module):
    """``p(z_t | z_{t-1}) = N(Φ(z_{t-1}) + g(...), diag(s^2))``: ``z_prev (..., D) -> loc,
    scale (..., D)``.

    Args:
        system: the known dynamics (its parameters may be wrong).
        dt, steps_per_obs: RK4 step and steps per observation interval (``Φ``).
        z_loc, z_scale: ``(D,)`` climatology, the units of the correction's inputs/outputs.
        hidden: hidden widths of the correction MLP ``g``; ``()`` for pure physics.
        scale: initial transition standard deviation ``s`` (``(D,)`` or scalar).
        learn_scale: learn ``s`` (default); False keeps it fixed (a known model-error level,
            e.g. small for physics known to be right).
        guide_substeps: RK4 steps the guide's proposal (:meth:`proposal`) uses for one
            interval (a cheaper forecast for the sequential guide; default: exact).
        correction_units: the units of ``g``'s output: ``"climatology"`` (default,
            ``z_scale``: a correction as large as the physics misses under model error) or
            ``"transition"`` (the initial ``s``: a correction of the order of the transition
            noise). With physics known to be right and a sharp posterior, climatological
            units let Adam's first steps (each about the learning rate on every weight,
            whatever its gradient) add a bias of a good part of ``z_scale`` to every forecast,
            many times the transition noise, and the guide follows the wrong dynamics
            (Lorenz-96 observing every 2nd component: one step at lr 0.002 took the guide's
            RMSE from 0.175 to 0.205; see docs/HARDER_SETTINGS.md).
    """

    CORRECTION_UNITS = ("climatology", "transition")

    def __init__(self, system: ODESystem, dt: float, steps_per_obs: int, z_loc: Tensor,
                 z_scale: Tensor, hidden: tuple[int, ...] = (64, 64), scale: float = 0.5,
                 guide_substeps: int | None = None, learn_scale: bool = True,
                 correction_units: str = "climatology"):
        super().__init__()
        self.system = system
        self.dt = float(dt)
        self.steps_per_obs = int(steps_per_obs)
        self.guide_substeps = int(guide_substeps or steps_per_obs)
        D = system.state_dim
        self.register_buffer("z_loc", torch.as_tensor(z_loc, dtype=torch.float32).clone())
        self.register_buffer("z_scale", torch.as_tensor(z_scale, dtype=torch.float32).clone())
        self.correction = MLP(2 * D, tuple(hidden), D, zero_output=True) if hidden else None
        log_scale = torch.as_tensor(scale, dtype=torch.float32).expand(D).clone().log()
        if correction_units not in self.CORRECTION_UNITS:
            raise InputError(f"correction_units must be one of {self.CORRECTION_UNITS}, "
                             f"got {correction_units!r}")
        self.correction_units = correction_units
        if correction_units == "transition":  # not in the state dict: rebuilt from the config
            self.register_buffer("correction_unit", log_scale.exp(), persistent=False)
        if learn_scale:
            self.log_scale = nn.Parameter(log_scale)
        else:
            self.register_buffer("log_scale", log_scale)

    def physics(self, z: Tensor, substeps: int | None = None) -> Tensor:
        """``Φ``: one observation interval of RK4, ``(..., D) -> (..., D)``."""
        n = self.steps_per_obs if substeps is None else substeps
        return self.system.integrate(z, n, self.dt * self.steps_per_obs / n)

    def _mean(self, z: Tensor, phys: Tensor) -> Tensor:
        if self.correction is None:
            return phys
        u = torch.cat([(z - self.z_loc) / self.z_scale, (phys - self.z_loc) / self.z_scale], -1)
        unit = self.z_scale if self.correction_units == "climatology" else self.correction_unit
        return phys + unit * self.correction(u)

    def forward(self, z_prev: Tensor) -> tuple[Tensor, Tensor]:
        loc = self._mean(z_prev, self.physics(z_prev))
        return loc, self.log_scale.exp().expand_as(loc)

    def proposal(self, z_prev: Tensor) -> tuple[Tensor, Tensor]:
        """The forecast the guide combines with: as :meth:`forward`, with ``guide_substeps``."""
        if self.guide_substeps == self.steps_per_obs:
            return self(z_prev)
        loc = self._mean(z_prev, self.physics(z_prev, self.guide_substeps))
        return loc, self.log_scale.exp().expand_as(loc)


class ObservationOperator(nn.Module):
    """Emitter of the hybrid DMM: observes the state itself, ``z (..., D) -> z``, at the
    components in ``observed`` only (``component_mask (D,)`` is ANDed with the data mask)."""

    def __init__(self, state_dim: int, observed: list[int]):
        super().__init__()
        mask = torch.zeros(state_dim, dtype=torch.bool)
        mask[list(observed)] = True
        self.register_buffer("component_mask", mask)

    def forward(self, z: Tensor) -> Tensor:
        return z


def build_physics(physics: dict[str, Any], x_dim: int,
                  system: ODESystem | None = None) -> tuple[nn.Module, nn.Module, nn.Module]:
    """``(initial, transition, emitter)`` of a hybrid DMM from its ``physics`` config."""
    if system is None:
        system = make_system(physics["system"], **physics.get("parameters", {}))
    if system.state_dim != x_dim:
        raise InputError(f"system {system.name!r} has {system.state_dim} components, "
                         f"the data {x_dim}")
    clim_loc = torch.as_tensor(physics["clim_loc"], dtype=torch.float32)
    clim_scale = torch.as_tensor(physics["clim_scale"], dtype=torch.float32)
    initial = InitialState(x_dim, clim_loc, clim_scale, learn=bool(physics.get("learn_initial")))
    transition = PhysicsTransition(
        system, physics["dt"], physics["steps_per_obs"], clim_loc, clim_scale,
        hidden=tuple(physics.get("correction_hidden", (64, 64))),
        scale=physics.get("transition_scale", 0.5),
        guide_substeps=physics.get("guide_substeps"),
        learn_scale=physics.get("learn_transition_scale", True),
        correction_units=physics.get("correction_units", "climatology"),
    )
    emitter = ObservationOperator(x_dim, physics.get("observed", list(range(x_dim))))
    return initial, transition, emitter


def hybrid_dmm(
    obs: xr.Dataset,
    *,
    system: ODESystem | None = None,
    guide: str = "smoothing",
    rnn_dim: int = 128,
    rnn_type: str = "gru",
    correction_hidden: tuple[int, ...] = (64, 64),
    transition_scale: float | None = None,
    learn_transition_scale: bool = True,
    physics_substeps: int | None = None,
    guide_substeps: int | None = None,
    look_ahead: int = 0,
    smoother_iterations: int = 3,
    learn_obs_noise: bool = False,
    learn_initial: bool = False,
    likelihood: str = "gaussian",
    obs_df: float = 4.0,
    guide_residual: bool = True,
    correction_units: str = "climatology",
):
    """A hybrid-physics :class:`~pyro_videossm.models.ssm.dmm.DMM` for observations like ``obs``
    (its ``config`` holds the recipe, ``physics`` included, that
    :func:`hybrid_dmm_from_config` rebuilds it from).

    Args:
        obs: observation dataset (:func:`pyro_videossm.data.simulate` layout); its attributes
            give the system, integration step, steps per observation, observed components and
            the observation noise.
        system: known dynamics to use instead of the one named in ``obs.attrs`` (e.g.
            ``Lorenz63(rho=24)``: misspecified physics, or an unregistered system).
        guide: ``"smoothing"`` or ``"filtering"`` (or ``"meanfield"``).
        rnn_dim, rnn_type: the guide's RNN.
        correction_hidden: hidden widths of the learned correction (``()``: none).
        transition_scale: initial transition std (default: the observation noise std, so
            that the untrained guide weighs forecast and observation alike; a tenth of it
            with ``smoother_iterations``, whose guide stays well posed for a nearly
            deterministic model).
        learn_transition_scale: learn the transition noise (default) or keep
            ``transition_scale`` fixed. With physics known to be right the ELBO still raises
            the noise above what serves the estimate best (the guide's linearisation is
            less exact for a sharper posterior), so fixing a small value can pay.
        physics_substeps: RK4 steps per observation interval of the known physics ``Φ``
            (default: the data's own integration step). Fewer steps make model and guide
            cheaper at a small discretisation error, which the correction and the noise
            absorb (Lorenz-63, interval 0.25: RMS error 0.031 with 5 steps, 0.0018 with 10).
        guide_substeps: RK4 steps per interval in the guide's proposal (default: those of
            the model).
        look_ahead: future observations the guide's combiner reads through the linearised
            physics at each step (0: none; see ``GainCombiner``; not for ``"meanfield"``).
        smoother_iterations: smoothing guide only: all later observations of a window enter
            each step through the backward messages of the physics (with its learned
            correction) linearised along the guide's mean path, relinearised this many
            times (Gauss–Newton: the
            :class:`~pyro_videossm.models.ssm.guides.SmootherGuide`). 0 (or another guide):
            off; a nonzero ``look_ahead`` turns it off too.
        learn_obs_noise: learn the observation noise instead of using ``obs_noise_std``.
        learn_initial: learn the prior of ``z_1`` instead of the climatology.
        likelihood: ``"gaussian"`` or ``"student_t"`` observation errors (heavy tails, scale
            the observation noise std, ``obs_df`` degrees of freedom): robust to outliers.
        guide_residual: the gain combiner's learned residual (default); False leaves it out
            (see :class:`~pyro_videossm.nn.dmm_blocks.GainCombiner`: with a sharp posterior,
            such as a perfect model observed in part, its first training steps can spoil
            the guide).
        correction_units: ``"climatology"`` (default) or ``"transition"``: the units of the
            learned correction's output (see :class:`PhysicsTransition`; ``"transition"``
            for physics known to be right, whose correction should stay of the order of the
            transition noise).
    """
    from pyro_videossm.assimilate.problem import climatology

    obs = complete_observations(load_observations(obs), system=system)  # all missing: 1 line
    named = system_from_attrs(obs) if system is None else system
    D = named.state_dim
    if D != obs.sizes["component"]:
        raise InputError(f"system {named.name!r} has {D} components but 'obs' has "
                         f"{obs.sizes['component']}")
    dt = float(obs.attrs["integration_step"])
    steps = int(obs.attrs["steps_per_obs"])
    clim_loc, clim_scale = climatology(named, dt)
    if physics_substeps is not None:
        if int(physics_substeps) < 1:
            raise InputError(f"physics_substeps must be >= 1, got {physics_substeps}")
        dt, steps = dt * steps / int(physics_substeps), int(physics_substeps)
    if "observed_components" in obs.attrs:
        observed = [int(i) for i in np.atleast_1d(obs.attrs["observed_components"])]
    else:
        observed = observed_indices(str(obs.attrs.get("observation_operator", "all")), D)
    noise = np.broadcast_to(np.asarray(obs.attrs["obs_noise_std"], dtype=float), (D,))
    smoother_iterations = smoother_iterations if guide == "smoothing" and not look_ahead else 0
    if transition_scale is None:
        transition_scale = float(noise.mean()) * (0.1 if smoother_iterations else 1.0)
    physics = {
        "system": named.name,
        "parameters": {k: float(v) if isinstance(v, float) else v
                       for k, v in named.parameters_dict().items()},
        "dt": dt,
        "steps_per_obs": steps,
        "guide_substeps": guide_substeps,
        "observed": observed,
        "clim_loc": [float(v) for v in clim_loc],
        "clim_scale": [float(v) for v in clim_scale],
        "correction_hidden": [int(h) for h in correction_hidden],
        "transition_scale": float(transition_scale),
        "learn_transition_scale": bool(learn_transition_scale),
        "learn_initial": bool(learn_initial),
    }
    if correction_units != "climatology":  # only when set: configs stay as they were
        physics["correction_units"] = str(correction_units)
    if not all(math.isfinite(v) for v in physics["clim_loc"] + physics["clim_scale"]):
        raise InputError(f"climatology of {named.name!r} is not finite")
    config = dict(
        x_dim=D, z_dim=D, likelihood=likelihood, obs_df=float(obs_df),
        obs_scale=[float(v) for v in noise],
        learn_obs_scale=bool(learn_obs_noise), emission_dim=100, transition_dim=200,
        rnn_dim=int(rnn_dim), rnn_type=rnn_type, rnn_layers=1, rnn_dropout=0.0, guide=guide,
        combiner="gain", mask_input=True, x_loc=physics["clim_loc"],
        x_scale=physics["clim_scale"], obs_message=True,
        look_ahead=int(look_ahead if guide != "meanfield" else 0),
        smoother_iterations=int(smoother_iterations), physics=physics,
    )
    if not guide_residual:  # only when off: configs (and model files) stay as they were
        config["guide_residual"] = False
    return hybrid_dmm_from_config(config, system=system)


def hybrid_dmm_from_config(config: dict[str, Any], *, system: ODESystem | None = None) -> DMM:
    """The hybrid DMM of a ``config`` from :func:`hybrid_dmm` (as saved in model files):
    physics parts (:func:`build_physics`), the Gaussian likelihood and the guide it names;
    ``system`` replaces the system rebuilt by name from ``config["physics"]``."""
    physics, x_dim = config["physics"], int(config["x_dim"])
    initial, transition, emitter = build_physics(physics, x_dim, system)
    likelihood = make_likelihood(config.get("likelihood", "gaussian"), x_dim,
                                 config.get("obs_scale", 1.0),
                                 config.get("learn_obs_scale", True),
                                 config.get("obs_df", 4.0))
    guide = build_guide(
        config.get("guide", "smoothing"), x_dim, x_dim, combiner=config.get("combiner", "gain"),
        obs_message=config.get("obs_message", True), look_ahead=config.get("look_ahead", 0),
        smoother_iterations=config.get("smoother_iterations", 0),
        rnn_dim=config.get("rnn_dim", 128), rnn_type=config.get("rnn_type", "gru"),
        rnn_layers=config.get("rnn_layers", 1), rnn_dropout=config.get("rnn_dropout", 0.0),
        mask_input=config.get("mask_input", True), x_loc=config.get("x_loc"),
        x_scale=config.get("x_scale"), z_loc=physics["clim_loc"],
        z_scale=physics["clim_scale"], observed=physics.get("observed"),
        residual=config.get("guide_residual", True))
    return DMM(x_dim, initial=initial, transition=transition, emitter=emitter,
               likelihood=likelihood, guide=guide, config=dict(config))


def observation_windows(obs: xr.Dataset, window: int, stride: int | None = None
                        ) -> dict[str, Tensor]:
    """Training windows of an observation dataset: ``{"x": (B, window, D), "mask": ...}``.

    Windows of ``window`` cycles start every ``stride`` cycles (default ``window // 2``);
    windows with no observation at all are dropped.
    """
    from pyro_videossm.data.windows import cut_windows

    obs = load_observations(obs)
    x, mask = cut_windows(obs["obs"], int(window), int(stride or max(1, window // 2)))
    keep = mask.flatten(1).any(1)
    return {"x": x[keep], "mask": mask[keep]}


__all__ = ["ObservationOperator", "PhysicsTransition", "build_physics", "hybrid_dmm",
           "hybrid_dmm_from_config", "observation_windows"]
