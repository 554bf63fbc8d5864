"""Face crops to features at the spectrogram frame rate.

:class:`VisualEncoder`: crops ``(N, T, C, S, S)`` (uint8 0–255 or float 0–1) and a frame
mask ``(N, T)`` -> features ``(N, T * upsample, hidden)``:

1. a per-frame CNN on the crop and its difference from the previous crop (the motion: the
   still face cancels, the moving jaw stays), three stride-2 3×3 convolutions (``channels``,
   ``2 channels``, ``4 channels``, group normalisation, ReLU), global average pooling and a
   linear map to ``hidden``;
2. the clip's mean feature over its valid frames appended to every frame (what stays the
   same in a clip: the food, the face), then two temporal 1D convolutions (kernel 5, centred:
   each frame sees the motion two frames before and after it);
3. a transposed 1D convolution (kernel ``2 upsample``, stride ``upsample``) to ``upsample``
   feature vectors per video frame, then one more temporal convolution (kernel 3).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def crops_as_float(crops: Tensor) -> Tensor:
    """uint8 crops to float in ``[0, 1]``; float crops unchanged (NaN -> 0)."""
    if crops.dtype == torch.uint8:
        return crops.float() / 255.0
    return torch.nan_to_num(crops.float())


def clip_appearance(crops: Tensor, frame_mask: Tensor | None = None, side: int = 8) -> Tensor:
    """What a clip's crops look like over time: the per-pixel mean, maximum and standard
    deviation over the valid frames of the crops average-pooled to ``side x side``;
    ``(N, T, C, S, S)`` -> ``(N, 3 C side^2)``. The food shows here (its colour between the
    teeth, the bitten item at the lower lip in a few frames: the maximum keeps it), which the
    motion-driven frame features average away."""
    n, t, c = crops.shape[:3]
    x = F.adaptive_avg_pool2d(crops_as_float(crops).flatten(0, 1), side).reshape(n, t, -1)
    mask = (torch.ones(n, t, dtype=torch.bool, device=crops.device) if frame_mask is None
            else frame_mask.bool())[..., None]
    count = mask.sum(1).clamp(min=1)
    mean = (x * mask).sum(1) / count
    std = ((((x - mean[:, None]) * mask) ** 2).sum(1) / count).sqrt()
    peak = torch.where(mask, x, torch.zeros_like(x)).amax(1)  # crops are >= 0
    return torch.cat([mean, peak, std], dim=-1)


class FrameCNN(nn.Module):
    """``(B, C, S, S)`` -> ``(B, hidden)``."""

    def __init__(self, in_channels: int = 3, channels: int = 16, hidden: int = 64) -> None:
        super().__init__()
        c = channels

        def block(cin: int, cout: int) -> list[nn.Module]:
            return [nn.Conv2d(cin, cout, 3, stride=2, padding=1),
                    nn.GroupNorm(math.gcd(4, cout), cout), nn.ReLU()]

        self.net = nn.Sequential(
            *block(in_channels, c), *block(c, 2 * c), *block(2 * c, 4 * c),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4 * c, hidden), nn.ReLU())

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class VisualEncoder(nn.Module):
    """Module docstring; ``upsample`` spectrogram frames per video frame."""

    def __init__(self, in_channels: int = 3, channels: int = 16, hidden: int = 64,
                 upsample: int = 4) -> None:
        super().__init__()
        self.upsample = upsample
        self.frame_cnn = FrameCNN(2 * in_channels, channels, hidden)
        self.temporal = nn.Sequential(
            nn.Conv1d(2 * hidden, hidden, 5, padding=2), nn.ReLU(),
            nn.Conv1d(hidden, hidden, 5, padding=2), nn.ReLU())
        self.up = nn.ConvTranspose1d(hidden, hidden, 2 * upsample, stride=upsample,
                                     padding=upsample // 2)
        self.refine = nn.Sequential(nn.ReLU(), nn.Conv1d(hidden, hidden, 3, padding=1),
                                    nn.ReLU())

    def frame_features(self, crops: Tensor) -> Tensor:
        """``(N, T, C, S, S)`` -> per-frame features ``(N, T, hidden)`` of each crop and its
        difference from the previous one (zero at the first frame)."""
        n, t = crops.shape[:2]
        x = crops_as_float(crops)
        motion = torch.cat([torch.zeros_like(x[:, :1]), x[:, 1:] - x[:, :-1]], dim=1)
        x = torch.cat([x, motion], dim=2).flatten(0, 1)
        return self.frame_cnn(x).reshape(n, t, -1)

    def encode(self, crops: Tensor, frame_mask: Tensor | None = None
               ) -> tuple[Tensor, Tensor]:
        """``(features (N, T * upsample, hidden), clip feature (N, hidden))``: the clip
        feature is the mean frame feature over the valid frames."""
        n, t = crops.shape[:2]
        mask = (torch.ones(n, t, dtype=torch.bool, device=crops.device) if frame_mask is None
                else frame_mask.bool())
        h = self.frame_features(crops) * mask[..., None]
        clip_mean = h.sum(1) / mask.sum(1, keepdim=True).clamp(min=1)
        h = torch.cat([h, clip_mean[:, None].expand_as(h)], dim=-1).transpose(1, 2)
        h = self.temporal(h)
        h = self.up(h)[..., : t * self.upsample]
        return self.refine(h).transpose(1, 2), clip_mean

    def forward(self, crops: Tensor, frame_mask: Tensor | None = None) -> Tensor:
        return self.encode(crops, frame_mask)[0]
