"""The hand-written-backward scans of the DMM's guide against autograd and torch.nn."""

import pytest
import torch
from torch import nn

from pyro_videossm.models.ssm.dmm import on_valid_steps
from pyro_videossm.nn.dmm_blocks import ObservationEncoder
from pyro_videossm.nn.recurrent_scans import combiner_scan, length_order, relu_rnn_scan

T, B, X, H, Z = 7, 4, 3, 5, 2
COUNTS = [4, 4, 3, 3, 2, 1, 0]  # lengths 6, 5, 3, 1 sorted


def _double(*shape, grad=True, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, dtype=torch.double, generator=g).requires_grad_(grad)


def test_relu_rnn_scan_equals_torch_rnn_values_and_gradients():
    torch.manual_seed(0)
    rnn = nn.RNN(X, H, nonlinearity="relu").double()
    x, h0 = _double(T, B, X, grad=False), _double(B, H, seed=1)
    ref = rnn(x, h0.unsqueeze(0))[0]
    pre = x @ rnn.weight_ih_l0.t() + rnn.bias_ih_l0 + rnn.bias_hh_l0
    out = relu_rnn_scan(pre, h0, rnn.weight_hh_l0)
    torch.testing.assert_close(out, ref)
    w = _double(T, B, H, grad=False, seed=2)
    params = [h0, *rnn.parameters()]
    for g, r in zip(torch.autograd.grad((out * w).sum(), params),
                    torch.autograd.grad((ref * w).sum(), params)):
        torch.testing.assert_close(g, r)


def test_relu_rnn_scan_skips_finished_rows_exactly():
    pre, h0, w = _double(T, B, H), _double(B, H, seed=1), 0.3 * _double(H, H, seed=2)
    assert torch.autograd.gradcheck(lambda p, h, m: relu_rnn_scan(p, h, m, COUNTS), (pre, h0, w))
    running = torch.arange(B) < torch.tensor(COUNTS).unsqueeze(-1)  # (T, B)
    ragged = relu_rnn_scan(pre, h0, w, COUNTS)
    torch.testing.assert_close(ragged[running], relu_rnn_scan(pre, h0, w)[running])
    assert (ragged[~running] == 0).all()


def test_combiner_scan_gradients_and_padding():
    ctx, z0 = _double(T, B, 2 * Z), _double(B, Z, seed=1)
    w1, b1, w_out = _double(H, Z, seed=2), _double(H, seed=3), _double(2 * Z, H, seed=4)
    eps = _double(T, B, Z, grad=False, seed=5)
    for counts in (None, COUNTS):
        assert torch.autograd.gradcheck(
            lambda c, z, a, b, o, k=counts: combiner_scan(c, eps, z, a, b, o, k),
            (ctx, z0, w1, b1, w_out))
    # the chained steps, by hand
    z_prev, zs = z0, []
    for t in range(T):
        u = torch.tanh(z_prev @ w1.t() + b1) @ w_out.t() + ctx[t]
        z_prev = u[:, :Z] + torch.nn.functional.softplus(u[:, Z:]) * eps[t]
        zs.append(z_prev)
    z, loc, scale = combiner_scan(ctx, eps, z0, w1, b1, w_out, COUNTS)
    running = torch.arange(B) < torch.tensor(COUNTS).unsqueeze(-1)
    torch.testing.assert_close(z[running], torch.stack(zs)[running])
    assert (z[~running] == 0).all() and (loc[~running] == 0).all()


def test_scans_reject_bad_counts():
    pre, h0, w = _double(T, B, H), _double(B, H), _double(H, H)
    for bad in ([4] * (T - 1), [5] * T, [1, 2] + [0] * (T - 2)):
        with pytest.raises(ValueError, match="non-increasing"):
            relu_rnn_scan(pre, h0, w, bad)


def test_length_order_sorts_longest_first_and_counts_running_rows():
    order, counts = length_order(torch.tensor([3, 6, 1, 5]), T)
    assert order.tolist() == [1, 3, 0, 2]
    assert counts == [4, 3, 3, 2, 2, 1, 0]


@pytest.mark.parametrize("direction", ["backward", "forward", "both"])
@pytest.mark.parametrize("lengths", [torch.tensor([7, 3, 5, 1]), None])
def test_encoder_scan_equals_torch_rnn_on_valid_steps(direction, lengths):
    torch.manual_seed(0)
    enc = ObservationEncoder(X, H, direction, rnn_type="rnn").double()
    x = _double(B, T, X, grad=False)
    mask = torch.ones(B, T, X, dtype=torch.bool)
    assert enc.uses_scan(enc.rnns[next(iter(enc.rnns))], x)
    h = enc(x, mask, lengths)
    enc.uses_scan = lambda rnn, u: False  # the torch.nn path
    ref = enc(x, mask, lengths)
    n = torch.full((B,), T) if lengths is None else lengths
    valid = torch.arange(T) < n.unsqueeze(-1)
    torch.testing.assert_close(h[valid], ref[valid])
    assert (h[~valid] == 0).all()


def test_encoder_uses_torch_rnn_off_cpu_for_grus_and_stacks():
    rnn = nn.RNN(X, H, nonlinearity="relu", batch_first=True)
    cpu = torch.zeros(1, 1, X)
    assert ObservationEncoder.uses_scan(rnn, cpu)
    assert not ObservationEncoder.uses_scan(rnn, torch.zeros(1, 1, X, device="meta"))
    assert not ObservationEncoder.uses_scan(nn.GRU(X, H, batch_first=True), cpu)
    assert not ObservationEncoder.uses_scan(nn.RNN(X, H, num_layers=2, nonlinearity="relu"), cpu)
    assert not ObservationEncoder.uses_scan(nn.RNN(X, H), cpu)  # tanh


def test_on_valid_steps_equals_the_full_call_where_valid():
    lin = nn.Linear(Z, 3)
    z = torch.randn(2, B, T, Z, requires_grad=True)
    mask = torch.arange(T) < torch.tensor([7, 3, 5, 1]).unsqueeze(-1)

    def both(v):
        return lin(v), lin(v).exp()

    loc, scale = on_valid_steps(both, z, mask, (0.0, 1.0))
    full_loc, full_scale = both(z)
    valid = mask.expand(2, B, T)
    torch.testing.assert_close(loc[valid], full_loc[valid])
    torch.testing.assert_close(scale[valid], full_scale[valid])
    assert (loc[~valid] == 0).all() and (scale[~valid] == 1).all()
    loc.sum().backward()
    assert (z.grad[~valid] == 0).all() and z.grad[valid].abs().sum() > 0
    assert on_valid_steps(lin, z, None, 0.0).shape == (2, B, T, 3)
