"""Video GANs (MoCoGAN, conditional MoCoGAN, DCVGAN), their recipes and ``videossm generate``."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import xarray as xr
from torch.nn.utils import parametrize

from pyro_videossm.cli import main
from pyro_videossm.data.conventions import write_netcdf
from pyro_videossm.data.sprites import MOTIONS, STATIC_FACTORS, make_sprites
from pyro_videossm.errors import InputError
from pyro_videossm.experiments.recipe import TrainingRun
from pyro_videossm.experiments.recipes import RECIPES
from pyro_videossm.experiments.video_gan_recipes import generate_clips, load_video_gan
from pyro_videossm.models.video.dcvgan import DCVGANGenerator
from pyro_videossm.models.video.mocogan import (
    MoCoGANDiscriminator,
    MoCoGANGenerator,
    MoCoGANObjective,
)

pytestmark = pytest.mark.filterwarnings("ignore")
TINY = dict(content_dim=4, motion_dim=4, noise_dim=2, gen_channels=4, disc_channels=4)


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """Sprites 8x8, 3 frames, with a depth variable (an RGB-D fixture), pairs of motion 0 with
    top != 0 left out (unseen)."""
    d = tmp_path_factory.mktemp("clips")
    ds = make_sprites("train", size=8, frames=3, characters=4)
    ds["depth"] = (("clip", "time", "y", "x"),
                   (2.0 + ds["frames"].mean("channel").values).astype(np.float32),
                   {"long_name": "distance to the camera", "units": "m"})
    keep = ~((ds["motion"].values == 0) & (ds["top"].values != 0))
    path = d / "rgbd.nc"
    write_netcdf(ds.isel(clip=np.flatnonzero(keep)), path)
    return path


@pytest.fixture(scope="module")
def models(clips, tmp_path_factory):
    d = tmp_path_factory.mktemp("models")
    out = {}
    for kind, extra in (("cmocogan", {}), ("dcvgan", {}), ("mocogan", {"depth": True})):
        recipe = RECIPES[kind]
        out[kind] = d / f"{kind}.pt"
        recipe.fit(TrainingRun(clips, out[kind], epochs=1, batch_size=8, progress=False),
                   recipe.make_options(**TINY, **extra))
    return out


def test_shapes_and_ranges():
    torch.manual_seed(0)
    g = MoCoGANGenerator(3, 16, 5, n_actions=3, n_contents=2, **{
        k: v for k, v in TINY.items() if k != "disc_channels"})
    x = g(2, torch.tensor([0, 2]), torch.tensor([1, 0]))
    assert x.shape == (2, 5, 3, 16, 16) and 0 < float(x.min()) and float(x.max()) < 1
    dc = DCVGANGenerator(16, 4, content_dim=4, motion_dim=4, noise_dim=2, gen_channels=4)
    assert dc(3).shape == (3, 4, 4, 16, 16)
    d = MoCoGANDiscriminator(3, 16, 5, disc_channels=4, n_actions=3, n_contents=2,
                             classify=True)
    video, image, vl, il = d(x, {"action": torch.tensor([0, 2]), "content": torch.tensor([1, 0])})
    assert video.shape == (2,) and image.shape == (2, 5)
    assert vl["action"].shape == (2, 3) and vl["content"].shape == (2, 2)
    assert il["content"].shape == (10, 2) and "action" not in il
    with pytest.raises(InputError, match="frame size"):
        MoCoGANGenerator(3, 12, 4)
    with pytest.raises(InputError, match="needs 2 action labels"):
        g(2, None, torch.tensor([1, 0]))


def test_every_critic_weight_is_spectrally_normalised():
    d = MoCoGANDiscriminator(4, 32, 8, disc_channels=4, n_actions=3, n_contents=2,
                             classify=True)
    layers = [m for m in d.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Conv3d,
                                                       torch.nn.Embedding))]
    assert len(layers) == 3 + 3 + 3  # 3 image convs, 3 video convs, 3 projection embeddings
    assert all(parametrize.is_parametrized(m, "weight") for m in layers)
    assert parametrize.is_parametrized(d.video_head.linear, "weight")
    assert parametrize.is_parametrized(d.image_head.linear, "weight")


def _motion_codes(g, action, content):
    codes = []
    handle = g.motion.register_forward_hook(lambda m, i, o: codes.append(o))
    torch.manual_seed(3)
    frames = g(2, action, content)
    handle.remove()
    return codes[0], frames


def test_separate_routing_keeps_content_out_of_the_motion_codes():
    g = MoCoGANGenerator(3, 8, 4, n_actions=3, n_contents=4, routing="separate",
                         **{k: v for k, v in TINY.items() if k != "disc_channels"}).eval()
    a = torch.tensor([1, 2])
    m1, x1 = _motion_codes(g, a, torch.tensor([0, 0]))
    m2, x2 = _motion_codes(g, a, torch.tensor([3, 1]))
    assert torch.equal(m1, m2) and not torch.allclose(x1, x2)
    m3, _ = _motion_codes(g, torch.tensor([0, 0]), torch.tensor([0, 0]))
    assert not torch.allclose(m1, m3)
    joint = MoCoGANGenerator(3, 8, 4, n_actions=3, n_contents=4, routing="joint",
                             **{k: v for k, v in TINY.items() if k != "disc_channels"}).eval()
    j1, _ = _motion_codes(joint, a, torch.tensor([0, 0]))
    j2, _ = _motion_codes(joint, a, torch.tensor([3, 1]))
    assert not torch.allclose(j1, j2)


def test_auxiliary_losses_are_the_cross_entropies_on_top_of_the_adversarial_ones():
    torch.manual_seed(0)
    kw = {k: v for k, v in TINY.items() if k != "disc_channels"}
    g = MoCoGANGenerator(3, 8, 3, n_actions=3, n_contents=2, **kw)
    d = MoCoGANDiscriminator(3, 8, 3, disc_channels=4, n_actions=3, n_contents=2,
                             classify=True).eval()  # eval: no power iteration per call
    batch = {"frames": torch.rand(4, 3, 3, 8, 8), "action": torch.tensor([0, 1, 2, 0]),
             "content": torch.tensor([1, 0, 1, 1])}
    with_aux = MoCoGANObjective(g, d, aux_weight=2.0, conditions="seen",
                                condition_names=("action", "content"))
    without = MoCoGANObjective(g, d, aux_weight=0.0, conditions="seen",
                               condition_names=("action", "content"))
    torch.manual_seed(1)
    loss_a, logs_a = with_aux.discriminator_loss(batch)
    torch.manual_seed(1)
    loss_b, logs_b = without.discriminator_loss(batch)
    _, _, vl, il = d(batch["frames"], {k: batch[k] for k in ("action", "content")})
    ce = (torch.nn.functional.cross_entropy(vl["action"], batch["action"])
          + torch.nn.functional.cross_entropy(vl["content"], batch["content"])
          + torch.nn.functional.cross_entropy(il["content"],
                                              batch["content"].repeat_interleave(3)))
    assert float(loss_a - loss_b) == pytest.approx(2.0 * float(ce), rel=1e-5)
    assert float(logs_a["d_aux"]) == pytest.approx(float(ce), rel=1e-5)


def test_separate_classifier_supplies_the_auxiliary_logits_outside_the_critics():
    torch.manual_seed(0)
    kw = {k: v for k, v in TINY.items() if k != "disc_channels"}
    g = MoCoGANGenerator(3, 8, 3, n_actions=3, n_contents=2, **kw)
    d = MoCoGANDiscriminator(3, 8, 3, disc_channels=4, n_actions=3, n_contents=2,
                             classify=True, classifier_channels=4).eval()
    assert not d.video_head.classify and not d.image_head.classify  # no heads on the critics
    assert not any(parametrize.is_parametrized(m, "weight")
                   for m in d.classifier.modules() if hasattr(m, "weight"))
    batch = {"frames": torch.rand(4, 3, 3, 8, 8), "action": torch.tensor([0, 1, 2, 0]),
             "content": torch.tensor([1, 0, 1, 1])}
    _, _, vl, il = d(batch["frames"], {k: batch[k] for k in ("action", "content")})
    clip, frame = d.classifier(batch["frames"])
    assert vl["action"].shape == (4, 3) and vl["content"].shape == (4, 2)
    assert il["content"].shape == (12, 2)
    assert torch.equal(vl["action"], clip["action"]) and torch.equal(il["content"],
                                                                     frame["content"])
    # clip content logits: the content head on the mean frame feature (a linear head, so the
    # mean of the frame logits)
    assert torch.allclose(vl["content"], il["content"].view(4, 3, 2).mean(1), atol=1e-6)
    objective = MoCoGANObjective(g, d, aux_weight=1.0, conditions="seen",
                                 condition_names=("action", "content"))
    _, logs = objective.discriminator_loss(batch)
    ce = (torch.nn.functional.cross_entropy(clip["action"], batch["action"])
          + torch.nn.functional.cross_entropy(clip["content"], batch["content"])
          + torch.nn.functional.cross_entropy(frame["content"],
                                              batch["content"].repeat_interleave(3)))
    assert float(logs["d_aux"]) == pytest.approx(float(ce), rel=1e-5)
    # the action head reads every frame in its place: swapping two frames changes the logits
    swapped = batch["frames"][:, [1, 0, 2]]
    assert not torch.allclose(d.classifier(swapped)[0]["action"], clip["action"])


def test_fake_classes_classifier_learns_generated_clips_as_classes_of_their_own():
    """ADC-GAN: the classifier has 2K classes; generated clips of class k are its class K + k
    in the critics' loss, and the generator is pushed towards the real class k."""
    torch.manual_seed(0)
    kw = {k: v for k, v in TINY.items() if k != "disc_channels"}
    g = MoCoGANGenerator(3, 8, 3, n_actions=3, n_contents=2, **kw).eval()
    d = MoCoGANDiscriminator(3, 8, 3, disc_channels=4, n_actions=3, n_contents=2,
                             classify=True, classifier_channels=4, fake_classes=True).eval()
    batch = {"frames": torch.rand(4, 3, 3, 8, 8), "action": torch.tensor([0, 1, 2, 0]),
             "content": torch.tensor([1, 0, 1, 1])}
    clip, frame = d.classifier(batch["frames"])
    assert clip["action"].shape == (4, 6) and clip["content"].shape == (4, 4)
    assert frame["content"].shape == (12, 4)
    objective = MoCoGANObjective(g, d, aux_weight=1.0, conditions="seen",
                                 condition_names=("action", "content"))
    assert objective.fake_classes
    ce = torch.nn.functional.cross_entropy

    def aux(logits, frame_logits, action, content):
        return (ce(logits["action"], action) + ce(logits["content"], content)
                + ce(frame_logits["content"], content.repeat_interleave(3)))

    torch.manual_seed(5)
    _, logs = objective.discriminator_loss(batch)
    torch.manual_seed(5)
    with torch.no_grad():
        fake = g(4, batch["action"], batch["content"])
    fc, ff = d.classifier(fake)
    assert float(logs["d_aux"]) == pytest.approx(float(aux(clip, frame, batch["action"],
                                                           batch["content"])), rel=1e-5)
    assert float(logs["d_aux_fake"]) == pytest.approx(
        float(aux(fc, ff, batch["action"] + 3, batch["content"] + 2)), rel=1e-5)
    torch.manual_seed(5)
    _, glogs = objective.generator_loss(batch)
    assert float(glogs["g_aux"]) == pytest.approx(float(aux(fc, ff, batch["action"],
                                                            batch["content"])), rel=1e-5)


def pairs_batch():
    """Four random 3-frame clips with the (action, content) labels of the masking tests."""
    return {"frames": torch.rand(4, 3, 3, 8, 8), "action": torch.tensor([0, 1, 2, 1]),
            "content": torch.tensor([0, 1, 1, 0])}


def masked_aux(vl, il, action, content, a_bias, c_bias):
    """The auxiliary cross-entropies of clip heads ``vl`` and frame heads ``il`` (3 frames),
    with logit biases added (``-inf`` masks a class)."""
    ce = torch.nn.functional.cross_entropy
    return (ce(vl["action"] + a_bias, action) + ce(vl["content"] + c_bias, content)
            + ce(il["content"] + c_bias.repeat_interleave(3, 0), content.repeat_interleave(3)))


def tiny_pairs_models():
    """A tiny conditional generator and ADC-GAN critic (3 actions, 2 contents, seed 0), and the
    seen pairs ``(action, content)`` of a split that leaves (0, 1) and (2, 0) unseen."""
    torch.manual_seed(0)
    kw = {k: v for k, v in TINY.items() if k != "disc_channels"}
    g = MoCoGANGenerator(3, 8, 3, n_actions=3, n_contents=2, **kw).eval()
    d = MoCoGANDiscriminator(3, 8, 3, disc_channels=4, n_actions=3, n_contents=2,
                             classify=True, classifier_channels=4, fake_classes=True).eval()
    return g, d, torch.tensor([[0, 0], [1, 0], [1, 1], [2, 1]])


def test_critic_pairs_keep_unseen_pairs_out_of_the_adversarial_terms_only():
    """With ``critic_pairs`` the critics' and the generator's adversarial terms average over the
    generated clips of those pairs, the auxiliary terms over every generated clip."""
    g, d, seen = tiny_pairs_models()
    objective = MoCoGANObjective(g, d, aux_weight=1.0, conditions="all",
                                 condition_names=("action", "content"), critic_pairs=seen)
    batch = {"frames": torch.rand(8, 3, 3, 8, 8), "action": torch.tensor([0, 1, 2, 1] * 2),
             "content": torch.tensor([0, 1, 1, 0] * 2)}
    labels = {"action": batch["action"], "content": batch["content"]}
    torch.manual_seed(5)
    _, logs = objective.discriminator_loss(batch)
    torch.manual_seed(5)
    a, c = torch.randint(0, 3, (8,)), torch.randint(0, 2, (8,))
    with torch.no_grad():
        fake = g(8, a, c)
    keep = torch.tensor([[int(x), int(y)] in seen.tolist() for x, y in zip(a, c)])
    assert keep.any() and not keep.all()  # the drawn pairs include seen and unseen ones
    assert torch.equal(objective.adversarial_mask({"action": a, "content": c}), keep)
    rv, ri, _, _ = d(batch["frames"], labels)
    fv, fi, fvl, fil = d(fake, {"action": a, "content": c})
    relu = torch.nn.functional.relu
    assert float(logs["d_video"]) == pytest.approx(
        float(relu(1 - rv).mean() + relu(1 + fv[keep]).mean()), rel=1e-5)
    assert float(logs["d_image"]) == pytest.approx(
        float(relu(1 - ri).mean() + relu(1 + fi[keep]).mean()), rel=1e-5)
    ce = torch.nn.functional.cross_entropy
    aux_fake = (ce(fvl["action"], a + 3) + ce(fvl["content"], c + 2)
                + ce(fil["content"], (c + 2).repeat_interleave(3)))
    assert float(logs["d_aux_fake"]) == pytest.approx(float(aux_fake), rel=1e-5)  # all clips
    torch.manual_seed(5)
    _, glogs = objective.generator_loss(batch)
    assert float(glogs["g_adv"]) == pytest.approx(float(-fv[keep].mean() - fi[keep].mean()),
                                                  rel=1e-5)
    every = MoCoGANObjective(g, d, aux_weight=1.0, conditions="all",
                             condition_names=("action", "content"))
    torch.manual_seed(5)
    _, glogs_all = every.generator_loss(batch)
    assert float(glogs_all["g_adv"]) == pytest.approx(float(-fv.mean() - fi.mean()), rel=1e-5)
    assert float(glogs_all["g_aux"]) == pytest.approx(float(glogs["g_aux"]), rel=1e-6)


def test_classifier_pairs_mask_the_other_conditions_unseen_classes_in_the_critics_loss():
    """With ``classifier_pairs`` the classifier learns a clip's action among the actions seen
    with its content and its content among those seen with its action (real and generated
    clips; the generated classes of ADC-GAN all stay); the generator's loss keeps all
    logits."""
    g, d, seen = tiny_pairs_models()
    objective = MoCoGANObjective(g, d, aux_weight=1.0, conditions="all",
                                 condition_names=("action", "content"), classifier_pairs=seen)
    plain = MoCoGANObjective(g, d, aux_weight=1.0, conditions="all",
                             condition_names=("action", "content"))
    batch = pairs_batch()
    labels = {"action": batch["action"], "content": batch["content"]}
    inf = float("-inf")
    # content 0 comes with actions 0, 1; content 1 with 1, 2; action 1 with both contents
    action_bias = torch.tensor([[0, 0, inf], [inf, 0, 0]])[batch["content"]]
    content_bias = torch.tensor([[0, inf], [0, 0], [inf, 0]])[batch["action"]]
    pad = torch.zeros(4, 3), torch.zeros(4, 2)
    torch.manual_seed(5)
    loss, logs = objective.discriminator_loss(batch)
    assert torch.isfinite(loss)
    _, _, rvl, ril = d(batch["frames"], labels)
    assert float(logs["d_aux"]) == pytest.approx(float(masked_aux(
        rvl, ril, batch["action"], batch["content"], torch.cat([action_bias, pad[0]], 1),
        torch.cat([content_bias, pad[1]], 1))), rel=1e-5)
    torch.manual_seed(5)
    a, c = torch.randint(0, 3, (4,)), torch.randint(0, 2, (4,))
    with torch.no_grad():
        fake = g(4, a, c)
    _, _, fvl, fil = d(fake, {"action": a, "content": c})
    fa = torch.cat([torch.tensor([[0, 0, inf], [inf, 0, 0]])[c], pad[0]], 1)
    fc = torch.cat([torch.tensor([[0, inf], [0, 0], [inf, 0]])[a], pad[1]], 1)
    assert float(logs["d_aux_fake"]) == pytest.approx(
        float(masked_aux(fvl, fil, a + 3, c + 2, fa, fc)), rel=1e-5)
    torch.manual_seed(5)
    _, glogs = objective.generator_loss(batch)
    torch.manual_seed(5)
    _, glogs_plain = plain.generator_loss(batch)
    assert float(glogs["g_aux"]) == float(glogs_plain["g_aux"])
    loss.backward()  # the masked logits give finite gradients
    assert all(torch.isfinite(p.grad).all() for p in d.classifier.parameters()
               if p.grad is not None)


@pytest.mark.parametrize("heads", [("content",), ("action",)])
def test_classifier_heads_mask_only_the_named_heads(heads):
    """With ``classifier_heads=("content",)`` the action head's cross-entropy is the unmasked
    one and the content heads' (clip and frame) the masked one; ``("action",)`` the reverse;
    real and generated clips alike."""
    g, d, seen = tiny_pairs_models()
    objective = MoCoGANObjective(g, d, aux_weight=1.0, conditions="all",
                                 condition_names=("action", "content"), classifier_pairs=seen,
                                 classifier_heads=heads)
    batch = pairs_batch()
    labels = {"action": batch["action"], "content": batch["content"]}
    inf = float("-inf")
    pad = torch.zeros(4, 3), torch.zeros(4, 2)

    def biases(action, content):  # content 0 comes with actions 0, 1; content 1 with 1, 2
        a_bias = torch.cat([torch.tensor([[0, 0, inf], [inf, 0, 0]])[content], pad[0]], 1)
        c_bias = torch.cat([torch.tensor([[0, inf], [0, 0], [inf, 0]])[action], pad[1]], 1)
        return (a_bias if "action" in heads else torch.zeros_like(a_bias),
                c_bias if "content" in heads else torch.zeros_like(c_bias))

    torch.manual_seed(5)
    loss, logs = objective.discriminator_loss(batch)
    _, _, rvl, ril = d(batch["frames"], labels)
    a_bias, c_bias = biases(batch["action"], batch["content"])
    assert float(logs["d_aux"]) == pytest.approx(float(masked_aux(
        rvl, ril, batch["action"], batch["content"], a_bias, c_bias)), rel=1e-5)
    # on this batch the mask changes both heads' losses, so the check above tells them apart
    full = MoCoGANObjective(g, d, aux_weight=1.0, conditions="all",
                            condition_names=("action", "content"),
                            classifier_pairs=seen).allowed_classes(labels)
    for name, logits in rvl.items():
        keep = torch.cat([full[name], torch.ones_like(full[name])], 1)
        ce = torch.nn.functional.cross_entropy
        assert float(ce(logits.masked_fill(~keep, inf), labels[name])) != pytest.approx(
            float(ce(logits, labels[name])), rel=1e-3)
    torch.manual_seed(5)
    a, c = torch.randint(0, 3, (4,)), torch.randint(0, 2, (4,))
    with torch.no_grad():
        fake = g(4, a, c)
    _, _, fvl, fil = d(fake, {"action": a, "content": c})
    fa, fc = biases(a, c)
    assert float(logs["d_aux_fake"]) == pytest.approx(
        float(masked_aux(fvl, fil, a + 3, c + 2, fa, fc)), rel=1e-5)
    allowed = objective.allowed_classes(labels)
    assert (allowed["action"] is None) == ("action" not in heads)
    assert (allowed["content"] is None) == ("content" not in heads)
    with pytest.raises(InputError, match="classifier heads"):
        MoCoGANObjective(g, d, aux_weight=1.0, conditions="all",
                         condition_names=("action", "content"), classifier_pairs=seen,
                         classifier_heads=("motion",))


def test_random_grey_action_input_is_a_per_clip_convex_grey():
    """``random_grey``: the three colour channels become one convex combination of them, with
    weights drawn per clip (other channels kept); the classifier's action head reads it, the
    content heads the clips as they are."""
    from pyro_videossm.nn.gan_blocks import ConditionClassifier, random_grey

    clips = torch.rand(5, 3, 4, 8, 8)  # a 4th (depth) channel
    torch.manual_seed(3)
    grey = random_grey(clips)
    torch.manual_seed(3)
    w = -torch.log(torch.rand(5, 1, 3, 1, 1))
    w = w / w.sum(2, keepdim=True)
    expected = (clips[:, :, :3] * w).sum(2)
    for c in range(3):
        assert torch.allclose(grey[:, :, c], expected, atol=1e-6)
    assert torch.equal(grey[:, :, 3], clips[:, :, 3])
    assert not torch.allclose(w[0], w[1])  # per clip
    flat = clips[:, :, :1].expand(-1, -1, 3, -1, -1)  # equal channels: grey is that channel
    assert torch.allclose(random_grey(flat), flat, atol=1e-6)
    torch.manual_seed(0)
    plain = ConditionClassifier(4, 8, 3, n_actions=3, n_contents=2, channels=4)
    torch.manual_seed(0)
    blind = ConditionClassifier(4, 8, 3, n_actions=3, n_contents=2, channels=4,
                                action_input="random-grey")
    torch.manual_seed(3)
    clip_logits, frame_logits = blind(clips)
    plain_clip, plain_frame = plain(clips)
    assert torch.equal(clip_logits["content"], plain_clip["content"])
    assert torch.equal(frame_logits["content"], plain_frame["content"])
    assert torch.allclose(clip_logits["action"], plain(grey)[0]["action"], atol=1e-6)
    with pytest.raises(InputError, match="action input"):
        ConditionClassifier(3, 8, 3, n_actions=3, n_contents=2, action_input="grey")


def test_cmocogan_recipe_passes_the_training_pairs_to_the_critics(clips):
    from pyro_videossm.experiments.video_gan_recipes import build_gan, load_gan_data

    data = load_gan_data(clips, conditions=("motion", "top"))
    recipe = RECIPES["cmocogan"]
    former = dict(critic_pairs="all", classifier_pairs="all", classifier_action_input="colour")
    _, _, plain = build_gan("cmocogan", recipe.make_options(**TINY, **former), data.meta)
    assert plain.critic_pairs is None and plain.classifier_pairs is None
    _, _, seen = build_gan("cmocogan", recipe.make_options(**TINY, critic_pairs="seen",
                                                           classifier_pairs="seen"), data.meta)
    expected = torch.zeros(len(MOTIONS), len(STATIC_FACTORS["top"]), dtype=torch.bool)
    for m, t in data.meta["seen_pairs"]:
        expected[m, t] = True
    assert torch.equal(seen.critic_pairs, expected)
    assert torch.equal(seen.classifier_pairs, expected)
    assert seen.critic_pairs[0, 0] and not seen.critic_pairs[0, 1:].any()  # fixture: unseen
    assert seen.classifier_heads == ("action", "content")
    _, _, content = build_gan("cmocogan", recipe.make_options(
        **TINY, critic_pairs="all", classifier_pairs="content"), data.meta)
    assert content.critic_pairs is None and torch.equal(content.classifier_pairs, expected)
    assert content.classifier_heads == ("content",)
    # the default: the critics on the training pairs, the content heads masked, a grey action
    _, blind, default = build_gan("cmocogan", recipe.make_options(**TINY), data.meta)
    assert blind.classifier.action_input == "random-grey"
    assert blind.config["action_input"] == "random-grey"
    assert torch.equal(default.critic_pairs, expected)
    assert torch.equal(default.classifier_pairs, expected)
    assert default.classifier_heads == ("content",)
    _, _, baseline = build_gan("cmocogan", recipe.make_options(**TINY, no_disentangling=True),
                               data.meta)
    assert baseline.critic_pairs is None and baseline.classifier_pairs is None


def test_conditional_generation_respects_the_label_set(models):
    ds = generate_clips(models["cmocogan"], 5, action="walk_front", content="green")
    assert ds["frames"].dims == ("clip", "time", "channel", "y", "x")
    assert ds["frames"].shape == (5, 3, 3, 8, 8)
    assert (ds["motion"].values == 0).all() and (ds["top"].values == 1).all()
    assert (ds["unseen"].values == 1).all()  # motion 0 with top 1 was left out of training
    assert ds["motion"].attrs["flag_meanings"].split() == list(MOTIONS)
    assert (generate_clips(models["cmocogan"], 2, action=0, content="red")["unseen"] == 0).all()
    free = generate_clips(models["cmocogan"], 40, seed=1)
    assert set(free["motion"].values) <= set(range(9)) and len(set(free["top"].values)) > 1
    with pytest.raises(InputError, match="valid: red, green, blue, yellow, purple, cyan"):
        generate_clips(models["cmocogan"], 2, content="magenta")
    with pytest.raises(InputError, match="unconditional"):
        generate_clips(models["mocogan"], 2, action="walk_front")
    assert len(STATIC_FACTORS["top"]) == 6


def test_depth_models_write_depth_in_the_training_units(models, clips):
    real = xr.open_dataset(clips)
    lo, hi = float(real["depth"].min()), float(real["depth"].max())
    for kind in ("dcvgan", "mocogan"):
        ds = generate_clips(models[kind], 3)
        assert ds["frames"].shape == (3, 3, 3, 8, 8)
        assert ds["depth"].dims == ("clip", "time", "y", "x")
        assert ds["depth"].attrs["units"] == "m"
        assert lo <= float(ds["depth"].min()) and float(ds["depth"].max()) <= hi
        assert list(ds["channel"].values) == ["red", "green", "blue"]
    kind, gen, _ = load_video_gan(models["dcvgan"])
    assert kind == "dcvgan" and isinstance(gen, DCVGANGenerator)


def test_resume_of_a_recipe_is_bit_exact(clips, tmp_path):
    recipe = RECIPES["cmocogan"]
    options = recipe.make_options(**TINY)
    straight, resumed, ckpt = tmp_path / "a.pt", tmp_path / "b.pt", tmp_path / "ck.pt"
    recipe.fit(TrainingRun(clips, straight, epochs=2, batch_size=16, progress=False), options)
    recipe.fit(TrainingRun(clips, None, epochs=1, batch_size=16, checkpoint=ckpt,
                           progress=False), options)
    recipe.fit(TrainingRun(clips, resumed, epochs=2, batch_size=16, checkpoint=ckpt,
                           resume=True, progress=False), options)
    a = torch.load(straight, weights_only=True)["state_dict"]
    b = torch.load(resumed, weights_only=True)["state_dict"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _one_line(argv, capsys):
    capsys.readouterr()
    status = main([str(a) for a in argv])
    err = capsys.readouterr().err.strip().splitlines()
    return status, err


@pytest.mark.parametrize("extra, message", [
    (["-n", "0"], "-n must be >= 1"),
    (["--action", "dance"], "valid: walk_front, walk_left"),
    (["--content", "9"], "valid: red, green"),
])
def test_generate_bad_input_is_one_line(models, tmp_path, capsys, extra, message):
    out = tmp_path / "g.nc"
    status, err = _one_line(["generate", "--model", models["cmocogan"], "-o", out, *extra],
                            capsys)
    assert status == 2 and len(err) == 1 and message in err[0], err
    assert not out.exists()


def test_generate_refuses_another_kind_of_model(models, clips, tmp_path, capsys):
    judge = tmp_path / "judge.pt"
    assert main(["train", "judge", str(clips), "-o", str(judge), "--epochs", "1",
                 "--conv-channels", "2", "--hidden-dim", "4", "--no-progress"]) == 0
    status, err = _one_line(["generate", "--model", judge, "-o", tmp_path / "g.nc"], capsys)
    assert status == 2 and len(err) == 1 and "not a video generator" in err[0]


def test_generate_writes_netcdf_gif_and_mp4(models, tmp_path, capsys):
    out, gif, mp4 = tmp_path / "g.nc", tmp_path / "g.gif", tmp_path / "g.mp4"
    assert main(["generate", "--model", str(models["dcvgan"]), "-n", "3", "-o", str(out),
                 "--gif", str(gif)]) == 0
    assert xr.open_dataset(out).sizes["clip"] == 3 and gif.stat().st_size > 0
    assert main(["generate", "--model", str(models["cmocogan"]), "-n", "2", "--action",
                 "slash_left", "-o", str(out), "--mp4", str(mp4)]) == 0
    assert mp4.read_bytes()[4:8] == b"ftyp"


def test_minibatch_std_is_the_mean_batch_standard_deviation_as_one_more_channel():
    from pyro_videossm.nn.gan_blocks import ImageCritic, VideoCritic, minibatch_std

    h = torch.tensor([[[[0.0, 1.0]]], [[[2.0, 5.0]]]])  # (N=2, C=1, 1, 2)
    out = minibatch_std(h)
    # per position the population std of (0, 2) is 1, of (1, 5) is 2: mean 1.5
    assert out.shape == (2, 2, 1, 2) and torch.equal(out[:, :1], h)
    assert torch.allclose(out[:, 1], torch.full((2, 1, 2), 1.5))
    assert float(minibatch_std(h[:1])[:, 1].abs().max()) == 0.0  # one sample: 0
    assert float(minibatch_std(h[[0, 0]])[:, 1].abs().max()) == 0.0  # a collapsed batch: 0
    # the critics: off leaves the layers as before; on, the last convolution reads one more
    # channel, and a batch of one repeated clip is scored differently from a varied one only
    # through that channel
    plain = ImageCritic(4, 16, 4).eval()  # eval: no power iteration between the calls
    with_std = ImageCritic(4, 16, 4, minibatch_std=True).eval()
    assert plain.state_dict().keys() == with_std.state_dict().keys()
    assert plain.net[-2].in_channels + 1 == with_std.net[-2].in_channels
    torch.manual_seed(0)
    x = torch.rand(3, 4, 16, 16)
    same = x[[0, 0, 0]]
    assert torch.allclose(plain(same)[0], plain(x)[0])
    assert not torch.allclose(with_std(same)[0], with_std(x)[0])
    video = VideoCritic(4, 16, 8, 4, minibatch_std=True)
    assert video(torch.rand(2, 8, 4, 16, 16)).shape == (2, video.features)


def test_dcvgan_with_colour_encoder_and_minibatch_std_trains_saves_and_generates(clips,
                                                                                tmp_path):
    recipe = RECIPES["dcvgan"]
    out = tmp_path / "dcv.pt"
    recipe.fit(TrainingRun(clips, out, epochs=1, batch_size=8, progress=False),
               recipe.make_options(**TINY, translator_l1=1.0, colour_encoder=True,
                                   minibatch_std=True))
    kind, gen, _ = load_video_gan(out)
    assert kind == "dcvgan" and gen.encoder is not None
    assert generate_clips(out, 2)["depth"].shape == (2, 3, 8, 8)
