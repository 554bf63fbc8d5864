"""Learned data assimilation: a trained DMM's guide as an assimilation method (``"dmm"``).

The guide ``q(z_{1:T} | x_{1:T})`` of a trained (hybrid) DMM is a posterior over the state
sequence given the observations. ``get_method("dmm", model="model.pt")`` draws ``samples``
sequences from it in one batched pass and summarises them (mean, std, quantiles) through the
common interface::

    from pyro_videossm.assimilate import assimilate
    post = assimilate(obs, "dmm", model="model.pt", samples=200)   # new data, same system

Options: ``model`` (path to a file from ``videossm train dmm``, or a :class:`DMM`),
``guide`` (``"smoothing"`` or ``"filtering"``; must be the guide the model was trained with;
default: that guide), ``samples`` (guide draws). ``kind`` is ``"smoother"`` for the smoothing
(and mean-field) guide and ``"filter"`` for the filtering guide, whose draw at ``t`` uses
``x_{1:t}`` only. For a hybrid DMM the latent is the state; for a purely neural DMM the
state estimate is the emission mean ``E[x_t | z_t]`` under the guide's draws.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from pyro_videossm.assimilate.estimate import Estimate
from pyro_videossm.assimilate.method import AssimilationMethod, register_method
from pyro_videossm.assimilate.problem import AssimilationProblem
from pyro_videossm.errors import InputError
from pyro_videossm.models.dmm import DMM, load_dmm

_KIND = {"smoothing": "smoother", "meanfield": "smoother", "filtering": "filter"}


@register_method
class DMMAssimilation(AssimilationMethod):
    """Posterior from a trained DMM guide (see the module docstring)."""

    name = "dmm"
    kind = "smoother"
    default_dtype = torch.float32

    def __init__(self, model: str | Path | DMM | None = None, guide: str | None = None,
                 samples: int = 200):
        if model is None:
            raise InputError("method 'dmm' needs the option model=PATH "
                             "(a model file written by 'videossm train dmm')")
        if isinstance(model, DMM):
            self._dmm = model
            self.model = None
        else:
            self._dmm = None
            self.model = str(model)
        if int(samples) < 2:
            raise InputError(f"method 'dmm': samples must be >= 2, got {samples}")
        self.samples = int(samples)
        trained = self._trained_guide()
        if guide is not None and guide != trained:
            raise InputError(f"method 'dmm': the model was trained with the {trained!r} guide, "
                             f"not {guide!r} (train one with 'videossm train dmm --guide "
                             f"{guide}')")
        self.guide = trained
        self.kind = _KIND[trained]

    def _trained_guide(self) -> str:
        if self._dmm is not None:
            return self._dmm.guide_kind
        from pyro_videossm.infer import load_model_file

        config = load_model_file(self.model, expected_name="dmm")["config"]
        guide = config.get("guide")
        if guide not in _KIND:
            raise InputError(f"model file {self.model}: unknown guide {guide!r}")
        return guide

    def load(self, device: torch.device | str = "cpu") -> DMM:
        """The trained DMM (loaded from ``model`` once), on ``device``."""
        if self._dmm is None:
            self._dmm, _ = load_dmm(self.model)
        return self._dmm.to(device)

    def run(self, problem: AssimilationProblem, *, generator: torch.Generator,
            progress: bool = False) -> Estimate:
        dmm = self.load(problem.device).eval()
        check_problem(dmm, problem)
        batch = {"x": problem.obs.float().unsqueeze(0), "mask": problem.mask.unsqueeze(0)}
        z = dmm.sample_posterior(batch, self.samples, generator=generator)  # (S, 1, T, Z)
        with torch.no_grad():
            states = dmm.emitter(z[:, 0])  # hybrid: the state itself; neural: E[x_t | z_t]
            if dmm.config["likelihood"] == "bernoulli":
                states = torch.sigmoid(states)
        return Estimate.from_ensemble(states.transpose(0, 1).to(problem.dtype))  # (T, S, D)


def check_problem(dmm: DMM, problem: AssimilationProblem) -> None:
    """Refuse data the model was not trained for (dimension, observation interval)."""
    cfg = dmm.config
    if problem.state_dim != cfg["x_dim"]:
        raise InputError(f"the DMM was trained on {cfg['x_dim']} components, the data have "
                         f"{problem.state_dim}")
    physics = cfg.get("physics")
    if physics is not None:
        interval = physics["dt"] * physics["steps_per_obs"]
        data_interval = problem.dt * problem.steps_per_obs
        if not math.isclose(interval, data_interval, rel_tol=1e-6):
            raise InputError(f"the DMM was trained for an observation interval of {interval:g}, "
                             f"the data have {data_interval:g}")
        if physics.get("system") != problem.attrs.get("system", physics.get("system")):
            raise InputError(f"the DMM was trained on {physics['system']!r} data, these are "
                             f"{problem.attrs.get('system')!r}")


__all__ = ["DMMAssimilation", "check_problem"]
