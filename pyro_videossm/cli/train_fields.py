"""``videossm train convdmm|convlstm|dmm-flat data.nc -o model.pt``: field forecasters.

Trains on windows of ``context + leads`` frames of a field ``VAR(time, y, x)`` or ``VAR(sample,
time, y, x)`` (NaN = missing, masked) read with :class:`~pyro_videossm.data.fields.FieldWindows`:

* ``convdmm``: convolutional deep Markov model (:class:`~pyro_videossm.models.ssm.ConvDMM`),
  ELBO on whole windows with the shared SVI loop (KL annealing with ``--anneal-epochs``);
* ``dmm-flat``: DMM with one latent vector per frame (:mod:`pyro_videossm.models.ssm.dmm_flat`);
* ``convlstm``: ConvLSTM encoder–forecaster, masked MSE of the ``leads`` frames after the
  ``context`` (:mod:`pyro_videossm.models.forecasters.convlstm`).

The last ``--valid-fraction`` of the samples (of the time axis, for one long series) is held out
for validation and ``--patience``. ``--normalize`` fits a
:class:`~pyro_videossm.data.scaling.FieldScaling` on the training part (``robust``, the
default, maps the 1st..99th percentiles to [0, 1]: heavy-tailed noise does not set the scale).
The model file (``save_model_file``) holds the architecture, the scaling and the context length,
so ``videossm forecast data.nc --model model.pt`` rebuilds the forecaster.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import xarray as xr
from torch import nn

from pyro_videossm.cli.common import say
from pyro_videossm.cli.train import register_trainer
from pyro_videossm.data.scaling import FieldScaling
from pyro_videossm.errors import InputError

MODELS = ("convdmm", "convlstm", "dmm-flat")
NORMALIZATIONS = ("robust", "minmax", "log", "none")
#: windows up to this many bytes are loaded into memory; larger data are streamed
IN_MEMORY_BYTES = 1 << 30


@dataclass
class FieldData:
    """Training/validation windows (tensors ``{"x", "mask"}`` or a streaming ``Dataset``)."""

    train: Any
    valid: Any | None
    scaling: FieldScaling
    variable: str
    grid: tuple[int, int]
    n_train: int
    n_valid: int


def fit_scaling(values: np.ndarray, normalize: str, units: str = "",
                eps: float = 0.01) -> FieldScaling:
    """The scaling named by ``normalize`` fitted on ``values`` (NaN ignored).

    ``robust``: ``(x - q01) / (q99 - q01)``; ``minmax``: range onto [0, 1]; ``log``: range of
    ``log(x + eps)`` onto [0, 1]; ``none``: identity.
    """
    if normalize not in NORMALIZATIONS:
        raise InputError(f"--normalize must be one of {', '.join(NORMALIZATIONS)}, "
                         f"got {normalize!r}")
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        raise InputError("the training data are all missing")
    if normalize == "none":
        return FieldScaling(units=units)
    if normalize == "robust":
        lo, hi = (float(q) for q in np.quantile(finite, [0.01, 0.99]))
        return FieldScaling(offset=lo, scale=hi - lo if hi > lo else 1.0, units=units)
    if normalize == "log" and finite.min() <= -eps:
        raise InputError(f"log normalisation needs data > -{eps:g}, min is {finite.min():g}")
    return FieldScaling.fit_minmax(finite, log=normalize == "log", eps=eps, units=units)


def _frame_sample(da: xr.DataArray, max_frames: int = 256) -> np.ndarray:
    """Up to ``max_frames`` frames spread over ``da`` (for fitting the scaling)."""
    if da.ndim == 3:
        idx = np.unique(np.linspace(0, da.sizes["time"] - 1, max_frames).astype(int))
        return np.asarray(da.isel(time=idx).values, dtype=np.float64)
    s, t = da.shape[:2]
    flat = np.unique(np.linspace(0, s * t - 1, max_frames).astype(int))
    out = [np.asarray(da[i // t, i % t].values, dtype=np.float64) for i in flat]
    return np.stack(out)


def load_field_windows(data: str | xr.Dataset, *, context: int, leads: int,
                       variable: str | None = None, stride: int = 1,
                       valid_fraction: float = 0.1, normalize: str = "robust",
                       in_memory_bytes: int = IN_MEMORY_BYTES) -> FieldData:
    """Training and validation windows of ``context + leads`` frames, in model units.

    Samples (a leading ``sample``/``clip``/``trajectory`` dim) are split by sample, one long
    series by time (:func:`~pyro_videossm.data.fields.chronological_split`), so no validation
    window shares a frame with a training window. Windows with an all-missing frame are
    skipped.
    """
    from pyro_videossm.data.conventions import open_dataset
    from pyro_videossm.data.fields import FieldWindows, check_field, chronological_split
    from pyro_videossm.forecast.base import select_field

    if context < 1 or leads < 1:
        raise InputError(f"--context and --leads must be >= 1, got {context}, {leads}")
    if not 0 <= valid_fraction < 1:
        raise InputError(f"--valid-fraction must be in [0, 1), got {valid_fraction}")
    ds = open_dataset(data) if not isinstance(data, xr.Dataset) else data
    da = select_field(ds, variable)
    check_field(da, check_missing=False)
    length = context + leads
    if da.ndim == 4 and da.sizes[da.dims[0]] > 1:
        s = da.sizes[da.dims[0]]
        n_valid = max(1, int(round(valid_fraction * s))) if valid_fraction > 0 else 0
        if n_valid >= s:
            raise InputError("no training sample left: lower --valid-fraction")
        train_da = da.isel({da.dims[0]: slice(0, s - n_valid)})
        valid_da = da.isel({da.dims[0]: slice(s - n_valid, s)}) if n_valid else None
        train_range = valid_range = None
    else:
        n_time = da.sizes["time"]
        train_da = valid_da = da
        if valid_fraction > 0:
            split = chronological_split(n_time, (1 - valid_fraction, valid_fraction),
                                        ("train", "valid"))
            train_range, valid_range = split["train"], split["valid"]
            if valid_range.stop - valid_range.start < length:
                valid_da = None  # too short to hold one window: no validation
        else:
            train_range, valid_range, valid_da = None, None, None
    scaling = fit_scaling(_frame_sample(train_da if train_range is None
                                        else train_da.isel(time=train_range)),
                          normalize, str(da.attrs.get("units", "")))

    def windows(part: xr.DataArray, time_range) -> FieldWindows:
        return FieldWindows(part, context=context, leads=leads, stride=stride,
                            time_range=time_range, scaling=scaling, missing_frames="skip")

    train = windows(train_da, train_range)
    valid = windows(valid_da, valid_range) if valid_da is not None else None
    grid = tuple(int(n) for n in train.spatial_shape)
    frame_bytes = 5 * grid[0] * grid[1] * length  # float32 values + bool mask

    def materialise(w: FieldWindows | None):
        if w is None:
            return None
        return w.to_tensors() if len(w) * frame_bytes <= in_memory_bytes else w

    return FieldData(materialise(train), materialise(valid), scaling, str(da.name), grid,
                     len(train), 0 if valid is None else len(valid))


# -- models ---------------------------------------------------------------------------------
def build_module(name: str, options: dict[str, Any], grid: tuple[int, int]) -> nn.Module:
    """The untrained network ``name`` with architecture ``options`` (constructor arguments)."""
    if name == "convdmm":
        from pyro_videossm.models.ssm.conv_dmm import ConvDMM

        return ConvDMM(**options)
    if name == "dmm-flat":
        from pyro_videossm.models.ssm.dmm_flat import DMMFlat

        return DMMFlat(grid=grid, **options)
    if name == "convlstm":
        from pyro_videossm.models.forecasters.convlstm import ConvLSTMEncoderForecaster

        return ConvLSTMEncoderForecaster(**options)
    raise InputError(f"unknown field model {name!r} (models: {', '.join(MODELS)})")


def make_objective(name: str, module: nn.Module, context: int,
                   target_clip: tuple[float, float] | None = None):
    """The shared Trainer's objective: ELBO for the DMMs, masked MSE for the ConvLSTM (with
    targets clamped to ``target_clip`` if given)."""
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


def train_field_model(name: str, module: nn.Module, data: FieldData, config, context: int,
                      resume: bool = False,
                      target_clip: tuple[float, float] | None = None) -> list[dict]:
    """Fit ``module`` on ``data`` with the shared Trainer (``config``: a ``TrainConfig``;
    ``target_clip``: see :func:`make_objective`)."""
    from pyro_videossm.infer import Trainer

    trainer = Trainer(make_objective(name, module, context, target_clip), config)
    return trainer.fit(data.train, data.valid, resume=resume)


# -- the sub-commands -----------------------------------------------------------------------
def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--variable", help="field variable (default: obs, precip, ... or the "
                                           "only one)")
    parser.add_argument("--context", type=int, default=10, help="context frames (default 10)")
    parser.add_argument("--leads", type=int, default=10, help="forecast steps (default 10)")
    parser.add_argument("--stride", type=int, default=1,
                        help="steps between training windows of a series (default 1)")
    parser.add_argument("--valid-fraction", type=float, default=0.1,
                        help="samples (or final time steps) held out (default 0.1)")
    parser.add_argument("--normalize", choices=NORMALIZATIONS, default="robust",
                        help="scaling fitted on the training part (default robust: 1st-99th "
                             "percentiles to [0, 1])")
    parser.add_argument("--input-clip", type=float, nargs=2, metavar=("LOW", "HIGH"),
                        help="clamp the values the encoder sees (model units), e.g. -0.5 1.5")
    parser.add_argument("--patience", type=int,
                        help="stop after this many epochs without validation improvement")
    parser.add_argument("--lr-decay", type=float, default=1.0,
                        help="learning-rate factor per epoch (default 1)")


def _likelihood(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--likelihood", choices=("gaussian", "student_t"), default="gaussian",
                        help="pixel noise (default gaussian; student_t for heavy tails)")
    parser.add_argument("--obs-scale", type=float,
                        help="fixed noise scale in model units (default: learned)")
    parser.add_argument("--df", type=float, default=4.0,
                        help="Student-t degrees of freedom (default 4)")
    parser.add_argument("--anneal-epochs", type=int, default=0,
                        help="KL annealing epochs (default 0: none)")
    parser.add_argument("--min-anneal", type=float, default=0.2,
                        help="initial KL annealing factor (default 0.2)")


def _convdmm_args(parser: argparse.ArgumentParser) -> None:
    _common(parser)
    _likelihood(parser)
    parser.add_argument("--latent-channels", type=int, default=8, help="C of z (default 8)")
    parser.add_argument("--hidden-channels", type=int, default=32,
                        help="transition/emitter channels (default 32)")
    parser.add_argument("--rnn-channels", type=int, default=32,
                        help="guide ConvLSTM channels (default 32)")
    parser.add_argument("--encoder-channels", type=int, default=32,
                        help="guide encoder channels (default 32)")
    parser.add_argument("--n-down", type=int, default=2,
                        help="stride-2 downsamplings to the latent grid (default 2)")


def _flat_args(parser: argparse.ArgumentParser) -> None:
    _common(parser)
    _likelihood(parser)
    parser.add_argument("--latent-dim", type=int, default=32, help="z size (default 32)")
    parser.add_argument("--hidden-dim", type=int, default=64,
                        help="transition units (default 64)")
    parser.add_argument("--rnn-dim", type=int, default=64, help="guide GRU units (default 64)")
    parser.add_argument("--conv-channels", type=int, default=16,
                        help="encoder/emitter channels (default 16)")
    parser.add_argument("--n-down", type=int, default=2,
                        help="stride-2 downsamplings (default 2)")


def _convlstm_args(parser: argparse.ArgumentParser) -> None:
    _common(parser)
    parser.add_argument("--hidden-channels", type=int, nargs="+", default=[32, 32],
                        help="ConvLSTM channels per layer, finest first (default 32 32)")
    parser.add_argument("--stem-channels", type=int, default=16,
                        help="stem/head channels (default 16)")
    parser.add_argument("--target-clip", type=float, nargs=2, metavar=("LOW", "HIGH"),
                        help="clamp the MSE targets (model units): a guard against "
                             "heavy-tailed noise (default: plain MSE)")


def architecture_from_args(name: str, args: argparse.Namespace) -> dict[str, Any]:
    """Constructor options of model ``name`` from the parsed command line."""
    clip = None if args.input_clip is None else list(args.input_clip)
    if name == "convlstm":
        return dict(hidden_channels=list(args.hidden_channels),
                    stem_channels=args.stem_channels, input_clip=clip)
    lik = dict(likelihood=args.likelihood, obs_scale=args.obs_scale, df=args.df,
               input_clip=clip)
    if name == "convdmm":
        return dict(latent_channels=args.latent_channels, hidden_channels=args.hidden_channels,
                    rnn_channels=args.rnn_channels, encoder_channels=args.encoder_channels,
                    n_down=args.n_down, **lik)
    return dict(latent_dim=args.latent_dim, hidden_dim=args.hidden_dim, rnn_dim=args.rnn_dim,
                conv_channels=args.conv_channels, n_down=args.n_down, **lik)


def _runner(name: str):
    def run(args: argparse.Namespace) -> int:
        from pyro_videossm.infer import TrainConfig

        torch.manual_seed(args.seed)
        data = load_field_windows(
            str(args.data), context=args.context, leads=args.leads, variable=args.variable,
            stride=args.stride, valid_fraction=args.valid_fraction, normalize=args.normalize)
        module = build_module(name, architecture_from_args(name, args), data.grid)
        config = TrainConfig(
            epochs=20 if args.epochs is None else args.epochs,
            batch_size=16 if args.batch_size is None else args.batch_size,
            lr=1e-3 if args.lr is None else args.lr, lr_decay=args.lr_decay,
            anneal_epochs=getattr(args, "anneal_epochs", 0),
            min_anneal=getattr(args, "min_anneal", 0.2),
            patience=args.patience, device=args.device, seed=args.seed,
            checkpoint_path=str(args.checkpoint) if args.checkpoint else None,
            progress=args.progress)
        say(f"{name}: {sum(p.numel() for p in module.parameters()):,} parameters, "
            f"{data.n_train} training and {data.n_valid} validation windows of "
            f"{args.context}+{args.leads} frames {data.grid[0]}x{data.grid[1]}; "
            f"scaling {data.scaling.describe()}")
        history = train_field_model(name, module, data, config, args.context, args.resume,
                                    getattr(args, "target_clip", None))
        forecaster = make_forecaster(name, module.cpu(), data.scaling, args.context)
        forecaster.save(args.output, extra={
            "history": [{k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                         for k, v in h.items()} for h in history],
            "data": str(args.data), "variable": data.variable, "leads": args.leads,
            "train_config": config.to_dict()})
        last = history[-1] if history else {}
        valid = last.get("valid_loss")
        say(f"wrote {args.output} (epochs {len(history)}, train loss "
            f"{last.get('train_loss', float('nan')):.5g}, valid loss "
            f"{'n/a' if valid is None else f'{valid:.5g}'})")
        return 0

    return run


register_trainer("convdmm", "convolutional deep Markov model for 2D fields (ensemble forecasts)",
                 _convdmm_args, _runner("convdmm"))
register_trainer("convlstm", "ConvLSTM encoder-forecaster for 2D fields (MSE, deterministic)",
                 _convlstm_args, _runner("convlstm"))
register_trainer("dmm-flat", "deep Markov model on flattened frames (vector latent)",
                 _flat_args, _runner("dmm-flat"))
