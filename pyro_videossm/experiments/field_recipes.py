"""Recipes ``convdmm``, ``convlstm``, ``dmm-flat`` and ``advection-convdmm``: field forecasters
on 2D frames.

They train on windows of ``context + leads`` frames of a field ``VAR(time, y, x)`` or
``VAR(sample, time, y, x)`` (NaN = missing, masked), cut by
:func:`~pyro_videossm.experiments.windows.build_windows` (``--normalize robust`` by default):

* ``convdmm``: convolutional deep Markov model (:class:`~pyro_videossm.models.ssm.ConvDMM`),
  ELBO on whole windows (KL annealing with ``anneal_epochs``);
* ``dmm-flat``: DMM with one latent vector per frame (:mod:`pyro_videossm.models.ssm.dmm_flat`);
* ``advection-convdmm``: ConvDMM whose latent fields are advected by the context's optical flow
  and modelled in a log-transformed space, forecasts capped
  (:mod:`pyro_videossm.models.ssm.advection_conv_dmm`);
* ``convlstm``: ConvLSTM encoder–forecaster, masked MSE of the ``leads`` frames after the
  ``context`` (:mod:`pyro_videossm.models.forecasters.convlstm`).

The model file (the forecaster's ``save``) holds the architecture, the scaling and the context
length, so ``videossm forecast data.nc --model model.pt`` rebuilds the forecaster.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from torch import nn

from pyro_videossm.data.scaling import FieldScaling
from pyro_videossm.errors import InputError
from pyro_videossm.experiments.normalization import NORMALIZATIONS
from pyro_videossm.experiments.recipe import Recipe
from pyro_videossm.experiments.recipes import RECIPES
from pyro_videossm.experiments.windowed import WindowOptions, option, train_windowed
from pyro_videossm.experiments.windows import WindowData

FIELD_MODELS = ("convdmm", "convlstm", "dmm-flat", "advection-convdmm")
#: TrainConfig defaults of the field recipes
TRAIN_DEFAULTS = {"epochs": 20, "batch_size": 16, "lr": 1e-3}


@dataclass
class FieldOptions(WindowOptions):
    normalize: str = option("robust", "scaling fitted on the training part: robust (1st-99th "
                                      "percentiles to [0, 1]), minmax, log or none (identity)",
                            choices=NORMALIZATIONS)
    input_clip: tuple[float, float] | None = option(
        None, "clamp the values the encoder sees (model units), e.g. -0.5 1.5",
        metavar=("LOW", "HIGH"))


@dataclass
class LikelihoodOptions(FieldOptions):
    likelihood: str = option("gaussian", "pixel noise (student_t for heavy tails)",
                             choices=("gaussian", "student_t"))
    obs_scale: float | None = option(None, "fixed noise scale in model units (default: "
                                           "learned)")
    df: float = option(4.0, "Student-t degrees of freedom")
    anneal_epochs: int = option(0, "KL annealing epochs (0: none)")
    min_anneal: float = option(0.2, "initial KL annealing factor")

    def likelihood_options(self) -> dict[str, Any]:
        return dict(likelihood=self.likelihood, obs_scale=self.obs_scale, df=self.df,
                    input_clip=_clip(self.input_clip))

    def architecture(self) -> dict[str, Any]:
        """The network's constructor arguments: the fields a subclass adds to these options
        (the sizes), then :meth:`likelihood_options`."""
        shared = {f.name for f in fields(LikelihoodOptions)}
        sizes = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in shared}
        return {**sizes, **self.likelihood_options()}


@dataclass
class ConvDMMOptions(LikelihoodOptions):
    """Options of the ``convdmm`` recipe: each field is a constructor argument of
    :class:`~pyro_videossm.models.ssm.conv_dmm.ConvDMM` (see
    :meth:`LikelihoodOptions.architecture`)."""

    latent_channels: int = option(8, "C of z")
    hidden_channels: int = option(32, "transition/emitter channels")
    rnn_channels: int = option(32, "guide ConvLSTM channels")
    encoder_channels: int = option(32, "guide encoder channels")
    n_down: int = option(2, "stride-2 downsamplings to the latent grid")


@dataclass
class FlatDMMOptions(LikelihoodOptions):
    """Options of the ``dmm-flat`` recipe: each field is a constructor argument of
    :class:`~pyro_videossm.models.ssm.dmm_flat.DMMFlat` (see
    :meth:`LikelihoodOptions.architecture`)."""

    latent_dim: int = option(32, "z size")
    hidden_dim: int = option(64, "transition units")
    rnn_dim: int = option(64, "guide GRU units")
    conv_channels: int = option(16, "encoder/emitter channels")
    n_down: int = option(2, "stride-2 downsamplings")


@dataclass
class AdvectionConvDMMOptions(LikelihoodOptions):
    """Options of the ``advection-convdmm`` recipe: each field is a constructor argument of
    :class:`~pyro_videossm.models.ssm.advection_conv_dmm.AdvectionConvDMM`."""

    latent_channels: int = option(4, "C of z (channel 0: the field, transformed)")
    hidden_channels: int = option(16, "transition-correction/guide-step channels")
    rnn_channels: int = option(16, "guide ConvLSTM channels")
    encoder_channels: int = option(16, "guide encoder channels")
    n_down: int = option(2, "stride-2 downsamplings of the guide's encoder")
    motion: str = option("optical_flow", "motion field: OpenCV flow of the context, or none",
                         choices=("optical_flow", "none"))
    flow_method: str = option("dis", "OpenCV optical-flow method", choices=("dis", "farneback"))
    flow_frames: int = option(3, "frames the flow is estimated from (>= 2)")
    transform: str = option("log", "space the field is modelled in: log (rain) or none",
                            choices=("log", "none"))
    transform_offset: float = option(0.01, "offset c of the log transform (model units)")
    transform_threshold: float = option(0.0, "values below it count as 0 (model units)")
    cap_factor: float | None = option(2.0, "forecasts <= this times the context's maximum")
    max_change: float = option(0.5, "largest change per step of the learned correction")
    interpolation: str = option("bicubic", "of the semi-Lagrangian step (bilinear blurs more)",
                                choices=("bilinear", "bicubic"))
    rollout_horizon: int = option(0, "train the prior's free-running mean this many steps "
                                     "ahead too (0: plain ELBO)")
    rollout_weight: float = option(1.0, "weight of that free-running likelihood term")
    rollout_stride: int = option(10, "steps between the starts of the free-running terms")
    linear_kernel: int = option(0, "add a learned linear k×k stencil to the transition (odd "
                                   "k; a diffusion-like physics step; 0: none)")


@dataclass
class ConvLSTMOptions(FieldOptions):
    hidden_channels: list[int] = option([32, 32], "ConvLSTM channels per layer, finest first")
    stem_channels: int = option(16, "stem/head channels")
    target_clip: tuple[float, float] | None = option(
        None, "clamp the MSE targets (model units): a guard against heavy-tailed noise "
              "(default: plain MSE)", metavar=("LOW", "HIGH"))

    def architecture(self) -> dict[str, Any]:
        return dict(hidden_channels=list(self.hidden_channels),
                    stem_channels=self.stem_channels, input_clip=_clip(self.input_clip))


def _clip(clip) -> list[float] | None:
    return None if clip is None else [float(c) for c in clip]


# -- the parts, usable on their own (benchmarks) --------------------------------------------
def build_module(name: str, architecture: dict[str, Any], grid: tuple[int, int]) -> nn.Module:
    """The untrained network ``name`` with ``architecture`` (its constructor arguments)."""
    if name == "convdmm":
        from pyro_videossm.models.ssm.conv_dmm import ConvDMM

        return ConvDMM(**architecture)
    if name == "advection-convdmm":
        from pyro_videossm.models.ssm.advection_conv_dmm import AdvectionConvDMM

        return AdvectionConvDMM(**architecture)
    if name == "dmm-flat":
        from pyro_videossm.models.ssm.dmm_flat import DMMFlat

        return DMMFlat(grid=grid, **architecture)
    if name == "convlstm":
        from pyro_videossm.models.forecasters.convlstm import ConvLSTMEncoderForecaster

        return ConvLSTMEncoderForecaster(**architecture)
    raise InputError(f"unknown field model {name!r} (models: {', '.join(FIELD_MODELS)})")


def make_objective(name: str, module: nn.Module, context: int,
                   target_clip: tuple[float, float] | None = None):
    """The Trainer's objective: ELBO for the DMMs, masked MSE of the leads for the ConvLSTM
    (targets clamped to ``target_clip`` if given)."""
    from pyro_videossm.infer import LossObjective, SVIObjective

    if name == "convlstm":
        from pyro_videossm.models.forecasters.convlstm import MSELoss

        return LossObjective(module, MSELoss(context, target_clip))
    return SVIObjective(module)


def make_forecaster(name: str, module: nn.Module, scaling: FieldScaling, context: int,
                    device: str = "cpu"):
    """The :class:`~pyro_videossm.forecast.base.Forecaster` around a trained ``module``."""
    from pyro_videossm.forecast import get_forecaster

    return get_forecaster(name, module=module, scaling=scaling, device=device,
                          context_length=context)


def train_field_model(name: str, module: nn.Module, data: WindowData, config, context: int,
                      resume: bool = False,
                      target_clip: tuple[float, float] | None = None) -> list[dict]:
    """Fit ``module`` on ``data`` with the shared Trainer (``config``: a ``TrainConfig``)."""
    from pyro_videossm.infer import Trainer

    trainer = Trainer(make_objective(name, module, context, target_clip), config)
    return trainer.fit(data.train, data.valid, resume=resume)


# -- the recipes ----------------------------------------------------------------------------
def _recipe(name: str, help: str, options: type) -> Recipe:
    def train(run, opts):
        return train_windowed(recipe, run, opts)

    recipe = Recipe(
        name=name, help=help, options=options, train=train,
        build=lambda opts, data: build_module(name, opts.architecture(), data.grid),
        objective=lambda module, opts: make_objective(
            name, module, opts.context, getattr(opts, "target_clip", None)),
        wrap=lambda module, data, opts: make_forecaster(name, module, data.scaling,
                                                        opts.context),
        defaults=dict(TRAIN_DEFAULTS))
    return RECIPES.register(recipe)


CONVDMM = _recipe("convdmm", "convolutional deep Markov model for 2D fields (ensemble "
                             "forecasts)", ConvDMMOptions)
CONVLSTM = _recipe("convlstm", "ConvLSTM encoder-forecaster for 2D fields (MSE, "
                               "deterministic)", ConvLSTMOptions)
DMM_FLAT = _recipe("dmm-flat", "deep Markov model on flattened frames (vector latent)",
                   FlatDMMOptions)
ADVECTION_CONVDMM = _recipe("advection-convdmm", "ConvDMM advected by the context's optical "
                                                 "flow, log-transformed rain, capped forecasts "
                                                 "(nowcasting)", AdvectionConvDMMOptions)
