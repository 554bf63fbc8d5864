"""Covariance localisation: Gaspari-Cohn taper, grid distances, local observation windows.

Distances are measured in grid points between component indices (component ``i`` of the
state sits at grid point ``i``; an observation of component ``j`` sits at grid point ``j``),
cyclic on a ring such as Lorenz-96.

The ``radius`` follows DAPPER's convention (``loc_rad``): the Gaspari-Cohn function is
evaluated with half-width ``c = 1.82 * radius``, which makes it close to a Gaussian of standard
deviation ``radius``; it vanishes beyond ``2 c = 3.64 * radius`` grid points.
"""

from __future__ import annotations

import torch
from torch import Tensor

from pyro_videossm.dynamics import Lorenz96, ODESystem
from pyro_videossm.filters.options import as_float

#: Gaspari-Cohn half-width per unit of localisation radius (DAPPER's ``dist2coeff``).
GC_HALF_WIDTH_PER_RADIUS = 1.82


def gaspari_cohn(r: Tensor) -> Tensor:
    """Gaspari & Cohn (1999, eq. 4.10) fifth-order taper at scaled distance ``r = dist / c``.

    Compactly supported: 1 at ``r = 0``, 0 for ``r >= 2``; elementwise on any shape.
    """
    r = r.abs()
    r2, r3 = r**2, r**3
    inner = 1 + r2 * (-r3 / 4 + r2 / 2) + r3 * (5 / 8) - r2 * (5 / 3)
    rs = r.clamp_min(1e-12)  # the outer branch divides by r; only used where r > 1
    outer = r2 * (r3 / 12 - r2 / 2) + r3 * (5 / 8) + r2 * (5 / 3) - r * 5 + 4 - (2 / 3) / rs
    return torch.where(r <= 1, inner, torch.where(r < 2, outer, torch.zeros_like(r)))


def grid_distances(n_state: int, n_obs_index: int | None = None, *, cyclic: bool = False,
                   device=None, dtype=torch.float64) -> Tensor:
    """Distances ``(n_state, n_obs_index)`` in grid points between state and observed indices.

    With ``cyclic`` the grid is a ring of ``n_state`` points (distance ``min(d, n - d)``).
    """
    n_obs_index = n_state if n_obs_index is None else n_obs_index
    i = torch.arange(n_state, device=device, dtype=dtype)[:, None]
    j = torch.arange(n_obs_index, device=device, dtype=dtype)[None, :]
    d = (i - j).abs()
    if cyclic:
        d = torch.minimum(d, n_state - d)
    return d


def taper_matrix(n_state: int, radius: float, *, cyclic: bool = False, device=None,
                 dtype=torch.float64) -> Tensor:
    """Gaspari-Cohn localisation coefficients ``(n_state, n_state)`` for a given ``radius``."""
    check_radius(radius)
    d = grid_distances(n_state, cyclic=cyclic, device=device, dtype=dtype)
    return gaspari_cohn(d / (GC_HALF_WIDTH_PER_RADIUS * radius))


def local_windows(taper: Tensor) -> tuple[Tensor, Tensor]:
    """For each row (grid point) of ``taper (D, P)``, the observations with nonzero weight.

    Returns ``index (D, L)`` and ``weight (D, L)`` where ``L`` is the largest number of
    observations any grid point sees; shorter rows are padded with weight 0. Computed once
    per run, so that local analyses cost ``O(L)`` rather than ``O(P)`` per grid point.
    """
    count = int((taper > 0).sum(-1).max())  # one host sync, outside the cycle loop
    count = max(count, 1)
    weight, index = torch.sort(taper, dim=-1, descending=True, stable=True)
    return index[:, :count].contiguous(), weight[:, :count].contiguous()


def is_cyclic(system: ODESystem, cyclic: bool | None) -> bool:
    """Whether distances wrap around: ``cyclic`` if given, else True for Lorenz-96 rings."""
    if cyclic is not None:
        return bool(cyclic)
    return isinstance(system, Lorenz96) or getattr(system, "name", "") == "lorenz96"


def check_radius(radius: float | None) -> None:
    """InputError unless ``radius`` is None or a positive number."""
    as_float("localization", radius, minimum=0, exclusive=True, allow_none=True)
