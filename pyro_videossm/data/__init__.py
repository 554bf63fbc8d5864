"""Simulators and loaders that return xarray, and windowing into tensors."""

from pyro_videossm.data.chaotic import (
    STANDARD_SETTINGS,
    load_observations,
    simulate,
    system_from_attrs,
)
from pyro_videossm.data.conventions import open_dataset, write_netcdf
from pyro_videossm.data.observation import observed_indices
from pyro_videossm.data.windows import cut_windows, to_tensor_and_mask

__all__ = [
    "STANDARD_SETTINGS",
    "cut_windows",
    "load_observations",
    "observed_indices",
    "open_dataset",
    "simulate",
    "system_from_attrs",
    "to_tensor_and_mask",
    "write_netcdf",
]
