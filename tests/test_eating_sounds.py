"""The eating-sounds model family (issue 17): shapes, the Laplace likelihood, training,
Griffin-Lim, baselines and ``videossm sonify``'s refusals."""

from __future__ import annotations

import math

import numpy as np
import pyro
import pytest
import torch
from eating_fixture import tiny_eating

from pyro_videossm.errors import InputError
from pyro_videossm.experiments.eating_recipe import (
    EATING_SOUNDS,
    eating_batch,
    load_eating_model,
)
from pyro_videossm.experiments.recipe import TrainingRun
from pyro_videossm.models.audio.baselines import (
    class_average_spectra,
    nearest_training_clip,
    retrieval_features,
)
from pyro_videossm.models.audio.judge import AudioJudge
from pyro_videossm.models.audio.sound_model import VideoToSpectrogram
from pyro_videossm.models.audio.spectrogram import (
    SpectrogramSettings,
    griffin_lim,
    log_spectrogram,
)

pytest.importorskip("librosa")
SETTINGS = SpectrogramSettings()


def _batch(n=2, t=5, size=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    k = 4 * t
    mask = torch.ones(n, k, dtype=torch.bool)
    mask[1, -4:] = False
    return {"crops": torch.randint(0, 256, (n, t, 3, size, size), generator=g,
                                   dtype=torch.uint8),
            "frame_mask": mask[:, ::4].clone(),
            "log_spec": torch.randn(n, k, 257, generator=g) - 5.0, "spec_mask": mask}


def test_shapes():
    model = VideoToSpectrogram(channels=4, hidden=8)
    b = _batch()
    assert model(b["crops"], b["frame_mask"]).shape == (2, 20, 257)
    assert model.sample(b["crops"]).shape == (2, 20, 257)
    judge = AudioJudge(n_classes=5, hidden=8)
    assert judge(b["log_spec"], b["spec_mask"]).shape == (2, 5)
    assert SETTINGS.frames_per_video_frame == 4 and SETTINGS.n_freq == 257
    spec = log_spectrogram(np.zeros((3, 6400), np.float32))
    assert spec.shape == (3, 40, 257) and np.allclose(spec, math.log(SETTINGS.floor))
    with pytest.raises(InputError):
        SpectrogramSettings(hop=150)


def test_likelihood_is_the_masked_laplace_density():
    """Pyro's log-likelihood of the model equals the hand-written Laplace sum over the valid
    spectrogram values: sum -log(2 b_f) - |y - mu| / b_f."""
    pyro.clear_param_store()
    model = VideoToSpectrogram(channels=4, hidden=8, init_scale=0.7)
    with torch.no_grad():
        model.head.weight.normal_(0, 0.1)
        model.scale_raw.uniform_(-1, 1)
    b = _batch()
    trace = pyro.poutine.trace(model.model).get_trace(b)
    got = trace.nodes["log_spec"]["fn"].log_prob(b["log_spec"]).sum()
    mu = model(b["crops"], b["frame_mask"])
    scale = torch.nn.functional.softplus(model.scale_raw) + 1e-3
    dens = -torch.log(2 * scale) - (b["log_spec"] - mu).abs() / scale
    want = (dens * b["spec_mask"][..., None]).sum()
    assert torch.allclose(got, want, rtol=1e-5)
    # and the initial scale is the one asked for
    assert torch.allclose(VideoToSpectrogram(init_scale=0.7).scale, torch.tensor(0.7))
    # with a food head: the food label is a Categorical site on the head's logits, and the
    # spectrogram site keeps the same Laplace form around the conditioned mean
    pyro.clear_param_store()
    with_food = VideoToSpectrogram(channels=4, hidden=8, n_classes=5)
    b["label"] = torch.tensor([1, 4])
    trace = pyro.poutine.trace(with_food.model).get_trace(b)
    loc, logits = with_food.predict(b["crops"], b["frame_mask"])
    got = trace.nodes["food"]["fn"].log_prob(b["label"])
    assert torch.allclose(got, torch.log_softmax(logits, -1)[[0, 1], [1, 4]])
    assert torch.allclose(trace.nodes["log_spec"]["fn"].base_dist.base_dist.loc, loc)
    # the location: the shared output layer on the FiLM-ed features, plus the class spectrum
    # and the class-mixed output layer, both weighted by the class probabilities
    with torch.no_grad():
        with_food.class_spectrum.normal_(0, 1.0)
        with_food.class_head.normal_(0, 0.1)
        with_food.film.weight.normal_(0, 0.1)
        loc, logits = with_food.predict(b["crops"], b["frame_mask"])
        h, clip = with_food.encoder.encode(b["crops"], b["frame_mask"])
        p = torch.softmax(logits, -1)
        gamma, beta = with_food.film(p).chunk(2, dim=-1)
        h = h * (1 + gamma[:, None]) + beta[:, None]
        want_loc = with_food.head(h.transpose(1, 2)).transpose(1, 2)
        for n in range(2):
            for c in range(5):
                want_loc[n] += p[n, c] * (with_food.class_spectrum[c]
                                          + h[n] @ with_food.class_head[c].T)
    assert torch.allclose(loc, want_loc, atol=1e-5)
    # the label weighs food_weight times the clip's number of observed spectrogram values
    with_food.food_weight = 0.5
    trace = pyro.poutine.trace(with_food.model).get_trace(b)
    want = 0.5 * b["spec_mask"].sum(1).float() * b["log_spec"].shape[-1]
    assert torch.allclose(torch.as_tensor(trace.nodes["food"]["scale"]), want)
    trace.compute_log_prob()
    assert torch.allclose(trace.nodes["food"]["log_prob_sum"],
                          (want * torch.log_softmax(logits, -1)[[0, 1], [1, 4]]).sum())


def test_training_lowers_the_loss_and_the_file_loads_weights_only(tmp_path):
    ds = tiny_eating(clips=6, frames=10, size=24)
    out = tmp_path / "m.pt"
    history = EATING_SOUNDS.fit(
        TrainingRun(ds, out, epochs=8, batch_size=3, lr=1e-2, progress=False),
        EATING_SOUNDS.make_options(crop="frame", crop_size=16, channels=4, hidden=8,
                                   valid_fraction=0.0))
    losses = [h["train_loss"] for h in history]
    assert losses[-1] < losses[0] - 0.01, losses
    content = torch.load(out, weights_only=True)
    assert content["name"] == "eating-sounds"
    model, config, settings = load_eating_model(out)
    assert config["crop"] == "frame" and settings == SETTINGS


def test_model_file_of_another_kind_is_refused(tmp_path):
    from pyro_videossm.infer import save_model_file

    other = tmp_path / "other.pt"
    save_model_file(other, "dmm", {}, {})
    with pytest.raises(InputError, match="holds a 'dmm' model"):
        load_eating_model(other)


def test_griffin_lim_round_trip():
    """A chirp through the log-spectrogram and Griffin-Lim comes back with the right length
    and nearly the same spectrogram where it has energy."""
    sr, n = 16000, 8000
    t = np.arange(n) / sr
    audio = (0.5 * np.sin(2 * np.pi * (300 + 2000 * t) * t)).astype(np.float32)
    spec = log_spectrogram(audio)
    assert spec.shape == (50, 257)
    back = griffin_lim(spec, length=n, n_iter=48)
    assert back.shape == (n,) and back.dtype == np.float32
    again = log_spectrogram(back)
    loud = spec > spec.max() - 3
    assert np.abs(again[loud] - spec[loud]).mean() < 0.5
    assert not griffin_lim(np.full((10, 257), SETTINGS.silence), length=1600).any()


def test_batch_and_baselines():
    ds = tiny_eating(clips=5, frames=8, size=24)
    batch, rate = eating_batch(ds, SETTINGS, "frame", 16)
    assert batch["crops"].shape == (5, 8, 3, 16, 16) and batch["crops"].dtype == torch.uint8
    assert batch["log_spec"].shape == (5, 32, 257) and rate == 1.0
    assert batch["label"].tolist() == [0, 1, 2, 3, 4]
    spec, mask, labels = batch["log_spec"].numpy(), batch["spec_mask"].numpy(), \
        batch["label"].numpy()
    avg = class_average_spectra(spec, mask, labels, 6, fill=-9.0)
    assert np.allclose(avg[2], spec[2].mean(0), atol=1e-5) and np.all(avg[5] == -9.0)
    feats = retrieval_features(batch["crops"].numpy(), batch["frame_mask"].numpy())
    assert feats.shape == (5, 2 * 3 * 64)
    assert nearest_training_clip(feats, feats[[3, 1]]).tolist() == [3, 1]


# -- videossm sonify ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sonify_files(tmp_path_factory):
    """A tiny eating file, an MP4 of its first clip and a tiny model trained on mouth crops."""
    from pyro_videossm.data.eating import simulate_eating, write_eating_mp4

    d = tmp_path_factory.mktemp("sonify")
    ds = simulate_eating(n_clips=2, seconds=0.6, size=64, seed=3)
    files = {"nc": d / "eating.nc", "mp4": d / "clip.mp4", "model": d / "m.pt"}
    ds.to_netcdf(files["nc"])
    write_eating_mp4(ds, 0, files["mp4"], scale=1)
    EATING_SOUNDS.fit(TrainingRun(ds, files["model"], epochs=1, batch_size=2, progress=False),
                      EATING_SOUNDS.make_options(crop_size=16, channels=4, hidden=8,
                                                 valid_fraction=0.0))
    return files


def _sonify(argv, capsys):
    from pyro_videossm.cli import main

    status = main(["sonify", *map(str, argv)])
    return status, capsys.readouterr().err.strip().splitlines()


def test_sonify_netcdf_and_mp4(sonify_files, tmp_path, capsys):
    import soundfile

    out = tmp_path / "a.wav"
    status, _ = _sonify([sonify_files["nc"], "--model", sonify_files["model"], "-o", out,
                         "--iterations", "4"], capsys)
    assert status == 0
    audio, sr = soundfile.read(out)
    assert sr == 16000 and audio.shape == (15 * 640,)  # 0.6 s at 25 fps = 15 frames
    mux = tmp_path / "m.mp4"
    status, lines = _sonify([sonify_files["mp4"], "--model", sonify_files["model"], "-o",
                             tmp_path / "b.wav", "--mux", mux, "--iterations", "4"], capsys)
    assert status == 0 and mux.stat().st_size > 0
    assert "face found in" in lines[-1]


def test_sonify_refuses_bad_input_with_one_line(sonify_files, tmp_path, capsys):
    from pyro_videossm.data.video_files import write_mp4, write_wav
    from pyro_videossm.infer import save_model_file

    other = tmp_path / "other.pt"
    save_model_file(other, "dmm", {}, {})
    sound = write_wav(tmp_path / "sound.wav", np.zeros(1600, np.float32))
    blank = write_mp4(tmp_path / "blank.mp4", np.full((6, 64, 64, 3), 128, np.uint8))
    model = sonify_files["model"]
    cases = {
        "holds a 'dmm' model": [sonify_files["nc"], "--model", other, "-o", tmp_path / "x.wav"],
        "no video stream": [sound, "--model", model, "-o", tmp_path / "x.wav"],
        "no face found in 6 frames": [blank, "--model", model, "-o", tmp_path / "x.wav"],
        "would overwrite the input": [sonify_files["mp4"], "--model", model, "-o",
                                      tmp_path / "x.wav", "--mux", sonify_files["mp4"]],
    }
    for message, argv in cases.items():
        status, lines = _sonify(argv, capsys)
        assert status == 2 and len(lines) == 1 and message in lines[0], (message, lines)
    assert not (tmp_path / "x.wav").exists()
