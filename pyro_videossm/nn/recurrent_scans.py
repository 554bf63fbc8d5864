"""Sequential loops of the DMM's guide with a hand-written backward pass.

Autograd records every small op of a Python loop over time steps and replays it backwards,
one node at a time; for the weights it also forms and accumulates one outer product per step
(a ``(H, H)`` matrix from ``B`` rows, memory-bound for small ``B``). These functions run the
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
``torch.nn.RNN`` and the chained combiner steps with ``gradcheck``). Measured in
``benchmarks/dmm_polyphonic.py --profile`` (see docs/dmm_experiments.md).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.autograd.function import once_differentiable


def _zero_tail(x: Tensor, n: int) -> None:
    """Zero the rows of ``x`` from ``n`` on (the sequences no longer running)."""
    if n < x.shape[0]:
        x[n:].zero_()


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
        T, B, H = pre.shape
        out = pre.new_empty(T, B, H)
        w_t = w_hh.t()
        h = h0
        for t, n in enumerate(counts):
            _zero_tail(out[t], n)
            if n:
                h = torch.addmm(pre[t, :n], h[:n], w_t, out=out[t, :n]).clamp_min_(0.0)
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
        carry = None  # dL/dh_t through h_{t+1}, rows [:counts[t + 1]]
        for t in range(T - 1, -1, -1):
            n = counts[t]
            _zero_tail(g_pre[t], n)
            if n:
                g = _plus_carry(g_out[t, :n], carry, g_pre[t, :n]).mul_(out[t, :n] > 0)
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
        z_prev = z0
        for t, m in enumerate(counts):
            for x in (a[t], u[t], z[t]):
                _zero_tail(x, m)
            if m:
                torch.tanh(torch.addmm(b1, z_prev[:m], w1_t), out=a[t, :m])
                torch.addmm(ctxs[t, :m], a[t, :m], w_out_t, out=u[t, :m])
                z_prev = torch.addcmul(u[t, :m, :Z], F.softplus(u[t, :m, Z:]), eps[t, :m],
                                       out=z[t, :m])
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
        gz = torch.empty_like(z0)
        carry = None  # dL/dz_t through step t + 1, rows [:counts[t + 1]]
        for t in range(T - 1, -1, -1):
            m = counts[t]
            _zero_tail(g_u[t], m)
            _zero_tail(g_pre[t], m)
            if m:
                g = _plus_carry(g_z[t, :m], carry, gz[:m])
                torch.add(g, g_loc[t, :m], out=g_u[t, :m, :Z])
                torch.addcmul(g_s_direct[t, :m], g, eps_sig[t, :m], out=g_u[t, :m, Z:])
                torch.mul(g_u[t, :m] @ w_out, tanh_grad[t, :m], out=g_pre[t, :m])
                carry = g_pre[t, :m] @ w1
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
