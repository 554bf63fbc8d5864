"""Recipes ``mocogan``, ``cmocogan`` and ``dcvgan``: video GANs trained on clips
``frames(clip, time, channel, y, x)`` in [0, 1] (``depth(clip, time, y, x)`` for depth), and
generation from their model files (what ``videossm generate`` runs).

* ``mocogan``: :class:`~pyro_videossm.models.video.mocogan.MoCoGANGenerator`, unconditional;
  with ``--depth`` it generates the file's depth as a 4th channel (the baseline DCVGAN is
  compared with).
* ``cmocogan``: the conditional MoCoGAN on an action label (``--action-label``, default
  ``motion``) and a content label (``--content-label``, default ``top``). By default with the
  disentangling parts: separate routing of the two conditions, a separate auxiliary
  classifier of real and generated classes, generated conditions drawn over every (action,
  content) pair, seen or not, and the training pairs' prior kept out of critics and
  classifier (``--critic-pairs seen``, ``--classifier-pairs content``,
  ``--classifier-action-input random-grey``: the defaults since the seventh round of
  docs/video_generation.md; before, ``all``, ``all``, ``colour``);
  ``--no-disentangling`` trains the plain conditional baseline (both conditions on both
  paths, projection critics only, the training pairs only).
* ``dcvgan``: :class:`~pyro_videossm.models.video.dcvgan.DCVGANGenerator` (depth first, then
  colour from depth).

Training clips are those with ``split == 0`` when the file has a ``split`` variable (all
otherwise); for a zero-shot experiment, leave the unseen pairs out of the training file. Depth
is scaled to [0, 1] by its range over the training clips (kept in the model file) and stored
with 8-bit precision while training (so a whole set fits in memory as bytes). All three train
with :class:`~pyro_videossm.infer.gan_trainer.GANTrainer` (hinge or non-saturating loss, EMA
generator, atomic checkpoints, exact resume); the model file holds the EMA generator.

Model files (names ``mocogan``, ``cmocogan``, ``dcvgan``) hold in ``config`` the generator's
constructor arguments (``generator``) and what generation needs (``data``: channel names,
depth range and units, label names, value names and attributes, the training pairs).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import xarray as xr

from pyro_videossm.errors import InputError
from pyro_videossm.experiments.recipe import Recipe, TrainingRun, fmt_loss, plain_history, say
from pyro_videossm.experiments.recipes import RECIPES
from pyro_videossm.experiments.windowed import option

#: Model-file names of the video generators.
GENERATOR_KINDS = ("mocogan", "cmocogan", "dcvgan")
#: Choices of ``--classifier-pairs``: no mask, both heads masked, or one head.
CLASSIFIER_PAIRS = ("all", "seen", "content", "action")
#: The classifier heads each choice of ``--classifier-pairs`` masks.
CLASSIFIER_PAIRS_HEADS = {"seen": ("action", "content"), "content": ("content",),
                          "action": ("action",)}
#: Label attributes copied from the training file to generated clips.
LABEL_ATTRS = ("long_name", "units", "flag_values", "flag_meanings")


# -- options ------------------------------------------------------------------------------
@dataclass
class VideoGANOptions:
    """Options every video GAN shares."""

    content_dim: int = option(32, "size of the content code z_c")
    motion_dim: int = option(16, "size of each motion code m_t (GRU state)")
    noise_dim: int = option(8, "size of the motion noise e_t")
    gen_channels: int = option(16, "channels of the frame generator's finest level")
    disc_channels: int = option(16, "channels of the critics' first convolution")
    gan_loss: str = option("hinge", "adversarial loss", choices=("hinge", "nonsaturating"))
    lr_discriminator: float = option(2e-4, "critic learning rate (--lr is the generator's)")
    d_steps: int = option(1, "critic updates per generator update")
    ema_decay: float = option(0.99, "decay of the generator's exponential moving average")
    minibatch_std: bool = option(False, "give the critics' last convolution the minibatch "
                                        "standard deviation (ProGAN), against mode collapse")
    depth_variable: str = option("depth", "depth variable (clip, time, y, x) of RGB-D files")


@dataclass
class MoCoGANOptions(VideoGANOptions):
    depth: bool = option(False, "also generate the file's depth as a 4th channel")


@dataclass
class CMoCoGANOptions(VideoGANOptions):
    action_label: str = option("motion", "label variable of the action condition")
    content_label: str = option("top", "label variable of the content condition")
    embed_dim: int = option(16, "size of each condition embedding")
    aux_weight: float = option(1.0, "weight of the auxiliary classification losses")
    classifier_channels: int = option(16, "width of the separate auxiliary classifier of the "
                                          "conditions; 0: classifier heads on the critics")
    classifier_real_only: bool = option(
        False, "the separate classifier learns real clips only (the first version, which the "
               "generator exploited); by default it also learns generated clips as classes of "
               "their own (real k against generated k, ADC-GAN)")
    classifier_action_input: str = option(
        "random-grey", "what the separate classifier's action head reads: each clip in a grey "
                       "of random channel weights (random-grey), so that it cannot learn which "
                       "colours come with which actions in training, or the clips as they are "
                       "(colour, the former default)",
        choices=("colour", "random-grey"))
    critic_pairs: str = option(
        "seen", "which generated (action, content) pairs the critics' adversarial terms count: "
                "only the training pairs (seen), so that the critics cannot learn that an "
                "unseen combination is generated (the auxiliary terms count all), or all (the "
                "former default)",
        choices=("all", "seen"))
    classifier_pairs: str = option(
        "content", "the classes the auxiliary classifier learns a clip's action (content) "
                   "among: all (the former default), or those that form a training pair (seen) "
                   "with its content (action), so that it cannot learn that an unseen "
                   "combination never occurs; content (action): only the content (action) "
                   "heads masked so, the other head learning among all its classes",
        choices=CLASSIFIER_PAIRS)
    no_disentangling: bool = option(False, "the plain conditional baseline: both conditions "
                                           "on both paths, no auxiliary losses, training pairs "
                                           "only")


@dataclass
class DCVGANOptions(VideoGANOptions):
    colour_dim: int = option(8, "size of the colour noise of the depth-to-colour translator")
    translator_channels: int = option(16, "channels of the translator's finest level")
    translator_levels: int = option(2, "downsamplings of the translator U-Net")
    translator_l1: float = option(0.0, "weight of the paired L1 loss of the translator on "
                                       "real depth -> colour frames (0: adversarial only)")
    colour_encoder: bool = option(False, "with --translator-l1: infer the colour code of the "
                                         "paired L1 loss from the real colour frames (an "
                                         "encoder and a KL term, BicycleGAN's cVAE-GAN) "
                                         "instead of drawing it as noise")
    colour_kl: float = option(0.01, "weight of the KL term of the inferred colour code")


# -- data ---------------------------------------------------------------------------------
@dataclass
class GANData:
    """Training clips ``(N, T, C, S, S)`` as uint8 counts, their labels and what generation
    needs to write clips like them (``meta``)."""

    clips: torch.Tensor
    labels: dict[str, torch.Tensor]
    meta: dict[str, Any]


def label_values(ds: xr.Dataset, name: str, n_classes: int) -> list[str]:
    """Names of the classes of a label variable (its ``flag_meanings``, else ``0..K-1``)."""
    meanings = str(ds[name].attrs.get("flag_meanings", "")).split()
    return meanings if len(meanings) == n_classes else [str(k) for k in range(n_classes)]


def _plain(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def load_gan_data(data, *, conditions: tuple[str, ...] = (), depth: str | None = None,
                  where: str = "data") -> GANData:
    """The training clips of a video file (module doc); ``conditions``: the label variables
    (action first, then content); ``depth``: the depth variable to add as a 4th channel."""
    from pyro_videossm.data.conventions import require_increasing_time
    from pyro_videossm.data.sprites import frames_tensor, labels_tensor
    from pyro_videossm.evaluation.judge import label_classes
    from pyro_videossm.experiments.video_recipes import open_clips, training_clips
    from pyro_videossm.models.video.dsvae import compact_frames

    require_increasing_time(open_clips(data), where=where)
    ds = training_clips(data)
    x = frames_tensor(ds, where)
    if x.shape[3] != x.shape[4]:
        raise InputError(f"{where}: frames must be square, got {x.shape[3]}x{x.shape[4]}")
    channel_names = ([str(c) for c in ds["channel"].values] if "channel" in ds.coords
                     else [f"channel{k}" for k in range(x.shape[2])])
    meta: dict[str, Any] = {"frame_shape": list(x.shape[2:]), "frames": int(x.shape[1]),
                            "channel_names": channel_names, "frame_attrs": {
                                k: _plain(v) for k, v in ds["frames"].attrs.items()
                                if k in ("long_name", "units")}}
    clips = compact_frames(x)
    if clips.dtype != torch.uint8:
        clips = torch.round(x * 255).to(torch.uint8)
    if depth is not None:
        if depth not in ds.data_vars:
            raise InputError(f"{where}: no depth variable {depth!r} (has: "
                             f"{', '.join(map(str, ds.data_vars))})")
        d = ds[depth]
        if tuple(d.dims) != ("clip", "time", "y", "x"):
            raise InputError(f"{where}: {depth} has dims {tuple(d.dims)}, expected "
                             "('clip', 'time', 'y', 'x')")
        values = np.asarray(d.values, np.float32)
        if not np.isfinite(values).all():
            raise InputError(f"{where}: {depth} contains NaN or infinite values")
        lo, hi = float(values.min()), float(values.max())
        if not hi > lo:
            raise InputError(f"{where}: {depth} is constant ({lo:g}); nothing to learn")
        counts = np.round((values - lo) / (hi - lo) * 255).astype(np.uint8)
        clips = torch.cat([clips, torch.from_numpy(counts)[:, :, None]], dim=2)
        meta.update(depth_variable=depth, depth_range=[lo, hi],
                    depth_attrs={k: _plain(v) for k, v in d.attrs.items()
                                 if k in ("long_name", "units", "standard_name")})
        meta["channel_names"] = [*channel_names, "depth"]
    labels: dict[str, torch.Tensor] = {}
    if conditions:
        classes = label_classes(ds, list(conditions))
        y = labels_tensor(ds, list(conditions), where, classes)
        meta["conditions"] = {}
        for key, name in zip(("action", "content"), conditions):
            labels[key] = y[name]
            meta["conditions"][key] = {
                "label": name, "values": label_values(ds, name, classes[name]),
                "attrs": {k: _plain(v) for k, v in ds[name].attrs.items() if k in LABEL_ATTRS}}
        pairs = torch.stack([labels["action"], labels["content"]], 1).unique(dim=0)
        meta["seen_pairs"] = pairs.tolist()
    return GANData(clips, labels, meta)


# -- model files --------------------------------------------------------------------------
def build_generator(kind: str, config: dict) -> torch.nn.Module:
    from pyro_videossm.models.video.dcvgan import DCVGANGenerator
    from pyro_videossm.models.video.mocogan import MoCoGANGenerator

    return (DCVGANGenerator if kind == "dcvgan" else MoCoGANGenerator)(**config)


def save_video_gan(path, kind: str, generator, meta: dict, extra: dict | None = None) -> None:
    from pyro_videossm.infer import save_model_file

    save_model_file(path, kind, {"generator": dict(generator.config), "data": meta},
                    generator.state_dict(), extra)


def load_video_gan(path, device: str = "cpu") -> tuple[str, torch.nn.Module, dict]:
    """``(kind, EMA generator in eval mode, data meta)`` of a video-GAN model file; a model
    file of another kind is refused in one line."""
    from pyro_videossm.infer import load_model_file, load_state_checked

    content = load_model_file(path)
    kind = content["name"]
    if kind not in GENERATOR_KINDS:
        raise InputError(f"model file {path} holds a {kind!r} model, not a video generator "
                         f"({', '.join(GENERATOR_KINDS)})")
    config = content["config"]
    if not isinstance(config, dict) or "generator" not in config or "data" not in config:
        raise InputError(f"model file {path} is incomplete (no generator configuration)")
    try:
        gen = build_generator(kind, dict(config["generator"]))
    except TypeError as err:
        raise InputError(f"model file {path} has an unusable config ({err})") from None
    load_state_checked(gen, content["state_dict"], f"model file {path}")
    return kind, gen.to(device).eval(), dict(config["data"])


# -- training -----------------------------------------------------------------------------
def _gan_config(run: TrainingRun, options: VideoGANOptions, defaults: dict):
    from pyro_videossm.infer.gan_trainer import GANConfig

    lr = run.lr if run.lr is not None else defaults["lr"]
    return GANConfig(epochs=run.epochs if run.epochs is not None else defaults["epochs"],
                     batch_size=run.batch_size if run.batch_size is not None
                     else defaults["batch_size"],
                     lr_generator=lr, lr_discriminator=options.lr_discriminator,
                     d_steps=options.d_steps, ema_decay=options.ema_decay,
                     checkpoint_path=None if run.checkpoint is None else str(run.checkpoint),
                     device=run.device, seed=run.seed, progress=run.progress)


def _common_generator_args(options: VideoGANOptions) -> dict:
    return dict(content_dim=options.content_dim, motion_dim=options.motion_dim,
                noise_dim=options.noise_dim, gen_channels=options.gen_channels)


def build_gan(kind: str, options: VideoGANOptions, meta: dict):
    """``(generator, critics, objective)`` of a recipe for data described by ``meta``."""
    from pyro_videossm.models.video.dcvgan import DCVGANGenerator, DCVGANObjective
    from pyro_videossm.models.video.mocogan import (
        MoCoGANDiscriminator,
        MoCoGANGenerator,
        MoCoGANObjective,
    )

    channels, size = meta["frame_shape"][0], meta["frame_shape"][1]
    frames = meta["frames"]
    channels += 1 if "depth_range" in meta else 0
    common = _common_generator_args(options)
    n_actions = n_contents = 0
    names: tuple[str, ...] = ()
    aux, sampling, routing = 0.0, "seen", "separate"
    if kind == "cmocogan":
        n_actions = len(meta["conditions"]["action"]["values"])
        n_contents = len(meta["conditions"]["content"]["values"])
        names = ("action", "content")
        if not options.no_disentangling:
            aux, sampling = options.aux_weight, "all"
        else:
            routing = "joint"
    if kind == "dcvgan":
        if options.colour_encoder and options.translator_l1 <= 0:
            raise InputError("--colour-encoder infers the code of the paired translator loss: "
                             "it needs --translator-l1 > 0")
        gen = DCVGANGenerator(size, frames, colour_dim=options.colour_dim,
                              translator_channels=options.translator_channels,
                              translator_levels=options.translator_levels,
                              colour_encoder=options.colour_encoder, **common)
    else:
        gen = MoCoGANGenerator(channels, size, frames, n_actions=n_actions,
                               n_contents=n_contents, routing=routing,
                               embed_dim=getattr(options, "embed_dim", 16), **common)
    real_only = getattr(options, "classifier_real_only", True)
    disc = MoCoGANDiscriminator(channels, size, frames, disc_channels=options.disc_channels,
                                n_actions=n_actions, n_contents=n_contents,
                                classify=aux > 0,
                                classifier_channels=getattr(options, "classifier_channels", 0),
                                fake_classes=not real_only,
                                action_input=getattr(options, "classifier_action_input",
                                                     "colour"),
                                minibatch_std=options.minibatch_std)
    if kind == "dcvgan":
        objective = DCVGANObjective(gen, disc, options.gan_loss,
                                    translator_l1=options.translator_l1,
                                    kl_weight=options.colour_kl)
    else:
        pairs: dict[str, Any] = {}
        for key in ("critic_pairs", "classifier_pairs"):
            if sampling == "all" and getattr(options, key, "all") != "all":
                pairs[key] = torch.tensor(meta["seen_pairs"], dtype=torch.long)
        if "classifier_pairs" in pairs:
            pairs["classifier_heads"] = CLASSIFIER_PAIRS_HEADS[options.classifier_pairs]
        objective = MoCoGANObjective(gen, disc, options.gan_loss, aux_weight=aux,
                                     conditions=sampling, condition_names=names, **pairs)
    return gen, disc, objective


def train_video_gan(kind: str, run: TrainingRun, options: VideoGANOptions) -> list[dict]:
    """Train recipe ``kind`` (module doc) and write the model file."""
    from pyro_videossm.infer.gan_trainer import GANTrainer

    where = run.data_label
    conditions = ((options.action_label, options.content_label) if kind == "cmocogan" else ())
    if len(set(conditions)) != len(conditions):
        raise InputError(f"the action and content labels must differ, got {conditions[0]!r} "
                         "twice")
    wants_depth = kind == "dcvgan" or getattr(options, "depth", False)
    data = load_gan_data(run.data, conditions=conditions,
                         depth=options.depth_variable if wants_depth else None, where=where)
    torch.manual_seed(run.seed)
    gen, disc, objective = build_gan(kind, options, data.meta)
    config = _gan_config(run, options, RECIPES[kind].defaults)
    n, t, c, s = data.clips.shape[:4]
    pairs = (f", {len(data.meta['seen_pairs'])} (action, content) pairs"
             if "seen_pairs" in data.meta else "")
    say(f"{kind}: {sum(p.numel() for p in gen.parameters()):,} generator and "
        f"{sum(p.numel() for p in disc.parameters()):,} critic parameters, {n} training clips "
        f"of {t} frames {c}x{s}x{s}{pairs}")
    trainer = GANTrainer(objective, config)
    history = trainer.fit({"frames": data.clips, **data.labels}, resume=run.resume)
    if run.output is not None:
        save_video_gan(run.output, kind, trainer.ema_generator, data.meta, extra={
            "history": plain_history(history), "data": where, "options":
                dataclasses.asdict(options), "train_config": config.to_dict()})
        last = history[-1] if history else {}
        say(f"wrote {run.output} ({len(history)} epochs, generator loss "
            f"{fmt_loss(last.get('g_loss'))}, critic loss {fmt_loss(last.get('d_loss'))})")
    return history


# -- generation ---------------------------------------------------------------------------
def condition_index(value: str | int | None, condition: dict, flag: str) -> int | None:
    """Class index of ``value`` (a value name or an index) in a model's condition (one-line
    :class:`InputError` listing the valid values otherwise)."""
    if value is None:
        return None
    values = condition["values"]
    text = str(value)
    if text in values:
        return values.index(text)
    if text.lstrip("-").isdigit() and 0 <= int(text) < len(values):
        return int(text)
    raise InputError(f"{flag} {text!r} is not a {condition['label']} value of this model "
                     f"(valid: {', '.join(values)}; or an index 0..{len(values) - 1})")


@torch.no_grad()
def generate_clips(path, n: int, *, action: str | int | None = None,
                   content: str | int | None = None, seed: int = 0, device: str = "cpu",
                   batch_size: int = 64) -> xr.Dataset:
    """``n`` clips generated by a video-GAN model file, as a Dataset in the format of the
    training clips: ``frames(clip, time, channel, y, x)`` in [0, 1], ``depth(clip, time, y,
    x)`` in the training file's units for models with depth, and for conditional models the
    action and content labels (named as in the training file, with its attributes) and
    ``unseen`` (1 where the pair was not among the training clips, as in
    :mod:`pyro_videossm.data.sprites_zero_shot`).

    ``action``/``content``: a value name or index of the model's condition; omitted, each
    clip draws one uniformly. Both are refused for unconditional models.
    """
    if int(n) != n or n < 1:
        raise InputError(f"-n must be >= 1, got {n}")
    kind, gen, meta = load_video_gan(path, device)
    conditions = meta.get("conditions")
    if not conditions and (action is not None or content is not None):
        raise InputError(f"model file {path} holds an unconditional {kind} model; --action and "
                         "--content need a cmocogan model")
    torch.manual_seed(seed)
    labels: dict[str, torch.Tensor] = {}
    if conditions:
        for key, value, flag in (("action", action, "--action"),
                                 ("content", content, "--content")):
            k = condition_index(value, conditions[key], flag)
            labels[key] = (torch.full((n,), k, dtype=torch.long) if k is not None else
                           torch.randint(0, len(conditions[key]["values"]), (n,)))
    parts = []
    for s in range(0, n, batch_size):
        m = min(batch_size, n - s)
        batch_labels = {k: v[s:s + m].to(device) for k, v in labels.items()}
        parts.append(gen(m, batch_labels.get("action"), batch_labels.get("content")).cpu())
    clips = torch.cat(parts).numpy().astype(np.float32)
    return clips_dataset(clips, meta, {k: v.numpy() for k, v in labels.items()},
                         {"model_kind": kind, "model_file": str(path), "seed": seed})


def clips_dataset(clips: np.ndarray, meta: dict, labels: dict[str, np.ndarray],
                  attrs: dict) -> xr.Dataset:
    """Generated clips ``(N, T, C', S, S)`` (depth last when the model has depth, scaled to
    [0, 1]) as a Dataset in the format of the training clips (:func:`generate_clips`)."""
    from pyro_videossm import __version__
    from pyro_videossm.data.conventions import CONVENTIONS

    n, t, _, s, _ = clips.shape
    has_depth = "depth_range" in meta
    colour = clips[:, :, :-1] if has_depth else clips
    names = meta["channel_names"][:colour.shape[2]]
    data = {"frames": (("clip", "time", "channel", "y", "x"), colour.astype(np.float32),
                       {"long_name": "generated intensity", "units": "1", "valid_min": 0.0,
                        "valid_max": 1.0, **meta.get("frame_attrs", {})})}
    if has_depth:
        lo, hi = meta["depth_range"]
        data["depth"] = (("clip", "time", "y", "x"),
                         (lo + clips[:, :, -1] * (hi - lo)).astype(np.float32),
                         {"long_name": "generated depth", **meta.get("depth_attrs", {})})
    conditions = meta.get("conditions") or {}
    for key, cond in conditions.items():
        attrs_ = dict(cond["attrs"])
        attrs_.setdefault("flag_values", np.arange(len(cond["values"]), dtype=np.int8))
        attrs_.setdefault("flag_meanings", " ".join(cond["values"]))
        attrs_.setdefault("units", "1")
        attrs_["flag_values"] = np.asarray(attrs_["flag_values"], dtype=np.int8)
        data[cond["label"]] = (("clip",), labels[key].astype(np.int8), attrs_)
    if conditions:
        seen = {tuple(p) for p in meta.get("seen_pairs", [])}
        flags = np.array([(int(a), int(c)) not in seen for a, c in zip(labels["action"],
                                                                     labels["content"])], np.int8)
        data["unseen"] = (("clip",), flags, {
            "long_name": "(action, content) combination never shown in training",
            "units": "1", "flag_values": np.array([0, 1], np.int8),
            "flag_meanings": "seen unseen"})
    ds = xr.Dataset(data, coords={"clip": np.arange(n), "time": np.arange(t),
                                  "channel": names, "y": np.arange(s), "x": np.arange(s)})
    ds["time"].attrs.update({"long_name": "frame index", "units": "1"})
    ds["y"].attrs.update({"long_name": "pixel row (top to bottom)", "units": "1"})
    ds["x"].attrs.update({"long_name": "pixel column (left to right)", "units": "1"})
    ds.attrs.update({"Conventions": CONVENTIONS, "title": "generated clips",
                     "source": f"pyro_videossm {__version__} video generation",
                     **{k: v for k, v in attrs.items() if v is not None}})
    return ds


def colour_depth_clips(ds: xr.Dataset) -> np.ndarray:
    """``frames`` (and ``depth`` scaled to [0, 1] over the clips, when present) as one array
    ``(N, T, C[+1], S, S)``, e.g. for :mod:`pyro_videossm.plots.video_samples`."""
    x = np.asarray(ds["frames"].values, np.float32)
    if x.ndim == 4:
        x = x[:, :, None]
    if "depth" not in ds.data_vars:
        return x
    d = np.asarray(ds["depth"].values, np.float32)
    lo, hi = float(np.nanmin(d)), float(np.nanmax(d))
    d = (d - lo) / (hi - lo) if hi > lo else np.zeros_like(d)
    return np.concatenate([x, 1.0 - d[:, :, None]], axis=2)  # near = bright


# -- the recipes --------------------------------------------------------------------------
def _recipe(kind: str, help: str, options: type, epochs: int) -> Recipe:
    return RECIPES.register(Recipe(
        name=kind, help=help, options=options,
        train=lambda run, opts: train_video_gan(kind, run, opts),
        defaults={"epochs": epochs, "batch_size": 32, "lr": 1e-3}))


MOCOGAN = _recipe("mocogan", "MoCoGAN: content code + recurrent motion codes, image and video "
                             "critics (GAN); --depth adds a depth channel", MoCoGANOptions, 5)
CMOCOGAN = _recipe("cmocogan", "conditional MoCoGAN on (action, content) labels, with a latent "
                               "disentangled for unseen pairs (GAN)", CMoCoGANOptions, 5)
DCVGAN = _recipe("dcvgan", "DCVGAN: a depth video, then colour from depth; critics on "
                           "colour-depth frames and clips (GAN)", DCVGANOptions, 5)

