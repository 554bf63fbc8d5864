"""Pyro models, grouped by family; every class owns its ``model`` and ``guide``.

- :mod:`~pyro_videossm.models.ssm`: state-space models (DMM, hybrid DMM, ConvDMM, flat DMM)
  and the DMM as an assimilation method;
- :mod:`~pyro_videossm.models.forecasters`: neural field forecasters (ConvLSTM,
  spatiotemporal transformer, sequence baselines);
- :mod:`~pyro_videossm.models.video`: video models (disentangled sequential VAE);
- :mod:`~pyro_videossm.models.audio`: sound from silent video (eating sounds).
"""

from pyro_videossm.models.forecasters.convlstm import ConvLSTMEncoderForecaster
from pyro_videossm.models.forecasters.frame_forecaster import FrameForecaster
from pyro_videossm.models.forecasters.sequence_baselines import (
    FlatTransformer,
    LSTMForecaster,
    Seq2Seq,
    Seq2SeqAttention,
)
from pyro_videossm.models.forecasters.spatiotemporal_transformer import SpatioTemporalTransformer
from pyro_videossm.models.ssm.conv_dmm import ConvDMM, FieldDMM
from pyro_videossm.models.ssm.dmm import DMM, DMMModel
from pyro_videossm.models.ssm.dmm_file import load_dmm, save_dmm
from pyro_videossm.models.ssm.dmm_flat import DMMFlat
from pyro_videossm.models.ssm.guides import (
    FilteringGuide,
    MeanFieldGuide,
    SmootherGuide,
    SmoothingGuide,
)
from pyro_videossm.models.ssm.hybrid import PhysicsTransition, hybrid_dmm
from pyro_videossm.models.ssm.markov_gaussian import MarkovGaussian
from pyro_videossm.models.video.dsvae import DisentangledSequentialVAE

__all__ = [
    "DMM",
    "ConvDMM",
    "ConvLSTMEncoderForecaster",
    "DMMFlat",
    "DMMModel",
    "DisentangledSequentialVAE",
    "FieldDMM",
    "FilteringGuide",
    "FlatTransformer",
    "FrameForecaster",
    "LSTMForecaster",
    "MarkovGaussian",
    "MeanFieldGuide",
    "PhysicsTransition",
    "Seq2Seq",
    "Seq2SeqAttention",
    "SmootherGuide",
    "SmoothingGuide",
    "SpatioTemporalTransformer",
    "hybrid_dmm",
    "load_dmm",
    "save_dmm",
]
