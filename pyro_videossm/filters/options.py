"""Checked conversion of method options (from Python, configs or ``--set KEY=VALUE``).

Each helper returns the plain Python value or raises :class:`InputError` naming the option.
"""

from __future__ import annotations

import math

from pyro_videossm.errors import InputError


def as_float(name: str, value, *, minimum: float | None = None, exclusive: bool = False,
             allow_none: bool = False) -> float | None:
    """``value`` as a finite float, at least (or above, with ``exclusive``) ``minimum``."""
    if value is None and allow_none:
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise InputError(f"option {name!r} must be a number, got {value!r}") from None
    if not math.isfinite(out):
        raise InputError(f"option {name!r} must be finite, got {value!r}")
    if minimum is not None and (out <= minimum if exclusive else out < minimum):
        raise InputError(f"option {name!r} must be {'>' if exclusive else '>='} {minimum:g}, "
                         f"got {value!r}")
    return out


def as_int(name: str, value, *, minimum: int | None = None,
           allow_none: bool = False) -> int | None:
    """``value`` as a whole number (``3`` or ``3.0``), at least ``minimum``."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool):
        raise InputError(f"option {name!r} must be a whole number, got {value!r}")
    try:
        out = int(value)
        whole = float(value) == out
    except (TypeError, ValueError, OverflowError):
        whole = False
    if not whole:
        raise InputError(f"option {name!r} must be a whole number, got {value!r}")
    if minimum is not None and out < minimum:
        raise InputError(f"option {name!r} must be >= {minimum}, got {value!r}")
    return out


def as_bool(name: str, value, *, allow_none: bool = False) -> bool | None:
    """``value`` as a bool: True/False, 1/0 or the strings true/false/yes/no/1/0."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "yes", "1", "false", "no",
                                                            "0"):
        return value.strip().lower() in ("true", "yes", "1")
    raise InputError(f"option {name!r} must be true or false, got {value!r}")
