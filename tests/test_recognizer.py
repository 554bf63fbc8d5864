"""Action recognition: stratified label subsets, the recognizer's head, its model file and the
``videossm recognize`` command."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from pyro_videossm.data.label_subsets import class_quota, stratified_subset
from pyro_videossm.errors import InputError
from pyro_videossm.infer import TrainConfig
from pyro_videossm.models.video.dsvae import DisentangledSequentialVAE
from pyro_videossm.models.video.recognizer import (
    Recognizer,
    SequenceClassifier,
    accuracy,
    epochs_for_steps,
    load_recognizer,
    save_recognizer,
    standardise_latents,
    train_recognizer,
)


# -- label subsets -----------------------------------------------------------------------------
def test_stratified_subset_keeps_the_fraction_of_every_class():
    labels = np.repeat(np.arange(9), [1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 37])
    np.random.default_rng(0).shuffle(labels)
    idx = stratified_subset(labels, 0.01, seed=3)
    counts = np.bincount(labels[idx], minlength=9)
    assert counts.tolist() == [10] * 8 + [1]  # round(0.37) = 0 -> at least 1
    assert len(np.unique(idx)) == len(idx) and np.all(np.diff(idx) > 0)
    assert class_quota(37, 0.1) == 4 and class_quota(5, 1.0) == 5


def test_stratified_subset_is_deterministic_by_seed_and_nested_by_class():
    labels = np.tile(np.arange(4), 50)
    a, b = stratified_subset(labels, 0.2, seed=7), stratified_subset(labels, 0.2, seed=7)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, stratified_subset(labels, 0.2, seed=8))
    # a class's clips depend only on the seed and that class, not on the others
    other = np.where(labels == 3, 2, labels)
    c0 = a[labels[a] == 0]
    d = stratified_subset(other, 0.2, seed=7)
    assert np.array_equal(c0, d[other[d] == 0])
    assert np.array_equal(stratified_subset(labels, 1.0, seed=1), np.arange(200))


@pytest.mark.parametrize("fraction", [0.0, -0.1, 1.5])
def test_stratified_subset_refuses_bad_fractions(fraction):
    with pytest.raises(InputError, match="fraction"):
        stratified_subset(np.zeros(5, int), fraction)


def test_stratified_subset_refuses_non_integer_labels():
    with pytest.raises(InputError, match="integer"):
        stratified_subset(np.array([0.5, 1.0]), 0.5)


# -- the head on a separable toy latent --------------------------------------------------------
def _toy_latents(n_per_class: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Three classes of sequences (T=6, Z=2): the class sets the direction of a drift; every
    clip has a random offset (static content), so the classes differ only in their motion."""
    g = torch.Generator().manual_seed(seed)
    directions = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]])
    y = torch.arange(3).repeat_interleave(n_per_class)
    t = torch.arange(6.0)[None, :, None]
    z = (torch.randn(len(y), 1, 2, generator=g) + 0.5 * t * directions[y][:, None]
         + 0.1 * torch.randn(len(y), 6, 2, generator=g))
    return z, y


def test_sequence_head_learns_a_separable_toy_latent():
    from pyro_videossm.infer import LossObjective, Trainer

    torch.manual_seed(0)
    z, y = _toy_latents(20, seed=0)
    head = SequenceClassifier(2, 16, 3)
    config = TrainConfig(epochs=epochs_for_steps(200, len(y), 16), batch_size=16, lr=1e-2,
                         progress=False)
    Trainer(LossObjective(head, lambda m, b: torch.nn.functional.cross_entropy(
        m(b["features"]), b["label"])), config).fit({"features": z, "label": y})
    z_test, y_test = _toy_latents(50, seed=1)
    with torch.no_grad():
        acc = float((head(z_test).argmax(-1) == y_test).float().mean())
    assert acc >= 0.95
    untrained = SequenceClassifier(2, 16, 3)
    with torch.no_grad():
        assert float((untrained(z_test).argmax(-1) == y_test).float().mean()) < 0.8


def test_epochs_for_steps():
    assert epochs_for_steps(600, 90, 32) == 200      # 3 batches per epoch
    assert epochs_for_steps(600, 9000, 32) == 3      # 282 batches per epoch
    assert epochs_for_steps(5, 3, 32) == 5           # one batch of 3 clips per epoch


# -- the recognizer ---------------------------------------------------------------------------
def _dsvae() -> DisentangledSequentialVAE:
    torch.manual_seed(0)
    return DisentangledSequentialVAE(1, 8, static_dim=2, dynamic_dim=3, feature_dim=6,
                                     hidden_dim=5, conv_channels=2)


def _clips(n: int = 12, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A bright pixel moving right (class 0) or down (class 1) over 4 frames of 8 x 8."""
    g = torch.Generator().manual_seed(seed)
    x = torch.zeros(n, 4, 1, 8, 8)
    y = torch.arange(n) % 2
    for i in range(n):
        r, c = torch.randint(0, 4, (2,), generator=g).tolist()
        for t in range(4):
            x[i, t, 0, r + t * int(y[i]), c + t * int(1 - y[i])] = 1.0
    return x, y


def test_latent_recognizer_uses_the_dsvae_posterior_means_and_keeps_them_frozen():
    dsvae = _dsvae()
    rec = Recognizer.from_dsvae(dsvae, 2, head_hidden=4)
    x, y = _clips()
    with torch.no_grad():
        _, _, z_loc, _ = dsvae.encode(x)
        assert torch.allclose(rec.latents(x), z_loc)
    standardise_latents(rec, x)
    flat = z_loc.reshape(-1, 3)
    assert torch.allclose(rec.z_mean, flat.mean(0), atol=1e-6)
    assert torch.allclose(rec.features(x).reshape(-1, 3).std(0), torch.ones(3), atol=1e-4)
    before = {k: v.clone() for k, v in rec.state_dict().items() if not k.startswith("head")}
    head_before = rec.head.out.weight.clone()
    train_recognizer(rec, x, y, TrainConfig(batch_size=4, lr=1e-2, progress=False), steps=6)
    for k, v in rec.state_dict().items():
        if not k.startswith("head"):
            assert torch.equal(v, before[k]), k
    assert not torch.equal(rec.head.out.weight, head_before)
    assert 0.0 <= accuracy(rec, x, y) <= 1.0


def test_supervised_recognizer_learns_the_toy_motion(tmp_path):
    torch.manual_seed(0)
    rec = Recognizer(2, 1, 8, kind="supervised", feature_dim=8, conv_channels=4,
                     head_hidden=8, class_names=["right", "down"])
    x, y = _clips(24, seed=0)
    train_recognizer(rec, x, y, TrainConfig(batch_size=8, lr=1e-2, progress=False), steps=200)
    x_test, y_test = _clips(32, seed=1)
    acc = accuracy(rec, x_test, y_test)
    assert acc >= 0.9
    save_recognizer(rec, tmp_path / "r.pt")
    back, _ = load_recognizer(tmp_path / "r.pt")
    assert back.class_names == ["right", "down"] and back.kind == "supervised"
    assert torch.allclose(back.predict_proba(x_test), rec.predict_proba(x_test))


def test_recognizer_refuses_wrong_labels_and_frames():
    rec = Recognizer(2, 1, 8, kind="supervised", feature_dim=4, conv_channels=2, head_hidden=4)
    x, y = _clips(4)
    config = TrainConfig(batch_size=4, progress=False)
    with pytest.raises(InputError, match="out of range"):
        train_recognizer(rec, x, y + 5, config, steps=1)
    with pytest.raises(InputError, match="one label per clip"):
        train_recognizer(rec, x, y[:2], config, steps=1)
    with pytest.raises(InputError, match="expects frames"):
        rec(torch.zeros(2, 4, 3, 8, 8))
    with pytest.raises(InputError, match="kind"):
        Recognizer(2, 1, 8, kind="nosuchkind")


# -- the command line --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sprites_and_models(tmp_path_factory):
    from pyro_videossm.cli import main

    d = tmp_path_factory.mktemp("recognize")
    video, dsvae, rec = d / "sprites.nc", d / "dsvae.pt", d / "rec.pt"
    assert main(["simulate", "sprites", "--size", "8", "--frames", "3", "--characters", "3",
                 "--split", "all", "-o", str(video), "--no-progress"]) == 0
    assert main(["train", "dsvae", str(video), "-o", str(dsvae), "--epochs", "1",
                 "--static-dim", "2", "--dynamic-dim", "2", "--hidden-dim", "4",
                 "--feature-dim", "4", "--conv-channels", "2", "--no-progress"]) == 0
    assert main(["train", "recognizer", str(video), "--dsvae", str(dsvae), "-o", str(rec),
                 "--steps", "2", "--head-hidden", "4", "--label-fraction", "0.5",
                 "--no-progress"]) == 0
    return video, dsvae, rec


def test_recognize_prints_accuracy_and_writes_predictions(sprites_and_models, tmp_path, capsys):
    import xarray as xr

    from pyro_videossm.cli import main

    video, _, rec_path = sprites_and_models
    rec, extra = load_recognizer(rec_path)
    assert rec.kind == "latent" and extra["labelled_clips"] == 9  # half of 2 x 9 clips
    capsys.readouterr()
    assert main(["recognize", str(video), "--model", str(rec_path), "--split", "test",
                 "-o", str(tmp_path / "p.json")]) == 0
    out = capsys.readouterr().out
    payload = json.loads((tmp_path / "p.json").read_text())
    ds = xr.load_dataset(video)
    test = ds.isel(clip=np.flatnonzero(ds["split"].values == 1))
    expected = float(np.mean(np.asarray(payload["predicted"]) == test["motion"].values))
    assert payload["accuracy"] == pytest.approx(expected)
    assert f"motion accuracy on 9 clips: {expected:.2%}" in out
    assert main(["recognize", str(video), "--model", str(rec_path),
                 "-o", str(tmp_path / "p.nc")]) == 0
    pred = xr.load_dataset(tmp_path / "p.nc")
    assert pred["predicted_motion"].sizes["clip"] == 27
    assert np.allclose(pred["probability"].sum("class"), 1, atol=1e-5)


def test_recognize_bad_input_is_one_line(sprites_and_models, tmp_path, capsys):
    from pyro_videossm.cli import main

    video, dsvae, rec_path = sprites_and_models
    cases = [(["recognize", str(video), "--model", str(dsvae)], "not 'recognizer'"),
             (["recognize", str(video), "--model", str(rec_path), "-o", str(video)],
              "overwrite"),
             (["recognize", str(video), "--model", str(rec_path), "-o",
               str(tmp_path / "p.txt")], ".nc or .json"),
             (["recognize", str(tmp_path / "none.nc"), "--model", str(rec_path)],
              "no such file"),
             (["train", "recognizer", str(video), "-o", str(tmp_path / "r.pt"),
               "--no-progress"], "needs --dsvae"),
             (["train", "recognizer", str(video), "--supervised", "--dsvae", str(dsvae), "-o",
               str(tmp_path / "r.pt"), "--no-progress"], "leave out --dsvae"),
             (["train", "recognizer", str(video), "--dsvae", str(dsvae), "--label-fraction",
               "1.5", "-o", str(tmp_path / "r.pt"), "--no-progress"], "out of range")]
    for argv, message in cases:
        capsys.readouterr()
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and message in err, err
    assert not (tmp_path / "r.pt").exists() and not (tmp_path / "p.txt").exists()
