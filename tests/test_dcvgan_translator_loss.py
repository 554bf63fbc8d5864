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
    l1 = paired_translation_l1(gen, real)
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
    l1 = paired_translation_l1(gen, batch["frames"].float() / 255).detach()  # same code
    assert "g_translator_l1" not in logs_0
    assert float(logs["g_translator_l1"]) == pytest.approx(float(l1), rel=1e-6)
    assert float(loss_w - loss_0) == pytest.approx(7.0 * float(l1), rel=1e-5)
    # the L1 term trains the translator only, not the depth generator
    gen.zero_grad()
    paired_translation_l1(gen, batch["frames"].float() / 255).backward()
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
