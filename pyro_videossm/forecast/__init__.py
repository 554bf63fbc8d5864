"""Field forecasters behind one interface (context in, forecast with members out), a registry,
the persistence baseline and the invertible field scaling forecasters store."""

from pyro_videossm.data.scaling import FieldScaling
from pyro_videossm.forecast.base import (
    BUILTIN_FORECASTER_MODULES,
    FORECASTERS,
    Forecaster,
    available_forecasters,
    forecast_dataset,
    forecaster_class,
    get_forecaster,
    load_forecaster,
    register_forecaster,
    select_field,
)
from pyro_videossm.forecast.persistence import Persistence

__all__ = [
    "BUILTIN_FORECASTER_MODULES",
    "FORECASTERS",
    "FieldScaling",
    "Forecaster",
    "Persistence",
    "available_forecasters",
    "forecast_dataset",
    "forecaster_class",
    "get_forecaster",
    "load_forecaster",
    "register_forecaster",
    "select_field",
]
