"""The assimilation interface shared by classical filters and learned (DMM) methods."""

from pyro_videossm.assimilate.estimate import (
    DEFAULT_QUANTILES,
    Estimate,
    posterior_dataset,
    weighted_quantiles,
)
from pyro_videossm.assimilate.method import (
    BUILTIN_METHOD_MODULES,
    METHODS,
    AssimilationMethod,
    assimilate,
    available_methods,
    get_method,
    method_class,
    register_method,
)
from pyro_videossm.assimilate.problem import AssimilationProblem, climatology

__all__ = [
    "BUILTIN_METHOD_MODULES",
    "DEFAULT_QUANTILES",
    "METHODS",
    "AssimilationMethod",
    "AssimilationProblem",
    "Estimate",
    "assimilate",
    "available_methods",
    "climatology",
    "get_method",
    "method_class",
    "posterior_dataset",
    "register_method",
    "weighted_quantiles",
]
