"""Lorenz-96 with 40 variables, F = 8: the setting of Sakov & Oke (2008), used across the EnKF
literature (Bocquet 2011, Sakov et al. 2012, ...).

dt = 0.05, every component observed at every step with ``R = I``, 1000 cycles, scores after
100 cycles of burn-in. Published RMSEs are those DAPPER lists in
``dapper/mods/Lorenz96/sakov2008.py`` (DAPPER 1.7). Bounds are 10% above the published value;
the smoother has no published number here and must beat the ETKF's.
"""

from assimilation.config import MethodEntry, Setting

DAPPER = "DAPPER sakov2008.py"

SETTING = Setting(
    name="lorenz96_n40",
    title="Lorenz-96, 40 variables (Sakov & Oke 2008 setting)",
    description=(
        "Lorenz-96 with n=40, F=8, RK4 with dt=0.05, all 40 components observed every step "
        "with Gaussian noise R=I, perfect model, prior from climatology. Time-averaged "
        "RMSE after 100 burn-in cycles."
    ),
    simulate={"system": "lorenz96", "n": 40, "forcing": 8.0, "dt": 0.05, "steps_per_obs": 1,
              "obs_noise_std": 1.0},
    methods=(
        MethodEntry("ETKF N=24", "etkf", {"members": 24, "inflation": 1.013, "rotate": True},
                    published=0.18, reference=DAPPER + ": EnKF('Sqrt', N=24, infl=1.013, rot)",
                    bound=0.20),
        MethodEntry("LETKF N=7 (radius 4)", "letkf",
                    {"members": 7, "inflation": 1.04, "localization": 4.0, "rotate": True},
                    published=0.22,
                    reference=DAPPER + ": LETKF(N=7, rot, infl=1.04, loc_rad=4)", bound=0.24),
        MethodEntry("EnKS N=24 (lag 4)", "enks",
                    {"members": 24, "inflation": 1.013, "lag": 4, "rotate": True},
                    bound=0.18, note="smoother: must beat the ETKF's published 0.18"),
    ),
)
