"""Learned data assimilation: a trained DMM's guide as an assimilation method (``"dmm"``).

The guide ``q(z_{1:T} | x_{1:T})`` of a trained (hybrid) DMM is a posterior over the state
sequence given the observations. ``get_method("dmm", model="model.pt")`` draws ``samples``
sequences from it in one batched pass and summarises them (mean, std, quantiles) through the
common interface::

    from pyro_videossm.assimilate import assimilate
    post = assimilate(obs, "dmm", model="model.pt", samples=200)   # new data, same system

Options: ``model`` (path to a file from ``videossm train dmm``, or a :class:`DMM`),
``guide`` (``"smoothing"`` or ``"filtering"``; must be the guide the model was trained with;
default: that guide), ``samples`` (guide draws), ``window`` (cycles per window: the record is
cut into overlapping windows as long as the training windows, all assimilated in one batch,
and each cycle is taken from the window that suits it best; default: the training window
stored in the model file, else the whole record in one sequence), ``stride`` (cycles between
window starts; default half a window, so each cycle is at least a quarter window from the
ends of the window it is taken from), ``obs_likelihood`` (``"gaussian"``, ``"huber"`` or
``"student_t"``; default: the model's own, Student-t for a model trained with
``--likelihood student_t``), ``robust_param`` (Huber's ``c``, default 1.345, or Student-t's
degrees of freedom, default the model's ``obs_df``, else the data's, else 4) and
``robust_iterations`` (reweighting passes, default 3): heavy-tailed observations by
iteratively reweighted observation messages
(:mod:`~pyro_videossm.models.ssm.robust_guide`), so that a few gross outliers barely move
the posterior; with the Gaussian likelihood an observation more than 50 climatological
standard deviations away is refused in one line naming its cycle. ``smoother_iterations``:
the Gauss–Newton relinearisations of a hybrid model's smoother guide at inference (default:
those it was trained with; windows longer than the training ones may need more). A guide
trained on short windows has only learned to track the truth that long; applied to a record
of thousands of cycles in one piece its draws can drift away from the truth.

``kind`` is ``"smoother"`` for the smoothing (and mean-field) guide and ``"filter"`` for the
filtering guide, whose draw at ``t`` uses ``x_{1:t}`` only. For a hybrid DMM the latent is
the state; for a purely neural DMM the state estimate is the emission mean ``E[x_t | z_t]``
under the guide's draws.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from pyro_videossm.assimilate.estimate import Estimate
from pyro_videossm.assimilate.method import AssimilationMethod, register_method
from pyro_videossm.assimilate.problem import AssimilationProblem
from pyro_videossm.errors import InputError
from pyro_videossm.filters.robust import check_likelihood, default_param
from pyro_videossm.models.ssm.dmm import DMM
from pyro_videossm.models.ssm.dmm_file import load_dmm
from pyro_videossm.models.ssm.robust_guide import robust_posterior_draws
from pyro_videossm.nn.dmm_blocks import BernoulliLikelihood, StudentTLikelihood

_KIND = {"smoothing": "smoother", "meanfield": "smoother", "filtering": "filter"}


@register_method
class DMMAssimilation(AssimilationMethod):
    """Posterior from a trained DMM guide (see the module docstring)."""

    name = "dmm"
    kind = "smoother"
    default_dtype = torch.float32
    needs_settings = False  # the trained model holds its dynamics and noise

    def __init__(self, model: str | Path | DMM | None = None, guide: str | None = None,
                 samples: int = 200, window: int | None = None, stride: int | None = None,
                 obs_likelihood: str | None = None, robust_param: float | None = None,
                 robust_iterations: int = 3, smoother_iterations: int | None = None):
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
        if window is not None and int(window) < 2:
            raise InputError(f"method 'dmm': window must be >= 2, got {window}")
        self.window = None if window is None else int(window)
        if stride is not None and int(stride) < 1:
            raise InputError(f"method 'dmm': stride must be >= 1, got {stride}")
        self.stride = None if stride is None else int(stride)
        trained = self._trained_guide()
        if guide is not None and guide != trained:
            raise InputError(f"method 'dmm': the model was trained with the {trained!r} guide, "
                             f"not {guide!r} (train one with 'videossm train dmm --guide "
                             f"{guide}')")
        self.guide = trained
        self.kind = _KIND[trained]
        likelihood = self._dmm.likelihood
        if obs_likelihood is None:  # the model's own
            obs_likelihood = ("student_t" if isinstance(likelihood, StudentTLikelihood)
                              else "gaussian")
        self.obs_likelihood, self.robust_param = check_likelihood(obs_likelihood, robust_param)
        if self.obs_likelihood != "gaussian" and isinstance(likelihood, BernoulliLikelihood):
            raise InputError(f"method 'dmm': obs_likelihood={self.obs_likelihood!r} needs a "
                             "model with Gaussian or Student-t observations, not Bernoulli")
        if int(robust_iterations) < 1:
            raise InputError(f"method 'dmm': robust_iterations must be >= 1, "
                             f"got {robust_iterations}")
        self.robust_iterations = int(robust_iterations)
        self.smoother_iterations = None
        if smoother_iterations is not None:
            if int(smoother_iterations) < 1:
                raise InputError(f"method 'dmm': smoother_iterations must be >= 1, "
                                 f"got {smoother_iterations}")
            if not getattr(self._dmm.guide.combiner, "smoother_iterations", 0):
                raise InputError("method 'dmm': smoother_iterations needs a model trained with "
                                 "the Gauss-Newton smoother guide (smoother_iterations > 0)")
            self.smoother_iterations = int(smoother_iterations)

    def _trained_guide(self) -> str:
        if self.model is None:  # given a DMM
            return self._dmm.guide_kind
        # read the model file once: the DMM it holds is kept for run()
        self._dmm, extra = load_dmm(self.model)
        if self.window is None:  # the guide is applied to windows as long as it was trained on
            trained_window = extra.get("window")
            self.window = int(trained_window) if trained_window else None
        guide = self._dmm.guide_kind
        if guide not in _KIND:
            raise InputError(f"model file {self.model}: unknown guide {guide!r}")
        return guide

    def accepts_outliers(self, problem: AssimilationProblem) -> bool:
        return self.obs_likelihood != "gaussian" or super().accepts_outliers(problem)

    def load(self, device: torch.device | str = "cpu") -> DMM:
        """The trained DMM (given, or read from ``model`` at construction), on ``device``."""
        return self._dmm.to(device)

    def run(self, problem: AssimilationProblem, *, generator: torch.Generator,
            progress: bool = False) -> Estimate:
        dmm = self.load(problem.device).eval()
        check_problem(dmm, problem)
        x, mask = problem.obs.float(), problem.mask
        T = x.shape[0]
        W = T if self.window is None or self.window >= T else self.window
        starts = window_starts(T, W, self.kind, self.stride)
        batch = window_batch(x, mask, starts, W)
        model_df = getattr(dmm.likelihood, "df", 0.0)
        param = default_param(self.obs_likelihood, self.robust_param,
                              float(model_df) or problem.obs_noise_df)
        combiner = dmm.guide.combiner
        trained = getattr(combiner, "smoother_iterations", 0)
        try:
            if self.smoother_iterations is not None:
                combiner.smoother_iterations = self.smoother_iterations
            z, _ = robust_posterior_draws(dmm, batch, self.samples,  # (S, n, W, Z)
                                          obs_likelihood=self.obs_likelihood, param=param,
                                          iterations=self.robust_iterations,
                                          generator=generator)
        finally:
            if self.smoother_iterations is not None:
                combiner.smoother_iterations = trained
        with torch.no_grad():
            states = dmm.emitter(z)  # hybrid: the state itself; neural: E[x_t | z_t]
            if isinstance(dmm.likelihood, BernoulliLikelihood):
                states = torch.sigmoid(states)
        # each cycle from the window that suits it best (see window_choice)
        which, pos = window_choice(starts, W, T, self.kind)
        ensemble = states[:, which.to(states.device), pos.to(states.device)]  # (S, T, D)
        return Estimate.from_ensemble(ensemble.transpose(0, 1).to(problem.dtype))  # (T, S, D)


def window_starts(T: int, W: int, kind: str, stride: int | None = None) -> torch.Tensor:
    """Starts of the windows of ``W`` cycles the record is cut into (every ``stride``
    cycles, default ``W // 2``; the last one ends at ``T``)."""
    if W >= T:
        return torch.zeros(1, dtype=torch.long)
    stride = max(1, W // 2 if stride is None else int(stride))
    starts = list(range(0, T - W + 1, stride))
    if starts[-1] != T - W:
        starts.append(T - W)
    return torch.tensor(starts, dtype=torch.long)


def window_batch(x: torch.Tensor, mask: torch.Tensor, starts: torch.Tensor, W: int
                 ) -> dict[str, torch.Tensor]:
    """The windows of ``W`` cycles starting at ``starts (n,)`` (any device) cut from a record
    ``x, mask (T, D)``: ``{"x": (n, W, D), "mask": (n, W, D)}`` on the record's device."""
    idx = starts.to(x.device).unsqueeze(-1) + torch.arange(W, device=x.device)  # (n, W)
    return {"x": x[idx], "mask": mask[idx]}


def window_choice(starts: torch.Tensor, W: int, T: int, kind: str
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """For each cycle ``t``: the window it is taken from and its position there.

    Smoothers take the window in which ``t`` is most central (past and future context);
    filters the one in which ``t`` has the longest past (so the estimate at ``t`` still
    uses observations up to ``t`` only).
    """
    t = torch.arange(T).unsqueeze(-1)
    pos = t - starts.unsqueeze(0)  # (T, n)
    inside = (pos >= 0) & (pos < W)
    score = torch.minimum(pos, W - 1 - pos) if kind == "smoother" else pos
    score = torch.where(inside, score, torch.full_like(score, -1))
    which = score.argmax(-1)
    return which, pos.gather(1, which.unsqueeze(-1)).squeeze(-1)


def check_problem(dmm: DMM, problem: AssimilationProblem) -> None:
    """Refuse data the model was not trained for (dimension, observation interval)."""
    if problem.state_dim != dmm.x_dim:
        raise InputError(f"the DMM was trained on {dmm.x_dim} components, the data have "
                         f"{problem.state_dim}")
    physics = (dmm.config or {}).get("physics")
    if physics is not None and problem.steps_per_obs >= 1 and math.isfinite(problem.dt):
        interval = physics["dt"] * physics["steps_per_obs"]
        data_interval = problem.dt * problem.steps_per_obs
        if not math.isclose(interval, data_interval, rel_tol=1e-6):
            raise InputError(f"the DMM was trained for an observation interval of {interval:g}, "
                             f"the data have {data_interval:g}")
        if physics.get("system") != problem.attrs.get("system", physics.get("system")):
            raise InputError(f"the DMM was trained on {physics['system']!r} data, these are "
                             f"{problem.attrs.get('system')!r}")


__all__ = ["DMMAssimilation", "check_problem", "window_batch", "window_choice", "window_starts"]
