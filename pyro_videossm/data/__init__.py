"""Simulators and loaders that return xarray, and windowing into tensors."""

from pyro_videossm.data.chaotic import (
    STANDARD_SETTINGS,
    load_observations,
    setting_for,
    simulate,
    system_from_attrs,
    with_system,
)
from pyro_videossm.data.conventions import open_dataset, write_netcdf
from pyro_videossm.data.observation import observed_indices
from pyro_videossm.data.simulators import (
    SIMULATORS,
    Option,
    Simulator,
    available_simulators,
    register_simulator,
    simulate_dataset,
)
from pyro_videossm.data.windows import cut_windows, to_tensor_and_mask

__all__ = [
    "SIMULATORS",
    "STANDARD_SETTINGS",
    "Option",
    "Simulator",
    "available_simulators",
    "cut_windows",
    "load_observations",
    "observed_indices",
    "open_dataset",
    "register_simulator",
    "setting_for",
    "simulate",
    "simulate_dataset",
    "system_from_attrs",
    "to_tensor_and_mask",
    "with_system",
    "write_netcdf",
]
