"""Lorenz-96 (N = 40, F = 8) observing every 2nd component (20 of 40; issue 13, "harder
settings"): the methods and the DMM's budget are those of :mod:`assimilation.lorenz96_every_kth`,
plus the sharp recipe of :mod:`assimilation.lorenz96_n40` (``SHARP_TRAINING``: windows of 160,
the transition noise fixed at 0.005, no learned correction, no guide residual, the data's own
RK4 step), trained and untrained.

Why the sharp recipe: the DMM's guide with the true physics and nothing learned (the oracle
smoother, ``benchmarks/lorenz96_every2_oracle.py``, docs/HARDER_SETTINGS.md) on seed 0 scores
0.175 in windows of 40 (the earlier recipe's), 0.118 in windows of 80 and 0.077 in windows of
160 (300 cycles): a window starts from climatology and its unobserved half needs many
observations on both sides of a cycle, as on N = 40 all observed. On 1000 cycles some
windows stop on a poor Gauss-Newton path with 5 or 12 relinearisations, none with 20.
"""

from assimilation.config import MethodEntry, Setting, TrainedModel
from assimilation.lorenz96_every_kth import every_kth_setting

RECIPE = "assimilation.dmm_training:train_for_setting"
UNTRAINED = "assimilation.dmm_training:untrained_for_setting"
#: the sharp recipe of assimilation/lorenz96_n40.py on this setting
SHARP_TRAINING = {"seed": 1001, "cycles": 5000, "window": 160, "stride": 80,
                  "transition_scale": 0.005, "learn_transition_scale": False,
                  "correction_hidden": [], "guide_residual": False, "smoother_iterations": 5,
                  "rnn_dim": 128, "epochs": 5, "batch_size": 16, "lr": 2e-4,
                  "physics_substeps": None}
#: assimilating in windows of 160 every 40 cycles (each cycle at least 60 cycles from its
#: window's ends, except near the record's ends) with 20 Gauss-Newton relinearisations
#: instead of the 5 it trains with: on seed 0, 1000 cycles, the oracle smoother with 5 (and
#: 12) stops on a poor path in some windows (RMSE 0.214 (0.101), worst 50-cycle block 1.74
#: (0.61)); with 20 none does (0.076, worst block 0.12); on seed 1 20 still leave poor
#: windows (0.187, worst block 1.77) and 30 do not (0.082), but at 5 seeds 30 make seed 3
#: worse (0.178 against 0.127): the diagnostic row with 30, docs/HARDER_SETTINGS.md
SHARP_OPTIONS = {"samples": 64, "window": 160, "stride": 40, "smoother_iterations": 20}
SHARP_MODEL = TrainedModel("dmm_sharp.pt", workdir=True, recipe=RECIPE,
                           options={"setting": "lorenz96_every2", **SHARP_TRAINING})
SHARP_UNTRAINED = TrainedModel("dmm_sharp_untrained.pt", workdir=True, recipe=UNTRAINED,
                               options={"setting": "lorenz96_every2", **SHARP_TRAINING})

_BASE = every_kth_setting(2)
#: the earlier trained row (windows of 40, learned noise; 0.301 +- 0.010 at 5 seeds x 1000
#: cycles, record at commit 0161288) is dropped: its model file was not kept, and retraining
#: it costs about 22 minutes on the loaded machine; its untrained row stays (rebuilt in
#: seconds, the same model: it is seeded)
EARLIER_TRAINED = "hybrid DMM"
#: the iEnKS with long lags, as on L96 N=40 all observed (where lag 40 is the best classical
#: row): the every-k-th grid has it at lag 1 only
LONG_LAG_IENKS = tuple(
    MethodEntry(f"iEnKS N=40 (lag {lag}, infl {infl:g})", "ienks",
                {"members": 40, "lag": lag, "inflation": infl})
    for lag, infl in ((20, 1.02), (40, 1.02), (40, 1.05)))
SETTING = Setting(**{**_BASE, "methods": tuple(
    e for e in _BASE["methods"] if e.label != EARLIER_TRAINED) + LONG_LAG_IENKS + (
    MethodEntry("hybrid DMM, sharp recipe (windows of 160)", "dmm", dict(SHARP_OPTIONS),
                model=SHARP_MODEL, relative_bound=1.0,
                note="the true physics (the data's RK4 step) without a learned correction, "
                     "its transition noise fixed at 0.005, a learned guide (backward GRU "
                     "message, spread, forecast weight; no residual) trained on its own "
                     "simulation (seed 1001, 5000 cycles, windows of 160, 20 SVI steps at lr "
                     "0.0002, 5 relinearisations), assimilating in windows of 160 every 40 cycles "
                     "with 20 relinearisations; bound: the best classical row (issue 13)"),
    MethodEntry("hybrid DMM, sharp recipe, 30 relinearisations", "dmm",
                {**SHARP_OPTIONS, "smoother_iterations": 30}, model=SHARP_MODEL,
                note="diagnostic: the trained row's model assimilating with 30 Gauss-Newton "
                     "relinearisations instead of 20 (on seed 1 20 leave windows on a poor "
                     "path)"),
    MethodEntry("hybrid DMM, sharp recipe, untrained (windows of 160)", "dmm",
                dict(SHARP_OPTIONS), model=SHARP_UNTRAINED,
                note="diagnostic: the sharp recipe's model before training, i.e. the guide's "
                     "Gauss-Newton weak-constraint smoother with the true physics and the "
                     "fixed noise (the oracle smoother), 20 relinearisations"),
)})
