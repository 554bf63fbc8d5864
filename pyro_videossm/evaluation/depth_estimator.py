"""A small depth estimator (colour frame -> depth) trained on real RGB-D pairs.

It is the referee of depth-colour consistency (:mod:`pyro_videossm.evaluation.depth_consistency`):
trained on the real frames and depths of a data set such as ``shapes-rgbd``, it is applied to
generated colour frames and its estimate is compared with the generated depth. The network is a
two-level U-Net: ``3x3`` convolutions (SiLU) at full, half and quarter resolution, transposed
convolutions back up with skip connections, and a sigmoid output: depth mapped to [0, 1] by
:func:`~pyro_videossm.data.shapes_rgbd.depth_to_unit`. Frames are estimated one at a time (no
temporal context). Trained with the mean absolute error by the shared
:class:`~pyro_videossm.infer.Trainer`; model files are named ``depth-estimator``.
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F
import xarray as xr
from torch import Tensor, nn

from pyro_videossm.data.shapes_rgbd import DEPTH_FAR, DEPTH_NEAR, depth_tensor
from pyro_videossm.data.sprites import frames_tensor
from pyro_videossm.errors import InputError
from pyro_videossm.infer import (
    LossObjective,
    TrainConfig,
    Trainer,
    load_model_file,
    save_model_file,
)
from pyro_videossm.infer.model_file import rebuild_module
from pyro_videossm.models.video.dsvae import as_float_frames, compact_frames

MODEL_NAME = "depth-estimator"


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.SiLU(),
                         nn.Conv2d(cout, cout, 3, padding=1), nn.SiLU())


class DepthEstimator(nn.Module):
    """``frames (..., C, S, S)`` in [0, 1] -> unit depth ``(..., 1, S, S)`` in (0, 1); ``S``
    divisible by 4.

    Args:
        channels: colour channels of the input (3).
        size: frame side.
        width: channels at full resolution (``2 width`` and ``4 width`` below).
    """

    def __init__(self, channels: int = 3, size: int = 32, width: int = 16):
        super().__init__()
        if size % 4 or size < 8:
            raise InputError(f"the depth estimator needs a frame side divisible by 4 and >= 8, "
                             f"got {size}")
        self.channels, self.size, self.width = int(channels), int(size), int(width)
        w = self.width
        self.enc1, self.enc2, self.enc3 = _block(channels, w), _block(w, 2 * w), _block(2 * w,
                                                                                        4 * w)
        self.up2 = nn.ConvTranspose2d(4 * w, 2 * w, 2, stride=2)
        self.dec2 = _block(4 * w, 2 * w)
        self.up1 = nn.ConvTranspose2d(2 * w, w, 2, stride=2)
        self.dec1 = _block(2 * w, w)
        self.out = nn.Conv2d(w, 1, 1)

    def architecture(self) -> dict:
        return {"channels": self.channels, "size": self.size, "width": self.width}

    def forward(self, frames: Tensor) -> Tensor:
        x = as_float_frames(frames)
        if tuple(x.shape[-3:]) != (self.channels, self.size, self.size):
            raise InputError(f"the depth estimator expects frames (..., {self.channels}, "
                             f"{self.size}, {self.size}), got {tuple(x.shape)}")
        lead = x.shape[:-3]
        x = x.reshape(-1, *x.shape[-3:])
        h1 = self.enc1(x)
        h2 = self.enc2(F.avg_pool2d(h1, 2))
        h3 = self.enc3(F.avg_pool2d(h2, 2))
        d2 = self.dec2(torch.cat([self.up2(h3), h2], 1))
        d1 = self.dec1(torch.cat([self.up1(d2), h1], 1))
        return torch.sigmoid(self.out(d1)).reshape(*lead, 1, self.size, self.size)

    @torch.no_grad()
    def estimate(self, frames: Tensor, batch_size: int = 256) -> Tensor:
        """Unit depth ``(N, T, 1, S, S)`` of clips ``frames (N, T, C, S, S)``, in batches of
        frames."""
        was = self.training
        self.eval()
        device = next(self.parameters()).device
        flat = frames.reshape(-1, *frames.shape[-3:])
        out = [self(flat[s:s + batch_size].to(device)).cpu()
               for s in range(0, flat.shape[0], batch_size)]
        self.train(was)
        return torch.cat(out).reshape(*frames.shape[:-3], 1, self.size, self.size)


def _loss(model: DepthEstimator, batch: dict[str, Tensor]) -> Tensor:
    return (model(batch["frames"]) - batch["depth"].float()).abs().mean()


def rgbd_pairs(ds: xr.Dataset, where: str = "") -> tuple[Tensor, Tensor]:
    """Colour clips ``(N, T, 3, S, S)`` and unit depths ``(N, T, 1, S, S)`` of a Dataset with
    ``frames`` and ``depth``, checked to match in shape."""
    x = frames_tensor(ds, where)
    d = depth_tensor(ds, where)
    if x.shape[:2] != d.shape[:2] or x.shape[-2:] != d.shape[-2:]:
        raise InputError(f"{where + ': ' if where else ''}frames {tuple(x.shape)} and depth "
                         f"{tuple(d.shape)} do not match")
    return x, d


def train_depth_estimator(ds: xr.Dataset, *, width: int = 16, epochs: int = 5,
                          batch_size: int = 64, lr: float = 2e-3, device: str = "cpu",
                          seed: int = 0, progress: bool = False
                          ) -> tuple[DepthEstimator, list[dict]]:
    """Train a :class:`DepthEstimator` on every (frame, depth) pair of ``ds`` (pass training
    clips); returns it and the trainer's history."""
    x, d = rgbd_pairs(ds, "depth-estimator training data")
    if x.shape[-1] != x.shape[-2]:
        raise InputError(f"frames must be square, got {x.shape[-2]}x{x.shape[-1]}")
    torch.manual_seed(seed)
    model = DepthEstimator(x.shape[2], x.shape[-1], width)
    data = {"frames": compact_frames(x.flatten(0, 1)), "depth": d.flatten(0, 1)}
    config = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, device=device, seed=seed,
                         progress=progress)
    history = Trainer(LossObjective(model, _loss), config).fit(data)
    return model.eval(), history


def depth_error(estimated: Tensor, depth: Tensor) -> dict[str, float]:
    """Errors between unit depths (same shape): ``mae`` and ``rmse`` in world units
    (``DEPTH_FAR - DEPTH_NEAR`` times the unit errors) and ``mae_unit``."""
    if estimated.shape != depth.shape:
        raise InputError(f"estimated depth {tuple(estimated.shape)} and depth "
                         f"{tuple(depth.shape)} differ in shape")
    diff = (estimated.double() - depth.double())
    span = DEPTH_FAR - DEPTH_NEAR
    return {"mae": float(diff.abs().mean()) * span,
            "rmse": float(diff.pow(2).mean().sqrt()) * span,
            "mae_unit": float(diff.abs().mean())}


def save_depth_estimator(model: DepthEstimator, path: str | os.PathLike,
                         extra: dict | None = None) -> None:
    """Write the estimator as a model file (name ``depth-estimator``), atomically."""
    save_model_file(path, name=MODEL_NAME, config=model.architecture(),
                    state_dict=model.state_dict(), extra=extra)


def load_depth_estimator(path: str | os.PathLike, device: str = "cpu"
                         ) -> tuple[DepthEstimator, dict]:
    """Read a file of :func:`save_depth_estimator`: the estimator and its ``extra``."""
    obj = load_model_file(path, expected_name=MODEL_NAME)
    model = rebuild_module(DepthEstimator, obj, f"depth-estimator file {path}")
    return model.to(device).eval(), obj["extra"]
