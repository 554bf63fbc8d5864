"""The Fréchet distance between two Gaussians fitted to feature sets (FID / FVD's formula).

For features ``A (N, D)`` and ``B (M, D)`` with means ``mu_a, mu_b`` and covariances
``S_a, S_b``:

    d^2 = |mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a S_b)^{1/2})

the squared 2-Wasserstein distance between ``N(mu_a, S_a)`` and ``N(mu_b, S_b)``. The matrix
square root is :func:`scipy.linalg.sqrtm`'s; its tiny imaginary part (rounding, or singular
covariances when there are fewer samples than dimensions) is dropped, and the trace is clipped
at 0. In this toolkit the features are a :class:`~pyro_videossm.evaluation.judge.Judge`'s, not
an Inception network's: the numbers are the *judge-FID* (frame features) and *judge-FVD
analogue* (clip features), comparable between models scored by the same judge only.
"""

from __future__ import annotations

import numpy as np

from pyro_videossm.errors import InputError


def gaussian_statistics(features) -> tuple[np.ndarray, np.ndarray]:
    """Mean ``(D,)`` and covariance ``(D, D)`` (``N - 1`` normalisation) of ``features (N, D)``
    (numpy array or tensor), in float64."""
    x = np.asarray(features.detach().cpu() if hasattr(features, "detach") else features,
                   dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise InputError(f"features must be (N, D) with N >= 2, got {x.shape}")
    if not np.isfinite(x).all():
        raise InputError("features contain NaN or infinite values")
    return x.mean(0), np.cov(x, rowvar=False).reshape(x.shape[1], x.shape[1])


def frechet_distance(mu_a, cov_a, mu_b, cov_b) -> float:
    """Squared Fréchet distance between ``N(mu_a, cov_a)`` and ``N(mu_b, cov_b)`` (module
    doc)."""
    from scipy.linalg import sqrtm

    mu_a, mu_b = np.asarray(mu_a, np.float64), np.asarray(mu_b, np.float64)
    cov_a, cov_b = np.asarray(cov_a, np.float64), np.asarray(cov_b, np.float64)
    if mu_a.shape != mu_b.shape or cov_a.shape != cov_b.shape or cov_a.shape != (
            mu_a.size, mu_a.size):
        raise InputError(f"Gaussians of different dimensions: means {mu_a.shape} and "
                         f"{mu_b.shape}, covariances {cov_a.shape} and {cov_b.shape}")
    root = sqrtm(cov_a @ cov_b)
    root = np.real(root)
    trace = float(np.trace(cov_a) + np.trace(cov_b) - 2 * np.trace(root))
    diff = mu_a - mu_b
    return float(diff @ diff) + max(trace, 0.0)


def frechet_distance_of_features(a, b) -> float:
    """:func:`frechet_distance` of the Gaussians fitted to feature sets ``a (N, D)`` and
    ``b (M, D)``."""
    return frechet_distance(*gaussian_statistics(a), *gaussian_statistics(b))
