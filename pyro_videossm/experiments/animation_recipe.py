"""Recipe ``flow-animator``: animate a still by the optical flow of a driving clip.

Training is self-reconstruction: each clip ``frames(clip, time, y, x)`` (values in ``[0, 1]``;
a ``channel`` dimension of size 1 is dropped) is its own driving video. The source is frame 0,
the driving flows are the OpenCV flows of the clip (``--flow-method``; or the file's stored
``flow`` with ``--flow-source stored``), and the target is the clip itself. The generator
(:class:`~pyro_videossm.models.video.flow_animator.FlowAnimator`) and the video critic are
trained by :class:`~pyro_videossm.infer.gan_trainer.GANTrainer` with L1 + adversarial losses
(+ power-spectrum and flow-consistency losses); the last ``valid_fraction`` of the clips
validate (the EMA generator's L1 and the judged scores). The model file holds the EMA
generator of the epoch chosen by ``--keep``
(:mod:`~pyro_videossm.experiments.animation_selection`; default ``targets``: the epoch that
holds the three targets of issue #16 on the validation clips by the widest margin).

:func:`animation_batch` turns clips into the batch the objective reads; :func:`animate_clips`
animates sources by driving clips with a trained model file (what ``videossm animate`` runs).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import xarray as xr

from pyro_videossm.errors import InputError
from pyro_videossm.experiments.animation_selection import KEEP_CHOICES, select_epoch
from pyro_videossm.experiments.animation_sharpening import TEXTURE_BUDGET, calibrate_sharpening
from pyro_videossm.experiments.recipe import Recipe, TrainingRun, fmt_loss, plain_history, say
from pyro_videossm.experiments.recipes import RECIPES
from pyro_videossm.experiments.windowed import option

MODEL_NAME = "flow-animator"
#: Default weight of the power-spectrum loss: 0, the texture comes from the calibrated unsharp
#: mask (docs/animation.md; the previous recipe trained with 0.12 and keep="targets").
SPECTRAL_WEIGHT = 0.0
#: Blur (pixels) of the unsharp mask that restores texture (docs/animation.md).
SHARPEN_SIGMA = 0.6


@dataclass
class FlowAnimatorOptions:
    variable: str = option("frames", "data variable holding the clips")
    flow_method: str = option("dis", "OpenCV optical flow of the driving clips",
                              choices=("dis", "farneback"))
    flow_source: str = option("estimated", "driving flows while training: OpenCV flows of the"
                                           " clips (as when animating) or the file's stored "
                                           "'flow'", choices=("estimated", "stored"))
    warping: str = option("recurrent", "move the source once by the accumulated flow, "
                                         "frame after frame, or frame after frame with the "
                                         "residual added at each step",
                          choices=("accumulated", "sequential", "recurrent"))
    interpolation: str = option("bspline", "interpolation of the warp (bspline: prefiltered "
                                           "cubic B-spline, as the semi-Lagrangian baseline)",
                                choices=("bicubic", "bspline"))
    channels: int = option(16, "channels of the refinement U-Net's first level")
    levels: int = option(2, "downsamplings of the refinement U-Net")
    disc_channels: int = option(16, "channels of the critic's first 3D convolution")
    disc_layers: int = option(3, "strided 3D convolutions of the critic")
    gan_loss: str = option("hinge", "adversarial loss", choices=("hinge", "nonsaturating"))
    adversarial_weight: float = option(0.0, "weight of the adversarial loss (L1 weight 1; 0: "
                                            "the critic trains but the generator ignores it)")
    spectral_weight: float = option(SPECTRAL_WEIGHT, "weight of the power-spectrum loss "
                                                     "(generated frames against the source)")
    consistency_weight: float = option(0.0, "weight of the flow-consistency loss (each frame "
                                            "the previous one moved by the driving flow)")
    sharpen_amount: float | None = option(
        None, "amount of the unsharp mask applied to the generated frames (0: off); default: "
              "calibrated on the validation clips (--texture-budget)")
    sharpen_sigma: float = option(SHARPEN_SIGMA, "blur (pixels) of the unsharp mask")
    texture_budget: float = option(TEXTURE_BUDGET, "fraction of the model's validation L1 gain "
                                                   "over warping that the calibrated "
                                                   "sharpening may spend")
    lr_discriminator: float | None = option(None, "critic learning rate (default: --lr)")
    d_steps: int = option(1, "critic updates per generator update")
    ema_decay: float = option(0.9, "decay of the generator's exponential moving average")
    valid_fraction: float = option(0.1, "last clips held out for validation")
    keep: str = option("best", "EMA generator the model file holds: the last one, the one of "
                               "the epoch with the best validation L1 (early stopping), or the "
                               "one of the epoch that holds the targets of issue #16 on the "
                               "validation clips by the widest margin (L1 and spectrum "
                               "distance below semi-Lagrangian warping's, end-point error at "
                               "most 1.1 × its); the last one when no clip validates",
                       choices=KEEP_CHOICES)


# -- data ---------------------------------------------------------------------------------
def clip_frames(data, variable: str = "frames", where: str = "data") -> np.ndarray:
    """Clips ``(N, T, H, W)`` float32 from a path or Dataset: ``VAR(clip, time, y, x)``,
    ``VAR(clip, time, 1, y, x)`` or one clip ``VAR(time, y, x)``; NaN kept."""
    from pyro_videossm.data.conventions import open_dataset

    ds = data if isinstance(data, xr.Dataset) else open_dataset(data)
    if variable not in ds.data_vars:
        raise InputError(f"{where}: no variable {variable!r} (has: {', '.join(ds.data_vars)})")
    x = np.asarray(ds[variable].values, dtype=np.float32)
    if x.ndim == 5 and x.shape[2] == 1:
        x = x[:, :, 0]
    elif x.ndim == 3:
        x = x[None]
    if x.ndim != 4:
        raise InputError(f"{where}: {variable} must be (clip, time, y, x), got dims "
                         f"{ds[variable].dims}")
    return x


def still_frames(data, variable: str = "frames", time_index: int = 0,
                 where: str = "data") -> np.ndarray:
    """Source frames ``(N, H, W)``: ``VAR(y, x)`` (one still), ``VAR(time, y, x)`` or
    ``VAR(clip, time, y, x)`` (frame ``time_index`` of each clip)."""
    from pyro_videossm.data.conventions import open_dataset

    ds = data if isinstance(data, xr.Dataset) else open_dataset(data)
    if variable not in ds.data_vars:
        raise InputError(f"{where}: no variable {variable!r} (has: {', '.join(ds.data_vars)})")
    x = np.asarray(ds[variable].values, dtype=np.float32)
    if x.ndim == 2:
        return x[None]
    clips = clip_frames(ds, variable, where)
    if not -clips.shape[1] <= time_index < clips.shape[1]:
        raise InputError(f"{where}: time index {time_index} is outside the {clips.shape[1]} "
                         "frames")
    return clips[:, time_index]


def stored_flows(data, where: str = "data") -> np.ndarray:
    """The file's ``flow(clip, time, component, y, x)`` as ``(N, T, 2, H, W)``."""
    from pyro_videossm.data.conventions import open_dataset

    ds = data if isinstance(data, xr.Dataset) else open_dataset(data)
    if "flow" not in ds.data_vars:
        raise InputError(f"{where}: no stored 'flow' variable (use --flow-source estimated)")
    f = np.asarray(ds["flow"].values, dtype=np.float32)
    return f[None] if f.ndim == 4 else f


def driving_flows(clips: np.ndarray, method: str = "dis") -> np.ndarray:
    """OpenCV flows ``(N, T, 2, H, W)`` of clips ``(N, T, H, W)`` (NaN read as 0)."""
    from pyro_videossm.data.optical_flow import estimate_flows

    return np.stack([estimate_flows(np.nan_to_num(c), method) for c in clips]).astype(np.float32)


def animation_batch(clips: np.ndarray, flows: np.ndarray) -> dict[str, torch.Tensor]:
    """``{"source" (N, 1, H, W), "flows" (N, T, 2, H, W), "target" (N, T, H, W), "mask"}``:
    sources are frames 0 (NaN -> 0), targets the clips (NaN -> 0, ``mask`` False)."""
    mask = ~np.isnan(clips)
    target = np.nan_to_num(clips)
    return {"source": torch.from_numpy(target[:, :1].copy()),
            "flows": torch.from_numpy(np.asarray(flows, np.float32)),
            "target": torch.from_numpy(target), "mask": torch.from_numpy(mask)}


# -- model file ---------------------------------------------------------------------------
def save_flow_animator(generator, path, *, flow_method: str, frame_shape, extra=None) -> None:
    from pyro_videossm.infer import save_model_file

    save_model_file(path, MODEL_NAME, {**generator.config, "flow_method": flow_method,
                                       "frame_shape": list(frame_shape)},
                    generator.state_dict(), extra)


def load_flow_animator(path):
    """``(generator, config)`` of a model file written by this recipe."""
    from pyro_videossm.infer import load_model_file, load_state_checked
    from pyro_videossm.models.video.flow_animator import FlowAnimator

    content = load_model_file(path, expected_name=MODEL_NAME)
    config = dict(content["config"])
    gen = FlowAnimator(channels=config["channels"], levels=config["levels"],
                       refine=config["refine"], mode=config["mode"],
                       warping=config.get("warping", "accumulated"),
                       sharpen_amount=config.get("sharpen_amount", 0.0),
                       sharpen_sigma=config.get("sharpen_sigma", 1.0))
    load_state_checked(gen, content["state_dict"], f"model file {path}")
    return gen.eval(), config


# -- the run ------------------------------------------------------------------------------
def build_pair(options: FlowAnimatorOptions):
    from pyro_videossm.models.video.flow_animator import FlowAnimator, VideoDiscriminator

    return (FlowAnimator(channels=options.channels, levels=options.levels,
                         mode=options.interpolation, warping=options.warping),
            VideoDiscriminator(channels=options.disc_channels, layers=options.disc_layers))


def gan_config(run: TrainingRun, options: FlowAnimatorOptions):
    from pyro_videossm.infer.gan_trainer import GANConfig

    d = FLOW_ANIMATOR.defaults
    lr = run.lr if run.lr is not None else d["lr"]
    return GANConfig(epochs=run.epochs if run.epochs is not None else d["epochs"],
                     batch_size=run.batch_size if run.batch_size is not None
                     else d["batch_size"],
                     lr_generator=lr, lr_discriminator=options.lr_discriminator or lr,
                     d_steps=options.d_steps, ema_decay=options.ema_decay,
                     checkpoint_path=None if run.checkpoint is None else str(run.checkpoint),
                     device=run.device, seed=run.seed, progress=run.progress)


def train_flow_animator(run: TrainingRun, options: FlowAnimatorOptions) -> list[dict]:
    from pyro_videossm.models.video.flow_animator import FlowAnimationObjective

    where = run.data_label
    clips = clip_frames(run.data, options.variable, where)
    if clips.shape[1] < 2:
        raise InputError(f"{where}: clips need at least 2 frames, got {clips.shape[1]}")
    if not 0 <= options.valid_fraction < 1:
        raise InputError(f"valid fraction must be in [0, 1), got {options.valid_fraction}")
    n = clips.shape[0]
    n_valid = 0 if options.valid_fraction == 0 or n < 2 else max(1, round(options.valid_fraction
                                                                        * n))
    flows = (stored_flows(run.data, where) if options.flow_source == "stored"
             else driving_flows(clips, options.flow_method))
    if flows.shape[:2] != clips.shape[:2] or flows.shape[-2:] != clips.shape[-2:]:
        raise InputError(f"{where}: flows {flows.shape} do not match clips {clips.shape}")
    batch = animation_batch(clips, flows)
    train = {k: v[: n - n_valid] for k, v in batch.items()}
    valid = {k: v[n - n_valid:] for k, v in batch.items()} if n_valid else None
    torch.manual_seed(run.seed)
    gen, disc = build_pair(options)
    objective = FlowAnimationObjective(gen, disc, loss=options.gan_loss,
                                       adversarial_weight=options.adversarial_weight,
                                       spectral_weight=options.spectral_weight,
                                       consistency_weight=options.consistency_weight)
    config = gan_config(run, options)
    say(f"flow animator: {sum(p.numel() for p in gen.parameters()):,} generator and "
        f"{sum(p.numel() for p in disc.parameters()):,} critic parameters, {n - n_valid} "
        f"training and {n_valid} validation clips of {clips.shape[1]} frames "
        f"{clips.shape[2]}x{clips.shape[3]}")
    score = None if valid is None else ValidationScorer(clips[n - n_valid:], flows[n - n_valid:],
                                                        options.flow_method)
    trainer = epoch_keeping_trainer(objective, config, score)
    history = trainer.fit(train, valid, resume=run.resume)
    if run.output is not None:
        kept, generator = history[-1] if history else {}, trainer.ema_generator
        if options.keep != "last" and trainer.states:
            epoch = select_epoch(options.keep, trainer.valid_l1, trainer.valid_scores,
                                 None if score is None else score.baseline)
            kept = next(h for h in history if h["epoch"] == epoch)
            generator = copy.deepcopy(generator)
            generator.load_state_dict(trainer.states[epoch])
        sharpening = sharpen_generator(generator, options, score)
        save_flow_animator(generator, run.output, flow_method=options.flow_method,
                           frame_shape=clips.shape[2:], extra={
                               "history": plain_history(history), "data": where,
                               "train_config": config.to_dict(),
                               "kept_epoch": kept.get("epoch"), "sharpening": sharpening,
                               "valid_baseline": None if score is None else score.baseline})
        say(f"wrote {run.output} ({len(history)} epochs, the EMA generator of epoch "
            f"{kept.get('epoch')}: L1 {fmt_loss(kept.get('l1'))}, validation L1 "
            f"{fmt_loss(kept.get('valid'))}; sharpening amount {sharpening['amount']:g})")
    return history


def sharpen_generator(generator, options: FlowAnimatorOptions, score) -> dict:
    """Set the generator's unsharp mask: ``options.sharpen_amount``, or without it the amount
    calibrated on the validation clips of ``score`` (a :class:`ValidationScorer`; none: 0) by
    :func:`~pyro_videossm.experiments.animation_sharpening.calibrate_sharpening`. Returns
    what was chosen, for the model file."""
    from pyro_videossm.models.video.flow_animator import animate

    sigma = options.sharpen_sigma
    if options.sharpen_amount is not None or score is None:
        amount = options.sharpen_amount or 0.0
        generator.set_sharpening(amount, sigma)
        return {"amount": amount, "sigma": sigma, "calibrated": False}
    generator.set_sharpening(0.0, sigma)
    device = str(next(generator.parameters(), torch.zeros(())).device)
    raw = animate(generator, score.source, score.flows, device=device)
    amount, table = calibrate_sharpening(raw, score.clips, score.baseline["l1"], sigma=sigma,
                                         texture_budget=options.texture_budget)
    generator.set_sharpening(amount, sigma)
    return {"amount": amount, "sigma": sigma, "calibrated": True,
            "texture_budget": options.texture_budget, "valid_l1": table}


class ValidationScorer:
    """``scorer(generator) -> {"l1", "spectrum_distance", "motion_epe", ...}``: the scores of
    :func:`~pyro_videossm.metrics.animation.score_animation` of a generator animating frame
    0 of the validation clips ``(N, T, H, W)`` by their driving flows ``(N, T, 2, H, W)``;
    ``baseline``: the same scores of semi-Lagrangian warping."""

    def __init__(self, clips: np.ndarray, flows: np.ndarray, flow_method: str = "dis"):
        from pyro_videossm.models.video.flow_animator import semi_lagrangian_animation

        self.clips, self.flows, self.flow_method = clips, flows, flow_method
        self.source = np.nan_to_num(clips[:, 0])
        self.baseline = self._score(semi_lagrangian_animation(self.source, flows))

    def _score(self, generated: np.ndarray) -> dict[str, float]:
        # the three judged scores only (not SSIM or FSS: small validation frames, e.g. 8 x 8,
        # are below SSIM's 11 x 11 window, and the epoch choice does not use them)
        from pyro_videossm.metrics.animation import (
            motion_epe,
            reconstruction_l1,
            spectrum_distance,
        )

        return {"motion_epe": motion_epe(generated, self.flows, self.flow_method),
                "spectrum_distance": spectrum_distance(generated, self.source),
                "l1": reconstruction_l1(generated, self.clips)}

    def __call__(self, generator) -> dict[str, float]:
        from pyro_videossm.models.video.flow_animator import animate

        device = next(generator.parameters()).device
        return self._score(animate(generator, self.source, self.flows, device=str(device)))


def epoch_keeping_trainer(objective, config, score=None):
    """A :class:`~pyro_videossm.infer.gan_trainer.GANTrainer` that also keeps, for every
    validated epoch (1-based), a copy of the EMA generator's state (``states``), its
    validation L1 (``valid_l1``) and, given ``score`` (a :class:`ValidationScorer`), its
    validation scores (``valid_scores``; also in the history as ``valid_spectrum`` and
    ``valid_epe``). After a resume, the epochs run since (the checkpoint holds the last state
    only)."""
    from pyro_videossm.infer.gan_trainer import GANTrainer

    class EpochKeepingTrainer(GANTrainer):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.states: dict[int, dict] = {}
            self.valid_l1: dict[int, float] = {}
            self.valid_scores: dict[int, dict[str, float]] = {}

        def _validate(self, valid):
            value = super()._validate(valid)
            if value is not None:
                epoch = self.epoch + 1
                self.valid_l1[epoch] = value
                self.states[epoch] = copy.deepcopy(self.ema_generator.state_dict())
                if score is not None:
                    self.valid_scores[epoch] = score(self.ema_generator)
            return value

        def _run_epoch(self, *args, **kwargs):
            super()._run_epoch(*args, **kwargs)
            record = self.history[-1]
            scores = self.valid_scores.get(record["epoch"])
            if scores is not None:
                record.update(valid_spectrum=scores["spectrum_distance"],
                              valid_epe=scores["motion_epe"])

    return EpochKeepingTrainer(objective, config)


# -- animating ----------------------------------------------------------------------------
def animate_clips(model_path, source: np.ndarray, driving: np.ndarray, *,
                  flow_method: str | None = None, device: str = "cpu"
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Animate sources ``(N, H, W)`` by driving clips ``(N or 1, T, H, W)`` (one clip drives
    every source): ``(frames (N, T, H, W), flows (N, T, 2, H, W))``.

    NaN pixels of a source are filled with the source's mean before warping; NaN pixels of a
    driving clip are read as 0 by the flow estimator. A driving clip of another size than
    the sources is refused.
    """
    from pyro_videossm.models.video.flow_animator import animate

    source = np.asarray(source, np.float32)
    driving = np.asarray(driving, np.float32)
    if driving.shape[1] < 2:
        raise InputError(f"the driving clip needs at least 2 frames, got {driving.shape[1]}")
    if source.shape[-2:] != driving.shape[-2:]:
        raise InputError(f"source frames are {source.shape[-2]}x{source.shape[-1]} but driving "
                         f"frames {driving.shape[-2]}x{driving.shape[-1]}; resample one of them")
    if np.isnan(source).all(axis=(-2, -1)).any():
        raise InputError("a source frame has no valid pixel")
    gen, config = load_flow_animator(model_path)
    method = flow_method or config["flow_method"]
    filled = np.where(np.isnan(source), np.nanmean(source, axis=(-2, -1), keepdims=True),
                      source)
    flows = driving_flows(driving, method)
    if flows.shape[0] == 1 and filled.shape[0] > 1:
        flows = np.repeat(flows, filled.shape[0], axis=0)
    elif flows.shape[0] != filled.shape[0]:
        raise InputError(f"{filled.shape[0]} sources but {flows.shape[0]} driving clips "
                         "(give one driving clip, or one per source)")
    return animate(gen, filled, flows, device=device), flows


def animation_dataset(frames: np.ndarray, flows: np.ndarray, attrs: dict) -> xr.Dataset:
    """``frames(clip, time, y, x)`` and the driving ``flow(clip, time, component, y, x)``."""
    n, t, h, w = frames.shape
    return xr.Dataset(
        {"frames": (("clip", "time", "y", "x"), frames.astype(np.float32),
                    {"long_name": "animated source", "units": "1"}),
         "flow": (("clip", "time", "component", "y", "x"), flows.astype(np.float32),
                  {"long_name": "driving optical flow moving frame t-1 into frame t",
                   "units": "pixel per frame"})},
        coords={"clip": np.arange(n), "time": np.arange(t), "component": ["u", "v"],
                "y": np.arange(h), "x": np.arange(w)},
        attrs={"Conventions": "CF-1.8", "kind": "animation", **attrs})


def write_gif(frames: np.ndarray, path, fps: float = 8.0) -> Path:
    """Frames ``(T, H, W)`` in ``[0, 1]`` as an animated GIF (imageio), written atomically."""
    try:
        import imageio.v2 as imageio
    except ImportError:
        raise InputError("GIFs need imageio: pip install 'pyro-videossm[video]'") from None
    from pyro_videossm.atomic import atomic_path

    images = (np.clip(np.nan_to_num(frames), 0, 1) * 255).round().astype(np.uint8)
    path = Path(path)
    with atomic_path(path, suffix=".gif") as tmp:
        imageio.mimsave(tmp, list(images), format="GIF", duration=1.0 / fps, loop=0)
    return path


# -- evaluation ---------------------------------------------------------------------------
#: The methods :func:`evaluate_animation` compares, in table order.
ANIMATION_METHODS = ("still", "semi-lagrangian", "warp-only", "flow-animator")


def evaluate_animation(model_path, clips: np.ndarray, *, flow_method: str = "dis",
                       threshold: float = 0.2, scale: int = 5, judge=None
                       ) -> tuple[dict[str, dict[str, float]], dict[str, np.ndarray]]:
    """Self-reconstruction of clips ``(N, T, H, W)``: every method of
    :data:`ANIMATION_METHODS` animates frame 0 by the OpenCV flows of the clip; returns the
    scores of :func:`~pyro_videossm.metrics.animation.score_animation` per method and the
    generated clips per method.

    ``still``: the source repeated; ``semi-lagrangian``: the source advected frame after frame
    (cubic); ``warp-only``: the model's warp without its refinement network;
    ``flow-animator``: the trained model (``model_path``). With a ``judge`` (a judge of
    :mod:`~pyro_videossm.experiments.animation_judge` for the clips' size), each method also
    gets ``clip_fd``: the Fréchet distance of its clips to the real ones in the judge's clip
    features."""
    from pyro_videossm.metrics.animation import score_animation
    from pyro_videossm.models.video.flow_animator import (
        FlowAnimator,
        animate,
        semi_lagrangian_animation,
        still_animation,
    )

    clips = np.asarray(clips, np.float32)
    flows = driving_flows(clips, flow_method)
    source = np.nan_to_num(clips[:, 0])
    gen, config = load_flow_animator(model_path)
    generated = {
        "still": still_animation(source, clips.shape[1]),
        "semi-lagrangian": semi_lagrangian_animation(source, flows),
        "warp-only": animate(FlowAnimator(refine=False, mode=config["mode"],
                                          warping=config.get("warping", "accumulated")),
                             source, flows),
        "flow-animator": animate(gen, source, flows),
    }
    scores = {name: score_animation(g, flows, source, clips, threshold=threshold, scale=scale,
                                    flow_method=flow_method)
              for name, g in generated.items()}
    if judge is not None:
        from pyro_videossm.experiments.animation_judge import clip_frechet_distance

        for name, g in generated.items():
            scores[name]["clip_fd"] = clip_frechet_distance(judge, g, clips)
    return scores, generated


FLOW_ANIMATOR = RECIPES.register(Recipe(
    name=MODEL_NAME,
    help="animate a still image by the optical flow of a driving clip (warp + refinement "
         "U-Net, video critic; GAN)",
    options=FlowAnimatorOptions, train=train_flow_animator,
    build=lambda options, data: build_pair(options)[0],
    defaults={"epochs": 6, "batch_size": 4, "lr": 1e-3}))
