"""SpatioTemporalTransformer: patches, attention masks, causality, time mixing, quantiles,
training, the Forecaster interface, model files and bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import xarray as xr

from pyro_videossm.errors import InputError
from pyro_videossm.forecast import load_forecaster
from pyro_videossm.models.forecasters.frame_forecaster import (
    interpolate_quantiles,
    monotone_quantiles,
)
from pyro_videossm.models.forecasters.spatiotemporal_transformer import (
    Attention,
    SpatioTemporalTransformer,
    decoder_mask,
    encoder_mask,
    patchify,
    unpatchify,
)

Q = (0.1, 0.5, 0.9)


def tiny(**kw) -> SpatioTemporalTransformer:
    torch.manual_seed(0)
    opts = dict(frame_shape=(8, 12), context_length=3, leads=3, patch=4, d_model=16, heads=2,
                encoder_layers=1, decoder_layers=2)
    opts.update(kw)
    return SpatioTemporalTransformer(**opts)


def test_patchify_round_trip_and_layout():
    x = torch.randn(2, 3, 5, 8, 12)  # (B, T, C, H, W)
    tok = patchify(x, 4, 6)
    assert tok.shape == (2, 3, 4, 5 * 24)
    assert torch.equal(unpatchify(tok, 4, 6, 8, 12), x)
    frame = torch.arange(16.0).view(1, 1, 4, 4)
    p = patchify(frame, 2, 2)[0, 0]
    assert p[0].tolist() == [0, 1, 4, 5] and p[1].tolist() == [2, 3, 6, 7]
    assert p[2].tolist() == [8, 9, 12, 13]
    with pytest.raises(InputError, match="does not divide"):
        patchify(frame, 3, 3)


def test_attention_matches_explicit_softmax():
    torch.manual_seed(1)
    att = Attention(8, 2)
    x, kv = torch.randn(2, 5, 8), torch.randn(2, 7, 8)
    mask = torch.rand(5, 7) > 0.4
    mask[:, 0] = True
    got = att(x, kv, mask)
    q = att.q(x).view(2, 5, 2, 4).transpose(1, 2)
    k, v = att.kv(kv).view(2, 7, 2, 2, 4).permute(2, 0, 3, 1, 4)
    s = q @ k.transpose(-1, -2) / math.sqrt(4)
    w = torch.softmax(s.masked_fill(~mask, -math.inf), -1)
    ref = att.out((w @ v).transpose(1, 2).reshape(2, 5, 8))
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-6)


def test_masks():
    m = encoder_mask(3, 2)  # 3 steps x 2 patches
    step = torch.arange(3).repeat_interleave(2)
    assert torch.equal(m, step[:, None] != step[None, :])
    assert encoder_mask(1, 4).all()
    d = decoder_mask(3, 2, 5)
    assert d.shape == (6, 11) and d[:, :5].all()
    assert torch.equal(d[:, 5:], step[None, :] < step[:, None])


def test_decoder_is_causal_with_teacher_forcing():
    model = tiny(decoder="autoregressive").train()
    ctx, tgt = torch.rand(2, 3, 8, 12), torch.rand(2, 3, 8, 12)
    out = model.forward_frames(ctx, 3, tgt)
    for k in range(2):  # target k is decoder input k + 1
        tgt2 = tgt.clone()
        tgt2[:, k] += 1.0
        out2 = model.forward_frames(ctx, 3, tgt2)
        torch.testing.assert_close(out2[:, :k + 1], out[:, :k + 1], rtol=0, atol=1e-6)
        assert (out2[:, k + 1] - out[:, k + 1]).abs().max() > 1e-3
    # the last target frame is never read
    tgt3 = tgt.clone()
    tgt3[:, -1] = 0.0
    torch.testing.assert_close(model.forward_frames(ctx, 3, tgt3), out, rtol=0, atol=0)


def test_direct_decoder_steps_depend_only_on_earlier_inputs():
    model = tiny().eval()
    memory = model.encode(torch.rand(1, 3, 8, 12))
    inputs = torch.rand(1, 3, 8, 12)
    out = model.decode(memory, inputs)
    changed = inputs.clone()
    changed[:, 1] += 1.0
    out2 = model.decode(memory, changed)
    torch.testing.assert_close(out2[:, 0], out[:, 0], rtol=0, atol=1e-6)
    assert (out2[:, 1:] - out[:, 1:]).abs().max() > 1e-3


def test_cross_step_attention_mixes_time():
    model = tiny().eval()
    ctx = torch.rand(2, 3, 8, 12)
    ctx2 = ctx.clone()
    ctx2[:, 0, :4, :4] += 1.0  # one patch of the first context frame
    mem, mem2 = model.encode(ctx), model.encode(ctx2)
    n = model.n_patches
    # encoder tokens of the *last* step change: information crossed steps
    assert (mem2[:, 2 * n:] - mem[:, 2 * n:]).abs().max() > 1e-3
    f, f2 = model(ctx, None, 3), model(ctx2, None, 3)
    assert (f2 - f).abs().max() > 1e-3
    # and spatial attention carries it to other patches of the forecast
    assert (f2[..., 4:, 4:] - f[..., 4:, 4:]).abs().max() > 1e-4


def test_quantiles_are_ordered_and_interpolated():
    raw = 5 * torch.randn(4, 3, 3, 2, 2)
    q = monotone_quantiles(raw, Q, dim=2)
    assert (q[:, :, 1:] >= q[:, :, :-1]).all()
    torch.testing.assert_close(q[:, :, 1], raw[:, :, 1])
    at = interpolate_quantiles(q, Q, (0.1, 0.3, 0.5, 0.7, 0.9), dim=2)
    torch.testing.assert_close(at[:, :, [0, 2, 4]], q)
    torch.testing.assert_close(at[:, :, 1], 0.5 * (q[:, :, 0] + q[:, :, 1]))
    model = tiny(quantiles=Q).eval()
    with torch.no_grad():
        model.out.weight.mul_(50.0)
    out = model.predict_quantiles(torch.rand(2, 3, 8, 12), None, 3)
    assert out.shape == (2, 3, 3, 8, 12) and (out[:, :, 1:] >= out[:, :, :-1]).all()
    mem = model.predict(torch.rand(2, 3, 8, 12), torch.ones(2, 3, 8, 12, dtype=torch.bool),
                        3, 7)
    assert mem.shape == (2, 3, 7, 8, 12) and (mem[:, :, 1:] >= mem[:, :, :-1]).all()


def _clips(n=24, t=6, h=8, w=12, seed=0):
    """A bright 4x4 square moving one pixel right per frame (wrapping), in [0, 1]."""
    rng = np.random.default_rng(seed)
    x = np.zeros((n, t, h, w), np.float32)
    for i in range(n):
        r, c = rng.integers(0, h - 4), rng.integers(0, w)
        for k in range(t):
            cols = (c + k + np.arange(4)) % w
            x[i, k, r:r + 4][:, cols] = 1.0
    return x


def test_training_beats_the_best_constant_forecast():
    from pyro_videossm.experiments.sequence_recipes import frame_loss
    from pyro_videossm.infer import LossObjective, TrainConfig, Trainer
    from pyro_videossm.metrics.quantile import quantile_loss

    frames = torch.from_numpy(_clips())
    target = frames[:, 3:]
    for q in (None, Q):
        # the best forecast that ignores the context: the mean, or the marginal quantiles
        if q is None:
            constant = target.var(unbiased=False).item()
        else:
            levels = torch.quantile(target.flatten(), torch.tensor(Q))
            constant = quantile_loss(levels.view(1, 3, 1, 1, 1).expand(24, 3, 3, 8, 12),
                                     target, Q, dim=1).item()
        model = tiny(quantiles=q)
        Trainer(LossObjective(model, frame_loss),
                TrainConfig(epochs=20, batch_size=4, lr=1e-2, progress=False)).fit(
            {"frames": frames})
        after = frame_loss(model, {"frames": frames}).item()
        assert after < 0.8 * constant, (q, constant, after)


def test_forecast_dataset_and_model_file(tmp_path):
    model = tiny(quantiles=Q).eval()
    clips = _clips(n=2)
    ds = xr.Dataset({"frames": (("clip", "time", "y", "x"), clips, {"units": "1"})},
                    coords={"time": np.arange(6)})
    fc = model.forecast(ds.isel(time=slice(0, 4)), leads=2, members=5)
    assert fc["forecast"].dims == ("clip", "lead_time", "member", "y", "x")
    assert fc["forecast"].shape == (2, 2, 5, 8, 12)
    assert fc["quantiles"].dims == ("clip", "lead_time", "quantile", "y", "x")
    np.testing.assert_allclose(fc["quantile"].values, Q)
    # member levels 0.1/0.5/0.9 of M=5 are the learned quantiles themselves
    np.testing.assert_allclose(fc["forecast"].values[:, :, [0, 2, 4]], fc["quantiles"].values,
                               rtol=1e-5, atol=1e-6)
    path = tmp_path / "st.pt"
    model.save(path)
    back = load_forecaster(path)
    assert isinstance(back, SpatioTemporalTransformer) and back.quantiles == Q
    ctx = torch.from_numpy(clips[:, :3])
    torch.testing.assert_close(back.predict_quantiles(ctx, None, 3),
                               model.predict_quantiles(ctx, None, 3))
    from pyro_videossm.infer import load_model_file

    ckpt = load_model_file(path)
    ckpt["config"]["d_model"] = 32  # another architecture than the weights
    with pytest.raises(InputError, match="does not fit"):
        SpatioTemporalTransformer.from_model_file(ckpt)
    point = tiny().eval()
    fp = point.forecast(ds.isel(time=slice(0, 3)), leads=3, members=4)
    assert fp["forecast"].shape == (2, 3, 1, 8, 12) and "quantiles" not in fp


def test_bad_input():
    with pytest.raises(InputError, match="does not divide"):
        tiny(patch=5)
    model = tiny()
    with pytest.raises(InputError, match="needs 3 context frames"):
        model(torch.rand(1, 2, 8, 12), None, 3)
    with pytest.raises(InputError, match="1..3 leads"):
        model(torch.rand(1, 3, 8, 12), None, 4)
    with pytest.raises(InputError, match="6 frames"):
        model.loss({"frames": torch.rand(1, 5, 8, 12)})
