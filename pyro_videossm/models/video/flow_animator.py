"""Animating a still image by the optical flow of a driving video (flow style transfer).

The generator (:class:`FlowAnimator`) moves a source frame ``(B, 1, H, W)`` along driving
flows ``(B, T, 2, H, W)`` (pixels per frame, ``flow[:, t]`` moving frame ``t - 1`` into frame
``t``, ``flow[:, 0] = 0``; the convention of :mod:`pyro_videossm.data.clouds`):

1. **Accumulated flow** (:func:`accumulate_flows`): ``D_t(x) = f_t(x) + D_{t-1}(x - f_t(x))``,
   so that frame ``t`` is the source warped once, ``source(x - D_t(x))``.
2. **Warp** (:func:`warp`): differentiable backward warping with
   ``torch.nn.functional.grid_sample`` (bicubic, border padding), either once by the
   accumulated flow (``warping="accumulated"``) or frame after frame by each driving flow
   (``warping="sequential"``, as semi-Lagrangian advection).
3. **Refinement** (:class:`RefinementUNet`): a small U-Net per frame, fed with the warped
   frame, the source, the accumulated and current flows and the time fraction ``t / T``,
   adds a residual that restores texture smoothed by interpolation and handles cloud that
   appears or vanishes (growth, inflow at the edges). ``refine=False`` gives the model
   without its refinement network (warping only).
4. **Sharpening** (optional, ``sharpen_amount > 0``): an unsharp mask
   (:func:`~pyro_videossm.models.video.unsharp.unsharp_mask`) of frames ``1..T-1`` after the
   recurrence, clipped to ``[0, 1]``: it restores the high-wavenumber power that
   interpolation removes (the recipe chooses the amount on its validation clips).

The critic (:class:`VideoDiscriminator`) scores clips ``(B, T, H, W)`` with 3D convolutions
under spectral normalisation. :class:`FlowAnimationObjective` is the
:class:`~pyro_videossm.infer.gan_trainer.GANObjective` of the pair: L1 to the real clip plus
the adversarial (hinge) loss.

Baselines: :func:`still_animation` (the source repeated) and :func:`semi_lagrangian_animation`
(the source advected frame after frame by the driving flows, cubic interpolation).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm

from pyro_videossm.errors import InputError
from pyro_videossm.infer.gan_trainer import GANObjective
from pyro_videossm.models.video.unsharp import unsharp_mask

#: How the source is moved: once by the accumulated flow, frame after frame, or frame after
#: frame with the refinement's residual added at every step (``recurrent``).
WARPINGS = ("accumulated", "sequential", "recurrent")

#: Scale dividing flows (pixels) before they enter the refinement network.
FLOW_SCALE = 4.0


def _base_grid(h: int, w: int, like: Tensor) -> Tensor:
    """Pixel coordinates ``(2, H, W)``: ``x`` then ``y``."""
    yy, xx = torch.meshgrid(torch.arange(h, dtype=like.dtype, device=like.device),
                            torch.arange(w, dtype=like.dtype, device=like.device),
                            indexing="ij")
    return torch.stack([xx, yy])


#: Interpolations of :func:`warp`: ``grid_sample``'s modes and the cubic B-spline.
INTERPOLATIONS = ("bicubic", "bilinear", "nearest", "bspline")


def warp(image: Tensor, flow: Tensor, mode: str = "bicubic") -> Tensor:
    """``image(x - flow(x))``: ``image`` ``(N, C, H, W)``, ``flow`` ``(N, 2, H, W)`` (``u``,
    ``v`` in pixels); ``grid_sample`` with ``align_corners=True`` and border padding, or
    ``mode="bspline"``: :func:`bspline_warp`."""
    if mode == "bspline":
        return bspline_warp(image, flow)
    n, _, h, w = image.shape
    pos = _base_grid(h, w, flow) - flow  # (N, 2, H, W) departure points
    gx = 2.0 * pos[:, 0] / max(w - 1, 1) - 1.0
    gy = 2.0 * pos[:, 1] / max(h - 1, 1) - 1.0
    grid = torch.stack([gx, gy], dim=-1)
    return F.grid_sample(image, grid, mode=mode, padding_mode="border", align_corners=True)


#: Pixels of edge values added around an image before its B-spline prefilter (as scipy.ndimage
#: pads for ``mode="nearest"``).
SPLINE_PAD = 12


def _spline_prefilter_matrix(n: int, like: Tensor) -> Tensor:
    """``(n, n)`` inverse of the cubic B-spline sampling matrix (``[1, 4, 1] / 6``, mirror
    boundary): interpolation coefficients along one axis are this matrix times the values."""
    a = np.zeros((n, n))
    idx = np.arange(n)
    a[idx, idx] = 4.0 / 6.0
    a[idx[:-1], idx[:-1] + 1] = 1.0 / 6.0
    a[idx[1:], idx[1:] - 1] = 1.0 / 6.0
    if n > 1:
        a[0, 1] = a[-1, -2] = 2.0 / 6.0
    return torch.as_tensor(np.linalg.inv(a), dtype=like.dtype, device=like.device)


def bspline_warp(image: Tensor, flow: Tensor) -> Tensor:
    """``image(x - flow(x))`` by cubic B-spline interpolation (prefiltered, so interpolating;
    what ``scipy.ndimage.map_coordinates(order=3, mode="nearest")`` does): ``image``
    ``(N, C, H, W)``, ``flow`` ``(N, 2, H, W)`` pixels. The image is extended by
    :data:`SPLINE_PAD` edge values before the prefilter; departure points further out take
    the outermost coefficients. Differentiable in ``image`` (and in ``flow``)."""
    n, c, h, w = image.shape
    p = SPLINE_PAD
    padded = F.pad(image, (p, p, p, p), mode="replicate")
    hp, wp = h + 2 * p, w + 2 * p
    coef = _spline_prefilter_matrix(hp, image) @ padded @ _spline_prefilter_matrix(wp, image).T
    pos = _base_grid(h, w, flow) - flow + p  # (N, 2, H, W): x, y in padded pixels
    base = torch.floor(pos)
    frac = pos - base
    base = base.long() - 1

    def weights(t: Tensor) -> list[Tensor]:
        return [(1 - t) ** 3 / 6, (3 * t ** 3 - 6 * t ** 2 + 4) / 6,
                (-3 * t ** 3 + 3 * t ** 2 + 3 * t + 1) / 6, t ** 3 / 6]

    wx, wy = weights(frac[:, 0]), weights(frac[:, 1])
    flat = coef.reshape(n, c, hp * wp)
    out = torch.zeros_like(image)
    for j in range(4):
        iy = (base[:, 1] + j).clamp(0, hp - 1)
        for i in range(4):
            ix = (base[:, 0] + i).clamp(0, wp - 1)
            index = (iy * wp + ix).reshape(n, 1, h * w).expand(n, c, h * w)
            vals = flat.gather(2, index).reshape(n, c, h, w)
            out = out + (wy[j] * wx[i]).unsqueeze(1) * vals
    return out


def accumulate_flows(flows: Tensor) -> Tensor:
    """Displacements ``(B, T, 2, H, W)`` from frame 0: ``D_0 = 0``,
    ``D_t(x) = f_t(x) + D_{t-1}(x - f_t(x))`` (bilinear)."""
    out = [torch.zeros_like(flows[:, 0])]
    for t in range(1, flows.shape[1]):
        f = flows[:, t]
        out.append(f + warp(out[-1], f, mode="bilinear"))
    return torch.stack(out, dim=1)


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.GroupNorm(1, cout),
                         nn.SiLU(), nn.Conv2d(cout, cout, 3, padding=1), nn.SiLU())


class RefinementUNet(nn.Module):
    """U-Net with ``levels`` downsamplings: ``(N, in_channels, H, W) -> (N, 1, H, W)``
    (``H``, ``W`` multiples of ``2**levels``); the last convolution starts at zero, so an
    untrained network adds nothing."""

    def __init__(self, in_channels: int, channels: int = 32, levels: int = 2) -> None:
        super().__init__()
        widths = [channels * 2 ** k for k in range(levels + 1)]
        self.down = nn.ModuleList()
        cin = in_channels
        for wdt in widths:
            self.down.append(_block(cin, wdt))
            cin = wdt
        self.up = nn.ModuleList(_block(widths[k + 1] + widths[k], widths[k])
                                for k in reversed(range(levels)))
        self.out = nn.Conv2d(widths[0], 1, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: Tensor) -> Tensor:
        skips = []
        for k, block in enumerate(self.down):
            x = block(x if k == 0 else F.avg_pool2d(x, 2))
            skips.append(x)
        x = skips.pop()
        for block in self.up:
            skip = skips.pop()
            x = block(torch.cat([F.interpolate(x, size=skip.shape[-2:], mode="bilinear",
                                               align_corners=False), skip], dim=1))
        return self.out(x)


class FlowAnimator(nn.Module):
    """The generator (module doc): ``forward(source (B, 1, H, W), flows (B, T, 2, H, W))
    -> frames (B, T, H, W)``."""

    def __init__(self, channels: int = 32, levels: int = 2, refine: bool = True,
                 mode: str = "bicubic", warping: str = "accumulated",
                 sharpen_amount: float = 0.0, sharpen_sigma: float = 1.0) -> None:
        super().__init__()
        if warping not in WARPINGS:
            raise InputError(f"unknown warping {warping!r} (known: {', '.join(WARPINGS)})")
        if mode not in INTERPOLATIONS:
            raise InputError(f"unknown interpolation {mode!r} (known: "
                             f"{', '.join(INTERPOLATIONS)})")
        self.config = {"channels": channels, "levels": levels, "refine": refine, "mode": mode,
                       "warping": warping}
        self.set_sharpening(sharpen_amount, sharpen_sigma)
        self.levels = levels
        self.mode = mode
        self.warping = warping
        # warped, source, accumulated flow (2), current flow (2), time fraction
        self.refiner = RefinementUNet(7, channels, levels) if refine else None

    def set_sharpening(self, amount: float, sigma: float) -> None:
        """Sharpen frames ``1..T-1`` by an unsharp mask of ``amount`` and blur ``sigma``
        (pixels) from now on (``amount = 0``: off); stored in :attr:`config`."""
        if not (np.isfinite(amount) and amount >= 0 and np.isfinite(sigma) and sigma > 0):
            raise InputError(f"sharpening needs an amount >= 0 and a blur sigma > 0, got "
                             f"{amount} and {sigma}")
        self.sharpen_amount, self.sharpen_sigma = float(amount), float(sigma)
        self.config.update(sharpen_amount=self.sharpen_amount, sharpen_sigma=self.sharpen_sigma)

    def forward(self, source: Tensor, flows: Tensor) -> Tensor:
        frames = self._animate(source, flows)
        if self.sharpen_amount == 0:
            return frames
        sharp = unsharp_mask(frames[:, 1:], self.sharpen_amount, self.sharpen_sigma)
        return torch.cat([frames[:, :1], sharp.clamp(0, 1)], dim=1)

    def _animate(self, source: Tensor, flows: Tensor) -> Tensor:
        """The warped and refined frames ``(B, T, H, W)``, before any sharpening."""
        if source.dim() != 4 or source.shape[1] != 1 or flows.dim() != 5 or flows.shape[2] != 2:
            raise InputError(f"flow animator needs source (B, 1, H, W) and flows (B, T, 2, H, W),"
                             f" got {tuple(source.shape)} and {tuple(flows.shape)}")
        b, t, _, h, w = flows.shape
        if self.warping == "recurrent" and self.refiner is not None:
            return self._recurrent(source, flows)
        acc = accumulate_flows(flows)
        src = source.unsqueeze(1).expand(b, t, 1, h, w).reshape(b * t, 1, h, w)
        if self.warping == "accumulated":
            moved = warp(src, acc.reshape(b * t, 2, h, w), self.mode)
        else:  # frame after frame, as semi-Lagrangian advection (recurrent without refiner)
            steps = [source]
            for k in range(1, t):
                steps.append(warp(steps[-1], flows[:, k], self.mode).clamp(0, 1))
            moved = torch.stack(steps, dim=1).reshape(b * t, 1, h, w)
        if self.refiner is None:
            return moved.reshape(b, t, h, w)
        frac = (torch.arange(t, dtype=source.dtype, device=source.device) / max(t - 1, 1))
        frac = frac.view(1, t, 1, 1, 1).expand(b, t, 1, h, w).reshape(b * t, 1, h, w)
        residual = self._residual(moved, src, acc.reshape(b * t, 2, h, w),
                                  flows.reshape(b * t, 2, h, w), frac).reshape(b, t, h, w)
        moved = moved.reshape(b, t, h, w)
        # frame 0 is the source itself
        return torch.cat([moved[:, :1], moved[:, 1:] + residual[:, 1:]], dim=1)

    def _residual(self, moved: Tensor, src: Tensor, acc: Tensor, flow: Tensor,
                  frac: Tensor) -> Tensor:
        """Refinement residual ``(N, 1, H, W)`` from the moved frame, the source, the
        accumulated and current flows ``(N, 2, H, W)`` and the time fraction."""
        h, w = moved.shape[-2:]
        x = torch.cat([moved, src, acc / FLOW_SCALE, flow / FLOW_SCALE, frac], dim=1)
        m = 2 ** self.levels
        ph, pw = (-h) % m, (-w) % m
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph), mode="replicate")
        return self.refiner(x)[..., :h, :w]

    def _recurrent(self, source: Tensor, flows: Tensor) -> Tensor:
        """``G_0 = source``, ``G_t = clip(G_{t-1}(x - f_t(x)) + r_t, 0, 1)``: the residual
        is a change per step, carried along by the flow with the frame."""
        b, t, _, h, w = flows.shape
        acc = accumulate_flows(flows)
        frames = [source]
        for k in range(1, t):
            moved = warp(frames[-1], flows[:, k], self.mode)
            frac = source.new_full((b, 1, h, w), k / max(t - 1, 1))
            r = self._residual(moved, source, acc[:, k], flows[:, k], frac)
            frames.append((moved + r).clamp(0, 1))
        return torch.cat(frames, dim=1)


class VideoDiscriminator(nn.Module):
    """Critic of clips ``(B, T, H, W) -> (B,)``: 3D convolutions (spectral normalisation,
    leaky ReLU), strided in space, then a mean over the remaining positions."""

    def __init__(self, channels: int = 32, layers: int = 3) -> None:
        super().__init__()
        self.config = {"channels": channels, "layers": layers}
        mods: list[nn.Module] = []
        cin = 1
        for k in range(layers):
            cout = channels * 2 ** k
            mods += [spectral_norm(nn.Conv3d(cin, cout, 3, stride=(1, 2, 2), padding=1)),
                     nn.LeakyReLU(0.2)]
            cin = cout
        mods.append(spectral_norm(nn.Conv3d(cin, 1, 3, padding=1)))
        self.net = nn.Sequential(*mods)

    def forward(self, clips: Tensor) -> Tensor:
        return self.net(clips.unsqueeze(1)).mean(dim=(1, 2, 3, 4))


def radial_log_spectrum(frames: Tensor) -> Tensor:
    """``log10`` of the radially averaged power spectrum of frames ``(N, H, W)`` (each
    frame's mean removed), pooled over ``N``: ``(min(H, W) // 2,)``, radii ``1..min(H, W)//2``
    (as :func:`pyro_videossm.metrics.animation.radial_power_spectrum`); differentiable."""
    _, h, w = frames.shape
    x = frames - frames.mean(dim=(-2, -1), keepdim=True)
    power = (torch.fft.fft2(x).abs() ** 2 / (h * w)).mean(dim=0).reshape(-1)
    ky, kx = np.meshgrid(np.fft.fftfreq(h) * h, np.fft.fftfreq(w) * w, indexing="ij")
    radius = np.rint(np.hypot(ky * min(h, w) / h, kx * min(h, w) / w)).astype(int).ravel()
    n = min(h, w) // 2
    onehot = np.zeros((radius.size, n))
    inside = (radius >= 1) & (radius <= n)
    onehot[np.flatnonzero(inside), radius[inside] - 1] = 1.0
    onehot /= np.maximum(onehot.sum(axis=0, keepdims=True), 1.0)
    avg = power @ torch.as_tensor(onehot, dtype=power.dtype, device=power.device)
    return torch.log10(avg + 1e-12)


def spectral_loss(fake: Tensor, source: Tensor) -> Tensor:
    """Mean ``|log10 P_fake(k) - log10 P_source(k)|`` (:func:`radial_log_spectrum`) of the
    generated frames ``1..T-1`` of clips ``(B, T, H, W)`` and of the sources ``(B, 1, H, W)``:
    the appearance score of :mod:`pyro_videossm.metrics.animation` as a loss."""
    h, w = fake.shape[-2:]
    return (radial_log_spectrum(fake[:, 1:].reshape(-1, h, w))
            - radial_log_spectrum(source.reshape(-1, h, w)).detach()).abs().mean()


def flow_consistency_loss(fake: Tensor, flows: Tensor, mode: str = "bspline") -> Tensor:
    """Mean ``|G_t - G_{t-1}(x - f_t(x))|`` over frames ``1..T-1`` of generated clips
    ``(B, T, H, W)`` and driving flows ``(B, T, 2, H, W)``: zero when each generated frame
    is the previous one moved by the driving flow (no change the flow estimator could read
    as other motion)."""
    b, t, h, w = fake.shape
    prev = fake[:, :-1].reshape(b * (t - 1), 1, h, w)
    moved = warp(prev, flows[:, 1:].reshape(b * (t - 1), 2, h, w), mode)
    return (fake[:, 1:].reshape(b * (t - 1), 1, h, w) - moved).abs().mean()


class FlowAnimationObjective(GANObjective):
    """L1 to the real clip (weight ``l1_weight``) + adversarial loss, + ``spectral_weight``
    × :func:`spectral_loss` (texture: the source's power spectrum) + ``consistency_weight``
    × :func:`flow_consistency_loss` (motion: frames moved by the driving flow); batches are
    ``{"source": (B, 1, H, W), "flows": (B, T, 2, H, W), "target": (B, T, H, W)}`` and an
    optional bool ``"mask"`` like ``target`` (False: a missing pixel, left out of the L1)."""

    def __init__(self, generator: FlowAnimator, discriminator: VideoDiscriminator,
                 loss: str = "hinge", adversarial_weight: float = 0.05,
                 l1_weight: float = 1.0, spectral_weight: float = 0.0,
                 consistency_weight: float = 0.0) -> None:
        super().__init__(generator, discriminator, loss, adversarial_weight)
        self.l1_weight = float(l1_weight)
        self.spectral_weight = float(spectral_weight)
        self.consistency_weight = float(consistency_weight)

    def generate(self, generator: nn.Module, batch: Mapping[str, Tensor]) -> Tensor:
        return generator(batch["source"], batch["flows"])

    def real(self, batch: Mapping[str, Tensor]) -> Tensor:
        return batch["target"]

    def evaluate(self, generator: nn.Module, batch: Mapping[str, Tensor]) -> Tensor:
        return self.extra_generator_loss(self.generate(generator, batch), batch)[1]["l1"]

    def extra_generator_loss(self, fake: Tensor, batch: Mapping[str, Tensor]
                             ) -> tuple[Tensor, dict[str, Tensor]]:
        err = (fake - batch["target"]).abs()
        mask = batch.get("mask")
        l1 = err.mean() if mask is None else (err * mask).sum() / mask.sum().clamp_min(1)
        loss, logs = self.l1_weight * l1, {"l1": l1.detach()}
        if self.spectral_weight > 0:
            spec = spectral_loss(fake, batch["source"])
            loss, logs["spectral"] = loss + self.spectral_weight * spec, spec.detach()
        if self.consistency_weight > 0:
            cons = flow_consistency_loss(fake, batch["flows"])
            loss, logs["consistency"] = loss + self.consistency_weight * cons, cons.detach()
        return loss, logs


# -- inference and baselines ------------------------------------------------------------
@torch.no_grad()
def animate(generator: FlowAnimator, source: np.ndarray, flows: np.ndarray,
            batch_size: int = 16, device: str = "cpu") -> np.ndarray:
    """Animate sources ``(N, H, W)`` by flows ``(N, T, 2, H, W)``: frames ``(N, T, H, W)``
    clipped to ``[0, 1]``."""
    generator = generator.to(device).eval()
    out = []
    for i in range(0, len(source), batch_size):
        s = torch.as_tensor(source[i:i + batch_size], dtype=torch.float32, device=device)
        f = torch.as_tensor(flows[i:i + batch_size], dtype=torch.float32, device=device)
        out.append(generator(s.unsqueeze(1), f).clamp(0, 1).cpu().numpy())
    return np.concatenate(out).astype(np.float32)


def still_animation(source: np.ndarray, frames: int) -> np.ndarray:
    """The source ``(N, H, W)`` repeated: ``(N, frames, H, W)`` (no motion)."""
    return np.repeat(np.asarray(source)[:, None], frames, axis=1)


def semi_lagrangian_animation(source: np.ndarray, flows: np.ndarray) -> np.ndarray:
    """The source ``(N, H, W)`` advected frame after frame by ``flows`` ``(N, T, 2, H, W)``:
    ``frame_t(x) = frame_{t-1}(x - flow_t(x))`` (cubic interpolation, nearest value beyond
    the edges), clipped to ``[0, 1]``."""
    from scipy.ndimage import map_coordinates

    source, flows = np.asarray(source, np.float64), np.asarray(flows, np.float64)
    n, t, _, h, w = flows.shape
    yy, xx = np.meshgrid(np.arange(h, dtype=np.float64), np.arange(w, dtype=np.float64),
                         indexing="ij")
    out = np.empty((n, t, h, w))
    for i in range(n):
        frame = source[i]
        out[i, 0] = frame
        for k in range(1, t):
            coords = np.stack([yy - flows[i, k, 1], xx - flows[i, k, 0]])
            frame = np.clip(map_coordinates(frame, coords, order=3, mode="nearest"), 0, 1)
            out[i, k] = frame
    return out.astype(np.float32)
