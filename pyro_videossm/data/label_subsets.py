"""Stratified labelled subsets for few-label (semi-supervised) experiments.

:func:`stratified_subset` keeps a ``fraction`` of the clips of every class, chosen by a seeded
permutation within each class, so that 1 % of the 9000 training sprites is 10 clips of each of
the 9 motions, and the same seed always gives the same clips::

    >>> import numpy as np
    >>> labels = np.repeat(np.arange(3), 100)              # 3 classes of 100 clips
    >>> idx = stratified_subset(labels, 0.05, seed=0)
    >>> np.bincount(labels[idx]).tolist()
    [5, 5, 5]
"""

from __future__ import annotations

import numpy as np

from pyro_videossm.errors import InputError


def class_quota(count: int, fraction: float) -> int:
    """Clips kept of a class of ``count`` clips: ``round(fraction * count)``, at least 1."""
    return min(count, max(1, int(round(fraction * count))))


def stratified_subset(labels, fraction: float, seed: int = 0) -> np.ndarray:
    """Indices (sorted, int64) of a labelled subset: from each class ``c`` with ``n_c`` clips,
    :func:`class_quota` ``(n_c, fraction)`` clips drawn without replacement by
    ``numpy.random.default_rng([seed, c])`` (so the clips of one class do not depend on the
    other classes). ``labels``: ``(N,)`` integer class indices; ``fraction`` in (0, 1]."""
    y = np.asarray(labels)
    if y.ndim != 1 or y.size == 0:
        raise InputError(f"labels must be a non-empty 1-D array, got shape {y.shape}")
    if not np.issubdtype(y.dtype, np.integer):
        raise InputError("labels must be integer class indices")
    if not (0 < fraction <= 1):
        raise InputError(f"the label fraction must be in (0, 1], got {fraction:g}")
    if not 0 <= seed < 2**32:
        raise InputError(f"the seed must be in [0, 2**32), got {seed}")
    chosen = []
    for c in np.unique(y):
        members = np.flatnonzero(y == c)
        rng = np.random.default_rng([int(seed), int(c) % 2**32])
        chosen.append(rng.permutation(members)[:class_quota(len(members), fraction)])
    return np.sort(np.concatenate(chosen)).astype(np.int64)
