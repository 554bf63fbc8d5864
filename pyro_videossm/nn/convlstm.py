"""Convolutional LSTM (Shi et al. 2015, "Convolutional LSTM Network: A Machine Learning
Approach for Precipitation Nowcasting"): an LSTM whose gates are convolutions over ``[x, h]``.

For a step with input ``x`` (``N, C_in, H, W``) and state ``(h, c)`` (``N, C_hid, H, W`` each)::

    i, f, o, g = split(W * [x, h] + b)          # one convolution, 4·C_hid output channels
    c' = σ(f) ⊙ c + σ(i) ⊙ tanh(g)
    h' = σ(o) ⊙ tanh(c')

The convolution is linear in ``[x, h]``, so over a sequence the input part ``W_x * x_t`` is
computed for all time steps in one batched convolution (:meth:`ConvLSTMCell.input_gates`) and
only the recurrent part ``W_h * h_{t-1}`` runs step by step. The peephole terms of the paper
(``W_c ⊙ c``) are left out, as in most later ConvLSTM work; they would tie the cell to one grid
size.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

State = tuple[Tensor, Tensor]


class ConvLSTMCell(nn.Module):
    """One ConvLSTM step.

    Args:
        input_channels: ``C_in`` (0 for a cell driven by its state only, as in the
            forecaster of an encoder–forecaster network).
        hidden_channels: ``C_hid``, channels of ``h`` and ``c``.
        kernel_size: odd kernel size of the gate convolution ("same" padding).
        forget_bias: added to the forget-gate bias at initialisation (1 keeps memories early on).

    Shapes: ``x`` ``(N, C_in, H, W)`` or ``None``; ``state`` ``(h, c)`` with ``(N, C_hid, H, W)``
    each, or ``None`` for zeros; returns the new ``(h, c)``.
    """

    def __init__(
        self,
        input_channels: int,
        hidden_channels: int,
        kernel_size: int = 3,
        forget_bias: float = 1.0,
    ) -> None:
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be odd, got {kernel_size}")
        self.input_channels = input_channels
        self.hidden_channels = hidden_channels
        self.kernel_size = kernel_size
        #: gates in the order (input, forget, output, candidate) along the output channels
        self.conv = nn.Conv2d(
            input_channels + hidden_channels, 4 * hidden_channels, kernel_size,
            padding=kernel_size // 2,
        )
        with torch.no_grad():
            self.conv.bias[hidden_channels : 2 * hidden_channels].add_(forget_bias)

    def init_state(self, batch: int, height: int, width: int, like: Tensor) -> State:
        """Zero ``(h, c)`` of shape ``(batch, C_hid, height, width)`` on ``like``'s device/dtype."""
        z = like.new_zeros(batch, self.hidden_channels, height, width)
        return z, z

    def input_gates(self, x: Tensor) -> Tensor:
        """Input part ``W_x * x + b`` of the gate pre-activations: ``(N, C_in, H, W)`` ->
        ``(N, 4·C_hid, H, W)``. Works on any number of frames folded into ``N``."""
        w = self.conv.weight[:, : self.input_channels]
        return F.conv2d(x, w, self.conv.bias, padding=self.kernel_size // 2)

    def step(self, gates_x: Tensor | None, state: State) -> State:
        """Finish one step from precomputed input gates ``(N, 4·C_hid, H, W)`` (or ``None``:
        bias only) and the previous state."""
        h, c = state
        w = self.conv.weight[:, self.input_channels :]
        gates = F.conv2d(h, w, padding=self.kernel_size // 2)
        if gates_x is None:
            gates = gates + self.conv.bias[:, None, None]
        else:
            gates = gates + gates_x
        i, f, o, g = gates.chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, c

    def forward(self, x: Tensor | None, state: State | None = None) -> State:
        if state is None:
            if x is None:
                raise ValueError("a ConvLSTMCell without input needs a state")
            state = self.init_state(x.shape[0], x.shape[-2], x.shape[-1], x)
        gates_x = None if x is None or self.input_channels == 0 else self.input_gates(x)
        return self.step(gates_x, state)


class ConvLSTM(nn.Module):
    """Stacked ConvLSTM layers run over a sequence, all at the input's resolution.

    Args:
        input_channels: ``C_in`` of the input frames.
        hidden_channels: channels of each layer, bottom first.
        kernel_size: gate convolution kernel size.
        reverse: run backwards in time (``outputs[:, t]`` then summarises ``x[:, t:]``).

    Shapes: ``x`` ``(B, T, C_in, H, W)``; ``state`` a list with one ``(h, c)`` per layer
    (``(B, C_l, H, W)`` each) or ``None``. Returns ``outputs`` ``(B, T, C_last, H, W)`` (the top
    layer's ``h`` at every step, in the input's time order) and the final states.
    """

    def __init__(
        self,
        input_channels: int,
        hidden_channels: Sequence[int],
        kernel_size: int = 3,
        reverse: bool = False,
    ) -> None:
        super().__init__()
        chans = [input_channels, *hidden_channels]
        self.cells = nn.ModuleList(
            ConvLSTMCell(chans[i], chans[i + 1], kernel_size) for i in range(len(hidden_channels))
        )
        self.reverse = reverse

    def forward(self, x: Tensor, state: list[State] | None = None) -> tuple[Tensor, list[State]]:
        B, T, _, H, W = x.shape
        if self.reverse:
            x = x.flip(1)
        states: list[State] = []
        seq = x
        for layer, cell in enumerate(self.cells):
            gx = cell.input_gates(seq.reshape(B * T, *seq.shape[2:])).reshape(B, T, -1, H, W)
            s = state[layer] if state is not None else cell.init_state(B, H, W, x)
            outs = []
            for gx_t in gx.unbind(1):  # unbind: its backward is one stack, not T zero-fills
                s = cell.step(gx_t, s)
                outs.append(s[0])
            seq = torch.stack(outs, dim=1)
            states.append(s)
        if self.reverse:
            seq = seq.flip(1)
        return seq, states
