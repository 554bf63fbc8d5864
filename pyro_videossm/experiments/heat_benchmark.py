"""The heat-diffusion forecasting benchmark's data and model sizes.

* :func:`heat_data`: ``truth``/``obs`` ``(sample, time, y, x)`` of heat diffusion from hot disks
  with Cauchy noise (:func:`~pyro_videossm.data.heat.simulate_heat`) at the research spacing
  ``dx = 0.1``, block-averaged;
* :func:`heat_architectures`: constructor options of the ConvDMM, the ConvLSTM and the flat
  DMM from one width;
* :func:`run_model`: one model trained for the same number of epochs as the others, saved,
  and its forecast of the test sequences scored per lead against the noise-free truth.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from pyro_videossm.experiments.windows import WindowData


def heat_data(samples: int, steps: int, seed: int, sim_grid: int, coarsen: int,
              device: str = "cpu") -> xr.Dataset:
    """``truth``/``obs`` ``(sample, time, y, x)``, simulated at ``dx = 0.1`` (``D = 4``, 3 FTCS
    steps per frame) and block-averaged ``coarsen`` × ``coarsen`` (Cauchy noise stays Cauchy
    with the same scale under averaging)."""
    from pyro_videossm.data.heat import simulate_heat

    ds = simulate_heat(samples=samples, steps=steps, grid=sim_grid, length=0.1 * sim_grid,
                       diffusivity=4.0, steps_per_frame=3, seed=seed, device=device)
    ds = ds[["truth", "obs"]]
    if coarsen > 1:
        ds = ds.coarsen(y=coarsen, x=coarsen, boundary="trim").mean().assign_attrs(ds.attrs)
        for v in ("truth", "obs"):
            ds[v].attrs.update(ds[v].attrs)
    return ds


def heat_architectures(hidden_channels: int, *, latent_channels: int, latent_dim: int,
                       likelihood: str, df: float,
                       input_clip: Sequence[float] | None = None,
                       rollout_horizon: int = 20,
                       rollout_weight: float = 1.0) -> dict[str, dict]:
    """Constructor options of ``convdmm``, ``convlstm``, ``dmm-flat``, ``advection-convdmm``
    (no motion, no transform: diffusion is its learned correction) and
    ``advection-convdmm-rollout`` (the same, trained with the free-running term of
    ``rollout_horizon`` steps, weighted ``rollout_weight``,
    :mod:`~pyro_videossm.models.ssm.rollout_loss`),
    ``advection-convdmm-stencil`` (the advection ConvDMM whose transition adds a learned linear
    3 × 3 stencil: heat diffusion's physics form) and ``advection-convdmm-stencil-rollout``
    (both)."""
    clip = list(input_clip) if input_clip else None
    lik = dict(likelihood=likelihood, df=df, input_clip=clip)
    h = hidden_channels
    advection = dict(latent_channels=4, hidden_channels=max(8, h // 4),
                     rnn_channels=max(8, h // 2), encoder_channels=max(8, h // 2),
                     n_down=2, motion="none", transform="none", **lik)
    return {
        "convdmm": dict(latent_channels=latent_channels, hidden_channels=h,
                        rnn_channels=h, encoder_channels=h, n_down=2, **lik),
        "convlstm": dict(hidden_channels=[max(8, h // 2), h], stem_channels=max(8, h // 2),
                         input_clip=clip),
        "advection-convdmm": advection,
        "advection-convdmm-rollout": dict(advection, rollout_horizon=rollout_horizon,
                                          **_weight(rollout_weight)),
        "advection-convdmm-stencil": dict(advection, linear_kernel=3),
        "advection-convdmm-stencil-rollout": dict(advection, linear_kernel=3,
                                                  rollout_horizon=rollout_horizon,
                                                  **_weight(rollout_weight)),
        "dmm-flat": dict(latent_dim=latent_dim, hidden_dim=2 * h, rnn_dim=2 * h,
                         conv_channels=max(8, h // 2), n_down=2, **lik),
    }


def _weight(rollout_weight: float) -> dict[str, float]:
    """``rollout_weight`` as a constructor option, left out at its default (1) so that the
    published variants' architectures stay as they were recorded."""
    return {} if rollout_weight == 1.0 else {"rollout_weight": float(rollout_weight)}


def run_model(name: str, args, *, data: WindowData, architectures: Mapping[str, dict],
              context: xr.DataArray, truth: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
    """Train ``name`` (``convdmm``, ``convlstm``, ``convlstm-clip``: the ConvLSTM with its MSE
    targets clamped to ``args.input_clip``, ``dmm-flat``; ``persistence`` is untrained) on
    ``data``, save it as ``args.out/NAME.pt``, forecast ``args.leads`` steps after ``context``
    ``(sample, time, y, x)`` and score the ensemble mean against ``truth`` ``(sample, lead, y,
    x)``. ``args``: ``context``, ``leads``, ``epochs``, ``batch_size``, ``lr``,
    ``anneal_epochs`` (DMMs), ``device``, ``seed``, ``progress``, ``out``, ``members``,
    ``input_clip``. Returns the MSE per lead and the model's summary entry."""
    from pyro_videossm.experiments.forecast_benchmark import per_lead_scores, train_model
    from pyro_videossm.forecast import Persistence
    from pyro_videossm.infer import TrainConfig

    if name == "persistence":
        forecaster, history, seconds, n_params = Persistence(), [], 0.0, 0
    else:
        kind = "convlstm" if name.startswith("convlstm") else name
        recipe = "advection-convdmm" if name.startswith("advection-convdmm") else kind
        config = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                             anneal_epochs=0 if kind == "convlstm" else args.anneal_epochs,
                             device=args.device, seed=args.seed, progress=args.progress)
        target_clip = tuple(args.input_clip) if name == "convlstm-clip" else None
        trained = train_model(recipe, architectures[kind], data, config, context=args.context,
                              leads=args.leads, seed=args.seed, target_clip=target_clip)
        history, seconds, n_params = trained.history, trained.seconds, trained.parameters
        forecaster = trained.forecaster(args.device)
        forecaster.save(Path(args.out) / f"{name}.pt", extra={"history": history})
    t2 = time.perf_counter()
    fc = forecaster.forecast(context, args.leads, args.members, seed=args.seed,
                             batch_size=args.batch_size)
    mse = per_lead_scores(fc, truth)
    return mse, {"train_seconds": seconds, "forecast_seconds": time.perf_counter() - t2,
                 "parameters": n_params, "history": history,
                 "architecture": architectures.get(name.replace("-clip", ""), {}),
                 "mse": mse.tolist()}


__all__ = ["heat_architectures", "heat_data", "run_model"]
