"""Lorenz-63 standard setting with a learned method: the hybrid DMM's guide beside the EnKS
and the particle filter.

The DMM's model file comes from the demo recipe
(:func:`pyro_videossm.experiments.dmm.train_demo_model`: the ``l63`` budget of
``assimilation/dmm_experiments.py``, about a minute on 2 cores), trained once on its own
simulation (seed 1001) and written under the runner's work folder; ``--model
"hybrid DMM=PATH"`` scores another file. No bound yet: this runner has not measured the row
(``assimilation/dmm_experiments.py l63`` reports 0.232 with its own training seed).
"""

from assimilation.config import MethodEntry, Setting, TrainedModel
from assimilation.lorenz63_sakov2012 import SETTING as STANDARD

SETTING = Setting(
    name="lorenz63_dmm",
    title="Lorenz-63, Sakov et al. (2012) setting: hybrid DMM against the EnKS and the PF",
    description=STANDARD.description + " The DMM is trained on its own simulation (seed 1001).",
    simulate=dict(STANDARD.simulate),
    methods=(
        MethodEntry("hybrid DMM", "dmm", {"samples": 64},
                    model=TrainedModel(
                        "dmm_l63_demo.pt", workdir=True,
                        recipe="pyro_videossm.experiments.dmm:train_demo_model",
                        options={"seed": 1001}),
                    note="model: the demo recipe (train_demo_model, seed 1001)"),
        MethodEntry("EnKS N=10 (lag 8)", "enks", {"members": 10, "lag": 8}),
        MethodEntry("PF N=800", "pf", {"members": 800, "jitter": 0.3,
                                       "resample_threshold": 0.5}),
    ),
)
