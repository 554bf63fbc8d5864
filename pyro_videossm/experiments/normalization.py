"""The normalisation rules of the experiment layer: which :class:`FieldScaling` a name means.

Every model trained by :mod:`pyro_videossm.experiments` sees its data in *model units*
``y = scaling.forward(x)``; the scaling is fitted on the training part only (never on the
validation or test part) and stored in the model file, so forecasts are mapped back to physical
units with ``scaling.inverse``. The names (``--normalize`` on the command line):

* ``robust``: ``y = (x - q01) / (q99 - q01)``, the 1st and 99th percentiles of the training
  values map to 0 and 1 (heavy-tailed noise does not set the scale);
* ``minmax``: the training range maps onto [0, 1];
* ``log``: the training range of ``log(x + eps)`` maps onto [0, 1] (``eps = 0.01``; data must
  be > ``-eps``);
* ``none``: the identity, ``y = x`` (data are used as they are; a model that needs a range,
  e.g. frames in [0, 1], checks it itself).

NaN are missing values and are ignored; infinite values are refused.
"""

from __future__ import annotations

import numpy as np

from pyro_videossm.data.scaling import FieldScaling
from pyro_videossm.errors import InputError

NORMALIZATIONS: tuple[str, ...] = ("robust", "minmax", "log", "none")
#: the percentiles ``robust`` maps onto 0 and 1
ROBUST_QUANTILES: tuple[float, float] = (0.01, 0.99)
#: the offset inside ``log``'s ``log(x + eps)``
LOG_EPS = 0.01


def check_normalization(normalize: str) -> str:
    if normalize not in NORMALIZATIONS:
        raise InputError(f"--normalize must be one of {', '.join(NORMALIZATIONS)}, "
                         f"got {normalize!r}")
    return normalize


def fit_scaling(values, normalize: str, units: str = "", eps: float = LOG_EPS) -> FieldScaling:
    """The scaling named ``normalize`` fitted on ``values`` (any shape; NaN ignored).

    ``values`` are the training part (or, for ``minmax``/``log``, anything with the same
    minimum and maximum; for ``robust``, a sample of it).
    """
    check_normalization(normalize)
    values = np.asarray(values, dtype=np.float64)
    finite = values[~np.isnan(values)]
    if finite.size == 0:
        raise InputError("the training data are all missing")
    if not np.isfinite(finite).all():
        raise InputError("the data contain infinite values")
    if normalize == "none":
        return FieldScaling(units=units)
    if normalize == "robust":
        lo, hi = (float(q) for q in np.quantile(finite, ROBUST_QUANTILES))
        return FieldScaling(offset=lo, scale=hi - lo if hi > lo else 1.0, units=units)
    if normalize == "log" and finite.min() <= -eps:
        raise InputError(f"log normalisation needs data > -{eps:g}, min is {finite.min():g}")
    return FieldScaling.fit_minmax(finite, log=normalize == "log", eps=eps, units=units)
