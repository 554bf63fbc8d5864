"""``videossm train spatrans|transformer|lstm|seq2seq|seq2seq-attn data.nc -o model.pt``.

Trains a frame forecaster (point, or ``--quantile`` for 10/50/90 % quantiles) with the shared
Trainer on windows of ``context + leads`` frames cut from

* moving digits: ``frames(clip, time, y, x)`` in [0, 1] (``videossm simulate moving-digits``);
* any single-variable field: ``VAR(time, y, x)`` or ``VAR(sample|clip, time, y, x)``
  (precipitation, heat, ...); NaN = missing (masked in the loss).

The last ``--valid-fraction`` of the clips (or of the time axis, for one long series) is held
out for validation and early stopping (``--patience``). ``--normalize none`` (default) needs
data in [0, 1]; ``minmax`` and ``log`` fit a :class:`FieldScaling` on the training part, stored
in the model file and inverted by ``videossm forecast``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import xarray as xr

from pyro_videossm.cli.common import say
from pyro_videossm.cli.train import register_trainer
from pyro_videossm.data.conventions import open_dataset
from pyro_videossm.data.scaling import FieldScaling
from pyro_videossm.data.windows import window_starts
from pyro_videossm.errors import InputError
from pyro_videossm.forecast.base import select_field
from pyro_videossm.models.forecasters.frame_forecaster import FrameForecaster
from pyro_videossm.models.forecasters.sequence_baselines import (
    FlatTransformer,
    LSTMForecaster,
    Seq2Seq,
    Seq2SeqAttention,
)
from pyro_videossm.models.forecasters.spatiotemporal_transformer import SpatioTemporalTransformer

#: Default quantile levels of ``--quantile``.
QUANTILES = (0.1, 0.5, 0.9)
NORMALIZATIONS = ("none", "minmax", "log")


@dataclass
class Windows:
    """Training and validation windows ``(N, context + leads, H, W)`` in model units."""

    train: dict[str, torch.Tensor]
    valid: dict[str, torch.Tensor] | None
    scaling: FieldScaling
    variable: str


def _cut(values: np.ndarray, length: int, stride: int) -> np.ndarray:
    """``(S, T, H, W)`` -> windows ``(S·n, length, H, W)``."""
    starts = window_starts(values.shape[1], length, stride)
    idx = starts[:, None] + np.arange(length)[None, :]
    win = values[:, idx]
    return win.reshape((-1, length) + values.shape[2:])


def fit_normalization(values: np.ndarray, normalize: str, units: str = "",
                      eps: float = 0.01) -> FieldScaling:
    """The scaling for ``normalize``; ``none`` checks that the data already lie in [0, 1]."""
    if normalize not in NORMALIZATIONS:
        raise InputError(f"--normalize must be one of {NORMALIZATIONS}, got {normalize!r}")
    finite = values[~np.isnan(values)]
    if finite.size == 0:
        raise InputError("the training data are all missing")
    if not np.isfinite(finite).all():
        raise InputError("the data contain infinite values")
    if normalize == "none":
        lo, hi = float(finite.min()), float(finite.max())
        if lo < 0.0 or hi > 1.0:
            raise InputError(f"frames outside [0, 1] (min {lo:g}, max {hi:g}) with "
                             "normalisation off: use --normalize minmax or log")
        return FieldScaling(units=units)
    if normalize == "log" and finite.min() <= -eps:
        raise InputError(f"log normalisation needs data > -{eps:g}, min is {finite.min():g}")
    return FieldScaling.fit_minmax(values, log=normalize == "log", eps=eps, units=units)


def load_training_windows(data: xr.Dataset | str, context: int, leads: int, *,
                          variable: str | None = None, stride: int = 1,
                          valid_fraction: float = 0.1, normalize: str = "none") -> Windows:
    """Cut a field into training/validation windows of ``context + leads`` frames.

    Clips (a leading ``sample``/``clip``/``trajectory`` dim) are split by clip, one long
    series by time (validation = the last ``valid_fraction`` of the steps), so no validation
    window shares a frame with a training window.
    """
    ds = open_dataset(data) if not isinstance(data, xr.Dataset) else data
    if variable is None and "frames" in ds.data_vars:
        variable = "frames"
    da = select_field(ds, variable)
    if context < 1 or leads < 1:
        raise InputError(f"context and leads must be >= 1, got {context}, {leads}")
    if not 0 <= valid_fraction < 1:
        raise InputError(f"--valid-fraction must be in [0, 1), got {valid_fraction}")
    if stride < 1:
        raise InputError(f"--stride must be >= 1, got {stride}")
    length = context + leads
    values = np.asarray(da.values, dtype=np.float32)
    values = values[None] if values.ndim == 3 else values  # (S, T, H, W)
    if values.shape[1] < length:
        raise InputError(f"variable {da.name!r} has {values.shape[1]} frames, fewer than "
                         f"context + leads = {context} + {leads}")
    s, t = values.shape[:2]
    if s > 1:  # clips: hold out the last clips
        n_valid = int(round(valid_fraction * s))
        n_valid = max(n_valid, 1) if valid_fraction > 0 else 0
        train_v, valid_v = values[:s - n_valid], values[s - n_valid:]
    else:  # one series: hold out the last steps (at least one window)
        n_valid = max(int(round(valid_fraction * t)), length) if valid_fraction > 0 else 0
        train_v, valid_v = values[:, :t - n_valid], values[:, t - n_valid:]
    if train_v.shape[0] == 0 or train_v.shape[1] < length:
        raise InputError("no training window is left after holding out the validation part; "
                         "lower --valid-fraction (0 for none)")
    scaling = fit_normalization(train_v, normalize, str(da.attrs.get("units", "")))

    def pack(v: np.ndarray) -> dict[str, torch.Tensor]:
        w = _cut(v, length, stride)
        with np.errstate(invalid="ignore", divide="ignore"):
            w = np.asarray(scaling.forward(w), dtype=np.float32)
        mask = ~np.isnan(w)
        return {"frames": torch.from_numpy(np.where(mask, w, 0.0)),
                "mask": torch.from_numpy(mask)}

    valid = pack(valid_v) if n_valid else None
    return Windows(pack(train_v), valid, scaling, str(da.name))


def frame_loss(module: FrameForecaster, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """``loss_fn`` for :class:`~pyro_videossm.infer.LossObjective`: ``module.loss(batch)``."""
    return module.loss(batch)


def train_forecaster(model: FrameForecaster, windows: Windows, config,
                     resume: bool = False) -> list[dict]:
    """Train ``model`` on ``windows`` with the shared Trainer (``config``: a
    :class:`~pyro_videossm.infer.TrainConfig`); returns the history."""
    from pyro_videossm.infer import LossObjective, Trainer

    trainer = Trainer(LossObjective(model, frame_loss), config)
    return trainer.fit(windows.train, windows.valid, resume=resume)


# -- the sub-commands ----------------------------------------------------------------------
def _common(parser) -> None:
    parser.add_argument("--variable", help="data variable (default: frames, or the only one)")
    parser.add_argument("--context", type=int, default=10, help="context frames (default 10)")
    parser.add_argument("--leads", type=int, default=10, help="forecast steps (default 10)")
    parser.add_argument("--stride", type=int, default=1,
                        help="steps between training windows of one series (default 1)")
    parser.add_argument("--valid-fraction", type=float, default=0.1,
                        help="clips (or final time steps) held out for validation (default 0.1)")
    parser.add_argument("--normalize", choices=NORMALIZATIONS, default="none",
                        help="none: data must lie in [0, 1]; minmax or log: fit a scaling on "
                             "the training part (default none)")
    parser.add_argument("--quantile", action="store_true",
                        help="quantile forecasts at levels 0.1, 0.5, 0.9 (pinball loss)")
    parser.add_argument("--quantiles", type=float, nargs="+",
                        help="quantile levels (implies --quantile)")
    parser.add_argument("--patience", type=int,
                        help="stop after this many epochs without validation improvement")
    parser.add_argument("--lr-decay", type=float, default=1.0,
                        help="learning-rate factor per epoch (default 1)")


def _transformer_args(parser, d_model: int, patch: bool) -> None:
    _common(parser)
    if patch:
        parser.add_argument("--patch", type=int, default=8, help="patch size (default 8)")
    parser.add_argument("--d-model", type=int, default=d_model,
                        help=f"token width (default {d_model})")
    parser.add_argument("--heads", type=int, default=4, help="attention heads (default 4)")
    parser.add_argument("--layers", type=int, default=2,
                        help="encoder layers and decoder layers, each (default 2)")
    parser.add_argument("--decoder", choices=["direct", "autoregressive"], default="direct",
                        help="all leads in one pass, or autoregressive (default direct)")


def _lstm_args(parser) -> None:
    _common(parser)
    parser.add_argument("--d-model", type=int, default=256,
                        help="frame embedding width (default 256)")
    parser.add_argument("--hidden", type=int, default=512, help="LSTM width (default 512)")
    parser.add_argument("--lstm-layers", type=int, default=2, help="LSTM layers (default 2)")


def _build(name: str, args, frame_shape, scaling) -> FrameForecaster:
    q = tuple(args.quantiles) if args.quantiles else (QUANTILES if args.quantile else None)
    base = dict(frame_shape=frame_shape, context_length=args.context, leads=args.leads,
                quantiles=q, scaling=scaling)
    if name == "spatrans":
        return SpatioTemporalTransformer(
            **base, patch=args.patch, d_model=args.d_model, heads=args.heads,
            encoder_layers=args.layers, decoder_layers=args.layers, decoder=args.decoder)
    if name == "transformer":
        return FlatTransformer(**base, d_model=args.d_model, heads=args.heads,
                               encoder_layers=args.layers, decoder_layers=args.layers,
                               decoder=args.decoder)
    cls = {"lstm": LSTMForecaster, "seq2seq": Seq2Seq, "seq2seq-attn": Seq2SeqAttention}[name]
    return cls(**base, d_model=args.d_model, hidden=args.hidden, layers=args.lstm_layers)


def _fmt(v: float | None) -> str:
    return "n/a" if v is None or not math.isfinite(v) else f"{v:.5f}"


def _runner(name: str):
    def run(args) -> int:
        from pyro_videossm.infer import TrainConfig

        torch.manual_seed(args.seed)
        windows = load_training_windows(
            args.data, args.context, args.leads, variable=args.variable, stride=args.stride,
            valid_fraction=args.valid_fraction, normalize=args.normalize)
        frame_shape = tuple(windows.train["frames"].shape[-2:])
        model = _build(name, args, frame_shape, windows.scaling)
        config = TrainConfig(
            epochs=20 if args.epochs is None else args.epochs,
            batch_size=16 if args.batch_size is None else args.batch_size,
            lr=1e-3 if args.lr is None else args.lr, lr_decay=args.lr_decay,
            patience=args.patience, device=args.device, seed=args.seed,
            checkpoint_path=str(args.checkpoint) if args.checkpoint else None,
            progress=args.progress)
        n = windows.train["frames"].shape[0]
        nv = 0 if windows.valid is None else windows.valid["frames"].shape[0]
        say(f"{name}: {sum(p.numel() for p in model.parameters()):,} parameters, "
            f"{n} training and {nv} validation windows of {args.context}+{args.leads} frames "
            f"{frame_shape[0]}x{frame_shape[1]}")
        history = train_forecaster(model, windows, config, resume=args.resume)
        model.save(args.output, extra={
            "history": [{k: (None if v is None or (isinstance(v, float) and math.isnan(v))
                             else v) for k, v in h.items()} for h in history],
            "data": str(args.data), "variable": windows.variable,
            "train_config": config.to_dict()})
        last = history[-1] if history else {}
        say(f"wrote {args.output} (epochs {len(history)}, train loss "
            f"{_fmt(last.get('train_loss'))}, valid loss {_fmt(last.get('valid_loss'))})")
        return 0

    return run


_HELP = {
    "spatrans": "Spatiotemporal Transformer (patches, spatial + cross-step attention)",
    "transformer": "Transformer on flattened frames",
    "lstm": "LSTM on flattened frames",
    "seq2seq": "LSTM encoder-decoder on flattened frames",
    "seq2seq-attn": "LSTM encoder-decoder with attention on flattened frames",
}
register_trainer("spatrans", _HELP["spatrans"],
                 lambda p: _transformer_args(p, 64, patch=True), _runner("spatrans"))
register_trainer("transformer", _HELP["transformer"],
                 lambda p: _transformer_args(p, 128, patch=False), _runner("transformer"))
for _name in ("lstm", "seq2seq", "seq2seq-attn"):
    register_trainer(_name, _HELP[_name], _lstm_args, _runner(_name))
