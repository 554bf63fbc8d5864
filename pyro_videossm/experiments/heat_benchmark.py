"""The heat-diffusion forecasting benchmark's data and model sizes.

* :func:`heat_data`: ``truth``/``obs`` ``(sample, time, y, x)`` of heat diffusion from hot disks
  with Cauchy noise (:func:`~pyro_videossm.data.heat.simulate_heat`) at the research spacing
  ``dx = 0.1``, block-averaged;
* :func:`heat_architectures`: constructor options of the ConvDMM, the ConvLSTM and the flat
  DMM from one width.
"""

from __future__ import annotations

from collections.abc import Sequence

import xarray as xr


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
                       input_clip: Sequence[float] | None = None) -> dict[str, dict]:
    """Constructor options of ``convdmm``, ``convlstm`` and ``dmm-flat``."""
    clip = list(input_clip) if input_clip else None
    lik = dict(likelihood=likelihood, df=df, input_clip=clip)
    h = hidden_channels
    return {
        "convdmm": dict(latent_channels=latent_channels, hidden_channels=h,
                        rnn_channels=h, encoder_channels=h, n_down=2, **lik),
        "convlstm": dict(hidden_channels=[max(8, h // 2), h], stem_channels=max(8, h // 2),
                         input_clip=clip),
        "dmm-flat": dict(latent_dim=latent_dim, hidden_dim=2 * h, rnn_dim=2 * h,
                         conv_channels=max(8, h // 2), n_down=2, **lik),
    }


__all__ = ["heat_architectures", "heat_data"]
