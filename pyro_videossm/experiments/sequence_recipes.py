"""Recipes ``spatrans``, ``transformer``, ``lstm``, ``seq2seq``, ``seq2seq-attn``: frame
forecasters (point, or ``quantile`` for 10/50/90 % quantiles) trained with a masked MSE or
pinball loss.

They train on windows of ``context + leads`` frames cut by
:func:`~pyro_videossm.experiments.windows.build_windows` from moving digits
``frames(clip, time, y, x)`` in [0, 1] or any single-variable field ``VAR(time, y, x)`` /
``VAR(sample, time, y, x)`` (NaN = missing, masked). With ``normalize="none"`` (the default)
the training frames must lie in [0, 1]; the other normalisations fit a scaling on the training
part, stored in the model file and inverted by ``videossm forecast``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from pyro_videossm.errors import InputError
from pyro_videossm.experiments.recipe import Recipe
from pyro_videossm.experiments.recipes import RECIPES
from pyro_videossm.experiments.windowed import WindowOptions, option, train_windowed
from pyro_videossm.experiments.windows import WindowData

#: Default quantile levels of ``quantile``.
QUANTILES = (0.1, 0.5, 0.9)
SEQUENCE_MODELS = ("spatrans", "transformer", "lstm", "seq2seq", "seq2seq-attn")
#: TrainConfig defaults of the sequence recipes
TRAIN_DEFAULTS = {"epochs": 20, "batch_size": 16, "lr": 1e-3}


@dataclass
class SequenceOptions(WindowOptions):
    quantile: bool = option(False, "quantile forecasts at levels 0.1, 0.5, 0.9 (pinball loss)")
    quantiles: list[float] | None = option(None, "quantile levels (implies --quantile)")

    def levels(self) -> tuple[float, ...] | None:
        if self.quantiles:
            return tuple(float(q) for q in self.quantiles)
        return QUANTILES if self.quantile else None


@dataclass
class TransformerOptions(SequenceOptions):
    d_model: int = option(128, "token width")
    heads: int = option(4, "attention heads")
    layers: int = option(2, "encoder layers and decoder layers, each")
    decoder: str = option("direct", "all leads in one pass, or autoregressive",
                          choices=("direct", "autoregressive"))

    def architecture(self) -> dict[str, Any]:
        return dict(d_model=self.d_model, heads=self.heads, encoder_layers=self.layers,
                    decoder_layers=self.layers, decoder=self.decoder)


@dataclass
class SpatioTemporalOptions(TransformerOptions):
    patch: int = option(8, "patch size")
    d_model: int = option(64, "token width")

    def architecture(self) -> dict[str, Any]:
        return dict(super().architecture(), patch=self.patch)


@dataclass
class LSTMOptions(SequenceOptions):
    d_model: int = option(256, "frame embedding width")
    hidden: int = option(512, "LSTM width")
    lstm_layers: int = option(2, "LSTM layers")

    def architecture(self) -> dict[str, Any]:
        return dict(d_model=self.d_model, hidden=self.hidden, layers=self.lstm_layers)


# -- the parts, usable on their own (benchmarks) --------------------------------------------
def model_class(name: str) -> type:
    from pyro_videossm.models.forecasters.sequence_baselines import (
        FlatTransformer,
        LSTMForecaster,
        Seq2Seq,
        Seq2SeqAttention,
    )
    from pyro_videossm.models.forecasters.spatiotemporal_transformer import (
        SpatioTemporalTransformer,
    )

    classes = {"spatrans": SpatioTemporalTransformer, "transformer": FlatTransformer,
               "lstm": LSTMForecaster, "seq2seq": Seq2Seq, "seq2seq-attn": Seq2SeqAttention}
    if name not in classes:
        raise InputError(f"unknown sequence model {name!r} (models: "
                         f"{', '.join(SEQUENCE_MODELS)})")
    return classes[name]


def build_sequence_model(name: str, architecture: dict[str, Any], frame_shape, context: int,
                         leads: int, scaling=None, quantiles=None):
    """The untrained :class:`~pyro_videossm.models.forecasters.frame_forecaster.FrameForecaster`
    ``name`` with ``architecture`` (constructor options)."""
    return model_class(name)(frame_shape=tuple(frame_shape), context_length=context,
                             leads=leads, quantiles=quantiles, scaling=scaling, **architecture)


def frame_loss(module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """``loss_fn`` for :class:`~pyro_videossm.infer.LossObjective`: ``module.loss`` of a batch
    ``{"x": (B, T, H, W), "mask"}`` (the builder's format; ``"frames"`` is read too)."""
    if "frames" not in batch:
        batch = {"frames": batch["x"], **{k: v for k, v in batch.items() if k != "x"}}
    return module.loss(batch)


def train_forecaster(model, windows: WindowData, config, resume: bool = False) -> list[dict]:
    """Train ``model`` on ``windows`` with the shared Trainer; returns the history."""
    from pyro_videossm.infer import LossObjective, Trainer

    return Trainer(LossObjective(model, frame_loss), config).fit(windows.train, windows.valid,
                                                                 resume=resume)


def check_unit_range(data: WindowData, options: SequenceOptions) -> None:
    """Without normalisation the (in-memory) training frames must lie in [0, 1]."""
    if options.normalize != "none" or not isinstance(data.train, dict):
        return
    x = data.train["x"][data.train["mask"]]
    if x.numel() and (float(x.min()) < 0.0 or float(x.max()) > 1.0):
        raise InputError(f"frames outside [0, 1] (min {float(x.min()):g}, max "
                         f"{float(x.max()):g}) with normalisation off: use --normalize "
                         "minmax or log")


def _objective(module, options):
    from pyro_videossm.infer import LossObjective

    return LossObjective(module, frame_loss)


# -- the recipes ----------------------------------------------------------------------------
def _recipe(name: str, help: str, options: type) -> Recipe:
    def train(run, opts):
        return train_windowed(recipe, run, opts, check=check_unit_range)

    recipe = Recipe(
        name=name, help=help, options=options, train=train,
        build=lambda opts, data: build_sequence_model(
            name, opts.architecture(), data.grid, opts.context, opts.leads, data.scaling,
            opts.levels()),
        objective=_objective, wrap=lambda module, data, opts: module,
        defaults=dict(TRAIN_DEFAULTS))
    return RECIPES.register(recipe)


SPATRANS = _recipe("spatrans", "Spatiotemporal Transformer (patches, spatial + cross-step "
                               "attention)", SpatioTemporalOptions)
TRANSFORMER = _recipe("transformer", "Transformer on flattened frames", TransformerOptions)
LSTM = _recipe("lstm", "LSTM on flattened frames", LSTMOptions)
SEQ2SEQ = _recipe("seq2seq", "LSTM encoder-decoder on flattened frames", LSTMOptions)
SEQ2SEQ_ATTN = _recipe("seq2seq-attn", "LSTM encoder-decoder with attention on flattened "
                                       "frames", LSTMOptions)
