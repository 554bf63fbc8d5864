"""Scoring sound generated from silent video (issue 17), on clips of unseen faces.

Methods (:data:`EATING_METHODS`), each giving one waveform per test clip:

* ``model``: the trained ``eating-sounds`` model's median spectrogram, Griffin–Lim;
* ``class-average``: the training clips' mean spectrum of the clip's true food class
  (an oracle), every frame, Griffin–Lim;
* ``retrieval``: the audio of the training clip with the nearest visual features
  (:mod:`pyro_videossm.models.audio.baselines`);
* ``silence``: zeros;
* ``real (Griffin-Lim)``: Griffin–Lim of the true spectrogram (what the vocoder alone
  costs; not a method).

Scores (:mod:`pyro_videossm.metrics.audio`) per clip against the real audio: log-spectral
distance (dB), onset F1 at +-50 ms (librosa onsets), the audio-video offset by
cross-correlation of the onset envelopes (reported as the median of its absolute value over
clips) and whether the audio judge (:class:`~pyro_videossm.models.audio.judge.AudioJudge`,
trained on the real training audio) names the true food class.
"""

from __future__ import annotations

import numpy as np
import torch

from pyro_videossm.experiments.eating_recipe import (
    clip_audio,
    eating_batch,
    food_labels,
    load_eating_model,
    predict_spectrograms,
    split_valid,
)

#: The methods :func:`evaluate_eating` compares, in table order.
EATING_METHODS = ("model", "class-average", "retrieval", "silence", "real (Griffin-Lim)")


def train_audio_judge(batch: dict[str, torch.Tensor], n_classes: int, *, epochs: int = 20,
                      batch_size: int = 16, lr: float = 2e-3, hidden: int = 64, seed: int = 0,
                      valid_fraction: float = 0.1, progress: bool = False):
    """The audio judge trained on real spectrograms ``{"log_spec", "spec_mask", "label"}``
    with the shared trainer (cross-entropy, :class:`~pyro_videossm.infer.LossObjective`);
    returns ``(judge, history)``."""
    from pyro_videossm.infer import LossObjective, TrainConfig, Trainer
    from pyro_videossm.models.audio.judge import AudioJudge, judge_loss

    data = {k: batch[k] for k in ("log_spec", "spec_mask", "label")}
    train, valid = split_valid(data, valid_fraction)
    torch.manual_seed(seed)
    judge = AudioJudge(n_freq=data["log_spec"].shape[-1], n_classes=n_classes, hidden=hidden)
    values = train["log_spec"][train["spec_mask"]]
    judge.set_statistics(values.mean(0), values.std(0))
    config = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, seed=seed,
                         progress=progress)
    history = Trainer(LossObjective(judge, judge_loss), config).fit(train, valid)
    return judge.eval(), history


def judge_predictions(judge, log_specs: np.ndarray, spec_mask: np.ndarray) -> np.ndarray:
    """Class index ``(N,)`` the judge gives each spectrogram ``(N, K, F)``."""
    with torch.no_grad():
        logits = judge(torch.from_numpy(np.ascontiguousarray(log_specs, np.float32)),
                       torch.from_numpy(spec_mask))
    return logits.argmax(-1).numpy()


def generate_audio(model_path, train_ds, test_ds, *, n_iter: int = 32
                   ) -> tuple[dict[str, np.ndarray], dict]:
    """Waveforms ``(N, S)`` of every method of :data:`EATING_METHODS` for the test clips, and
    ``{"face_detection_rate", "spectrograms": {method: (N, K, F)}}``."""
    from pyro_videossm.models.audio.baselines import (
        class_average_spectra,
        fit_length,
        nearest_training_clip,
        retrieval_features,
    )
    from pyro_videossm.models.audio.spectrogram import griffin_lim

    model, config, settings = load_eating_model(model_path)
    crop, size = config["crop"], config["crop_size"]
    train, _ = eating_batch(train_ds, settings, crop, size, "training clips")
    test, rate = eating_batch(test_ds, settings, crop, size, "test clips")
    n_classes = len(config["classes"])
    length = test["crops"].shape[1] * settings.samples_per_video_frame

    def vocode(specs):
        return np.stack([griffin_lim(s, settings, length=length, n_iter=n_iter, seed=i)
                         for i, s in enumerate(specs)])

    predicted = predict_spectrograms(model, test["crops"].numpy(), test["frame_mask"].numpy())
    spectra = class_average_spectra(train["log_spec"].numpy(), train["spec_mask"].numpy(),
                                    train["label"].numpy(), n_classes, settings.silence)
    oracle = np.repeat(spectra[test["label"].numpy()][:, None], predicted.shape[1], axis=1)
    nearest = nearest_training_clip(
        retrieval_features(train["crops"].numpy(), train["frame_mask"].numpy()),
        retrieval_features(test["crops"].numpy(), test["frame_mask"].numpy()))
    train_audio = clip_audio(train_ds)
    audio = {"model": vocode(predicted), "class-average": vocode(oracle),
             "retrieval": np.stack([fit_length(train_audio[j], length) for j in nearest]),
             "silence": np.zeros((predicted.shape[0], length), np.float32),
             "real (Griffin-Lim)": vocode(test["log_spec"].numpy())}
    return audio, {"face_detection_rate": rate,
                   "spectrograms": {"model": predicted, "class-average": oracle}}


def score_audio(true_audio: np.ndarray, generated: np.ndarray, labels: np.ndarray, judge,
                settings) -> dict[str, float]:
    """Scores of generated waveforms ``(N, S)`` against the true ones: mean (and standard
    error over clips) log-spectral distance and onset F1, median absolute offset (ms; None when
    every generated waveform is silent), judge accuracy."""
    from pyro_videossm.metrics.audio import (
        audio_onset_f1,
        log_spectral_distance,
        median_abs_offset_ms,
        onset_offset,
    )
    from pyro_videossm.models.audio.spectrogram import log_spectrogram

    sr = settings.sample_rate
    true_audio = np.nan_to_num(true_audio[:, : generated.shape[1]])
    lsd = np.array([log_spectral_distance(g, t) for t, g in zip(true_audio, generated)])
    f1 = np.array([audio_onset_f1(g, t, sr).f1 for t, g in zip(true_audio, generated)])
    # the offset of a silent answer is undefined (its onset envelope is constant)
    offset = [onset_offset(g, t, sr) for t, g in zip(true_audio, generated) if np.any(g)]
    specs = log_spectrogram(generated, settings)
    predicted = judge_predictions(judge, specs, np.ones(specs.shape[:2], bool))
    n = len(generated)
    return {"lsd": float(lsd.mean()), "lsd_se": float(lsd.std(ddof=1) / np.sqrt(n)) if n > 1
            else 0.0, "onset_f1": float(f1.mean()),
            "onset_f1_se": float(f1.std(ddof=1) / np.sqrt(n)) if n > 1 else 0.0,
            "median_abs_offset_ms": float(median_abs_offset_ms(offset)) if offset else None,
            "class_accuracy": float(np.mean(predicted == labels)), "clips": n}


def evaluate_eating(model_path, train_ds, test_ds, judge, *, n_iter: int = 32
                    ) -> tuple[dict[str, dict[str, float]], dict[str, np.ndarray], dict]:
    """Scores per method (:func:`score_audio`), the waveforms per method and the extras of
    :func:`generate_audio`; the real test audio is scored too (``real``: the judge's accuracy
    on real audio, and the metrics' values for a perfect answer)."""
    from pyro_videossm.models.audio.spectrogram import SpectrogramSettings

    _, config, _ = load_eating_model(model_path)
    settings = SpectrogramSettings(**config["spectrogram"])
    audio, extras = generate_audio(model_path, train_ds, test_ds, n_iter=n_iter)
    labels = food_labels(test_ds)[0]
    true = clip_audio(test_ds)
    scores = {name: score_audio(true, audio[name], labels, judge, settings)
              for name in EATING_METHODS}
    scores["real"] = score_audio(true, np.nan_to_num(true[:, : audio["model"].shape[1]]),
                                 labels, judge, settings)
    return scores, audio, extras


def round_trip(model_path, test_ds, clips: int, folder, *, n_iter: int = 32) -> dict:
    """The real-input path against the in-memory one on the first ``clips`` test clips: each
    clip is written as an MP4 with its sound (:func:`~pyro_videossm.data.eating.
    write_eating_mp4`), read back (imageio-ffmpeg), its face tracked and sonified
    (:func:`~pyro_videossm.experiments.eating_recipe.sonify_frames`); the same clip's frames
    in memory are sonified too. Returns the face detection rate on the files and the mean
    onset F1 and log-spectral distance of both paths against the real audio."""
    from pathlib import Path

    from pyro_videossm.data.eating import write_eating_mp4
    from pyro_videossm.experiments.eating_recipe import read_clip_frames, sonify_frames
    from pyro_videossm.metrics.audio import audio_onset_f1, log_spectral_distance

    rows = {"file": [], "memory": []}
    rates = []
    for i in range(min(clips, test_ds.sizes["clip"])):
        mp4 = write_eating_mp4(test_ds, i, Path(folder) / f"clip{i}.mp4", scale=1)
        frames, fps = read_clip_frames(mp4)
        true = np.nan_to_num(test_ds["audio"].values[i])
        from_file, info = sonify_frames(model_path, frames, fps, n_iter=n_iter)
        rates.append(info["face_detection_rate"])
        memory, _ = sonify_frames(model_path, test_ds["frames"].values[i],
                                  float(test_ds.attrs.get("fps", 25.0)), n_iter=n_iter)
        for name, wave in (("file", from_file), ("memory", memory)):
            n = min(len(wave), len(true))
            rows[name].append((audio_onset_f1(wave[:n], true[:n]).f1,
                               log_spectral_distance(wave[:n], true[:n])))
    out = {"clips": len(rates), "face_detection_rate": float(np.mean(rates))}
    for name, values in rows.items():
        v = np.asarray(values)
        out[f"{name}_onset_f1"], out[f"{name}_lsd"] = float(v[:, 0].mean()), float(v[:, 1].mean())
    return out
