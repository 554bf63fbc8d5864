"""Observation operators for chaotic-system data: which state components are observed.

An operator is written as a short spec string, stored verbatim in dataset attributes:

- ``"all"``: every component;
- ``"every:K"``: every K-th component, starting at the first (``every:2`` -> 0, 2, 4, ...);
- ``"subset:I,J,..."``: the listed component indices.
"""

from __future__ import annotations

from collections.abc import Sequence

from pyro_videossm.errors import InputError


def observed_indices(spec: str | Sequence[int], state_dim: int) -> list[int]:
    """Indices of the observed components for an operator spec (or an explicit index list)."""
    if not isinstance(spec, str):
        idx = [int(i) for i in spec]
    elif spec == "all":
        idx = list(range(state_dim))
    elif spec.startswith("every:"):
        try:
            k = int(spec.split(":", 1)[1])
        except ValueError:
            raise InputError(
                f"observation operator {spec!r}: K in 'every:K' must be an integer"
            ) from None
        if k < 1:
            raise InputError(f"observation operator {spec!r}: K must be >= 1")
        idx = list(range(0, state_dim, k))
    elif spec.startswith("subset:"):
        try:
            idx = [int(i) for i in spec.split(":", 1)[1].split(",") if i.strip()]
        except ValueError:
            raise InputError(f"observation operator {spec!r}: indices must be integers") from None
    else:
        raise InputError(
            f"unknown observation operator {spec!r}; use 'all', 'every:K' or 'subset:I,J,...'"
        )
    if not idx:
        raise InputError(f"observation operator {spec!r} observes no component")
    bad = [i for i in idx if not 0 <= i < state_dim]
    if bad:
        raise InputError(
            f"observation operator {spec!r}: indices {bad} outside 0..{state_dim - 1}"
        )
    if len(set(idx)) != len(idx):
        raise InputError(f"observation operator {spec!r} repeats a component")
    return sorted(idx)


def operator_spec(spec: str | Sequence[int]) -> str:
    """Canonical string form of an operator (index lists become ``subset:...``)."""
    if isinstance(spec, str):
        return spec
    return "subset:" + ",".join(str(int(i)) for i in spec)
