"""ConvLSTM cell against a hand-written gate computation, the sequence module against the
cell, and the encoder–forecaster: shapes, masks, training, forecaster and model files."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pyro_videossm.errors import InputError
from pyro_videossm.models.forecasters.convlstm import (
    ConvLSTMEncoderForecaster,
    ConvLSTMForecaster,
    MSELoss,
    masked_mse_loss,
)
from pyro_videossm.nn.convlstm import ConvLSTM, ConvLSTMCell


def naive_conv(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """'Same' 2-D cross-correlation by explicit loops: x (Cin, H, W), w (Cout, Cin, k, k)."""
    cout, cin, k, _ = w.shape
    p = k // 2
    _, H, W = x.shape
    xp = np.zeros((cin, H + 2 * p, W + 2 * p))
    xp[:, p:p + H, p:p + W] = x
    out = np.zeros((cout, H, W))
    for o in range(cout):
        for i in range(H):
            for j in range(W):
                out[o, i, j] = b[o] + (w[o] * xp[:, i:i + k, j:j + k]).sum()
    return out


def sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def test_cell_equals_hand_written_gates():
    torch.manual_seed(0)
    cin, ch, H, W = 2, 3, 5, 4
    cell = ConvLSTMCell(cin, ch, kernel_size=3).double()
    wx = torch.randn(4 * ch, cin, 3, 3, dtype=torch.float64) * 0.5
    wh = torch.randn(4 * ch, ch, 3, 3, dtype=torch.float64) * 0.5
    bias = torch.randn(4 * ch, dtype=torch.float64)
    with torch.no_grad():
        cell.conv.weight.copy_(torch.cat([wx, wh], dim=1))
        cell.conv.bias.copy_(bias)
    x = torch.randn(1, cin, H, W, dtype=torch.float64)
    h = torch.randn(1, ch, H, W, dtype=torch.float64)
    c = torch.randn(1, ch, H, W, dtype=torch.float64)
    h_new, c_new = cell(x, (h, c))

    # Shi et al. (2015) eqs. (3) without peepholes, one gate at a time
    xn, hn, cn = x[0].numpy(), h[0].numpy(), c[0].numpy()
    bn = bias.numpy()

    def gate(k):
        sl = slice(k * ch, (k + 1) * ch)
        return (naive_conv(xn, wx[sl].numpy(), bn[sl])
                + naive_conv(hn, wh[sl].numpy(), np.zeros(ch)))

    i, f, o, g = sigmoid(gate(0)), sigmoid(gate(1)), sigmoid(gate(2)), np.tanh(gate(3))
    c_ref = f * cn + i * g
    h_ref = o * np.tanh(c_ref)
    np.testing.assert_allclose(c_new[0].detach().numpy(), c_ref, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(h_new[0].detach().numpy(), h_ref, rtol=1e-10, atol=1e-12)


def test_cell_without_input_and_zero_state():
    cell = ConvLSTMCell(0, 4)
    h0 = torch.randn(2, 4, 6, 6)
    h, c = cell(None, (h0, torch.zeros_like(h0)))
    assert h.shape == c.shape == (2, 4, 6, 6)
    with pytest.raises(ValueError):
        cell(None)
    cell2 = ConvLSTMCell(3, 4)
    h, c = cell2(torch.randn(2, 3, 6, 5))
    assert h.shape == (2, 4, 6, 5)
    torch.manual_seed(3)
    plain = ConvLSTMCell(3, 4, forget_bias=0.0)
    torch.manual_seed(3)
    biased = ConvLSTMCell(3, 4)  # forget gate (channels 4..7) starts 1 higher
    diff = biased.conv.bias - plain.conv.bias
    assert torch.allclose(diff, torch.tensor([0.0] * 4 + [1.0] * 4 + [0.0] * 8))


@pytest.mark.parametrize("reverse", [False, True])
def test_sequence_module_equals_stepping_the_cells(reverse):
    torch.manual_seed(1)
    rnn = ConvLSTM(2, [3, 4], kernel_size=3, reverse=reverse)
    x = torch.randn(2, 5, 2, 6, 6)
    out, states = rnn(x)
    assert out.shape == (2, 5, 4, 6, 6)
    order = range(4, -1, -1) if reverse else range(5)
    s = [None, None]
    ref = {}
    for t in order:
        inp = x[:, t]
        for layer, cell in enumerate(rnn.cells):
            s[layer] = cell(inp, s[layer])
            inp = s[layer][0]
        ref[t] = inp
    for t in range(5):
        assert torch.allclose(out[:, t], ref[t], atol=1e-6)
    assert torch.allclose(states[1][1], s[1][1], atol=1e-6)


def test_encoder_forecaster_shapes_and_padding():
    torch.manual_seed(0)
    net = ConvLSTMEncoderForecaster(hidden_channels=(4, 5), stem_channels=3)
    x = torch.randn(2, 4, 15, 13)
    m = torch.ones_like(x, dtype=torch.bool)
    assert net(x, m, 6).shape == (2, 6, 15, 13)
    single = ConvLSTMEncoderForecaster(hidden_channels=(4,), stem_channels=3)
    assert single(x, m, 2).shape == (2, 2, 15, 13)
    with pytest.raises(InputError):
        net(x[0], m[0], 2)


def test_missing_pixels_do_not_change_the_forecast_or_the_loss():
    torch.manual_seed(0)
    net = ConvLSTMEncoderForecaster(hidden_channels=(4, 4), stem_channels=3)
    x = torch.randn(2, 7, 16, 16)
    mask = torch.rand(2, 7, 16, 16) > 0.3
    y = x.clone()
    y[~mask] = 100.0
    assert torch.equal(net(x[:, :4], mask[:, :4], 3), net(y[:, :4], mask[:, :4], 3))
    batch_x, batch_y = {"x": x, "mask": mask}, {"x": y, "mask": mask}
    assert masked_mse_loss(net, batch_x, 4) == masked_mse_loss(net, batch_y, 4)
    # the loss is the plain MSE over the observed target pixels
    pred = net(x[:, :4], mask[:, :4], 3)
    m = mask[:, 4:]
    ref = ((pred - x[:, 4:])[m] ** 2).mean()
    assert torch.allclose(masked_mse_loss(net, batch_x, 4), ref)
    clipped = ((pred - x[:, 4:].clamp(-0.5, 0.5))[m] ** 2).mean()
    assert torch.allclose(MSELoss(4, target_clip=(-0.5, 0.5))(net, batch_x), clipped)
    with pytest.raises(InputError):
        masked_mse_loss(net, batch_x, 7)


def test_training_with_the_shared_trainer_reduces_the_loss():
    from pyro_videossm.infer import LossObjective, TrainConfig, Trainer

    torch.manual_seed(0)
    net = ConvLSTMEncoderForecaster(hidden_channels=(6, 6), stem_channels=4)
    yy, xx = torch.meshgrid(torch.arange(16.0), torch.arange(16.0), indexing="ij")
    t = torch.arange(6.0).view(1, 6, 1, 1)
    c = torch.rand(8, 1, 1, 1) * 6 + 3
    x = torch.exp(-((yy - c - t) ** 2 + (xx - 8) ** 2) / 6)  # a blob moving down
    data = {"x": x, "mask": torch.ones_like(x, dtype=torch.bool)}
    loss = MSELoss(3)
    with torch.no_grad():
        before = float(loss(net, data))
    config = TrainConfig(epochs=25, batch_size=8, lr=1e-2, progress=False)
    Trainer(LossObjective(net, loss), config).fit(data)
    with torch.no_grad():
        assert float(loss(net, data)) < 0.5 * before


def test_forecaster_and_model_file(tmp_path):
    from pyro_videossm.forecast import FieldScaling, load_forecaster

    net = ConvLSTMEncoderForecaster(hidden_channels=(4, 4), stem_channels=3)
    fc = ConvLSTMForecaster(net, scaling=FieldScaling(offset=1.0, scale=3.0), context_length=4)
    x = torch.randn(2, 4, 16, 16)
    out = fc.predict(x, torch.ones_like(x, dtype=torch.bool), 3, members=5)
    assert out.shape == (2, 3, 1, 16, 16)  # deterministic: one member whatever asked
    fc.save(tmp_path / "m.pt")
    back = load_forecaster(tmp_path / "m.pt")
    assert isinstance(back, ConvLSTMForecaster) and back.scaling == fc.scaling
    assert back.options()["hidden_channels"] == [4, 4]
    assert torch.equal(back.predict(x, torch.ones_like(x, dtype=torch.bool), 3), out)
    from pyro_videossm.models.ssm.conv_dmm import ConvDMMForecaster
    with pytest.raises(InputError, match="convlstm"):
        ConvDMMForecaster.load(tmp_path / "m.pt")
    from pyro_videossm.forecast import get_forecaster
    with pytest.raises(InputError, match="trained model"):
        get_forecaster("convdmm")  # by name only: no untrained network passed off as a model
