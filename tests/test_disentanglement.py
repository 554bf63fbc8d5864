"""The judge and the disentanglement protocol: formulas, wiring, trust check, CLI, pictures."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from pyro_videossm.cli import main
from pyro_videossm.data.conventions import write_netcdf
from pyro_videossm.data.sprites import make_sprites
from pyro_videossm.errors import InputError
from pyro_videossm.evaluation import (
    Judge,
    UntrustedJudgeError,
    balanced_subset,
    check_trusted,
    classification_scores,
    evaluate_disentanglement,
    load_judge,
    save_judge,
)
from pyro_videossm.evaluation.judge import label_classes
from pyro_videossm.models.video.dsvae import DisentangledSequentialVAE, save_dsvae
from pyro_videossm.plots.video import plot_generated, swap_grid_image


def test_scores_on_hand_cases():
    K = 5
    uniform = classification_scores(torch.full((40, K), 1 / K))
    assert uniform["IS"] == pytest.approx(1.0)
    assert uniform["H_y_given_x"] == pytest.approx(math.log(K))
    assert uniform["H_y"] == pytest.approx(math.log(K))
    labels = torch.arange(40) % K
    perfect = classification_scores(torch.eye(K)[labels], labels)
    assert perfect["IS"] == pytest.approx(K) and perfect["accuracy"] == 1.0
    assert perfect["H_y_given_x"] == pytest.approx(0.0) and perfect["H_y"] == pytest.approx(
        math.log(K))
    # confident but always the same class: no diversity
    same = classification_scores(torch.eye(K)[torch.zeros(40, dtype=torch.long)], labels)
    assert same["IS"] == pytest.approx(1.0) and same["accuracy"] == pytest.approx(0.2)
    # two classes at 90 % confidence
    p = torch.tensor([[0.9, 0.1], [0.1, 0.9]])
    h = -(0.9 * math.log(0.9) + 0.1 * math.log(0.1))
    two = classification_scores(p, torch.tensor([0, 0]))
    assert two["H_y_given_x"] == pytest.approx(h) and two["H_y"] == pytest.approx(math.log(2))
    assert two["IS"] == pytest.approx(math.exp(math.log(2) - h))
    assert two["accuracy"] == 0.5
    # random predictions: IS = exp(H(y) - H(y|x)), bounded by K
    g = torch.Generator().manual_seed(0)
    r = torch.softmax(3 * torch.randn(100, 7, generator=g), -1)
    s = classification_scores(r)
    assert s["IS"] == pytest.approx(math.exp(s["H_y"] - s["H_y_given_x"]), rel=1e-9)
    assert 1.0 <= s["IS"] <= 7 and s["H_y"] <= math.log(7)


def test_balanced_subset():
    labels = torch.tensor([0] * 10 + [1] * 3 + [2] * 7 + [4] * 5)
    idx = balanced_subset(labels, 5, torch.Generator().manual_seed(0))
    counts = torch.bincount(labels[idx], minlength=5)
    assert counts.tolist() == [3, 3, 3, 0, 3]
    assert len(set(idx.tolist())) == len(idx)


class _OracleModel(DisentangledSequentialVAE):
    """A model whose latents are the labels: ``f`` = static class / 6 written into channel 1,
    ``z_t`` = motion class / 9 written into channel 0 (or the reverse with ``crossed``)."""

    def __init__(self, crossed: bool = False):
        super().__init__(3, 8, static_dim=1, dynamic_dim=1, feature_dim=4, hidden_dim=4,
                         conv_channels=2)
        self.crossed = crossed

    def encode(self, x):
        B, T = x.shape[:2]
        f = x[:, 0, 1, 0, :1]
        z = x[:, :, 0, 0, :1]
        return f, torch.ones_like(f), z, torch.ones_like(z)

    def decode(self, f, z):
        out = torch.zeros(*z.shape[:-1], 3, 8, 8)
        motion = f[..., None, :1].expand(*z.shape[:-1], 1) if self.crossed else z[..., :1]
        out[..., 0, 0, 0] = motion[..., 0]
        out[..., 1, 0, 0] = f[..., None, 0].expand(*z.shape[:-1])
        return out

    def sample_static(self, n):
        return torch.randint(0, 6, (n, 1)).float() / 6

    def sample_dynamics(self, n, num_steps):
        return (torch.randint(0, 9, (n, 1, 1)).float() / 9).expand(n, num_steps, 1)


class _OracleJudge(Judge):
    """Reads the classes back from the pixels the oracle model writes."""

    def __init__(self):
        super().__init__({"motion": 9, "skin": 6}, 3, 8, feature_dim=4, hidden_dim=4,
                         conv_channels=2)

    def predict_proba(self, frames, batch_size=256):
        m = torch.round(frames[:, 0, 0, 0, 0] * 9).long().clamp(0, 8)
        s = torch.round(frames[:, 0, 1, 0, 0] * 6).long().clamp(0, 5)
        return {"motion": torch.eye(9)[m], "skin": torch.eye(6)[s]}


def _oracle_clips():
    ds = make_sprites("test", size=8, characters=12)
    f = np.zeros(ds["frames"].shape, np.float32)
    f[:, :, 0, 0, 0] = ds["motion"].values[:, None] / 9
    f[:, :, 1, 0, 0] = ds["skin"].values[:, None] / 6
    return ds.assign(frames=(ds["frames"].dims, f))


def test_protocol_keeps_the_right_latents():
    clips = _oracle_clips()
    judge = _OracleJudge()
    torch.manual_seed(0)
    res = evaluate_disentanglement(_OracleModel(), judge, clips, repeats=3)
    assert res["judge"] == {"motion": 1.0, "skin": 1.0}
    motion = res["dynamics_kept"]["motion"]
    assert motion["accuracy"] == 1.0 and motion["IS"] == pytest.approx(9)
    assert res["static_kept"]["skin"]["accuracy"] == 1.0
    assert res["balanced_clips"]["motion"] == 12 * 9
    # a model that hides the motion in the static latent fails the dynamics-kept test
    crossed = evaluate_disentanglement(_OracleModel(crossed=True), judge, clips, repeats=3)
    assert crossed["dynamics_kept"]["motion"]["accuracy"] < 0.4


def test_untrusted_judge_and_missing_labels(tmp_path):
    clips = _oracle_clips()
    torch.manual_seed(0)
    judge = Judge({"motion": 9, "skin": 6}, 3, 8, feature_dim=4, hidden_dim=4, conv_channels=2)
    model = DisentangledSequentialVAE(3, 8, static_dim=2, dynamic_dim=2, feature_dim=4,
                                      hidden_dim=4, conv_channels=2)
    with pytest.raises(UntrustedJudgeError, match=r"motion accuracy on real test clips"):
        evaluate_disentanglement(model, judge, clips)
    with pytest.raises(UntrustedJudgeError, match="99%"):
        check_trusted({"motion": 0.98})
    check_trusted({"motion": 0.995})
    with pytest.raises(InputError, match="labels are needed"):
        evaluate_disentanglement(model, judge, clips.drop_vars("skin"), min_judge_accuracy=0)
    with pytest.raises(InputError, match="no head"):
        evaluate_disentanglement(model, judge, clips, static_labels=["hair"],
                                 min_judge_accuracy=0)
    assert label_classes(clips, ["motion", "hair"]) == {"motion": 9, "hair": 6}
    save_judge(judge, tmp_path / "j.pt")
    back, _ = load_judge(tmp_path / "j.pt")
    x = torch.rand(2, 8, 3, 8, 8)
    torch.testing.assert_close(back(x)["motion"], judge.eval()(x)["motion"])


def test_pictures_and_cli(tmp_path):
    data = tmp_path / "sp.nc"
    write_netcdf(make_sprites("all", size=8, characters=4), data)
    torch.manual_seed(0)
    model = DisentangledSequentialVAE(3, 8, static_dim=2, dynamic_dim=2, feature_dim=8,
                                      hidden_dim=8, conv_channels=2)
    mfile = tmp_path / "m.pt"
    save_dsvae(model, mfile)
    x = torch.rand(5, 8, 3, 8, 8)
    img = swap_grid_image(model, x[:2], x[2:5])
    assert img.shape == (3 * (8 + 4) + 4, 4 * (8 * 9 - 1 + 4) + 4, 3)
    plot_generated(model, n=2, num_steps=3)

    png = tmp_path / "grid.png"
    assert main(["swap", str(mfile), str(data), "-o", str(png), "--rows", "2", "--cols",
                 "3"]) == 0
    assert png.stat().st_size > 0
    base = ["evaluate-disentanglement", str(mfile), str(data), "--judge-epochs", "1",
            "--repeats", "1", "--no-progress"]
    assert main(base + ["--min-judge-accuracy", "0", "--json", str(tmp_path / "r.json"),
                        "--save-judge", str(tmp_path / "j.pt")]) == 0
    assert (tmp_path / "r.json").exists() and (tmp_path / "j.pt").exists()
    # a barely trained judge is not trusted: one-line error, status 2
    assert main(base + ["--judge", str(tmp_path / "j.pt")]) == 2
    # a judge file given as the model, and a model file given as the judge
    assert main(["evaluate-disentanglement", str(tmp_path / "j.pt"), str(data)]) == 2
    assert main(base + ["--judge", str(mfile)]) == 2
    # no labels
    nolab = tmp_path / "nolab.nc"
    write_netcdf(make_sprites("test", size=8, characters=1).drop_vars("motion"), nolab)
    assert main(base[:1] + [str(mfile), str(nolab), "--judge", str(tmp_path / "j.pt")]) == 2
