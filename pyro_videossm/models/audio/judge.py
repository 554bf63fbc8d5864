"""The audio judge: a small CNN that tells the food class from a log-amplitude spectrogram.

Trained on real audio only; its accuracy on generated audio says whether the generated sound
carries the class. :class:`AudioJudge`: spectrograms ``(N, K, F)`` (standardised per
frequency bin with the training statistics it holds as buffers) -> two temporal convolutions
(kernel 5, frequency bins as channels) -> mean and max over the valid frames
(``mask (N, K)``) -> class logits ``(N, n_classes)``. :func:`judge_loss` is the mean
cross-entropy of a batch ``{"log_spec", "spec_mask", "label"}``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class AudioJudge(nn.Module):
    """Module docstring. ``config`` rebuilds it: ``AudioJudge(**config)``."""

    def __init__(self, n_freq: int = 257, n_classes: int = 5, hidden: int = 64) -> None:
        super().__init__()
        self.config = {"n_freq": n_freq, "n_classes": n_classes, "hidden": hidden}
        self.register_buffer("mean", torch.zeros(n_freq))
        self.register_buffer("std", torch.ones(n_freq))
        self.net = nn.Sequential(
            nn.Conv1d(n_freq, hidden, 5, padding=2), nn.ReLU(),
            nn.Conv1d(hidden, hidden, 5, padding=2), nn.ReLU())
        self.out = nn.Linear(2 * hidden, n_classes)

    def set_statistics(self, mean: Tensor, std: Tensor) -> None:
        """Per-bin standardisation ``(F,)`` (of the training spectrograms)."""
        self.mean.copy_(torch.as_tensor(mean, dtype=self.mean.dtype))
        self.std.copy_(torch.as_tensor(std, dtype=self.std.dtype).clamp(min=1e-3))

    def forward(self, log_spec: Tensor, mask: Tensor | None = None) -> Tensor:
        x = ((log_spec - self.mean) / self.std).transpose(1, 2)
        h = self.net(x)  # (N, hidden, K)
        m = (torch.ones(h.shape[0], h.shape[2], dtype=torch.bool, device=h.device)
             if mask is None else mask.bool())[:, None]
        mean = (h * m).sum(-1) / m.sum(-1).clamp(min=1)
        peak = h.masked_fill(~m, float("-inf")).amax(-1)
        return self.out(torch.cat([mean, peak], dim=-1))


def judge_loss(judge: AudioJudge, batch: dict[str, Tensor]) -> Tensor:
    """Mean cross-entropy of the batch's ``label``."""
    return F.cross_entropy(judge(batch["log_spec"], batch.get("spec_mask")), batch["label"])
