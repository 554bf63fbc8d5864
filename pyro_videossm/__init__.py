"""pyro-videossm: deep state-space models on Pyro for data assimilation, fields and video."""

__version__ = "0.1.0"
