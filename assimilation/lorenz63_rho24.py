"""Lorenz-63 with model error: the methods know ρ = 24, the truth has ρ = 28 (issue 13).

The standard setting of Sakov et al. (2012) (dt = 0.01, every 25 steps, R = 2, all components)
simulated with ρ = 28; every method forecasts with ρ = 24 (``known_system``). The classical
methods can only absorb the model error through inflation (a small grid) or, for the particle
filter, jitter; the hybrid DMM learns a correction on top of the ρ = 24 physics from its own
simulation (seed 1001; the budget of the ``l63_rho24`` experiment of
``assimilation/dmm_experiments.py``: 40 epochs, lr 0.01 decaying by 0.944). Issue 13's target:
DMM <= 0.5 x the best classical method with tuned inflation.

Recorded at the issue's judged protocol (5 seeds x 1000 cycles, burn-in 100): see
docs/HARDER_SETTINGS.md.
"""

from assimilation.config import MethodEntry, Setting, TrainedModel

RECIPE = "assimilation.dmm_training:train_for_setting"

#: the particle filter's jitter grid: at 3 seeds x 300 cycles the best of (0.3, 2) was the
#: largest; a probe on seed 0 (1000 cycles) gave 2.62, 1.37, 1.16 and 1.13 for jitter 1, 2,
#: 3 and 5, so the grid goes on to 8 (jitter 0.3, RMSE 9.8, is dropped)
PF_JITTERS = (2.0, 3.5, 5.0, 8.0)

SETTING = Setting(
    name="lorenz63_rho24",
    title="Lorenz-63, model error: ρ=24 known, ρ=28 true",
    description=(
        "Lorenz-63 truth (σ=10, ρ=28, β=8/3), RK4 with dt=0.01, all three components observed "
        "every 25 steps (0.25 time units) with Gaussian noise R=2I; every method forecasts "
        "with ρ=24. Time-averaged RMSE of the analysis (filters) or smoothed mean (smoothers)."
    ),
    simulate={"system": "lorenz63", "dt": 0.01, "steps_per_obs": 25,
              "obs_noise_std": 2.0**0.5},
    known_system={"system": "lorenz63", "rho": 24.0},
    methods=(
        MethodEntry("EnKS N=10 (lag 4, infl 1.1)", "enks",
                    {"members": 10, "inflation": 1.1, "lag": 4, "rotate": True}),
        MethodEntry("EnKS N=10 (lag 4, infl 1.5)", "enks",
                    {"members": 10, "inflation": 1.5, "lag": 4, "rotate": True}),
        MethodEntry("EnKS N=10 (lag 4, infl 2)", "enks",
                    {"members": 10, "inflation": 2.0, "lag": 4, "rotate": True}),
        MethodEntry("EnKS N=10 (lag 1, infl 1.5)", "enks",
                    {"members": 10, "inflation": 1.5, "lag": 1, "rotate": True}),
        MethodEntry("iEnKS N=10 (lag 1, infl 1.1)", "ienks",
                    {"members": 10, "lag": 1, "inflation": 1.1}),
        MethodEntry("iEnKS N=10 (lag 1, infl 1.5)", "ienks",
                    {"members": 10, "lag": 1, "inflation": 1.5}),
        *(MethodEntry(f"PF N=800 (jitter {jitter:g})", "pf",
                      {"members": 800, "jitter": jitter, "resample_threshold": 0.5})
          for jitter in PF_JITTERS),
        MethodEntry("4D-Var (windows of 2)", "4dvar", {}),
        MethodEntry("hybrid DMM", "dmm", {"samples": 64},
                    model=TrainedModel("dmm.pt", workdir=True, recipe=RECIPE,
                                       options={"setting": "lorenz63_rho24", "seed": 1001,
                                                "epochs": 40, "lr": 0.01,
                                                "lr_decay": 0.944}),
                    relative_bound=0.5,
                    note="ρ=24 physics plus a learned correction, trained on its own "
                         "simulation (seed 1001, 5000 cycles, 40 epochs, lr 0.01)"),
    ),
)
