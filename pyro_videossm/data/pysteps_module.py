"""Importing pysteps (the ``[nowcast]`` extra) quietly, or a one-line error when it is missing.

pysteps prints ``Pysteps configuration file found at: ...`` on standard output when it is
first imported; a command's standard output carries its results (tables, paths), so the
import runs with standard output redirected. Later imports of pysteps' submodules print
nothing.
"""

from __future__ import annotations

import contextlib
import io
import sys
from types import ModuleType

from pyro_videossm.errors import InputError


def import_pysteps(needed_by: str) -> ModuleType:
    """The ``pysteps`` module, imported without its banner on standard output.

    Raises:
        InputError: pysteps is not installed (``needed_by`` names what needs it).
    """
    if "pysteps" in sys.modules:
        return sys.modules["pysteps"]
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            import pysteps
    except ImportError:
        raise InputError(f"{needed_by} needs pysteps: pip install "
                         "'pyro-videossm[nowcast]'") from None
    return pysteps
