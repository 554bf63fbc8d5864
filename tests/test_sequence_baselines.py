"""Sequence baselines (flattened-frame Transformer, LSTM, seq2seq, seq2seq with attention):
shapes, causality of the forecast in the context, training, model files, and the CLI."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import xarray as xr

from pyro_videossm.cli import main
from pyro_videossm.data import write_netcdf
from pyro_videossm.forecast import load_forecaster
from pyro_videossm.models.forecasters.sequence_baselines import (
    FlatTransformer,
    LSTMForecaster,
    Seq2Seq,
    Seq2SeqAttention,
)

Q = (0.1, 0.5, 0.9)
CLASSES = (FlatTransformer, LSTMForecaster, Seq2Seq, Seq2SeqAttention)


def tiny(cls, **kw):
    torch.manual_seed(0)
    opts = dict(frame_shape=(6, 5), context_length=3, leads=2)
    if cls is FlatTransformer:
        opts.update(d_model=16, heads=2, encoder_layers=1, decoder_layers=1)
    else:
        opts.update(d_model=16, hidden=24, layers=1)
    opts.update(kw)
    return cls(**opts)


@pytest.mark.parametrize("cls", CLASSES)
def test_shapes_order_and_context_dependence(cls):
    model = tiny(cls, quantiles=Q).eval()
    ctx = torch.rand(2, 3, 6, 5)
    out = model.predict_quantiles(ctx, None, 2)
    assert out.shape == (2, 2, 3, 6, 5)
    assert (out[:, :, 1:] >= out[:, :, :-1]).all()
    ctx2 = ctx.clone()
    ctx2[:, 0] += 1.0  # the first context frame reaches every lead
    out2 = model.predict_quantiles(ctx2, None, 2)
    assert ((out2 - out).abs().amax(dim=(0, 2, 3, 4)) > 1e-4).all()
    point = tiny(cls).eval()
    assert point.predict(ctx, torch.ones_like(ctx, dtype=torch.bool), 2).shape == (2, 2, 1, 6, 5)
    # a shorter forecast is the start of a longer one
    torch.testing.assert_close(point(ctx, None, 1), point(ctx, None, 2)[:, :1])


def test_attention_uses_all_encoder_steps():
    model = tiny(Seq2SeqAttention).eval()
    enc = torch.randn(2, 3, 24)
    dec = torch.randn(2, 1, 24)
    a = model._step_output(dec, enc)
    enc2 = enc.clone()
    enc2[:, 0] += 1.0  # only the attention sees the first encoder output
    assert (model._step_output(dec, enc2) - a).abs().max() > 1e-4


@pytest.mark.parametrize("cls", CLASSES)
def test_training_reduces_loss(cls):
    from pyro_videossm.experiments.sequence_recipes import frame_loss
    from pyro_videossm.infer import LossObjective, TrainConfig, Trainer

    g = torch.Generator().manual_seed(0)
    base = torch.rand(16, 1, 6, 5, generator=g)
    frames = base.expand(-1, 5, -1, -1).contiguous()  # static frames: learnable persistence
    model = tiny(cls)
    before = frame_loss(model, {"frames": frames}).item()
    Trainer(LossObjective(model, frame_loss),
            TrainConfig(epochs=8, batch_size=8, lr=3e-3, progress=False)).fit({"frames": frames})
    assert frame_loss(model, {"frames": frames}).item() < 0.6 * before


def test_by_name_only_is_refused():
    from pyro_videossm.errors import InputError
    from pyro_videossm.forecast import get_forecaster

    for name in ("spatrans", "transformer", "lstm", "seq2seq", "seq2seq-attn"):
        with pytest.raises(InputError, match="trained model"):
            get_forecaster(name)


def test_model_file_round_trip(tmp_path):
    for cls in CLASSES:
        model = tiny(cls, quantiles=Q).eval()
        path = tmp_path / f"{cls.name}.pt"
        model.save(path)
        back = load_forecaster(path)
        assert type(back) is cls
        ctx = torch.rand(1, 3, 6, 5)
        torch.testing.assert_close(back(ctx, None, 2), model(ctx, None, 2))


def _series(t=12, h=4, w=4, scale=1.0, seed=0):
    rng = np.random.default_rng(seed)
    v = scale * rng.random((t, h, w))
    return xr.Dataset({"precip": (("time", "y", "x"), v, {"units": "mm/h"})},
                      coords={"time": np.arange(t) * 300.0})


def test_cli_trains_on_a_single_field_and_checks_input(tmp_path, capsys):
    data = tmp_path / "precip.nc"
    write_netcdf(_series(scale=5.0), data)
    out = tmp_path / "m.pt"
    common = ["--context", "3", "--leads", "2", "--epochs", "1", "--batch-size", "4",
              "--no-progress", "--d-model", "8"]
    # values in mm/h outside [0, 1] with normalisation off: one line, exit 2, no file
    assert main(["train", "transformer", str(data), "-o", str(out), *common, "--heads",
                 "2"]) == 2
    assert "outside [0, 1]" in capsys.readouterr().err and not out.exists()
    assert main(["train", "lstm", str(data), "-o", str(out), *common, "--hidden", "8",
                 "--normalize", "log", "--quantile"]) == 0
    fc = load_forecaster(out)
    assert fc.quantiles == Q and fc.scaling.log
    assert main(["train", "spatrans", str(data), "-o", str(out), *common, "--patch", "3",
                 "--heads", "2", "--normalize", "minmax"]) == 2
    assert "does not divide" in capsys.readouterr().err
    assert main(["train", "seq2seq", str(data), "-o", str(out), "--context", "10", "--leads",
                 "5", "--no-progress"]) == 2
    assert "fewer than context + leads" in capsys.readouterr().err


def test_cli_checkpoint_resume_and_forecast(tmp_path):
    from pyro_videossm.infer import load_model_file

    data = tmp_path / "precip.nc"
    write_netcdf(_series(t=14), data)
    out, ckpt = tmp_path / "m.pt", tmp_path / "ck.pt"
    common = ["--context", "3", "--leads", "2", "--batch-size", "4", "--no-progress",
              "--d-model", "8", "--heads", "2", "--layers", "1", "--patch", "2",
              "--checkpoint", str(ckpt), "--patience", "5"]
    assert main(["train", "spatrans", str(data), "-o", str(out), "--epochs", "1", *common]) == 0
    assert ckpt.exists()
    assert main(["train", "spatrans", str(data), "-o", str(out), "--epochs", "2", "--resume",
                 *common]) == 0
    hist = load_model_file(out)["extra"]["history"]
    assert [h["epoch"] for h in hist] == [1, 2] and hist[-1]["valid_loss"] is not None
    fc = tmp_path / "fc.nc"
    assert main(["forecast", str(data), "--model", str(out), "--context", "3", "--leads", "2",
                 "-o", str(fc)]) == 0
    ds = xr.open_dataset(fc)
    assert ds["forecast"].dims == ("lead_time", "member", "y", "x")
    assert ds["forecast"].shape == (2, 1, 4, 4)
