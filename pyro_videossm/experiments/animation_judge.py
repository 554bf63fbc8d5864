"""A judge of cloud clips, and the clip Fréchet distance in its feature space.

Procedural cloud clips carry no class labels, but the simulator's appearance parameters can
be made labels: :func:`judge_clips` draws clips in every combination of three spectral
exponents (how rough the texture is) and three cloud covers, and :func:`train_cloud_judge`
trains the toolkit's video judge (:class:`~pyro_videossm.evaluation.judge.Judge`: frame
encoder, bidirectional LSTM, a clip head and a frame head per label) to tell them apart.
:func:`clip_frechet_distance` is the Fréchet distance between the judge's *clip* features (the
summary its clip heads read) of generated clips and of real ones: a judge-FVD analogue, named
as such, with no downloaded network. Lower is closer to the real clips; the values compare
only methods scored by the same judge. The judge's accuracy on held-out clips of its classes
is reported beside the distances (a judge that cannot tell its classes apart is no referee).
"""

from __future__ import annotations

import numpy as np
import torch
import xarray as xr

from pyro_videossm.errors import InputError

#: The appearance classes the judge learns: simulator parameter -> values (one class each).
APPEARANCE_CLASSES = {"exponent": (2.0, 3.0, 4.0), "cover": (0.3, 0.5, 0.7)}


def judge_clips(clips_per_class: int, seed: int, *, size: int = 32,
                frames: int = 16) -> xr.Dataset:
    """``frames(clip, time, y, x)`` of procedural clouds, ``clips_per_class`` for every
    combination of :data:`APPEARANCE_CLASSES`, with integer labels ``exponent`` and ``cover``
    (the class indices; ``flag_values``). Seeds ``seed, seed + 1, ...`` per combination."""
    from pyro_videossm.data.clouds import simulate_clouds

    if clips_per_class < 1:
        raise InputError(f"clips per class must be >= 1, got {clips_per_class}")
    out, labels = [], {name: [] for name in APPEARANCE_CLASSES}
    combos = [(i, j) for i in range(len(APPEARANCE_CLASSES["exponent"]))
              for j in range(len(APPEARANCE_CLASSES["cover"]))]
    for k, (i, j) in enumerate(combos):
        ds = simulate_clouds(clips=clips_per_class, frames=frames, size=size,
                             exponent=APPEARANCE_CLASSES["exponent"][i],
                             cover=APPEARANCE_CLASSES["cover"][j], seed=seed + k)
        out.append(np.asarray(ds["frames"].values, dtype=np.float32))
        labels["exponent"] += [i] * clips_per_class
        labels["cover"] += [j] * clips_per_class
    data = {"frames": (("clip", "time", "y", "x"), np.concatenate(out))}
    for name, values in APPEARANCE_CLASSES.items():
        data[name] = ("clip", np.asarray(labels[name], dtype=np.int64),
                      {"flag_values": np.arange(len(values))})
    return xr.Dataset(data)


def train_cloud_judge(*, clips_per_class: int = 100, test_clips_per_class: int = 20,
                      epochs: int = 20, seed: int = 0, size: int = 32, frames: int = 16,
                      width: int = 32):
    """``(judge, accuracy)``: a judge trained on :func:`judge_clips` (seed ``seed``) and its
    accuracy per label on held-out clips of the same classes (seed ``seed + 1000``)."""
    from pyro_videossm.evaluation.judge import judge_accuracy, train_judge

    names = list(APPEARANCE_CLASSES)
    judge, _ = train_judge(judge_clips(clips_per_class, seed, size=size, frames=frames), names,
                           epochs=epochs, seed=seed, feature_dim=width, hidden_dim=width,
                           conv_channels=max(1, width // 2), frame_labels=names)
    held_out = judge_clips(test_clips_per_class, seed + 1000, size=size, frames=frames)
    return judge, judge_accuracy(judge, held_out)


def clip_frechet_distance(judge, generated: np.ndarray, real: np.ndarray) -> float:
    """Fréchet distance between the judge's clip features of ``generated`` and ``real`` clips
    (each ``(N, T, H, W)``; NaN read as 0, values clipped to ``[0, 1]``)."""
    from pyro_videossm.evaluation.frechet import frechet_distance_of_features
    from pyro_videossm.evaluation.judge_space import judge_features

    def clip_features(clips):
        x = np.clip(np.nan_to_num(np.asarray(clips, dtype=np.float32)), 0.0, 1.0)
        if x.ndim != 4:
            raise InputError(f"clips must be (N, T, H, W), got {x.shape}")
        return judge_features(judge, torch.from_numpy(x).unsqueeze(2))["clip"]

    return float(frechet_distance_of_features(clip_features(generated), clip_features(real)))
