"""Heavy-tailed observation likelihoods for the Gaussian-update filters, by reweighting.

An ensemble Kalman update assumes Gaussian observation errors, so one gross outlier drags
the analysis (and, on a chaotic system, the next forecasts) far away. With
``obs_likelihood="huber"`` or ``"student_t"`` each observed component's error variance is
divided by an iteratively-reweighted-least-squares weight computed from its standardised
innovation ``z = d / sqrt(HP_fH^T + R)`` (diagonal), once per cycle:

- Huber (Roh et al. 2013's Huber EnKF): ``w = min(1, c / |z|)`` with ``c = robust_param``
  (default 1.345, 95 % efficiency under Gaussian errors);
- Student-t: ``w = (nu + 1) / (nu + z^2)`` with ``nu = robust_param`` degrees of freedom
  (default: the data's ``obs_noise_df`` when its noise is Student-t, else 4).

Both leave inliers (``|z|`` about 1) almost untouched and give an outlier a variance that
grows with its distance, so its influence on the analysis is bounded.
"""

from __future__ import annotations

from torch import Tensor

from pyro_videossm.errors import InputError

LIKELIHOODS = ("gaussian", "huber", "student_t")


def check_likelihood(obs_likelihood: str, robust_param: float | None) -> tuple[str, float | None]:
    """Validate the option pair; one-line InputError otherwise."""
    if obs_likelihood not in LIKELIHOODS:
        raise InputError(f"option 'obs_likelihood' must be one of {', '.join(LIKELIHOODS)}, "
                         f"got {obs_likelihood!r}")
    if robust_param is not None:
        try:
            robust_param = float(robust_param)
        except (TypeError, ValueError):
            raise InputError(f"option 'robust_param' must be a number, got {robust_param!r}"
                             ) from None
        if not robust_param > 0 or robust_param == float("inf"):
            raise InputError(f"option 'robust_param' must be a finite number > 0, "
                             f"got {robust_param!r}")
    return obs_likelihood, robust_param


def default_param(obs_likelihood: str, robust_param: float | None, data_df: float) -> float:
    """``c`` for Huber, ``nu`` for Student-t when the user gave none."""
    if robust_param is not None:
        return robust_param
    if obs_likelihood == "huber":
        return 1.345
    return data_df if data_df > 0 else 4.0


def reweighting(innovation: Tensor, predicted_var: Tensor, obs_likelihood: str,
                param: float) -> Tensor:
    """IRLS weights ``(..., D)`` in ``(0, 1]`` (1 for the Gaussian likelihood).

    ``innovation``: observation minus forecast mean; ``predicted_var``: its predicted
    variance ``diag(H P_f H^T) + r^2``. Divide the observation error variance by the weight.
    """
    if obs_likelihood == "gaussian":
        return innovation.new_ones(innovation.shape)
    z2 = innovation.square() / predicted_var
    if obs_likelihood == "huber":
        return (param / z2.sqrt().clamp_min(1e-300)).clamp(max=1.0)
    return ((param + 1.0) / (param + z2)).clamp(max=1.0)
