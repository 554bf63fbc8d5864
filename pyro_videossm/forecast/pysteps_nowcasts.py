"""pysteps' nowcasts behind the forecaster interface: ``extrapolation``, ``sprog``, ``steps``.

The standard radar-nowcasting baselines (Pulkkinen et al. 2019, pysteps), on rain rate in
mm/h (identity scaling: the context must be rain rate, NaN = outside radar range):

1. the context ``(T, H, W)`` becomes dBR as pysteps' examples do
   (``pysteps.utils.transformation.dB_transform``, threshold ``threshold`` mm/h, rain-free
   pixels at ``zerovalue`` dBR);
2. the motion field comes from the context by optical flow (``motion``: ``LK`` Lucas-Kanade,
   ``darts``, ``proesmans`` or ``vet``, ``pysteps.motion``);
3. the nowcast, in dBR:

   * ``extrapolation``: the last frame advected semi-Lagrangian along the motion field
     (deterministic);
   * ``sprog``: S-PROG, the cascade of the last ``ar_order + 1`` frames advected, each level
     smoothed by its AR(``ar_order``) process (deterministic);
   * ``steps``: STEPS, the ensemble: S-PROG plus cascade noise and perturbed motion
     (``members`` members, seeded by the forecaster's generator);

4. back to mm/h (``dB_transform(inverse=True)``: below ``threshold`` is 0); pixels advected
   from outside the grid are rain-free (0: ``outval`` of the extrapolation, the NaN that S-PROG
   and STEPS leave there).

When the AR(``ar_order``) fit of a cascade level is not stationary (pysteps refuses it; a
context that only translates does this), S-PROG and STEPS fall back to AR(1).

Edge cases: a context whose frames used by the nowcast hold no pixel ``>= threshold`` gives a
forecast of zeros (pysteps is not called); fewer context frames than the optical flow (or
the AR model) needs raise a one-line :class:`~pyro_videossm.errors.InputError`.

STEPS' motion perturbations need the pixel size (km) and time step (minutes): given as
``pixel_km`` / ``timestep_minutes``, else :meth:`PystepsNowcast.forecast` reads them from the
context's ``x`` coordinate (``units`` km or m) and ``time`` coordinate. pysteps is the
``[nowcast]`` extra and is imported only when a forecast is made.
"""

from __future__ import annotations

import contextlib
import io
from typing import Any, ClassVar

import numpy as np
import torch
import xarray as xr
from torch import Tensor

from pyro_videossm.data.pysteps_module import import_pysteps
from pyro_videossm.data.scaling import FieldScaling
from pyro_videossm.errors import InputError
from pyro_videossm.forecast.base import Forecaster, register_forecaster, select_field

#: optical-flow methods of pysteps and the context frames each needs at least
MOTION_METHODS: dict[str, int] = {"LK": 2, "darts": 6, "proesmans": 2, "vet": 2}


def require_pysteps():
    """The ``pysteps`` module; one-line InputError when the ``[nowcast]`` extra is missing."""
    return import_pysteps("the pysteps forecasters")


def to_dbr(rain: np.ndarray, threshold: float, zerovalue: float) -> np.ndarray:
    """mm/h -> dBR as pysteps: ``10 log10 R`` where ``R >= threshold``, else ``zerovalue``
    (NaN stays NaN)."""
    from pysteps.utils.transformation import dB_transform

    return dB_transform(rain, threshold=threshold, zerovalue=zerovalue)[0]


def from_dbr(dbr: np.ndarray, threshold: float, zerovalue: float) -> np.ndarray:
    """dBR -> mm/h (``10 ** (dBR / 10)``, 0 below ``threshold``; NaN -> 0)."""
    from pysteps.utils.transformation import dB_transform

    thr_db = 10.0 * np.log10(threshold)
    rain = dB_transform(dbr, threshold=thr_db, zerovalue=0.0, inverse=True)[0]
    return np.where(np.isfinite(rain), rain, 0.0)


def grid_spacing(da: xr.DataArray) -> tuple[float | None, float | None]:
    """``(pixel size in km, time step in minutes)`` from a field's ``x`` and ``time``
    coordinates (None where they say nothing)."""
    pixel_km = None
    xdim = str(da.dims[-1])
    if xdim in da.coords and da.sizes[xdim] >= 2:
        units = str(da[xdim].attrs.get("units", "")).strip()
        scale = {"km": 1.0, "m": 1e-3, "metre": 1e-3, "meter": 1e-3, "metres": 1e-3}.get(units)
        if scale is not None:
            pixel_km = abs(float(da[xdim].values[1] - da[xdim].values[0])) * scale
    minutes = None
    if "time" in da.coords and da.sizes.get("time", 0) >= 2:
        t = da["time"].values
        if np.issubdtype(t.dtype, np.datetime64):
            minutes = float((t[-1] - t[-2]) / np.timedelta64(1, "m"))
    return pixel_km, minutes


class PystepsNowcast(Forecaster):
    """Base of the pysteps forecasters (see the module doc); subclasses implement
    :meth:`nowcast` in dBR and set ``name``, ``deterministic`` and ``frames_used``."""

    dtype = torch.float64
    #: context frames the nowcast itself uses (the last ones); the motion uses them all
    frames_used: ClassVar[int] = 1

    def __init__(self, motion: str = "LK", threshold: float = 0.1, zerovalue: float = -15.0,
                 n_cascade_levels: int = 6, ar_order: int = 2, pixel_km: float | None = None,
                 timestep_minutes: float | None = None) -> None:
        if motion not in MOTION_METHODS:
            raise InputError(f"unknown motion method {motion!r} "
                             f"(methods: {', '.join(MOTION_METHODS)})")
        if not threshold > 0:
            raise InputError(f"threshold must be > 0 mm/h, got {threshold}")
        if not zerovalue < 10.0 * np.log10(threshold):
            raise InputError(f"zerovalue {zerovalue} dBR must lie below the threshold's "
                             f"{10.0 * np.log10(threshold):g} dBR")
        if int(n_cascade_levels) != n_cascade_levels or n_cascade_levels < 1:
            raise InputError(f"n_cascade_levels must be an integer >= 1, got {n_cascade_levels}")
        if int(ar_order) != ar_order or ar_order not in (1, 2):
            raise InputError(f"ar_order must be 1 or 2, got {ar_order}")
        for label, v in (("pixel_km", pixel_km), ("timestep_minutes", timestep_minutes)):
            if v is not None and not v > 0:
                raise InputError(f"{label} must be > 0, got {v}")
        self.motion, self.threshold, self.zerovalue = motion, float(threshold), float(zerovalue)
        self.n_cascade_levels, self.ar_order = int(n_cascade_levels), int(ar_order)
        self.pixel_km, self.timestep_minutes = pixel_km, timestep_minutes
        self.scaling = FieldScaling()
        self.device = torch.device("cpu")
        self._spacing: tuple[float | None, float | None] = (None, None)

    # -- the context's grid ----------------------------------------------------------------
    def forecast(self, context: xr.Dataset | xr.DataArray, leads: int, members: int = 1, *,
                 variable: str | None = None, seed: int = 0,
                 batch_size: int | None = None) -> xr.Dataset:
        """As :meth:`Forecaster.forecast`; also reads the pixel size and time step from the
        context's coordinates (for STEPS)."""
        self._spacing = grid_spacing(select_field(context, variable))
        try:
            return super().forecast(context, leads, members, variable=variable, seed=seed,
                                    batch_size=batch_size)
        finally:
            self._spacing = (None, None)

    def min_context(self) -> int:
        """Context frames needed: the optical flow's and the nowcast's."""
        return max(MOTION_METHODS[self.motion], self.frames_used)

    def check_context_length(self, frames: int) -> None:
        """One-line InputError with fewer frames than :meth:`min_context`."""
        need = self.min_context()
        if frames < need:
            raise InputError(f"{self.name} needs at least {need} context frames ({self.motion} "
                             f"optical flow: {MOTION_METHODS[self.motion]}, the nowcast: "
                             f"{self.frames_used}), got {frames}")

    # -- tensors ---------------------------------------------------------------------------
    def predict(self, context: Tensor, mask: Tensor, leads: int, members: int = 1, *,
                generator: torch.Generator | None = None) -> Tensor:
        """``(B, T, H, W)`` rain rate (mm/h) and mask -> ``(B, leads, M, H, W)`` mm/h."""
        self.check_context_length(context.shape[1])
        m = 1 if self.deterministic else int(members)
        rain = context.detach().cpu().double().numpy().copy()
        rain[~mask.cpu().numpy()] = np.nan
        out = np.zeros((rain.shape[0], leads, m) + rain.shape[2:])
        for b in range(rain.shape[0]):
            used = rain[b, -self.frames_used:]
            if not (np.nan_to_num(used, nan=0.0) >= self.threshold).any():
                continue  # dry: zeros
            seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator).item())
            out[b] = self._one(rain[b], leads, m, seed).transpose(1, 0, 2, 3)
        return torch.from_numpy(out).to(context.device)

    def _one(self, rain: np.ndarray, leads: int, members: int, seed: int) -> np.ndarray:
        """One context ``(T, H, W)`` mm/h -> ``(members, leads, H, W)`` mm/h."""
        require_pysteps()
        from pysteps import motion as pysteps_motion

        dbr = to_dbr(rain, self.threshold, self.zerovalue)
        frames = {"proesmans": dbr[-2:], "vet": dbr[-3:]}.get(self.motion, dbr)
        filled = np.where(np.isfinite(dbr), dbr, self.zerovalue)
        with contextlib.redirect_stdout(io.StringIO()):
            if self.motion == "LK":
                velocity = pysteps_motion.get_method("LK")(frames, verbose=False)
            else:
                velocity = pysteps_motion.get_method(self.motion)(
                    np.where(np.isfinite(frames), frames, self.zerovalue))
            velocity = np.nan_to_num(np.asarray(velocity, dtype=np.float64))
            fc = self.nowcast(filled, velocity, leads, members, seed)
        return from_dbr(fc, self.threshold, self.zerovalue)

    def nowcast(self, dbr: np.ndarray, velocity: np.ndarray, leads: int, members: int,
                seed: int) -> np.ndarray:
        """dBR context ``(T, H, W)`` (no NaN) and motion ``(2, H, W)`` (pixels per step) ->
        ``(members, leads, H, W)`` dBR."""
        raise NotImplementedError

    def options(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("motion", "threshold", "zerovalue",
                                              "n_cascade_levels", "ar_order", "pixel_km",
                                              "timestep_minutes")}

    def _stationary(self, run):
        """``run(ar_order)``; when the cascade's AR(``ar_order``) fit is not stationary (a
        context that only translates, e.g.), ``run(1)``, the AR(1) fit pysteps can always
        make from lag-1 correlations below 1; InputError if that fails too."""
        try:
            return run(self.ar_order)
        except RuntimeError as err:
            if "nonstationary" not in str(err):
                raise
        try:
            return run(1)
        except RuntimeError as err:
            if "nonstationary" not in str(err):
                raise
            raise InputError(f"{self.name}: no stationary AR model fits the context's "
                             "cascade (perfectly correlated frames)") from None

    def _extrap_kwargs(self) -> dict[str, Any]:
        return {"outval": self.zerovalue}


@register_forecaster
class Extrapolation(PystepsNowcast):
    """Lagrangian persistence: the last frame advected semi-Lagrangian by the optical flow."""

    name = "extrapolation"
    deterministic = True
    frames_used = 1

    def nowcast(self, dbr, velocity, leads, members, seed):
        from pysteps import nowcasts

        fc = nowcasts.get_method("extrapolation")(dbr[-1], velocity, leads,
                                                  extrap_kwargs=self._extrap_kwargs())
        return np.asarray(fc)[None]


@register_forecaster
class Sprog(PystepsNowcast):
    """S-PROG (Seed 2003): the advected cascade with each level smoothed by its AR process."""

    name = "sprog"
    deterministic = True

    @property
    def frames_used(self) -> int:  # type: ignore[override]
        return self.ar_order + 1

    def nowcast(self, dbr, velocity, leads, members, seed):
        from pysteps import nowcasts

        def run(order: int):
            return nowcasts.get_method("sprog")(
                dbr[-(order + 1):], velocity, leads, n_cascade_levels=self.n_cascade_levels,
                ar_order=order, precip_thr=10.0 * np.log10(self.threshold))

        return np.asarray(self._stationary(run))[None]


@register_forecaster
class Steps(PystepsNowcast):
    """STEPS (Bowler et al. 2006, Seed et al. 2013): the S-PROG cascade plus stochastic
    cascade noise and motion perturbations; an ensemble."""

    name = "steps"
    deterministic = False

    @property
    def frames_used(self) -> int:  # type: ignore[override]
        return self.ar_order + 1

    def nowcast(self, dbr, velocity, leads, members, seed):
        from pysteps import nowcasts

        pixel_km = self.pixel_km or self._spacing[0]
        minutes = self.timestep_minutes or self._spacing[1]
        if pixel_km is None or minutes is None:
            raise InputError("steps needs the pixel size and time step: give pixel_km and "
                             "timestep_minutes, or a context with x in km and datetime times")

        def run(order: int):
            return nowcasts.get_method("steps")(
                dbr[-(order + 1):], velocity, leads, n_ens_members=members,
                n_cascade_levels=self.n_cascade_levels, ar_order=order,
                precip_thr=10.0 * np.log10(self.threshold), kmperpixel=float(pixel_km),
                timestep=float(minutes), noise_method="nonparametric", vel_pert_method="bps",
                mask_method="incremental", seed=seed)

        return np.asarray(self._stationary(run))


__all__ = ["MOTION_METHODS", "Extrapolation", "PystepsNowcast", "Sprog", "Steps",
           "from_dbr", "grid_spacing", "require_pysteps", "to_dbr"]
