"""Recipe ``eating-sounds``: the sound of eating from silent video (issue 17).

Data: a file of ``videossm simulate eating`` (or any Dataset with ``frames(clip, time,
channel, y, x)`` at 25 fps, ``audio(clip, sample)`` at 16 kHz and ``food(clip)``); training
uses the clips with ``split == 0`` when there is a ``split`` variable (the test faces are
never seen). Each clip becomes a batch item (:func:`eating_batch`):

* ``crops (N, T, C, S, S)`` uint8: the lower half of the face found by OpenCV's Haar cascade
  and tracked (``crop="mouth"``, the default: jaw, lips and the food at the mouth), the whole
  face (``crop="face"``; :func:`tracked_crops`) or the whole frame (``crop="frame"``),
  resized to ``S``×``S`` (``--crop-size``);
* ``log_spec (N, 4T, 257)``: the log-amplitude STFT of the audio
  (:mod:`pyro_videossm.models.audio.spectrogram`; 4 spectrogram frames per video frame);
* ``frame_mask (N, T)``, ``spec_mask (N, 4T)``: valid frames (clips shorter than the file's
  longest are NaN-padded).

The model (:class:`~pyro_videossm.models.audio.sound_model.VideoToSpectrogram`, Laplace
likelihood with a learned scale) is fitted by the shared :class:`~pyro_videossm.infer.Trainer`
through :class:`~pyro_videossm.infer.SVIObjective` (progress, checkpoints, resume); the last
``valid_fraction`` of the training clips validate. The model file (name ``eating-sounds``)
holds the network, the spectrogram and crop settings. :func:`sonify_frames` turns frames of
any frame rate into a waveform with a trained model file (what ``videossm sonify`` runs).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import xarray as xr

from pyro_videossm.errors import InputError
from pyro_videossm.experiments.recipe import Recipe, TrainingRun, fmt_loss, plain_history, say
from pyro_videossm.experiments.recipes import RECIPES
from pyro_videossm.experiments.windowed import option

MODEL_NAME = "eating-sounds"
#: The food classes of ``videossm simulate eating``, in label order.
FOOD_CLASSES = ("crispy", "crunchy", "soft", "chewy", "slurpy")


@dataclass
class EatingSoundsOptions:
    crop: str = option("mouth", "what the encoder sees: the lower part of the tracked face "
                                "(OpenCV Haar cascade), the whole face or the whole frame",
                       choices=("mouth", "face", "frame"))
    crop_size: int = option(32, "side of the square crops, pixels")
    channels: int = option(16, "channels of the per-frame CNN's first convolution")
    hidden: int = option(64, "feature size of the visual encoder")
    init_scale: float = option(1.0, "initial Laplace scale of the log-amplitude")
    no_food_head: bool = option(False, "do not tell the food class from the video (the "
                                       "training clips' labels) nor condition the sound on it")
    food_weight: float = option(0.1, "weight of a clip's food label in the likelihood, in "
                                     "units of the clip's spectrogram (1: as much as it)")
    valid_fraction: float = option(0.1, "last training clips held out for validation")
    patience: int | None = option(None, "stop after this many epochs without validation "
                                        "improvement")


# -- data ---------------------------------------------------------------------------------
def open_eating(data, where: str = "data") -> xr.Dataset:
    """The Dataset of a path (or the Dataset itself), checked: ``frames(clip, time, channel,
    y, x)`` and ``audio(clip, sample)`` present, at least 2 frames in increasing time order,
    no infinite value."""
    from pyro_videossm.data.conventions import (
        open_dataset,
        require_increasing_time,
        require_variable,
    )

    ds = data if isinstance(data, xr.Dataset) else open_dataset(data)
    require_variable(ds, "frames", ("clip", "time", "channel", "y", "x"), where)
    require_variable(ds, "audio", ("clip", "sample"), where)
    if "time" in ds.coords:
        require_increasing_time(ds, "time", where)
    if ds.sizes["time"] < 2:
        raise InputError(f"{where}: clips need at least 2 frames, got {ds.sizes['time']}")
    for name in ("frames", "audio"):
        if np.isinf(ds[name].values).any():
            raise InputError(f"{where}: {name} has infinite values")
    return ds


def select_faces(ds: xr.Dataset, split: str) -> xr.Dataset:
    """Clips of ``split`` (``train``: ``split == 0``, ``test``: 1); all without ``split``."""
    from pyro_videossm.data.sprites import select_split

    return select_split(ds, split)


def food_labels(ds: xr.Dataset) -> tuple[np.ndarray, tuple[str, ...]]:
    """``(labels (N,) int64, class names)`` of ``food(clip)``: integer flags with CF
    ``flag_meanings``, or class names (ordered as :data:`FOOD_CLASSES` when they are among
    them, else sorted)."""
    if "food" not in ds.data_vars and "food" not in ds.coords:
        raise InputError("data: no variable 'food' (the food class of each clip)")
    food = ds["food"]
    values = np.asarray(food.values)
    if values.dtype.kind in "iu":
        meanings = food.attrs.get("flag_meanings")
        names = tuple(meanings.split()) if meanings else FOOD_CLASSES
        flags = np.asarray(food.attrs.get("flag_values", np.arange(len(names))))
        lookup = {int(f): i for i, f in enumerate(flags)}
        if not set(values.tolist()) <= set(lookup):
            raise InputError(f"data: food flags {sorted(set(values.tolist()))} outside "
                             f"{sorted(lookup)}")
        return np.array([lookup[int(v)] for v in values], np.int64), names
    strings = [v.decode() if isinstance(v, bytes) else str(v) for v in values]
    names = (FOOD_CLASSES if set(strings) <= set(FOOD_CLASSES)
             else tuple(sorted(set(strings))))
    return np.array([names.index(s) for s in strings], np.int64), names


def clip_frames(ds: xr.Dataset) -> tuple[np.ndarray, np.ndarray]:
    """``(frames (N, T, C, H, W) float32 in [0, 1] with NaN -> 0, frame_mask (N, T))``; a
    frame is valid when none of its pixels is NaN; uint8 frames are divided by 255."""
    raw = ds["frames"].values
    x = raw.astype(np.float32) / (255.0 if raw.dtype == np.uint8 else 1.0)
    mask = ~np.isnan(x).any(axis=(2, 3, 4))
    if not mask.any():
        raise InputError("data: every frame has NaN pixels")
    return np.nan_to_num(x), mask


def resize_frames(frames: np.ndarray, size: int) -> np.ndarray:
    """``(..., C, H, W)`` float in [0, 1] -> ``(..., C, size, size)`` uint8 (area average)."""
    x = torch.as_tensor(np.ascontiguousarray(frames, np.float32))
    lead = x.shape[:-3]
    y = torch.nn.functional.interpolate(x.reshape(-1, *x.shape[-3:]), size=(size, size),
                                        mode="area" if min(x.shape[-2:]) >= size else "bilinear")
    return (y.clamp(0, 1) * 255).round().to(torch.uint8).reshape(*lead, *y.shape[1:]).numpy()


#: Part of the tracked face box each crop keeps, as fractions ``(x0, y0, x1, y1)`` of the box.
REGIONS = {"face": (0.0, 0.0, 1.0, 1.0), "mouth": (0.15, 0.5, 0.85, 1.0)}


def crop_boxes(frames: np.ndarray, boxes: np.ndarray, size: int) -> np.ndarray:
    """Boxes ``(T, 4)`` (``x0, y0, x1, y1`` pixels, any aspect) cut out of frames
    ``(T, C, H, W)`` in [0, 1] and resized to ``size``×``size``: ``(T, C, size, size)`` uint8
    (OpenCV area averaging; edge pixels repeated past the border)."""
    import cv2

    video = np.round(np.clip(frames, 0, 1) * 255).astype(np.uint8).transpose(0, 2, 3, 1)
    h, w = video.shape[1:3]
    out = np.empty((len(video), size, size, video.shape[-1]), np.uint8)
    for i, (frame, box) in enumerate(zip(video, np.asarray(boxes, np.float64))):
        x0, y0 = int(np.floor(box[0] + 0.5)), int(np.floor(box[1] + 0.5))
        x1 = max(x0 + 1, int(np.floor(box[2] + 0.5)))
        y1 = max(y0 + 1, int(np.floor(box[3] + 0.5)))
        pad = max(0, -x0, -y0, x1 - w, y1 - h)
        if pad:
            frame = cv2.copyMakeBorder(frame, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        patch = np.ascontiguousarray(frame[y0 + pad:y1 + pad, x0 + pad:x1 + pad])
        small = cv2.resize(patch, (size, size), interpolation=cv2.INTER_AREA
                           if min(patch.shape[:2]) >= size else cv2.INTER_LINEAR)
        out[i] = small.reshape(size, size, -1)
    return out.transpose(0, 3, 1, 2)


def tracked_crops(frames: np.ndarray, size: int, region: str = "mouth",
                  where: str = "video") -> tuple[np.ndarray, float]:
    """Crops ``(T, C, size, size)`` uint8 of one clip's frames ``(T, C, H, W)`` in [0, 1]:
    the face found by OpenCV's Haar cascade and tracked
    (:func:`pyro_videossm.data.face_tracking.track_face`), cut to ``region`` of its box
    (:data:`REGIONS`); and the fraction of frames where the cascade found the face. No face in
    any frame: ``InputError("<where>: no face found in N frames")``."""
    from pyro_videossm.data.face_tracking import track_face

    if frames.shape[1] != 3:
        raise InputError(f"{where}: face tracking needs RGB frames, got {frames.shape[1]} "
                         "channels")
    try:
        track = track_face(frames.transpose(0, 2, 3, 1))
    except InputError as err:
        raise InputError(f"{where}: {err}") from None
    b = track.boxes.astype(np.float64)
    w, h = b[:, 2:3] - b[:, 0:1], b[:, 3:4] - b[:, 1:2]
    f = np.asarray(REGIONS[region])
    boxes = np.concatenate([b[:, :1] + f[0] * w, b[:, 1:2] + f[1] * h,
                            b[:, :1] + f[2] * w, b[:, 1:2] + f[3] * h], axis=1)
    return crop_boxes(frames, boxes, size), track.detection_rate


def visual_input(frames: np.ndarray, frame_mask: np.ndarray, crop: str, size: int,
                 where: str = "data") -> tuple[np.ndarray, float]:
    """Crops ``(N, T, C, S, S)`` uint8 of frames ``(N, T, C, H, W)`` (``crop``: ``mouth`` or
    ``face`` of the tracked face, :func:`tracked_crops`, only the valid frames of each clip;
    ``frame``: the whole frame) and the mean fraction of frames where the face was found
    (1 for ``crop="frame"``)."""
    if crop == "frame":
        return resize_frames(frames, size), 1.0
    if crop not in REGIONS:
        raise InputError(f"crop must be mouth, face or frame, got {crop!r}")
    out = np.zeros((*frames.shape[:3], size, size), np.uint8)
    rates = []
    for i in range(frames.shape[0]):
        t = int(frame_mask[i].sum())
        out[i, :t], rate = tracked_crops(frames[i, :t], size, crop,
                                         where if frames.shape[0] == 1 else f"{where} clip {i}")
        rates.append(rate)
    return out, float(np.mean(rates))


def clip_audio(ds: xr.Dataset) -> np.ndarray:
    """``audio (N, S)`` float32 (NaN kept: padding of shorter clips)."""
    return np.asarray(ds["audio"].values, np.float32)


def eating_batch(ds: xr.Dataset, settings, crop: str = "face", size: int = 32,
                 where: str = "data") -> tuple[dict[str, torch.Tensor], float]:
    """The batch of the module docstring (``label`` too when the data have ``food``) and the
    face detection rate."""
    from pyro_videossm.models.audio.spectrogram import log_spectrogram

    frames, frame_mask = clip_frames(ds)
    crops, rate = visual_input(frames, frame_mask, crop, size, where)
    r = settings.frames_per_video_frame
    k = frames.shape[1] * r
    spec = log_spectrogram(clip_audio(ds), settings, frames=k)
    batch = {"crops": torch.from_numpy(crops), "frame_mask": torch.from_numpy(frame_mask),
             "log_spec": torch.from_numpy(spec),
             "spec_mask": torch.from_numpy(np.repeat(frame_mask, r, axis=1))}
    if "food" in ds.data_vars or "food" in ds.coords:
        batch["label"] = torch.from_numpy(food_labels(ds)[0])
    return batch, rate


def check_rates(ds: xr.Dataset, settings, where: str) -> None:
    """Refuse a file whose ``fps`` / ``sample_rate`` attributes differ from ``settings``."""
    for key, want in (("fps", settings.fps), ("sample_rate", settings.sample_rate)):
        for holder in (ds.attrs, ds["frames"].attrs if key == "fps" else ds["audio"].attrs):
            if key in holder and not np.isclose(float(holder[key]), float(want)):
                raise InputError(f"{where}: {key} {holder[key]} differs from the model's "
                                 f"{want:g}")


# -- model file ---------------------------------------------------------------------------
def save_eating_model(model, path, *, settings, crop: str, crop_size: int,
                      classes: tuple[str, ...], extra=None) -> None:
    from pyro_videossm.infer import save_model_file

    save_model_file(path, MODEL_NAME, {"model": dict(model.config),
                                       "spectrogram": settings.to_dict(), "crop": crop,
                                       "crop_size": int(crop_size), "classes": list(classes)},
                    model.state_dict(), extra)


def load_eating_model(path):
    """``(model, config, settings)`` of a model file of this recipe; another kind of model
    file is refused with one line."""
    from pyro_videossm.infer import load_model_file
    from pyro_videossm.infer.model_file import rebuild_module
    from pyro_videossm.models.audio.sound_model import VideoToSpectrogram
    from pyro_videossm.models.audio.spectrogram import SpectrogramSettings

    content = load_model_file(path, expected_name=MODEL_NAME)
    config = dict(content["config"])
    model = rebuild_module(VideoToSpectrogram, {"config": config["model"],
                                                "state_dict": content["state_dict"]},
                           f"model file {path}")
    return model.eval(), config, SpectrogramSettings(**config["spectrogram"])


# -- the run ------------------------------------------------------------------------------
def split_valid(batch: dict[str, torch.Tensor], fraction: float):
    """``(train, valid)``: the last ``fraction`` of the items (at least one when
    ``fraction > 0`` and there are two or more) validate; ``valid`` is None without any."""
    n = next(iter(batch.values())).shape[0]
    n_valid = 0 if fraction == 0 or n < 2 else max(1, round(fraction * n))
    train = {k: v[: n - n_valid] for k, v in batch.items()}
    valid = {k: v[n - n_valid:] for k, v in batch.items()} if n_valid else None
    return train, valid


def build_model(options: EatingSoundsOptions, settings=None, in_channels: int = 3,
                n_classes: int = 0):
    from pyro_videossm.models.audio.sound_model import VideoToSpectrogram
    from pyro_videossm.models.audio.spectrogram import SpectrogramSettings

    settings = settings if settings is not None else SpectrogramSettings()
    return VideoToSpectrogram(n_freq=settings.n_freq, in_channels=in_channels,
                              channels=options.channels, hidden=options.hidden,
                              upsample=settings.frames_per_video_frame,
                              init_scale=options.init_scale, silence=settings.silence,
                              n_classes=n_classes, food_weight=options.food_weight)


def _objective(module, options):
    from pyro_videossm.infer import SVIObjective

    return SVIObjective(module)


def train_eating_sounds(run: TrainingRun, options: EatingSoundsOptions) -> list[dict]:
    from pyro_videossm.infer import Trainer
    from pyro_videossm.models.audio.spectrogram import SpectrogramSettings

    where = run.data_label
    if not 0 <= options.valid_fraction < 1:
        raise InputError(f"valid fraction must be in [0, 1), got {options.valid_fraction}")
    settings = SpectrogramSettings()
    ds = open_eating(run.data, where)
    check_rates(ds, settings, where)
    train_ds = select_faces(ds, "train")
    if train_ds.sizes["clip"] == 0:
        raise InputError(f"{where}: no training clips (split == 0)")
    train_ds = train_ds.load()
    classes = food_labels(train_ds)[1] if "food" in train_ds.variables else FOOD_CLASSES
    batch, rate = eating_batch(train_ds, settings, options.crop, options.crop_size, where)
    if options.no_food_head:
        batch.pop("label", None)
    train, valid = split_valid(batch, options.valid_fraction)
    torch.manual_seed(run.seed)
    model = build_model(options, settings, in_channels=batch["crops"].shape[2],
                        n_classes=len(classes) if "label" in batch else 0)
    values = train["log_spec"][train["spec_mask"]]  # (valid frames, F)
    mean = values.mean(0)
    model.set_mean_spectrum(mean, (values - mean).abs().mean(0))
    model.set_appearance_statistics(train["crops"], train["frame_mask"])
    if "label" in train:
        model.set_class_spectra(train["log_spec"], train["spec_mask"], train["label"])
    config = run.config(**EATING_SOUNDS.defaults, patience=options.patience)
    n_valid = 0 if valid is None else valid["crops"].shape[0]
    announce = (f"{MODEL_NAME}: {sum(p.numel() for p in model.parameters()):,} parameters, "
                f"{train['crops'].shape[0]} training and {n_valid} validation clips of "
                f"{batch['crops'].shape[1]} frames, {options.crop} crops "
                f"{options.crop_size}x{options.crop_size}"
                + (f" (face found in {rate:.1%} of frames)" if options.crop != "frame" else ""))
    trainer = Trainer(_objective(model, options), config)
    history = trainer.fit(train, valid, resume=run.resume, announce=announce)
    if run.output is not None:
        save_eating_model(model.cpu(), run.output, settings=settings, crop=options.crop,
                          crop_size=options.crop_size, classes=classes, extra={
                              "history": plain_history(history), "data": where,
                              "face_detection_rate": rate, "train_config": config.to_dict()})
        last = history[-1] if history else {}
        say(f"wrote {run.output} ({len(history)} epochs, train loss "
            f"{fmt_loss(last.get('train_loss'))}, valid loss "
            f"{fmt_loss(last.get('valid_loss'))} per value)")
    return history


# -- sonifying ----------------------------------------------------------------------------
def predict_spectrograms(model, crops: np.ndarray, frame_mask: np.ndarray,
                         batch_size: int = 16) -> np.ndarray:
    """The model's median log-spectrograms ``(N, K, F)`` of crops ``(N, T, C, S, S)``."""
    out = []
    with torch.no_grad():
        for i in range(0, crops.shape[0], batch_size):
            out.append(model(torch.from_numpy(crops[i:i + batch_size]),
                             torch.from_numpy(frame_mask[i:i + batch_size])).numpy())
    return np.concatenate(out)


def sonify_frames(model_path, frames: np.ndarray, fps: float, where: str = "video",
                  n_iter: int = 32) -> tuple[np.ndarray, dict]:
    """Waveform ``(S,)`` float32 at the model's sample rate for one clip's frames
    ``(T, C, H, W)`` in [0, 1] at ``fps`` (resampled to the model's frame rate by the nearest
    frame in time, :func:`pyro_videossm.data.video_files.resample_frames`), and what
    happened: ``{"frames", "fps", "face_detection_rate", "sample_rate"}``."""
    from pyro_videossm.data.video_files import resample_frames
    from pyro_videossm.models.audio.spectrogram import griffin_lim

    model, config, settings = load_eating_model(model_path)
    frames = resample_frames(np.asarray(frames, np.float32), fps, settings.fps)
    if frames.shape[1] != model.config["in_channels"]:
        raise InputError(f"{where}: frames have {frames.shape[1]} channels, the model "
                         f"{model.config['in_channels']}")
    mask = np.ones((1, frames.shape[0]), bool)
    crops, rate = visual_input(frames[None], mask, config["crop"], config["crop_size"], where)
    spec = predict_spectrograms(model, crops, mask)[0]
    audio = griffin_lim(spec, settings, length=frames.shape[0] * settings.samples_per_video_frame,
                        n_iter=n_iter)
    return audio, {"frames": int(frames.shape[0]), "fps": float(fps),
                   "face_detection_rate": rate, "sample_rate": settings.sample_rate,
                   "crop": config["crop"], "model_fps": settings.fps, "video": frames}


def read_clip_frames(path, clip: int = 0) -> tuple[np.ndarray, float]:
    """``(frames (T, C, H, W) float32 in [0, 1], fps)`` of a video file (imageio-ffmpeg) or
    of clip ``clip`` of a netCDF file of ``videossm simulate eating`` (its valid frames)."""
    from pathlib import Path

    path = Path(path)
    if path.suffix.lower() in (".nc", ".nc4", ".netcdf"):
        ds = open_eating(path, str(path))
        n = ds.sizes["clip"]
        if not -n <= clip < n:
            raise InputError(f"{path}: no clip {clip} (it has {n})")
        one = ds.isel(clip=[clip]).load()
        frames, mask = clip_frames(one)
        fps = float(ds.attrs.get("fps", ds["frames"].attrs.get("fps", 25.0)))
        return frames[0, mask[0]], fps
    from pyro_videossm.data.video_files import read_video

    clip = read_video(path, fps=None)
    return clip.frames.transpose(0, 3, 1, 2).astype(np.float32) / np.float32(255), clip.fps


def write_sonified(path, audio: np.ndarray, info: dict, mux=None) -> None:
    """Write the waveform as WAV (soundfile) and, with ``mux``, the frames of ``info["video"]``
    at the model's frame rate with the waveform as an MP4 (imageio-ffmpeg); atomically."""
    from pyro_videossm.data.video_files import write_mp4, write_wav

    write_wav(path, audio, info["sample_rate"])
    if mux is not None:
        write_mp4(mux, info["video"].transpose(0, 2, 3, 1), info["model_fps"], audio=audio,
                  sample_rate=info["sample_rate"])


EATING_SOUNDS = RECIPES.register(Recipe(
    name=MODEL_NAME,
    help="sound of eating from silent video: face crops -> log-amplitude spectrogram "
         "(CNN + temporal convolutions, Laplace likelihood; Griffin-Lim waveform)",
    options=EatingSoundsOptions, train=train_eating_sounds,
    build=lambda options, data: build_model(options),
    objective=_objective,
    defaults={"epochs": 25, "batch_size": 8, "lr": 2e-3}))
