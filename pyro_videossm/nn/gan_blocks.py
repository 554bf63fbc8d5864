"""Blocks of the video GANs (MoCoGAN, conditional MoCoGAN, DCVGAN).

Shapes: a frame batch is ``(N, C, S, S)``, a clip batch ``(N, T, C, S, S)``; ``S`` is a frame
size ``4 * 2**k`` (8, 16, 32, 64, ...). Pixel values are in ``[0, 1]``; critics read them
rescaled to ``[-1, 1]``.

* :class:`FrameGenerator`: a latent vector to one frame, ``(N, D) -> (N, C, S, S)``
  (a linear layer to a ``4 x 4`` map, then nearest-neighbour upsampling + 3x3 convolution +
  batch norm + ReLU per doubling, a sigmoid at the end; DCGAN-like, sized for CPU).
* :class:`MotionRNN`: MoCoGAN's motion codes, a GRU cell driven by noise (and a condition),
  ``(N, T, E) -> (N, T, M)``.
* :class:`DepthToColour`: DCVGAN's translator, a small U-Net from a depth frame and a colour
  code to a colour frame, ``(N, 1, S, S), (N, K) -> (N, 3, S, S)``.
* :class:`ColourEncoder`: the colour code of a clip inferred from its colour frames (the
  encoder of BicycleGAN's cVAE-GAN branch), ``(N, T, 3, S, S) -> (N, K), (N, K)`` (mean and
  log-variance of a diagonal Gaussian).
* :class:`ImageCritic` / :class:`VideoCritic`: spectrally normalised 2D / 3D convolutions to a
  feature vector, ``(N, C, S, S) -> (N, F)`` / ``(N, T, C, S, S) -> (N, F)``.
  ``minibatch_std=True`` gives their last convolution ProGAN's minibatch standard deviation
  (:func:`minibatch_std`), against mode collapse.
* :class:`CriticHead`: features to a realness score with projection terms for the given
  conditions (Miyato & Koyama 2018: ``score = w . h + sum_k <embed_k(y_k), h>``) and an
  auxiliary classifier per condition (Odena et al. 2017), ``(N, F) -> (N,), {name: (N, K)}``.
* :class:`ConditionClassifier`: a separate auxiliary classifier of clips (plain convolutions
  with group norm, no spectral normalisation), ``(N, T, C, S, S) -> {"action": (N, A),
  "content": (N, K)}, {"content": (N * T, K)}`` (twice the classes with ``fake_classes``:
  real and generated clips of each class apart; with ``action_input="random-grey"`` the
  action head reads each clip in a grey of random channel weights, see
  :func:`random_grey`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm

from pyro_videossm.errors import InputError


def doublings(size: int) -> int:
    """``k`` with ``size == 4 * 2**k``, ``k >= 1`` (one-line :class:`InputError` otherwise)."""
    k = round(math.log2(size / 4)) if size >= 8 else -1
    if k < 1 or 4 * 2**k != size:
        raise InputError(f"frame size must be 4 * 2**k (8, 16, 32, 64, ...), got {size}")
    return k


def widths(channels: int, levels: int, cap: int = 4) -> list[int]:
    """Channels at ``levels + 1`` resolutions, finest first: ``c, 2c, 4c, ...`` capped at
    ``cap * c``."""
    return [channels * min(2**i, cap) for i in range(levels + 1)]


class FrameGenerator(nn.Module):
    """A latent vector to a frame: ``(N, in_dim) -> (N, out_channels, size, size)`` in (0, 1)."""

    def __init__(self, in_dim: int, out_channels: int, size: int, channels: int = 16) -> None:
        super().__init__()
        k = doublings(size)
        ch = widths(channels, k)[::-1]  # coarsest first
        self.start = ch[0]
        self.project = nn.Sequential(nn.Linear(in_dim, ch[0] * 16), nn.BatchNorm1d(ch[0] * 16),
                                     nn.ReLU())
        layers: list[nn.Module] = []
        for i in range(k):
            layers += [nn.Upsample(scale_factor=2, mode="nearest"),
                       nn.Conv2d(ch[i], ch[i + 1], 3, padding=1, bias=False),
                       nn.BatchNorm2d(ch[i + 1]), nn.ReLU()]
        layers += [nn.Conv2d(ch[-1], out_channels, 3, padding=1), nn.Sigmoid()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        return self.net(self.project(z).view(z.shape[0], self.start, 4, 4))


class MotionRNN(nn.Module):
    """Motion codes ``(N, T, motion_dim)`` from noise ``(N, T, noise_dim)`` and an optional
    condition ``(N, cond_dim)``: ``h_0 = tanh(A [e_0, c])``, ``h_t = GRU([e_t, c], h_{t-1})``,
    the code of frame ``t`` is ``h_t`` (MoCoGAN)."""

    def __init__(self, noise_dim: int, motion_dim: int, cond_dim: int = 0) -> None:
        super().__init__()
        self.cond_dim = cond_dim
        self.initial = nn.Linear(noise_dim + cond_dim, motion_dim)
        self.cell = nn.GRUCell(noise_dim + cond_dim, motion_dim)

    def forward(self, noise: Tensor, condition: Tensor | None = None) -> Tensor:
        n, t, _ = noise.shape
        if condition is not None:
            noise = torch.cat([noise, condition[:, None].expand(n, t, condition.shape[-1])], -1)
        h = torch.tanh(self.initial(noise[:, 0]))
        codes = []
        for i in range(t):
            h = self.cell(noise[:, i], h)
            codes.append(h)
        return torch.stack(codes, dim=1)


def _down(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 4, stride=2, padding=1), nn.BatchNorm2d(cout),
                         nn.LeakyReLU(0.2))


class DepthToColour(nn.Module):
    """DCVGAN's translator: ``depth (N, 1, S, S)`` and a colour code ``(N, code_dim)`` ->
    colour ``(N, 3, S, S)`` in (0, 1). A U-Net of ``levels`` stride-2 convolutions; the code is
    broadcast over the bottleneck map and concatenated to it (the colour noise)."""

    def __init__(self, code_dim: int, channels: int = 16, levels: int = 2) -> None:
        super().__init__()
        ch = widths(channels, levels)
        self.inp = nn.Sequential(nn.Conv2d(1, ch[0], 3, padding=1), nn.LeakyReLU(0.2))
        self.downs = nn.ModuleList([_down(ch[i], ch[i + 1]) for i in range(levels)])
        self.mix = nn.Sequential(nn.Conv2d(ch[-1] + code_dim, ch[-1], 3, padding=1),
                                 nn.BatchNorm2d(ch[-1]), nn.ReLU())
        self.ups = nn.ModuleList([
            nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"),
                          nn.Conv2d(ch[i + 1] + (ch[i + 1] if i + 1 < levels else 0), ch[i], 3,
                                    padding=1, bias=False),
                          nn.BatchNorm2d(ch[i]), nn.ReLU())
            for i in reversed(range(levels))])
        self.out = nn.Sequential(nn.Conv2d(2 * ch[0], 3, 3, padding=1), nn.Sigmoid())
        self.levels = levels

    def forward(self, depth: Tensor, code: Tensor) -> Tensor:
        skips = [self.inp(depth * 2 - 1)]
        for down in self.downs:
            skips.append(down(skips[-1]))
        h = skips[-1]
        h = self.mix(torch.cat([h, code[:, :, None, None].expand(-1, -1, *h.shape[-2:])], 1))
        for j, up in enumerate(self.ups):
            level = self.levels - j  # resolution index of h
            if j > 0:
                h = torch.cat([h, skips[level]], 1)
            h = up(h)
        return self.out(torch.cat([h, skips[0]], 1))


class ColourEncoder(nn.Module):
    """The colour code of a clip from its colour frames: ``(N, T, 3, S, S) -> (mean (N, K),
    log-variance (N, K))``. Stride-2 convolutions (leaky ReLU) to ``4 x 4`` per frame, the
    features averaged over positions and frames, then a linear layer; trained with a KL term
    towards ``N(0, I)``, the prior the translator's colour noise is drawn from when
    generating."""

    def __init__(self, code_dim: int, size: int, channels: int = 16) -> None:
        super().__init__()
        k = doublings(size)
        ch = [3, *widths(channels, k - 1)]
        layers: list[nn.Module] = []
        for i in range(k):
            layers += [nn.Conv2d(ch[i], ch[i + 1], 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
        self.net = nn.Sequential(*layers)
        self.head = nn.Linear(ch[-1], 2 * code_dim)

    def forward(self, colour: Tensor) -> tuple[Tensor, Tensor]:
        n, t = colour.shape[:2]
        h = self.net(colour.flatten(0, 1) * 2 - 1).mean(dim=(-2, -1))
        mean, log_var = self.head(h.reshape(n, t, -1).mean(1)).chunk(2, dim=-1)
        return mean, log_var.clamp(-10.0, 10.0)


def minibatch_std(h: Tensor) -> Tensor:
    """ProGAN's minibatch standard deviation (Karras et al. 2018): ``h`` ``(N, C, ...)`` with
    one channel more, holding everywhere the standard deviation over the batch of every
    feature at every position, averaged. A critic that sees it can tell a batch of generated
    samples that are all alike (mode collapse) from a real batch."""
    std = h.std(dim=0, unbiased=False).mean() if h.shape[0] > 1 else h.new_zeros(())
    return torch.cat([h, std.expand(h.shape[0], 1, *h.shape[2:])], dim=1)


def _run_critic(net: nn.Sequential, x: Tensor, with_std: bool) -> Tensor:
    """The layers of a critic, with :func:`minibatch_std` before its last convolution."""
    last = len(net) - 2
    for i, layer in enumerate(net):
        if with_std and i == last:
            x = minibatch_std(x)
        x = layer(x)
    return x


class ImageCritic(nn.Module):
    """Frames ``(N, C, S, S)`` -> features ``(N, F)``: stride-2 4x4 convolutions under spectral
    normalisation (leaky ReLU) down to ``4 x 4``, then a sum over positions; with
    ``minibatch_std`` the last convolution also reads :func:`minibatch_std`."""

    def __init__(self, in_channels: int, size: int, channels: int = 16,
                 minibatch_std: bool = False) -> None:
        super().__init__()
        k = doublings(size)
        ch = [in_channels, *widths(channels, k - 1, cap=8)]
        layers: list[nn.Module] = []
        for i in range(k):
            extra = 1 if minibatch_std and i == k - 1 else 0
            layers += [spectral_norm(nn.Conv2d(ch[i] + extra, ch[i + 1], 4, stride=2,
                                               padding=1)),
                       nn.LeakyReLU(0.2)]
        self.net = nn.Sequential(*layers)
        self.features = ch[-1]
        self.minibatch_std = minibatch_std

    def forward(self, frames: Tensor) -> Tensor:
        return _run_critic(self.net, frames * 2 - 1, self.minibatch_std).sum(dim=(-2, -1))


class VideoCritic(nn.Module):
    """Clips ``(N, T, C, S, S)`` -> features ``(N, F)``: 3D convolutions under spectral
    normalisation (kernel 3 in time, 4 in space; stride 2 in space, and in time while at least
    4 frames remain), leaky ReLU, then a sum over positions; with ``minibatch_std`` the last
    convolution also reads :func:`minibatch_std`."""

    def __init__(self, in_channels: int, size: int, frames: int, channels: int = 16,
                 minibatch_std: bool = False) -> None:
        super().__init__()
        k = doublings(size)
        ch = [in_channels, *widths(channels, k - 1, cap=8)]
        layers: list[nn.Module] = []
        t = frames
        for i in range(k):
            st = 2 if t >= 4 else 1
            t = (t - 1) // st + 1
            extra = 1 if minibatch_std and i == k - 1 else 0
            layers += [spectral_norm(nn.Conv3d(ch[i] + extra, ch[i + 1], (3, 4, 4),
                                               stride=(st, 2, 2), padding=1)),
                       nn.LeakyReLU(0.2)]
        self.net = nn.Sequential(*layers)
        self.features = ch[-1]
        self.minibatch_std = minibatch_std

    def forward(self, clips: Tensor) -> Tensor:
        return _run_critic(self.net, clips.transpose(1, 2) * 2 - 1,
                           self.minibatch_std).sum(dim=(-3, -2, -1))


class CriticHead(nn.Module):
    """Features ``(N, F)`` -> a score ``(N,)`` with projection terms for ``conditions``
    (``{name: number of classes}``) and auxiliary logits ``{name: (N, K)}`` for ``classify``
    (names of ``conditions``).

    ``forward(h, labels)``: ``labels`` maps every name of ``conditions`` to class indices
    ``(N,)``; a missing name adds no projection term.
    """

    def __init__(self, features: int, conditions: Mapping[str, int] | None = None,
                 classify: tuple[str, ...] = ()) -> None:
        super().__init__()
        conditions = dict(conditions or {})
        self.linear = spectral_norm(nn.Linear(features, 1))
        self.embed = nn.ModuleDict({k: spectral_norm(nn.Embedding(v, features))
                                    for k, v in conditions.items()})
        self.classify = nn.ModuleDict({k: nn.Linear(features, conditions[k]) for k in classify})

    def forward(self, h: Tensor, labels: Mapping[str, Tensor] | None = None
                ) -> tuple[Tensor, dict[str, Tensor]]:
        score = self.linear(h).squeeze(-1)
        for name, embed in self.embed.items():
            if labels is not None and name in labels:
                score = score + (embed(labels[name]) * h).sum(-1)
        return score, {k: head(F.leaky_relu(h, 0.2)) for k, head in self.classify.items()}


#: What the action head of :class:`ConditionClassifier` reads: the clips as they are, or
#: each clip in a grey of random channel weights (:func:`random_grey`).
ACTION_INPUTS = ("colour", "random-grey")


def random_grey(clips: Tensor) -> Tensor:
    """Each clip ``(N, T, C, S, S)`` with its first three (colour) channels replaced by one
    grey, a convex combination of them with weights drawn per clip (flat Dirichlet, the
    torch generator), repeated in the three; other channels unchanged.

    A clip's colours then tell little about which colours it had (a red and a green shirt
    come out as the same grey for some weights), while shapes and their motion stay visible:
    a head that reads these clips cannot learn which colours come with which actions.
    """
    if clips.shape[2] < 3:
        raise InputError(f"random grey needs 3 colour channels, got {clips.shape[2]}")
    w = -torch.log(torch.rand(clips.shape[0], 1, 3, 1, 1, device=clips.device,
                              dtype=clips.dtype).clamp_min(1e-12))
    grey = (clips[:, :, :3] * (w / w.sum(2, keepdim=True))).sum(2, keepdim=True)
    return torch.cat([grey.expand(-1, -1, 3, -1, -1), clips[:, :, 3:]], 2)


class ConditionClassifier(nn.Module):
    """An auxiliary classifier of the conditions of clips ``(N, T, C, S, S)``, outside the
    critics: a frame encoder (3x3 convolution, group norm, leaky ReLU and 2x2 average pooling
    per halving, down to ``4 x 4``, then a linear layer to ``features``) shared by an action
    head on the concatenated frame features ``(N, T * features)`` (the pose of every frame
    in its place in the clip) and a content head on each frame's features (clip logits: the
    head on the mean frame feature).

    Not spectrally normalised: the Lipschitz-bounded critics learned the classes of real clips
    slowly (the sprites' motion was still at chance after 250 steps at the critics' learning
    rate), this plain network learns them within a few hundred steps at the same rate.

    With ``fake_classes`` every head has twice the classes, ``k`` for a real clip of class
    ``k`` and ``K + k`` for a generated one (ADC-GAN, Hou et al. 2022): the classifier also
    learns what the generator makes of each class, so the generator cannot satisfy it with
    clips that only a classifier trained on real clips would accept.

    With ``action_input="random-grey"`` the action head reads the encoder's features of
    :func:`random_grey` clips (a second pass of the shared encoder), the content heads those
    of the clips as they are: the action head cannot learn which colours come with which
    actions in training, so it neither calls a clip of an unseen (action, colour) pair
    unlikely nor teaches the generator to change the colour to please it.

    ``forward(clips)`` -> ``(clip logits {"action": (N, A), "content": (N, K)}, frame logits
    {"content": (N * T, K)})`` (``2 A``, ``2 K`` with ``fake_classes``); a condition with 0
    classes has no head.
    """

    def __init__(self, in_channels: int, size: int, frames: int, n_actions: int,
                 n_contents: int, channels: int = 16, features: int = 32,
                 fake_classes: bool = False, action_input: str = "colour") -> None:
        super().__init__()
        if action_input not in ACTION_INPUTS:
            raise InputError(f"unknown action input {action_input!r} (known: "
                             f"{', '.join(ACTION_INPUTS)})")
        self.action_input = action_input
        k = doublings(size)
        ch = [in_channels, *widths(channels, k - 1)]
        layers: list[nn.Module] = []
        for i in range(k):
            layers += [nn.Conv2d(ch[i], ch[i + 1], 3, padding=1),
                       nn.GroupNorm(min(4, ch[i + 1]), ch[i + 1]), nn.LeakyReLU(0.2),
                       nn.AvgPool2d(2)]
        layers += [nn.Flatten(), nn.Linear(ch[-1] * 16, features), nn.LeakyReLU(0.2)]
        self.encoder = nn.Sequential(*layers)
        self.fake_classes = bool(fake_classes)
        copies = 2 if fake_classes else 1
        self.action = nn.Linear(frames * features, copies * n_actions) if n_actions else None
        self.content = nn.Linear(features, copies * n_contents) if n_contents else None

    def forward(self, clips: Tensor) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        n, t = clips.shape[:2]
        e = self.encoder(clips.flatten(0, 1) * 2 - 1).view(n, t, -1)
        clip: dict[str, Tensor] = {}
        frame: dict[str, Tensor] = {}
        if self.action is not None:
            ea = e
            if self.action_input == "random-grey":
                ea = self.encoder(random_grey(clips).flatten(0, 1) * 2 - 1).view(n, t, -1)
            clip["action"] = self.action(ea.flatten(1))
        if self.content is not None:
            clip["content"] = self.content(e.mean(1))
            frame["content"] = self.content(e.flatten(0, 1))
        return clip, frame
