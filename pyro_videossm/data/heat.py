"""Heat diffusion on a square plate with heavy-tailed noise, as ``xarray.Dataset``.

The latent temperature ``u`` obeys ``du/dt = D (u_xx + u_yy)`` on an ``L x L`` plate with zero
(Dirichlet) temperature on the border, stepped with the explicit FTCS scheme::

    u' = u + D dt [(u[i+1,j] - 2u + u[i-1,j]) / dy^2 + (u[i,j+1] - 2u + u[i,j-1]) / dx^2]

at the largest stable step ``dt = dx^2 dy^2 / (2 D (dx^2 + dy^2))``. Each sample starts from a
hot disk (radius ``~ U(0.5, 5)``, centre ``~ U(0, L)^2``, temperature ``T_hot ~ U(500, 700)``)
on a plate at 0. After every FTCS step, Cauchy process noise (scale 3) is added to the
interior and the state is clipped to ``[0, T_hot + 300]``; every ``steps_per_frame``-th state
is recorded as ``truth`` and observed with Cauchy noise (scale 10) in the interior (the border
is observed exactly, at 0). All samples are stepped at once (one batched slicing stencil).

Research setting: ``grid=100, length=10`` (``dx = dy = 0.1``), ``diffusivity=4``,
``steps_per_frame=3``. The defaults are smaller so tests and examples run in seconds.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import xarray as xr
from torch import Tensor

from pyro_videossm import __version__
from pyro_videossm.data.conventions import CONVENTIONS
from pyro_videossm.errors import InputError

#: The research sizes (pass as keyword arguments: ``simulate_heat(**RESEARCH_SETTING)``).
RESEARCH_SETTING: dict[str, float | int] = {"grid": 100, "length": 10.0, "diffusivity": 4.0,
                                            "steps_per_frame": 3}


def stable_time_step(dx: float, dy: float, diffusivity: float) -> float:
    """Largest stable FTCS step, ``dx^2 dy^2 / (2 D (dx^2 + dy^2))``."""
    return dx * dx * dy * dy / (2.0 * diffusivity * (dx * dx + dy * dy))


def ftcs_step(u: Tensor, diffusivity: float, dt: float, dx: float, dy: float) -> Tensor:
    """One explicit FTCS step of ``u`` ``(..., H, W)`` with zero Dirichlet border.

    The border rows and columns of the result are 0; the interior is updated by the
    five-point stencil. No stability check (see :func:`stable_time_step`).
    """
    c = u[..., 1:-1, 1:-1]
    lap = ((u[..., 2:, 1:-1] - 2.0 * c + u[..., :-2, 1:-1]) / (dy * dy)
           + (u[..., 1:-1, 2:] - 2.0 * c + u[..., 1:-1, :-2]) / (dx * dx))
    out = torch.zeros_like(u)
    out[..., 1:-1, 1:-1] = c + (diffusivity * dt) * lap
    return out


def fourier_mode_factor(p: int, q: int, grid: int, diffusivity: float, dt: float,
                        dx: float, dy: float) -> float:
    """Analytic one-step amplification of the discrete mode ``sin(pi p i/(n-1)) sin(pi q j/(n-1))``
    under :func:`ftcs_step` on a ``grid x grid`` mesh (border at ``i, j = 0, n-1``)."""
    n1 = grid - 1
    return (1.0 - 4.0 * diffusivity * dt / (dy * dy) * math.sin(math.pi * p / (2 * n1)) ** 2
            - 4.0 * diffusivity * dt / (dx * dx) * math.sin(math.pi * q / (2 * n1)) ** 2)


def hot_disk(n: int, grid: int, length: float, *, radius: tuple[float, float] = (0.5, 5.0),
             hot: tuple[float, float] = (500.0, 700.0), generator: torch.Generator | None = None,
             dtype: torch.dtype = torch.float32,
             device: str | torch.device = "cpu") -> tuple[Tensor, dict[str, Tensor]]:
    """``n`` initial fields ``(n, grid, grid)``: a disk at ``T_hot`` on 0, border 0.

    Returns the fields and the drawn parameters (``radius``, ``centre_x``, ``centre_y``,
    ``hot``; each ``(n,)``).
    """
    def uniform(lo: float, hi: float) -> Tensor:
        return lo + (hi - lo) * torch.rand(n, generator=generator, dtype=dtype, device=device)

    params = {"radius": uniform(*radius), "centre_x": uniform(0.0, length),
              "centre_y": uniform(0.0, length), "hot": uniform(*hot)}
    coord = torch.arange(grid, dtype=dtype, device=device) * (length / grid)
    dxs = coord.view(1, 1, grid) - params["centre_x"].view(n, 1, 1)
    dys = coord.view(1, grid, 1) - params["centre_y"].view(n, 1, 1)
    inside = dxs * dxs + dys * dys <= params["radius"].view(n, 1, 1) ** 2
    u = torch.where(inside, params["hot"].view(n, 1, 1), torch.zeros((), dtype=dtype,
                                                                     device=device))
    u = u * interior_mask(grid, dtype=dtype, device=device)
    return u, params


def interior_mask(grid: int, dtype: torch.dtype = torch.float32,
                  device: str | torch.device = "cpu") -> Tensor:
    """``(grid, grid)``: 1 inside, 0 on the border rows and columns."""
    m = torch.zeros(grid, grid, dtype=dtype, device=device)
    m[1:-1, 1:-1] = 1.0
    return m


def simulate_heat(
    *,
    samples: int = 8,
    steps: int = 20,
    grid: int = 32,
    length: float = 10.0,
    diffusivity: float = 4.0,
    dt: float | None = None,
    steps_per_frame: int = 3,
    process_noise_scale: float = 3.0,
    obs_noise_scale: float = 10.0,
    clip_margin: float = 300.0,
    clip_obs: bool = False,
    radius: tuple[float, float] = (0.5, 5.0),
    hot: tuple[float, float] = (500.0, 700.0),
    seed: int = 0,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    batch_size: int = 256,
    progress: bool = False,
) -> xr.Dataset:
    """Simulate heat diffusion from hot disks; returns ``truth`` and ``obs`` ``(sample, time,
    y, x)`` with coordinates in plate length units and every setting in the attributes.

    Args:
        samples: independent sequences. steps: recorded frames per sequence (the first is the
            initial disk). grid: points per side. length: plate side (``dx = length / grid``).
        diffusivity: ``D``. dt: FTCS step (default and maximum: :func:`stable_time_step`).
        steps_per_frame: FTCS steps between recorded frames.
        process_noise_scale, obs_noise_scale: Cauchy scales (0 turns the noise off).
        clip_margin: states are clipped to ``[0, T_hot + clip_margin]`` after each step.
        clip_obs: clip observations to the same range too (default: no, keep the tails).
        radius, hot: ranges of the disk radius and temperature.
        seed: seeds all randomness (reproducible on a given device).
        batch_size: samples stepped together (bounds the working memory).
    """
    if samples < 1 or steps < 1 or grid < 3 or steps_per_frame < 1 or batch_size < 1:
        raise InputError("samples, steps, steps_per_frame must be >= 1 and grid >= 3")
    if not (length > 0 and diffusivity > 0):
        raise InputError("length and diffusivity must be > 0")
    if process_noise_scale < 0 or obs_noise_scale < 0 or clip_margin < 0:
        raise InputError("noise scales and clip margin must be >= 0")
    if not (0 < radius[0] <= radius[1]) or not (hot[0] <= hot[1]):
        raise InputError("radius and hot ranges must be (low, high) with 0 < low <= high")
    dx = dy = length / grid
    dt_max = stable_time_step(dx, dy, diffusivity)
    dt = dt_max if dt is None else float(dt)
    if not 0 < dt <= dt_max * (1 + 1e-12):
        raise InputError(f"dt = {dt:g} is outside (0, {dt_max:g}]: FTCS is unstable above "
                         "dx^2 dy^2 / (2 D (dx^2 + dy^2))")
    gen = torch.Generator(device=device).manual_seed(int(seed))
    interior = interior_mask(grid, dtype=dtype, device=device)
    truth = np.empty((samples, steps, grid, grid), dtype=np.float32)
    obs = np.empty_like(truth)
    drawn: dict[str, list[Tensor]] = {k: [] for k in ("radius", "centre_x", "centre_y", "hot")}
    from tqdm.auto import tqdm

    bar = tqdm(total=samples * steps, disable=not progress, desc="heat", unit="frame")
    for start in range(0, samples, batch_size):
        n = min(batch_size, samples - start)
        u, params = hot_disk(n, grid, length, radius=radius, hot=hot, generator=gen,
                             dtype=dtype, device=device)
        for k, v in params.items():
            drawn[k].append(v.cpu())
        upper = (params["hot"] + clip_margin).view(n, 1, 1)
        frames = torch.empty((n, steps, grid, grid), dtype=dtype, device=device)
        frames[:, 0] = u
        for t in range(1, steps):
            for _ in range(steps_per_frame):
                u = ftcs_step(u, diffusivity, dt, dx, dy)
                if process_noise_scale > 0:
                    u = u + _cauchy(u, process_noise_scale, gen) * interior
                u = torch.minimum(u.clamp_min(0.0), upper)
            frames[:, t] = u
            bar.update(n)
        bar.update(n)
        y = frames
        if obs_noise_scale > 0:
            y = frames + _cauchy(frames, obs_noise_scale, gen) * interior
        if clip_obs:
            y = torch.minimum(y.clamp_min(0.0), upper.unsqueeze(1))
        truth[start:start + n] = frames.cpu().numpy()
        obs[start:start + n] = y.cpu().numpy()
    bar.close()
    coord = np.arange(grid) * dx
    params = {k: torch.cat(v).numpy().astype(np.float64) for k, v in drawn.items()}
    temp = {"units": "1", "long_name": "temperature"}
    return xr.Dataset(
        {
            "truth": (("sample", "time", "y", "x"), truth,
                      {**temp, "long_name": "true temperature"}),
            "obs": (("sample", "time", "y", "x"), obs,
                    {**temp, "long_name": "observed temperature (Cauchy noise)"}),
            "disk_radius": ("sample", params["radius"],
                            {"units": "1", "long_name": "initial hot disk radius"}),
            "disk_centre_x": ("sample", params["centre_x"],
                              {"units": "1", "long_name": "initial hot disk centre x"}),
            "disk_centre_y": ("sample", params["centre_y"],
                              {"units": "1", "long_name": "initial hot disk centre y"}),
            "hot_temperature": ("sample", params["hot"],
                                {"units": "1", "long_name": "initial hot disk temperature"}),
        },
        coords={
            "sample": ("sample", np.arange(samples), {"long_name": "sequence"}),
            "time": ("time", np.arange(steps) * steps_per_frame * dt,
                     {"units": "1", "long_name": "model time"}),
            "y": ("y", coord, {"units": "1", "long_name": "y on the plate (plate units)"}),
            "x": ("x", coord, {"units": "1", "long_name": "x on the plate (plate units)"}),
        },
        attrs={
            "Conventions": CONVENTIONS,
            "title": "heat diffusion from a hot disk with Cauchy noise",
            "source": f"pyro-videossm {__version__} simulate_heat",
            "system": "heat2d",
            "scheme": "FTCS, zero Dirichlet border",
            "grid": grid, "length": float(length), "dx": dx, "dy": dy,
            "diffusivity": float(diffusivity), "integration_step": dt,
            "stable_step": dt_max, "steps_per_frame": steps_per_frame,
            "obs_interval": steps_per_frame * dt,
            "process_noise_dist": "cauchy", "process_noise_scale": float(process_noise_scale),
            "obs_noise_dist": "cauchy", "obs_noise_scale": float(obs_noise_scale),
            "clip_margin": float(clip_margin), "clip_obs": int(clip_obs),
            "radius_range": list(map(float, radius)), "hot_range": list(map(float, hot)),
            "seed": int(seed),
        },
    )


def _cauchy(like: Tensor, scale: float, generator: torch.Generator) -> Tensor:
    return torch.empty_like(like).cauchy_(0.0, scale, generator=generator)
