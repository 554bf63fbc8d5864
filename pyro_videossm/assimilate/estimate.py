"""What a method returns (tensors), and how it becomes the posterior Dataset (xarray)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import xarray as xr
from torch import Tensor

from pyro_videossm import __version__
from pyro_videossm.assimilate.problem import AssimilationProblem
from pyro_videossm.data.chaotic import MODEL_TIME_ATTRS
from pyro_videossm.data.conventions import CONVENTIONS, encode_json_attr

#: Quantile levels written by default: median, the 50% and the 90% central intervals.
DEFAULT_QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


@dataclass
class Estimate:
    """A method's estimate of the state at each cycle. Shapes: ``T`` cycles, ``D`` components.

    Either Gaussian (``mean``, ``std``) or an ensemble ``(T, N, D)`` with optional normalised
    ``weights`` ``(T, N)`` (particle filters); ensembles give mean/std/quantiles empirically.
    Filters also record the innovation statistics of their forecasts (see
    :mod:`pyro_videossm.assimilate.consistency`): ``nis (T,)`` and ``nis_dof (T,)``, and
    particle filters the effective sample size ``ess (T,)``.
    """

    mean: Tensor
    std: Tensor
    ensemble: Tensor | None = None
    weights: Tensor | None = None
    nis: Tensor | None = None
    nis_dof: Tensor | None = None
    ess: Tensor | None = None

    @classmethod
    def from_ensemble(cls, ensemble: Tensor, weights: Tensor | None = None) -> Estimate:
        """Summarise an ensemble ``(T, N, D)`` (weighted when ``weights (T, N)`` is given)."""
        if weights is None:
            mean = ensemble.mean(1)
            std = ensemble.std(1, unbiased=ensemble.shape[1] > 1)
        else:
            w = weights.unsqueeze(-1)
            mean = (w * ensemble).sum(1)
            std = (w * (ensemble - mean.unsqueeze(1)) ** 2).sum(1).clamp_min(0).sqrt()
        return cls(mean=mean, std=std, ensemble=ensemble, weights=weights)

    def quantiles(self, levels: tuple[float, ...]) -> Tensor:
        """Quantiles ``(Q, T, D)``: empirical (weighted) for ensembles, Gaussian otherwise."""
        q = torch.as_tensor(levels, dtype=self.mean.dtype, device=self.mean.device)
        if self.ensemble is None:
            normal = torch.distributions.Normal(0.0, 1.0)
            z = normal.icdf(q.float()).to(self.mean.dtype)
            return self.mean + z[:, None, None] * self.std
        return weighted_quantiles(self.ensemble, q, self.weights)


def weighted_quantiles(ensemble: Tensor, q: Tensor, weights: Tensor | None = None) -> Tensor:
    """Quantiles over the member axis of ``ensemble (T, N, D)``: returns ``(Q, T, D)``.

    Without weights this is ``torch.quantile`` (linear interpolation); with normalised
    weights ``(T, N)`` it inverts the weighted empirical CDF at mid-point plotting positions.
    """
    if weights is None:
        return torch.quantile(ensemble, q, dim=1)
    T, N, D = ensemble.shape
    values, order = ensemble.transpose(1, 2).reshape(T * D, N).sort(dim=1)  # (T*D, N)
    w = weights.unsqueeze(1).expand(T, D, N).reshape(T * D, N).gather(1, order)
    cdf = w.cumsum(1) - 0.5 * w
    levels = q.to(cdf.dtype).expand(T * D, -1).contiguous()  # (T*D, Q)
    hi = torch.searchsorted(cdf.contiguous(), levels).clamp(1, N - 1)
    lo = hi - 1
    c_lo, c_hi = cdf.gather(1, lo), cdf.gather(1, hi)
    v_lo, v_hi = values.gather(1, lo), values.gather(1, hi)
    frac = ((levels - c_lo) / (c_hi - c_lo).clamp_min(1e-12)).clamp(0, 1)
    out = v_lo + frac * (v_hi - v_lo)  # (T*D, Q)
    return out.reshape(T, D, -1).permute(2, 0, 1)


#: Encoding of an input time coordinate that the posterior keeps (how dates are stored).
TIME_ENCODING_KEYS = ("units", "calendar", "dtype")


def time_coordinate(problem: AssimilationProblem) -> xr.Variable:
    """The posterior's ``time``: the input's coordinate with its values, attributes and
    encoding (units, calendar, dtype: datetimes and cftime dates are written back as they
    were read), or model time (:data:`~pyro_videossm.data.chaotic.MODEL_TIME_ATTRS`)."""
    coord = problem.time_coord
    if coord is None or len(coord) != len(problem.times):
        return xr.Variable("time", np.asarray(problem.times), dict(MODEL_TIME_ATTRS))
    attrs = dict(coord.attrs)
    if attrs.get("units") == "1" and np.issubdtype(np.asarray(coord.values).dtype, np.number):
        attrs = {k: v for k, v in attrs.items() if k != "axis"}  # model time, not CF time
        attrs = {**MODEL_TIME_ATTRS, **attrs}
    encoding = {k: v for k, v in coord.encoding.items() if k in TIME_ENCODING_KEYS}
    return xr.Variable("time", coord.values, attrs, encoding)


def posterior_dataset(
    estimate: Estimate,
    problem: AssimilationProblem,
    *,
    method: str,
    kind: str,
    options: dict,
    quantiles: tuple[float, ...] = DEFAULT_QUANTILES,
    n_samples: int = 0,
    extra_attrs: dict | None = None,
) -> xr.Dataset:
    """The posterior as a Dataset: ``mean``, ``std`` ``(time, component)``,
    ``quantiles(quantile, time, component)`` (a variable cannot share its name with the
    ``quantile`` coordinate in xarray) and, with ``n_samples > 0`` for ensemble
    estimates, ``samples(sample, time, component)`` (members, resampled by weight if weighted).
    """
    units = "1"
    dims = ("time", "component")
    mean = estimate.mean.detach().cpu().numpy()
    std = estimate.std.detach().cpu().numpy()
    qs = estimate.quantiles(tuple(quantiles)).detach().cpu().numpy()
    label = {"filter": "filtering (analysis)", "smoother": "smoothing"}.get(kind, kind)
    data_vars = {
        "mean": (dims, mean, {"long_name": f"{label} posterior mean", "units": units}),
        "std": (dims, std, {"long_name": f"{label} posterior standard deviation",
                            "units": units}),
        "quantiles": (("quantile",) + dims, qs,
                     {"long_name": f"{label} posterior quantiles", "units": units}),
    }
    if estimate.nis is not None and estimate.nis_dof is not None:
        data_vars["innovation_nis"] = ("time", estimate.nis.detach().cpu().numpy(), {
            "long_name": "normalised innovation squared of the forecast", "units": "1"})
        data_vars["innovation_dof"] = ("time", estimate.nis_dof.detach().cpu().numpy(), {
            "long_name": "observed components (expected NIS)", "units": "1"})
    if estimate.ess is not None:
        data_vars["effective_sample_size"] = ("time", estimate.ess.detach().cpu().numpy(), {
            "long_name": "effective sample size of the particle weights", "units": "1"})
    if n_samples > 0 and estimate.ensemble is not None:
        ens = estimate.ensemble.detach()
        if estimate.weights is not None:
            gen = torch.Generator(device=ens.device).manual_seed(0)
            idx = torch.multinomial(estimate.weights, n_samples, replacement=True, generator=gen)
            ens = torch.gather(ens, 1, idx.unsqueeze(-1).expand(-1, -1, ens.shape[-1]))
        else:
            ens = ens[:, :n_samples]
        data_vars["samples"] = (("sample",) + dims, ens.permute(1, 0, 2).cpu().numpy(),
                               {"long_name": f"{label} posterior samples", "units": units})
    attrs = {
        "Conventions": CONVENTIONS,
        "title": f"{method} {label} posterior",
        "source": f"pyro-videossm {__version__}",
        "method": method,
        "estimate": kind,
        "method_options": encode_json_attr(options),
    }
    for key in ("system", "system_parameters", "integration_step", "steps_per_obs",
                "obs_noise_std", "process_noise_std", "observation_operator", "seed"):
        if key in problem.attrs:
            attrs[f"obs_{key}" if key == "seed" else key] = problem.attrs[key]
    attrs.update(extra_attrs or {})
    return xr.Dataset(
        data_vars,
        coords={
            "time": time_coordinate(problem),
            "component": ("component", np.asarray(problem.component_names, dtype=object),
                          {"long_name": "state component"}),
            "quantile": ("quantile", np.asarray(quantiles, dtype=float),
                         {"long_name": "quantile level", "units": "1"}),
        },
        attrs=attrs,
    )
