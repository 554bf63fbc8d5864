"""DCVGAN's paired translator loss (``--translator-l1``): the L1 of the translator's colour for
real depth frames against their real colour, added to the generator's loss."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from pyro_videossm.errors import InputError
from pyro_videossm.experiments.recipe import check_option_ranges
from pyro_videossm.experiments.recipes import RECIPES
from pyro_videossm.experiments.video_gan_recipes import build_gan
from pyro_videossm.models.video.dcvgan import (
    DCVGANGenerator,
    DCVGANObjective,
    paired_translation_l1,
)
from pyro_videossm.models.video.mocogan import MoCoGANDiscriminator

TINY = dict(content_dim=4, motion_dim=4, noise_dim=2, gen_channels=4)


class ConstantColour(nn.Module):
    """A translator that paints every pixel ``value`` (and records what it was given)."""

    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = value

    def forward(self, depth, code):
        self.seen = (depth.clone(), code.clone())
        return torch.full((depth.shape[0], 3, *depth.shape[-2:]), self.value)


def test_paired_l1_is_the_mean_absolute_colour_error_on_the_real_depth():
    torch.manual_seed(0)
    gen = DCVGANGenerator(8, 3, colour_dim=5, **TINY)
    gen.translator = ConstantColour(0.25)
    real = torch.rand(2, 3, 4, 8, 8)
    l1, _ = paired_translation_l1(gen, real)
    assert float(l1) == pytest.approx(float((real[:, :, :3] - 0.25).abs().mean()), rel=1e-6)
    depth, code = gen.translator.seen
    assert torch.equal(depth, real[:, :, 3:].flatten(0, 1))  # the real depth, frame by frame
    assert code.shape == (6, 5) and torch.equal(code[0], code[2])  # one code per clip
    assert not torch.equal(code[0], code[3])


def test_generator_loss_adds_the_weighted_l1_to_mocogans_loss():
    torch.manual_seed(0)
    gen = DCVGANGenerator(8, 3, **TINY, translator_channels=4)
    disc = MoCoGANDiscriminator(4, 8, 3, disc_channels=4).eval()  # no power iteration
    batch = {"frames": torch.randint(0, 256, (3, 3, 4, 8, 8), dtype=torch.uint8)}
    torch.manual_seed(1)
    loss_w, logs = DCVGANObjective(gen, disc, translator_l1=7.0).generator_loss(batch)
    torch.manual_seed(1)
    loss_0, logs_0 = DCVGANObjective(gen, disc).generator_loss(batch)
    l1 = paired_translation_l1(gen, batch["frames"].float() / 255)[0].detach()  # same code
    assert "g_translator_l1" not in logs_0
    assert float(logs["g_translator_l1"]) == pytest.approx(float(l1), rel=1e-6)
    assert float(loss_w - loss_0) == pytest.approx(7.0 * float(l1), rel=1e-5)
    # the L1 term trains the translator only, not the depth generator
    gen.zero_grad()
    paired_translation_l1(gen, batch["frames"].float() / 255)[0].backward()
    assert all(p.grad is None for p in gen.depth.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0
               for p in gen.translator.parameters())


def test_recipe_option_reaches_the_objective():
    meta = {"frame_shape": [3, 8, 8], "frames": 3, "depth_range": [1.0, 2.0]}
    options = RECIPES["dcvgan"].make_options(**TINY, disc_channels=4, translator_l1=3.0)
    _, _, objective = build_gan("dcvgan", options, meta)
    assert isinstance(objective, DCVGANObjective) and objective.translator_l1 == 3.0
    _, _, plain = build_gan("dcvgan", RECIPES["dcvgan"].make_options(**TINY), meta)
    assert plain.translator_l1 == 0.0
    check_option_ranges(RECIPES["dcvgan"].make_options())  # 0 (the default) is allowed
    with pytest.raises(InputError, match="--translator-l1 -1 is out of range"):
        check_option_ranges(RECIPES["dcvgan"].make_options(translator_l1=-1.0))


def test_colour_encoder_code_carries_the_clip_colour_and_its_kl_is_the_closed_form():
    """With the colour encoder the paired loss's code is a reparameterised draw from the
    encoder's Gaussian of the real colour (one per clip), and the KL term is that of two
    diagonal Gaussians in closed form (checked against torch.distributions)."""
    torch.manual_seed(0)
    gen = DCVGANGenerator(8, 3, colour_dim=5, colour_encoder=True, **TINY,
                          translator_channels=4)
    assert gen.config["colour_encoder"] is True
    real = torch.rand(4, 3, 4, 8, 8)
    mean, log_var = gen.encoder(real[:, :, :3])
    assert mean.shape == log_var.shape == (4, 5)
    gen.translator = ConstantColour(0.5)
    torch.manual_seed(3)
    _, kl = paired_translation_l1(gen, real)
    q = torch.distributions.Normal(mean, (0.5 * log_var).exp())
    p = torch.distributions.Normal(torch.zeros(5), torch.ones(5))
    expected = torch.distributions.kl_divergence(q, p).sum(-1).mean()
    assert float(kl) == pytest.approx(float(expected), rel=1e-5)
    _, code = gen.translator.seen
    torch.manual_seed(3)
    eps = torch.randn_like(mean)
    assert torch.allclose(code[::3], mean + eps * (0.5 * log_var).exp(), atol=1e-6)
    assert torch.equal(code[0], code[2])  # shared by the clip's frames


def test_colour_encoder_is_trained_by_the_paired_loss_and_generation_ignores_it():
    torch.manual_seed(0)
    gen = DCVGANGenerator(8, 3, colour_encoder=True, **TINY, translator_channels=4)
    disc = MoCoGANDiscriminator(4, 8, 3, disc_channels=4).eval()
    batch = {"frames": torch.randint(0, 256, (3, 3, 4, 8, 8), dtype=torch.uint8)}
    loss, logs = DCVGANObjective(gen, disc, translator_l1=2.0, kl_weight=0.5
                                 ).generator_loss(batch)
    assert "g_colour_kl" in logs
    loss.backward()
    assert all(p.grad is not None for p in gen.encoder.parameters())
    # generation draws the code from N(0, I) and never calls the encoder
    gen.encoder = None
    torch.manual_seed(5)
    assert gen(2).shape == (2, 3, 4, 8, 8)


def test_colour_encoder_without_the_paired_loss_is_refused():
    meta = {"frame_shape": [3, 8, 8], "frames": 3, "depth_range": [1.0, 2.0]}
    with pytest.raises(InputError, match="needs --translator-l1 > 0"):
        build_gan("dcvgan", RECIPES["dcvgan"].make_options(**TINY, colour_encoder=True), meta)
    gen, _, objective = build_gan("dcvgan", RECIPES["dcvgan"].make_options(
        **TINY, translator_l1=1.0, colour_encoder=True, colour_kl=0.0), meta)
    assert gen.encoder is not None and objective.kl_weight == 0.0
    check_option_ranges(RECIPES["dcvgan"].make_options(colour_kl=0.0))
