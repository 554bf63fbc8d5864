"""Neural blocks shared by the models (DMM blocks here; convolutional blocks in their own files)."""

from pyro_videossm.nn.dmm_blocks import (
    MLP,
    BernoulliLikelihood,
    Combiner,
    Emitter,
    GainCombiner,
    GatedTransition,
    GaussianLikelihood,
    InitialState,
    MeanFieldHead,
    ObservationEncoder,
)

__all__ = [
    "MLP",
    "BernoulliLikelihood",
    "Combiner",
    "Emitter",
    "GainCombiner",
    "GatedTransition",
    "GaussianLikelihood",
    "InitialState",
    "MeanFieldHead",
    "ObservationEncoder",
]
