"""DCVGAN (Nakahira & Kawamoto 2019): a depth video first, then colour from depth.

Generator (:class:`DCVGANGenerator`): a MoCoGAN generator of one channel makes the depth clip
``(N, T, 1, S, S)`` (content code + recurrent motion codes); a per-frame translator
(:class:`~pyro_videossm.nn.gan_blocks.DepthToColour`, a U-Net) turns every depth frame and
one colour code per clip (the colour noise, ``N(0, I)``, shared by the clip's frames) into a
colour frame. The output is the colour-depth clip ``(N, T, 4, S, S)``: channels red, green,
blue, depth (depth scaled to [0, 1]).

The critics are MoCoGAN's (:class:`~pyro_videossm.models.video.mocogan.MoCoGANDiscriminator`
with 4 channels): the image critic scores colour-depth frame pairs, the video critic
colour-depth clips; the objective is
:class:`~pyro_videossm.models.video.mocogan.MoCoGANObjective`. The same critics and objective
with a plain 4-channel MoCoGAN generator give the "MoCoGAN generating a depth channel"
baseline, so the two differ only in the generator.

:class:`DCVGANObjective` adds to the generator's loss an optional direct consistency signal
for the translator (``translator_l1 > 0``): the mean absolute error
(:func:`paired_translation_l1`) between the translator's colour for the *real* depth frames of
the batch and their real colour, weighted, next to the adversarial terms (a paired
depth-to-colour reconstruction, as in image-to-image translation). The colour code of that
reconstruction is fresh noise, or, with ``colour_encoder=True``, inferred from the real
colour frames by a :class:`~pyro_videossm.nn.gan_blocks.ColourEncoder` (reparameterised,
with a KL term of weight ``kl_weight`` towards ``N(0, I)``: the cVAE-GAN branch of
BicycleGAN, Zhu et al. 2017). With fresh noise the loss teaches the translator the *average*
colour of a depth, since an object's hue is not a function of its depth; with the inferred
code the hue can travel in the code, so that colour noise drawn from ``N(0, I)`` at
generation gives the hues of the data. The encoder is used in training only. With weight 0
the objective is MoCoGAN's exactly.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from pyro_videossm.models.video.mocogan import (
    MoCoGANDiscriminator,
    MoCoGANGenerator,
    MoCoGANObjective,
    as_float_clips,
)
from pyro_videossm.nn.gan_blocks import ColourEncoder, DepthToColour


class DCVGANGenerator(nn.Module):
    """Colour-depth clips ``(N, T, 4, S, S)`` from noise (module doc): ``forward(n)``."""

    def __init__(self, size: int = 32, frames: int = 8, *, content_dim: int = 32,
                 motion_dim: int = 16, noise_dim: int = 8, gen_channels: int = 16,
                 colour_dim: int = 8, translator_channels: int = 16,
                 translator_levels: int = 2, colour_encoder: bool = False) -> None:
        super().__init__()
        self.config: dict[str, Any] = dict(
            size=size, frames=frames, content_dim=content_dim, motion_dim=motion_dim,
            noise_dim=noise_dim, gen_channels=gen_channels, colour_dim=colour_dim,
            translator_channels=translator_channels, translator_levels=translator_levels)
        if colour_encoder:  # only when on: model files of before keep their config
            self.config["colour_encoder"] = True
        self.channels, self.size, self.frames = 4, size, frames
        self.n_actions = self.n_contents = 0
        self.colour_dim = colour_dim
        self.depth = MoCoGANGenerator(1, size, frames, content_dim=content_dim,
                                      motion_dim=motion_dim, noise_dim=noise_dim,
                                      gen_channels=gen_channels)
        self.translator = DepthToColour(colour_dim, translator_channels, translator_levels)
        self.encoder = (ColourEncoder(colour_dim, size, translator_channels) if colour_encoder
                        else None)

    def forward(self, n: int, action: Tensor | None = None, content: Tensor | None = None
                ) -> Tensor:
        depth = self.depth(n, action, content)  # (N, T, 1, S, S)
        t = depth.shape[1]
        code = torch.randn(n, self.colour_dim, device=depth.device)
        colour = self.translator(depth.flatten(0, 1), code.repeat_interleave(t, dim=0))
        colour = colour.reshape(n, t, 3, self.size, self.size)
        return torch.cat([colour, depth], dim=2)


def paired_translation_l1(generator: DCVGANGenerator, real: Tensor
                          ) -> tuple[Tensor, Tensor | None]:
    """Mean absolute error between the translator's colour for the depth frames of real
    colour-depth clips ``real`` ``(N, T, 4, S, S)`` in [0, 1] and their real colour
    ``real[:, :, :3]`` (a scalar), with one colour code per clip shared by its frames: fresh
    ``N(0, I)`` noise, or with the generator's colour encoder a reparameterised draw of the
    code inferred from the real colour, then also the KL divergence of that code's Gaussian
    from ``N(0, I)`` (summed over the code, averaged over clips; ``None`` without encoder)."""
    n, t = real.shape[:2]
    colour_real = real[:, :, :3]
    kl = None
    if generator.encoder is None:
        code = torch.randn(n, generator.colour_dim, device=real.device)
    else:
        mean, log_var = generator.encoder(colour_real)
        code = mean + torch.randn_like(mean) * (0.5 * log_var).exp()
        kl = 0.5 * (mean.pow(2) + log_var.exp() - 1.0 - log_var).sum(-1).mean()
    colour = generator.translator(real[:, :, 3:].flatten(0, 1),
                                  code.repeat_interleave(t, dim=0))
    return (colour - colour_real.flatten(0, 1)).abs().mean(), kl


class DCVGANObjective(MoCoGANObjective):
    """MoCoGAN's objective + ``translator_l1`` x :func:`paired_translation_l1` on the real
    clips of the batch in the generator's loss, + ``kl_weight`` x its KL term when the
    generator has a colour encoder (module doc)."""

    def __init__(self, generator: DCVGANGenerator, discriminator: MoCoGANDiscriminator,
                 loss: str = "hinge", *, translator_l1: float = 0.0,
                 kl_weight: float = 0.01) -> None:
        super().__init__(generator, discriminator, loss)
        self.translator_l1 = float(translator_l1)
        self.kl_weight = float(kl_weight)

    def generator_loss(self, batch: Mapping[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        loss, logs = super().generator_loss(batch)
        if self.translator_l1 > 0:
            l1, kl = paired_translation_l1(self.generator, as_float_clips(batch["frames"]))
            loss = loss + self.translator_l1 * l1
            logs["g_translator_l1"] = l1.detach()
            if kl is not None:
                loss = loss + self.kl_weight * kl
                logs["g_colour_kl"] = kl.detach()
        return loss, logs
