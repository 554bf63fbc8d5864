"""Pyro models, one file each; every class owns its ``model`` and ``guide``."""

from pyro_videossm.models.dmm import DMM, MarkovGaussian, load_dmm, save_dmm
from pyro_videossm.models.hybrid import hybrid_dmm

__all__ = ["DMM", "MarkovGaussian", "hybrid_dmm", "load_dmm", "save_dmm"]
