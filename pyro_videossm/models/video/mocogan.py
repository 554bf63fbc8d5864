"""MoCoGAN (Tulyakov et al. 2018): a content code plus recurrent motion codes, with image and
video critics; the conditional variant takes an action and a content class.

Generator (:class:`MoCoGANGenerator`): one content code ``z_c ~ N(0, I)`` per clip, motion
codes ``m_1..m_T`` from a GRU driven by noise (:class:`~pyro_videossm.nn.gan_blocks.MotionRNN`),
and a frame generator applied to ``[z_c, m_t]`` for every frame: clips ``(N, T, C, S, S)`` in
(0, 1). Conditions (``n_actions``, ``n_contents`` > 0) are learned embeddings routed by
``routing``:

* ``separate`` (the disentangled latent of the conditional MoCoGAN): the action embedding
  drives only the motion GRU, the content embedding only the frame generator, so a motion
  code never sees the content and an unseen (action, content) pair is a new combination of
  two inputs each seen in training;
* ``joint`` (the plain conditional baseline): both embeddings feed both paths.

Critics (:class:`MoCoGANDiscriminator`): an image critic on every frame and a video critic on
the clip (:class:`~pyro_videossm.nn.gan_blocks.ImageCritic`,
:class:`~pyro_videossm.nn.gan_blocks.VideoCritic`, spectral normalisation), each with
projection terms for the conditions (image: content; video: action and content) and, with
``classify``, auxiliary classifiers (image: content; video: action and content): heads on the
critics' features, or with ``classifier_channels > 0`` a separate
:class:`~pyro_videossm.nn.gan_blocks.ConditionClassifier` of that width (trained by the same
optimiser on real clips; the spectrally normalised critics learned the classes too slowly;
with ``fake_classes`` it also learns the generated clips of each class as classes of their
own, so that the generator cannot satisfy it with clips off the real clips' manifold; with
``action_input="random-grey"`` its action head reads the clips in a random grey, so that it
cannot learn which colours come with which actions).

:class:`MoCoGANObjective` is the :class:`~pyro_videossm.infer.gan_trainer.GANObjective`:
the adversarial loss of both critics (summed), plus with ``aux_weight > 0`` the
auxiliary cross-entropies: the critics' on real clips and their labels, the generator's on
generated clips and the conditions they were generated with. ``conditions="all"`` samples
the generated clips' conditions uniformly over every (action, content) pair, seen in training
or not (the classifiers, trained on real clips, then teach the generator the unseen pairs);
``"seen"`` reuses the labels of the real batch. With ``critic_pairs`` (the training pairs,
``(P, 2)`` of (action, content)), the adversarial terms of both critics and of the generator
count only the generated clips of those pairs, the auxiliary terms every clip: no real clip
shows an unseen pair, so critics that saw generated clips of unseen pairs could learn that an
unseen *combination* is generated, and push the generator to draw such a pair as a seen one
(e.g. in a colour that goes with that motion in training). With ``classifier_pairs`` (the
training pairs) the classifier, in the critics' loss, learns the action of a clip among the
actions that form a training pair with the clip's content, and its content among those that
do with its action (the other classes are masked out of its softmax, for real and generated
clips alike); the generator's loss uses all its logits. A classifier of real clips learns
``p(action | clip)``, and a clip's colour tells which actions never come with it in
training, so it learns to call an unseen pair unlikely whatever the motion drawn; with the
mask that prior is in the softmax's support, not in the logits (logit adjustment for the
pairs' prior), so the logits the generator is trained on carry the evidence of the motion
(and of the colour) alone. ``classifier_heads`` says which heads the mask applies to (both by
default; ``("content",)``: only the content heads, the action head's softmax running over
all actions, so that it still checks the motion of unseen pairs). Batches are
``{"frames" (N, T, C, S, S) (float in [0, 1] or uint8 counts), "action" (N,), "content"
(N,)}`` (labels only when conditional).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pyro_videossm.errors import InputError
from pyro_videossm.infer.gan_trainer import (
    GANObjective,
    discriminator_adversarial_loss,
    generator_adversarial_loss,
)
from pyro_videossm.nn.gan_blocks import (
    ConditionClassifier,
    CriticHead,
    FrameGenerator,
    ImageCritic,
    MotionRNN,
    VideoCritic,
)

ROUTINGS = ("separate", "joint")
CONDITION_SAMPLING = ("all", "seen")
#: The classifier heads ``classifier_pairs`` can mask.
CLASSIFIER_HEADS = ("action", "content")


def as_float_clips(x: Tensor) -> Tensor:
    """uint8 counts (0..255) -> float in [0, 1]; float clips unchanged."""
    return x.float() / 255.0 if x.dtype == torch.uint8 else x


class MoCoGANGenerator(nn.Module):
    """Clips ``(N, T, C, S, S)`` from noise (module doc); ``forward(n, action, content)``.

    ``action``/``content``: class indices ``(n,)`` (required when the generator has
    that condition, refused otherwise).
    """

    def __init__(self, channels: int = 3, size: int = 32, frames: int = 8, *,
                 content_dim: int = 32, motion_dim: int = 16, noise_dim: int = 8,
                 gen_channels: int = 16, n_actions: int = 0, n_contents: int = 0,
                 embed_dim: int = 16, routing: str = "separate") -> None:
        super().__init__()
        if routing not in ROUTINGS:
            raise InputError(f"unknown routing {routing!r} (known: {', '.join(ROUTINGS)})")
        if frames < 2:
            raise InputError(f"a clip needs at least 2 frames, got {frames}")
        self.config: dict[str, Any] = dict(
            channels=channels, size=size, frames=frames, content_dim=content_dim,
            motion_dim=motion_dim, noise_dim=noise_dim, gen_channels=gen_channels,
            n_actions=n_actions, n_contents=n_contents, embed_dim=embed_dim, routing=routing)
        self.channels, self.size, self.frames = channels, size, frames
        self.content_dim, self.noise_dim = content_dim, noise_dim
        self.n_actions, self.n_contents, self.routing = n_actions, n_contents, routing
        self.action_embed = nn.Embedding(n_actions, embed_dim) if n_actions else None
        self.content_embed = nn.Embedding(n_contents, embed_dim) if n_contents else None
        a = embed_dim if n_actions else 0
        c = embed_dim if n_contents else 0
        motion_cond, frame_cond = (a, c) if routing == "separate" else (a + c, a + c)
        self.motion = MotionRNN(noise_dim, motion_dim, motion_cond)
        self.frame = FrameGenerator(content_dim + motion_dim + frame_cond, channels, size,
                                    gen_channels)

    def _conditions(self, n: int, action: Tensor | None, content: Tensor | None
                    ) -> tuple[Tensor | None, Tensor | None]:
        parts = {}
        for name, labels, embed in (("action", action, self.action_embed),
                                    ("content", content, self.content_embed)):
            if embed is None and labels is not None:
                raise InputError(f"this generator has no {name} condition")
            if embed is not None:
                if labels is None or labels.shape != (n,):
                    raise InputError(f"this generator needs {n} {name} labels")
                parts[name] = embed(labels)
        if self.routing == "joint" and parts:
            joint = torch.cat(list(parts.values()), -1)
            return joint, joint
        return parts.get("action"), parts.get("content")

    def forward(self, n: int, action: Tensor | None = None, content: Tensor | None = None
                ) -> Tensor:
        device = self.frame.project[0].weight.device
        motion_cond, frame_cond = self._conditions(n, action, content)
        t = self.frames
        codes = self.motion(torch.randn(n, t, self.noise_dim, device=device), motion_cond)
        z = torch.randn(n, self.content_dim, device=device)
        parts = [z[:, None].expand(n, t, -1), codes]
        if frame_cond is not None:
            parts.append(frame_cond[:, None].expand(n, t, -1))
        latent = torch.cat(parts, -1).reshape(n * t, -1)
        return self.frame(latent).reshape(n, t, self.channels, self.size, self.size)


class MoCoGANDiscriminator(nn.Module):
    """The image and video critics (module doc).

    ``forward(clips, labels)`` -> ``(video score (N,), image scores (N, T), video logits,
    image logits (N * T, K))``; ``labels``: ``{"action": (N,), "content": (N,)}`` as the
    critic's conditions need.
    """

    def __init__(self, channels: int = 3, size: int = 32, frames: int = 8, *,
                 disc_channels: int = 16, n_actions: int = 0, n_contents: int = 0,
                 classify: bool = False, classifier_channels: int = 0,
                 fake_classes: bool = False, action_input: str = "colour",
                 minibatch_std: bool = False) -> None:
        super().__init__()
        self.config = dict(channels=channels, size=size, frames=frames,
                           disc_channels=disc_channels, n_actions=n_actions,
                           n_contents=n_contents, classify=classify,
                           classifier_channels=classifier_channels, fake_classes=fake_classes,
                           action_input=action_input)
        if minibatch_std:  # only when on: model files of before keep their config
            self.config["minibatch_std"] = True
        self.image = ImageCritic(channels, size, disc_channels, minibatch_std)
        self.video = VideoCritic(channels, size, frames, disc_channels, minibatch_std)
        video_conditions = {k: v for k, v in (("action", n_actions), ("content", n_contents))
                            if v}
        image_conditions = {"content": n_contents} if n_contents else {}
        separate = classify and classifier_channels > 0
        heads = classify and not separate
        self.image_head = CriticHead(self.image.features, image_conditions,
                                     tuple(image_conditions) if heads else ())
        self.video_head = CriticHead(self.video.features, video_conditions,
                                     tuple(video_conditions) if heads else ())
        self.classifier = (ConditionClassifier(channels, size, frames, n_actions, n_contents,
                                               classifier_channels, fake_classes=fake_classes,
                                               action_input=action_input)
                           if separate else None)

    def forward(self, clips: Tensor, labels: Mapping[str, Tensor] | None = None
                ) -> tuple[Tensor, Tensor, dict[str, Tensor], dict[str, Tensor]]:
        n, t = clips.shape[:2]
        labels = dict(labels or {})
        video, video_logits = self.video_head(self.video(clips), labels)
        frame_labels = {k: v.repeat_interleave(t) for k, v in labels.items()}
        image, image_logits = self.image_head(self.image(clips.flatten(0, 1)), frame_labels)
        if self.classifier is not None:
            video_logits, image_logits = self.classifier(clips)
        return video, image.reshape(n, t), video_logits, image_logits


def _cross_entropies(video_logits: Mapping[str, Tensor], image_logits: Mapping[str, Tensor],
                     labels: Mapping[str, Tensor], frames: int,
                     allowed: Mapping[str, Tensor | None] | None = None) -> Tensor:
    """Summed cross-entropies of the clip and frame logits; ``allowed``: ``{name: (N, K)
    bool}``, the classes each clip's softmax runs over (all where absent or ``None``)."""
    allowed = allowed or {}

    def masked(logits: Tensor, name: str, repeat: int) -> Tensor:
        if allowed.get(name) is None:
            return logits
        keep = allowed[name].repeat_interleave(repeat, 0)
        if keep.shape[1] < logits.shape[1]:  # the generated classes of ADC-GAN: all allowed
            pad = torch.ones(keep.shape[0], logits.shape[1] - keep.shape[1], dtype=torch.bool,
                             device=keep.device)
            keep = torch.cat([keep, pad], 1)
        return logits.masked_fill(~keep, float("-inf"))

    total = 0.0
    for name, logits in video_logits.items():
        total = total + F.cross_entropy(masked(logits, name, 1), labels[name])
    for name, logits in image_logits.items():
        total = total + F.cross_entropy(masked(logits, name, frames),
                                        labels[name].repeat_interleave(frames))
    return total


def pair_table(pairs: Tensor, n_actions: int, n_contents: int) -> Tensor:
    """``(A, K)`` bool: True at the (action, content) ``pairs`` ``(P, 2)``."""
    pairs = torch.as_tensor(pairs, dtype=torch.long)
    if pairs.ndim != 2 or pairs.shape[1] != 2 or len(pairs) == 0:
        raise InputError(f"(action, content) pairs must be (P, 2), got {tuple(pairs.shape)}")
    table = torch.zeros(n_actions, n_contents, dtype=torch.bool)
    table[pairs[:, 0], pairs[:, 1]] = True
    return table


class MoCoGANObjective(GANObjective):
    """Adversarial losses of both critics + auxiliary classification (module doc).

    :param aux_weight: weight of the auxiliary cross-entropies (critic and generator); needs a
        critic with ``classify``.
    :param conditions: ``all`` or ``seen`` (module doc).
    :param condition_names: the batch keys of the conditions (``action``, ``content``).
    :param critic_pairs: ``(P, 2)`` (action, content) pairs whose generated clips the
        adversarial terms count (module doc); ``None``: every generated clip.
    :param classifier_pairs: ``(P, 2)`` training pairs; the classifier then learns each
        condition of a clip among the classes that form such a pair with its other condition
        (module doc); ``None``: among all classes.
    :param classifier_heads: the heads ``classifier_pairs`` masks (``action``, ``content``
        or both, the default); the others learn among all classes.
    """

    def __init__(self, generator: nn.Module, discriminator: MoCoGANDiscriminator,
                 loss: str = "hinge", *, aux_weight: float = 0.0, conditions: str = "seen",
                 condition_names: tuple[str, ...] = (),
                 critic_pairs: Tensor | None = None,
                 classifier_pairs: Tensor | None = None,
                 classifier_heads: tuple[str, ...] = CLASSIFIER_HEADS) -> None:
        super().__init__(generator, discriminator, loss)
        unknown = sorted(set(classifier_heads) - set(CLASSIFIER_HEADS))
        if unknown or not classifier_heads:
            raise InputError(f"classifier heads must be some of {', '.join(CLASSIFIER_HEADS)}, "
                             f"got {', '.join(classifier_heads) or 'none'}")
        self.classifier_heads = tuple(h for h in CLASSIFIER_HEADS if h in classifier_heads)
        if conditions not in CONDITION_SAMPLING:
            raise InputError(f"unknown condition sampling {conditions!r} (known: "
                             f"{', '.join(CONDITION_SAMPLING)})")
        self.aux_weight = float(aux_weight)
        self.conditions = conditions
        self.condition_names = tuple(condition_names)
        sizes = {"action": getattr(generator, "n_actions", 0),
                 "content": getattr(generator, "n_contents", 0)}
        self.n_classes = {k: sizes[k] for k in self.condition_names}
        classifier = getattr(discriminator, "classifier", None)
        self.fake_classes = bool(getattr(classifier, "fake_classes", False))
        self.critic_pairs = self.classifier_pairs = None
        for attr, pairs in (("critic_pairs", critic_pairs),
                            ("classifier_pairs", classifier_pairs)):
            if pairs is None:
                continue
            if self.condition_names != ("action", "content"):
                raise InputError(f"{attr} needs an action and a content condition")
            setattr(self, attr, pair_table(pairs, self.n_classes["action"],
                                           self.n_classes["content"]))

    def allowed_classes(self, labels: Mapping[str, Tensor]
                        ) -> dict[str, Tensor | None] | None:
        """The classes the classifier's softmax runs over for clips of ``labels`` (real or
        generated, in the critics' loss): the actions that form a training pair with the
        clip's content, the contents that do with its action, ``{"action": (N, A), "content":
        (N, K)}`` bool, ``None`` for a head not in ``classifier_heads`` (all its classes);
        ``None`` without ``classifier_pairs`` (all classes of every head)."""
        if self.classifier_pairs is None:
            return None
        table = self.classifier_pairs.to(labels["action"].device)
        allowed = {"action": table[:, labels["content"]].T, "content": table[labels["action"]]}
        return {k: v if k in self.classifier_heads else None for k, v in allowed.items()}

    def adversarial_mask(self, labels: Mapping[str, Tensor]) -> Tensor | None:
        """``(N,)`` bool: the generated clips the adversarial terms count (``None``: all, also
        for a batch, rare, that has none of those pairs)."""
        if self.critic_pairs is None:
            return None
        table = self.critic_pairs.to(labels["action"].device)
        keep = table[labels["action"], labels["content"]]
        return keep if bool(keep.any()) else None

    def real(self, batch: Mapping[str, Tensor]) -> Tensor:
        return as_float_clips(batch["frames"])

    def fake_labels(self, batch: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """The conditions of the clips generated for ``batch``."""
        if self.conditions == "seen":
            return {k: batch[k] for k in self.condition_names}
        n = batch["frames"].shape[0]
        device = batch["frames"].device
        return {k: torch.randint(0, self.n_classes[k], (n,), device=device)
                for k in self.condition_names}

    def generate_with(self, generator: nn.Module, labels: Mapping[str, Tensor], n: int
                      ) -> Tensor:
        return generator(n, labels.get("action"), labels.get("content"))

    def generate(self, generator: nn.Module, batch: Mapping[str, Tensor]) -> Tensor:
        return self.generate_with(generator, self.fake_labels(batch), batch["frames"].shape[0])

    def evaluate(self, generator: nn.Module, batch: Mapping[str, Tensor]) -> Tensor:
        """Validation: the mean distance of generated to real frame means (a cheap check)."""
        fake = self.generate(generator, batch)
        return (fake.mean(dim=(0, 1)) - self.real(batch).mean(dim=(0, 1))).abs().mean()

    def discriminator_loss(self, batch: Mapping[str, Tensor]
                           ) -> tuple[Tensor, dict[str, Tensor]]:
        labels = self.fake_labels(batch)
        n = batch["frames"].shape[0]
        with torch.no_grad():
            fake = self.generate_with(self.generator, labels, n)
        real = self.real(batch)
        real_labels = {k: batch[k] for k in self.condition_names}
        rv, ri, rvl, ril = self.discriminator(real, real_labels)
        fv, fi, fvl, fil = self.discriminator(fake, labels)
        keep = self.adversarial_mask(labels)
        if keep is not None:
            fv, fi = fv[keep], fi[keep]
        video = discriminator_adversarial_loss(rv, fv, self.loss)
        image = discriminator_adversarial_loss(ri, fi, self.loss)
        loss = video + image
        logs = {"d_video": video.detach(), "d_image": image.detach()}
        if self.aux_weight > 0:
            aux = _cross_entropies(rvl, ril, real_labels, real.shape[1],
                                   self.allowed_classes(real_labels))
            loss = loss + self.aux_weight * aux
            logs["d_aux"] = aux.detach()
            if self.fake_classes:  # generated clips of class k are class K + k
                shifted = {k: v + self.n_classes[k] for k, v in labels.items()}
                aux_fake = _cross_entropies(fvl, fil, shifted, fake.shape[1],
                                            self.allowed_classes(labels))
                loss = loss + self.aux_weight * aux_fake
                logs["d_aux_fake"] = aux_fake.detach()
        return loss, logs

    def generator_loss(self, batch: Mapping[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        labels = self.fake_labels(batch)
        fake = self.generate_with(self.generator, labels, batch["frames"].shape[0])
        fv, fi, fvl, fil = self.discriminator(fake, labels)
        keep = self.adversarial_mask(labels)
        if keep is not None:
            fv, fi = fv[keep], fi[keep]
        adv = (generator_adversarial_loss(fv, self.loss)
               + generator_adversarial_loss(fi, self.loss))
        loss, logs = adv, {"g_adv": adv.detach()}
        if self.aux_weight > 0:
            aux = _cross_entropies(fvl, fil, labels, fake.shape[1])
            loss = loss + self.aux_weight * aux
            logs["g_aux"] = aux.detach()
        return loss, logs
