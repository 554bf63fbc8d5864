"""Lorenz-96 (N = 40, F = 8) observing every 4th component (10 of 40; issue 13, "harder
settings"): the methods and the DMM's budget are those of :mod:`assimilation.lorenz96_every_kth`.

Runs recorded here are shorter than the issue's judged protocol (1000 cycles x >= 5 seeds):
see docs/HARDER_SETTINGS.md.
"""

from assimilation.config import Setting
from assimilation.lorenz96_every_kth import every_kth_setting

SETTING = Setting(**every_kth_setting(4))
