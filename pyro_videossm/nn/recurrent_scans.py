"""Sequential loops of the DMM's guide with a hand-written backward pass.

Autograd records every small op of a Python loop over time steps and replays it backwards,
one node at a time; for the weights it also forms and accumulates one outer product per step
(a ``(H, H)`` matrix from ``B`` rows: for H = 600, B = 20, one thread, 0.23 ms each, against
25.5 ms for one product over 160 steps' 3200 rows, 0.16 ms per step). These functions run the
loop without recording (forward) and walk it back by hand (backward): only the recursion
itself stays sequential, and every weight gradient is ONE matrix product over all
``(step, sequence)`` pairs after the loop.

- :func:`relu_rnn_scan`: a single-layer ReLU RNN ``h_t = relu(p_t + W h_{t-1})`` over inputs
  already projected for all steps, skipping the padded steps of ragged sequences (rows sorted
  by length, so the rows still running at step ``t`` are a prefix).
- :func:`combiner_scan`: the classic combiner's reparameterised draw ``z_t = loc_t + scale_t
  eps_t`` with ``(loc_t, s_t) = W_out tanh(W_1 z_{t-1} + b_1) + ctx_t``, ``scale_t =
  softplus(s_t)``, skipping padded steps the same way.

:func:`length_order` sorts rows and counts the running ones for both.

Both are exact (same numbers as the autograd version up to float rounding; tested against
``torch.nn.RNN`` and the chained combiner steps, and with ``gradcheck``). Measured with
``benchmarks/dmm_polyphonic.py``: the polyphonic DMM's epoch before and after them is in
docs/RESULTS.md ("DMM training speed").
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.autograd.function import once_differentiable


def _zero_padding(counts: list[int], *buffers: Tensor) -> None:
    """Zero, in time-major ``(T, n, ...)`` buffers, the rows no longer running at each step:
    one ``zero_`` per run of equal counts (at most ``n + 1`` runs), not one per step."""
    T, start = len(counts), 0
    while start < T:
        stop = start
        while stop < T and counts[stop] == counts[start]:
            stop += 1
        for x in buffers:
            if counts[start] < x.shape[1]:
                x[start:stop, counts[start]:].zero_()
        start = stop


def _rows(x: Tensor, m: int) -> Tensor:
    """The first ``m`` rows of ``x`` (``x`` itself when that is all of them)."""
    return x if m == x.shape[0] else x[:m]


def _plus_carry(g: Tensor, carry: Tensor | None, out: Tensor) -> Tensor:
    """``out = g + carry``, where ``carry`` may cover only the first rows (or be None)."""
    if carry is not None and carry.shape[0] == out.shape[0]:
        return torch.add(g, carry, out=out)
    out.copy_(g)
    if carry is not None:
        out[: carry.shape[0]] += carry
    return out


class _ReluRNNScan(torch.autograd.Function):
    @staticmethod
    def forward(ctx, pre: Tensor, h0: Tensor, w_hh: Tensor, counts: list[int]) -> Tensor:
        out = torch.empty_like(pre)
        _zero_padding(counts, out)
        w_t, h = w_hh.t(), h0
        for n, pre_t, out_t in zip(counts, pre.unbind(0), out.unbind(0)):
            if n == 0:
                break
            h = torch.addmm(_rows(pre_t, n), _rows(h, n), w_t, out=_rows(out_t, n))
            h.clamp_min_(0.0)
        ctx.counts = counts
        ctx.save_for_backward(h0, w_hh, out)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, g_out: Tensor):
        h0, w_hh, out = ctx.saved_tensors
        counts = ctx.counts
        T, B, H = out.shape
        g_pre = torch.empty_like(out)
        _zero_padding(counts, g_pre)
        carry = None  # dL/dh_t through h_{t+1}, rows [:counts[t + 1]]
        steps = zip(counts, g_out.unbind(0), out.unbind(0), g_pre.unbind(0))
        for n, g_out_t, out_t, g_pre_t in reversed(list(steps)):
            if n:
                g = _plus_carry(_rows(g_out_t, n), carry, _rows(g_pre_t, n))
                g.mul_(_rows(out_t, n) > 0)
                carry = g @ w_hh
        # sum_t g_pre_t^T h_{t-1}, one product over all later steps
        g_w = torch.addmm(g_pre[0].t() @ h0, g_pre[1:].reshape(-1, H).t(),
                          out[:-1].reshape(-1, H))
        g_h0 = h0.new_zeros(B, H)
        if carry is not None:
            g_h0[: carry.shape[0]] = carry
        return g_pre, g_h0, g_w, None


def relu_rnn_scan(pre: Tensor, h0: Tensor, w_hh: Tensor,
                  counts: list[int] | None = None) -> Tensor:
    """``h_t = relu(pre_t + w_hh h_{t-1})`` for ``t = 1..T``: ``(T, B, H)``, time-major.

    Args:
        pre: ``(T, B, H)`` the inputs' share ``W_ih x_t + b_ih + b_hh``, all steps at once.
        h0: ``(B, H)`` the initial state.
        w_hh: ``(H, H)`` the recurrent weight (``torch.nn.RNN``'s ``weight_hh_l0``).
        counts: rows still running at each step, non-increasing (``counts[t]`` = number of
            sequences longer than ``t``, rows sorted by length, longest first); the other
            rows' outputs are 0 and get no gradient. ``None``: every row runs every step.
    """
    T, B, _ = pre.shape
    return _ReluRNNScan.apply(pre, h0, w_hh, _checked(counts, T, B))


class _CombinerScan(torch.autograd.Function):
    @staticmethod
    def forward(ctx, ctxs: Tensor, eps: Tensor, z0: Tensor, w1: Tensor, b1: Tensor,
                w_out: Tensor, counts: list[int]):
        T, n, Z = eps.shape
        w1_t, w_out_t = w1.t(), w_out.t()
        a = ctxs.new_empty(T, n, w1.shape[0])
        u = torch.empty_like(ctxs)
        z = torch.empty_like(eps)
        _zero_padding(counts, a, u, z)
        z_prev = z0
        for m, c_t, e_t, a_t, u_t, z_t in zip(counts, *(x.unbind(0) for x in (ctxs, eps, a, u, z))):
            if m == 0:
                break
            a_t, u_t = _rows(a_t, m), _rows(u_t, m)
            torch.tanh(torch.addmm(b1, _rows(z_prev, m), w1_t), out=a_t)
            torch.addmm(_rows(c_t, m), a_t, w_out_t, out=u_t)
            loc, s = u_t.split(Z, -1)
            z_prev = torch.addcmul(loc, F.softplus(s), _rows(e_t, m), out=_rows(z_t, m))
        ctx.counts = counts
        ctx.save_for_backward(eps, z0, w1, w_out, a, u, z)
        return z, u[..., :Z], F.softplus(u[..., Z:])

    @staticmethod
    @once_differentiable
    def backward(ctx, g_z: Tensor, g_loc: Tensor, g_scale: Tensor):
        eps, z0, w1, w_out, a, u, z = ctx.saved_tensors
        counts = ctx.counts
        T, n, Z = eps.shape
        H = a.shape[-1]
        sig = torch.sigmoid(u[..., Z:])              # softplus'
        eps_sig = eps * sig                          # d (scale_t eps_t) / d s_t
        g_s_direct = sig * g_scale
        tanh_grad = 1.0 - a * a
        g_u = torch.empty_like(u)
        g_pre = torch.empty_like(a)
        _zero_padding(counts, g_u, g_pre)
        gz = torch.empty_like(z0)
        carry = None  # dL/dz_t through step t + 1, rows [:counts[t + 1]]
        steps = zip(counts, *(x.unbind(0) for x in (g_z, g_loc, g_s_direct, eps_sig, tanh_grad,
                                                    g_u, g_pre)))
        for m, g_z_t, g_loc_t, g_s_t, eps_sig_t, d_t, g_u_t, g_pre_t in reversed(list(steps)):
            if m == 0:
                continue
            g_u_t, g_pre_t = _rows(g_u_t, m), _rows(g_pre_t, m)
            g = _plus_carry(_rows(g_z_t, m), carry, _rows(gz, m))
            g_u_loc, g_u_s = g_u_t.split(Z, -1)
            torch.add(g, _rows(g_loc_t, m), out=g_u_loc)
            torch.addcmul(_rows(g_s_t, m), g, _rows(eps_sig_t, m), out=g_u_s)
            torch.mul(g_u_t @ w_out, _rows(d_t, m), out=g_pre_t)
            carry = g_pre_t @ w1
        # weight gradients: one product over all (step, row) pairs each
        g_w1 = torch.addmm(g_pre[0].t() @ z0, g_pre[1:].reshape(-1, H).t(),
                           z[:-1].reshape(-1, Z))
        g_b1 = g_pre.sum((0, 1))
        g_w_out = g_u.reshape(-1, 2 * Z).t() @ a.reshape(-1, H)
        g_z0 = torch.zeros_like(z0)
        if carry is not None:
            g_z0[: carry.shape[0]] = carry
        return g_u, None, g_z0, g_w1, g_b1, g_w_out, None


def combiner_scan(ctx: Tensor, eps: Tensor, z0: Tensor, w1: Tensor, b1: Tensor,
                  w_out: Tensor, counts: list[int] | None = None
                  ) -> tuple[Tensor, Tensor, Tensor]:
    """The classic combiner's sequential draw, time-major: ``z, loc, scale (T, n, Z)``.

    Args:
        ctx: ``(T, n, 2Z)`` the RNN's share of ``(loc, s)`` for every step (``Combiner.prepare``).
        eps: ``(T, n, Z)`` standard normal noise (not differentiated).
        z0: ``(n, Z)`` the state before the first step.
        w1, b1: ``(H, Z)``, ``(H,)`` the map ``z_{t-1} -> tanh(w1 z_{t-1} + b1)``.
        w_out: ``(2Z, H)`` the map of the hidden state to ``(loc, s)`` (without bias: it is in
            ``ctx``).
        counts: rows still running at each step, as in :func:`relu_rnn_scan`; at the other
            rows' steps ``z = loc = 0``, ``scale = softplus(0)``, constants without gradient.
    """
    T, n, _ = eps.shape
    return _CombinerScan.apply(ctx, eps, z0, w1, b1, w_out, _checked(counts, T, n))


def length_order(lengths: Tensor, T: int) -> tuple[Tensor, list[int]]:
    """Rows sorted by length, longest first, and the rows still running at each step.

    ``lengths (n,)`` -> ``order (n,)`` (``x[order]`` sorts the rows) and ``counts`` (``T``
    ints, ``counts[t]`` = number of rows longer than ``t``), for the ``counts`` argument of the
    scans. Reads the lengths on the host (one transfer).
    """
    order = lengths.argsort(descending=True, stable=True)
    steps = torch.arange(T, device=lengths.device)
    counts = (lengths.unsqueeze(0) > steps.unsqueeze(1)).sum(1).tolist()
    return order, counts


def _checked(counts: list[int] | None, T: int, n: int) -> list[int]:
    if counts is None:
        return [n] * T
    counts = [int(c) for c in counts]
    if len(counts) != T or counts[0] > n or any(b > a for a, b in zip(counts, counts[1:])):
        raise ValueError(f"counts must be {T} non-increasing row counts <= {n}, got {counts}")
    return counts
