"""DSVAE: vectorised log-density, recurrent prior, training, gradient reversal, swap, files."""

from __future__ import annotations

import numpy as np
import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro import poutine
from pyro.infer import Trace_ELBO
from pyro.poutine.util import site_is_subsample

from pyro_videossm.cli import main
from pyro_videossm.data.conventions import write_netcdf
from pyro_videossm.data.sprites import frames_tensor, labels_tensor, make_sprites
from pyro_videossm.errors import InputError
from pyro_videossm.infer import TrainConfig, save_model_file
from pyro_videossm.models.video.dsvae import (
    DisentangledSequentialVAE,
    RecurrentGaussianPrior,
    grad_reverse,
    load_dsvae,
    save_dsvae,
    swap,
    train_dsvae,
)

SMALL = dict(static_dim=4, dynamic_dim=3, feature_dim=16, hidden_dim=12, conv_channels=4)


@pytest.fixture(scope="module")
def tiny():
    ds = make_sprites("train", size=8, characters=3)
    return frames_tensor(ds), labels_tensor(ds, ["motion"])["motion"]


def _model(**kw) -> DisentangledSequentialVAE:
    torch.manual_seed(0)
    return DisentangledSequentialVAE(3, 8, **{**SMALL, **kw})


@pytest.mark.parametrize("likelihood", ["bernoulli", "normal"])
def test_vectorised_log_prob_equals_per_frame_computation(tiny, likelihood):
    x, _ = tiny
    x = x[:3, :5]
    model = _model(likelihood=likelihood)
    batch = {"frames": x}
    guide_tr = poutine.trace(model.guide).get_trace(batch)
    model_tr = poutine.trace(poutine.replay(model.model, trace=guide_tr)).get_trace(batch)
    vectorised = model_tr.log_prob_sum()

    f, z = guide_tr.nodes["f"]["value"], guide_tr.nodes["z"]["value"]
    B, T = z.shape[:2]
    ref = dist.Normal(0.0, 1.0).log_prob(f).sum()
    state, z_prev = None, torch.zeros(B, model.dynamic_dim)
    for t in range(T):  # recurrent prior, one step at a time
        loc, scale, state = model.prior.step(z_prev, state)
        ref = ref + dist.Normal(loc, scale).log_prob(z[:, t]).sum()
        z_prev = z[:, t]
    for b in range(B):  # likelihood, one frame at a time
        for t in range(T):
            logits = model.decoder(torch.cat([f[b], z[b, t]]))
            if likelihood == "bernoulli":
                lp = dist.Bernoulli(logits=logits, validate_args=False).log_prob(x[b, t])
            else:
                lp = dist.Normal(torch.sigmoid(logits), model.pixel_scale).log_prob(x[b, t])
            ref = ref + lp.sum()
    torch.testing.assert_close(vectorised, ref, rtol=1e-5, atol=1e-3)
    # one site per clip for each latent and for the frames
    sites = [n for n, s in model_tr.nodes.items()
             if s["type"] == "sample" and not site_is_subsample(s)]
    assert sites == ["f", "z", "x"]
    assert model_tr.nodes["z"]["fn"].event_shape == (T, model.dynamic_dim)


def test_recurrent_prior_sample_and_log_prob():
    model = _model()
    prior = RecurrentGaussianPrior(model.prior, batch_size=4, num_steps=6)
    z = prior.sample((5,))
    assert z.shape == (5, 4, 6, 3)
    lp = prior.log_prob(z)
    assert lp.shape == (5, 4)
    # log_prob of a draw equals the sum of the step densities used to draw it
    torch.manual_seed(3)
    zr = prior.rsample()
    torch.manual_seed(3)
    state, zp, ref = None, torch.zeros(4, 3), torch.zeros(4)
    for _ in range(6):
        loc, scale, state = model.prior.step(zp, state)
        zp = loc + scale * torch.randn_like(loc)
        ref = ref + dist.Normal(loc, scale).log_prob(zp).sum(-1)
    torch.testing.assert_close(prior.log_prob(zr), ref)


def test_gradient_reversal_flips_the_gradient_reaching_the_encoder(tiny):
    x, y = tiny
    g = torch.randn(5, 4)
    a = torch.randn(5, 4, requires_grad=True)
    (grad_reverse(a, 0.7) * g).sum().backward()
    torch.testing.assert_close(a.grad, -0.7 * g)

    model = _model(adversarial=True, adversary_mode="grl")
    enc = model.static_encoder.head.weight
    adv = model.adversary.net[0].weight

    def grads(reverse: bool):
        model.zero_grad()
        f, _, _, _ = model.encode(x[:6])
        if reverse:
            loss = model.adversary_loss(f, y[:6]).sum()
        else:
            loss = torch.nn.functional.cross_entropy(model.adversary(f), y[:6], reduction="sum")
        loss.backward()
        return enc.grad.clone(), adv.grad.clone()

    enc_rev, adv_rev = grads(True)
    enc_plain, adv_plain = grads(False)
    assert enc_plain.abs().sum() > 0
    torch.testing.assert_close(enc_rev, -model.grl_lambda * enc_plain)
    torch.testing.assert_close(adv_rev, adv_plain)  # the classifier itself still learns

    # in the model the adversary enters as a factor -weight * CE(classifier(f), motion)
    batch = {"frames": x[:6], "motion": y[:6]}
    guide_tr = poutine.trace(model.guide).get_trace(batch)
    model_tr = poutine.trace(poutine.replay(model.model, trace=guide_tr)).get_trace(batch)
    f = guide_tr.nodes["f"]["value"]
    ce = torch.nn.functional.cross_entropy(model.adversary(f), y[:6], reduction="none")
    site = model_tr.nodes["adversary"]
    torch.testing.assert_close(site["fn"].log_prob(site["value"]), -model.adversary_weight * ce)
    # without labels (generation, evaluation) there is no factor
    tr = poutine.trace(poutine.replay(model.model, trace=guide_tr)).get_trace(
        {"frames": x[:6]})
    assert "adversary" not in tr.nodes


def test_minmax_adversary_trains_classifier_and_confuses_encoder(tiny):
    x, y = tiny
    model = _model(adversarial=True)  # adversary_mode="minmax"
    enc = model.static_encoder.head.weight
    adv = model.adversary.net[-1].weight

    def grads(loss_fn):
        model.zero_grad()
        f, _, _, _ = model.encode(x[:6])
        loss_fn(f).sum().backward()
        return (enc.grad.clone() if enc.grad is not None else torch.zeros_like(enc),
                adv.grad.clone() if adv.grad is not None else torch.zeros_like(adv))

    def ce(f):
        return torch.nn.functional.cross_entropy(model.adversary(f), y[:6], reduction="none")

    def to_uniform(f):
        return -torch.log_softmax(model.adversary(f), -1).mean(-1)

    enc_mm, adv_mm = grads(lambda f: model.adversary_loss(f, y[:6]))
    _, adv_ce = grads(ce)
    enc_u, _ = grads(to_uniform)
    torch.testing.assert_close(adv_mm, adv_ce)  # the classifier minimises its CE only
    torch.testing.assert_close(enc_mm, enc_u)  # the encoder pushes it towards chance only
    assert enc_u.abs().sum() > 0
    # at chance (a classifier that outputs uniform predictions) the confusion term is zero
    with torch.no_grad():
        model.adversary.net[-1].weight.zero_()
        model.adversary.net[-1].bias.zero_()
    f = model.encode(x[:6])[0]
    torch.testing.assert_close(model.adversary_loss(f, y[:6]), ce(f))


def _elbo(model, x, n=20):
    pyro.set_rng_seed(1)
    with torch.no_grad():
        return -Trace_ELBO(num_particles=n, vectorize_particles=False).loss(
            model.model, model.guide, {"frames": x})


@pytest.mark.parametrize("adversarial", [False, True])
def test_a_few_training_steps_increase_the_elbo(tiny, adversarial):
    x, y = tiny
    model = _model(adversarial=adversarial)
    before = _elbo(model, x)
    history = train_dsvae(model, x, y, TrainConfig(epochs=6, batch_size=9, lr=3e-3,
                                                   progress=False))
    after = _elbo(model, x)
    assert len(history) == 6
    assert after > before + 0.05 * abs(before), (before, after)


def test_swap_generate_shapes(tiny):
    x, _ = tiny
    model = _model()
    T = x.shape[1]
    out = swap(model, x[:2], x[5:7])
    assert out.shape == (2, T, 3, 8, 8) and 0 <= out.min() and out.max() <= 1
    grid = swap(model, x[:3], x[4:6], pairwise=True)
    assert grid.shape == (3, 2, T, 3, 8, 8)
    torch.testing.assert_close(grid[1, 0], swap(model, x[1:2], x[4:5])[0])
    assert model.generate(4, 5).shape == (4, 5, 3, 8, 8)
    with pytest.raises(InputError, match="as many"):
        swap(model, x[:3], x[:2])


def test_bad_input_and_model_files(tiny, tmp_path):
    x, y = tiny
    model = _model(adversarial=True)
    with pytest.raises(InputError, match="expected frames of shape"):
        model.encode(x[:, :, :, :4])
    with pytest.raises(InputError, match="expected frames of shape"):
        model.model({"frames": x[0]})
    with pytest.raises(InputError, match="motion labels"):
        train_dsvae(model, x, None, TrainConfig(epochs=1, progress=False))
    with pytest.raises(InputError, match="frame size"):
        DisentangledSequentialVAE(3, 12)
    with pytest.raises(InputError, match="likelihood"):
        DisentangledSequentialVAE(3, 8, likelihood="poisson")
    path = tmp_path / "m.pt"
    save_dsvae(model, path, extra={"note": "x"})
    back, extra = load_dsvae(path)
    assert extra["note"] == "x" and back.adversarial
    torch.testing.assert_close(back.encode(x[:2])[0], model.encode(x[:2])[0])
    other = tmp_path / "other.pt"
    save_model_file(other, name="dmm", config={}, state_dict={})
    with pytest.raises(InputError, match="'dmm' model"):
        load_dsvae(other)
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    with pytest.raises(InputError):
        load_dsvae(tmp_path / "junk.pt")
    bad = tmp_path / "bad.pt"
    save_model_file(bad, name="dsvae", config={"channels": 3, "size": 8, "nope": 1},
                    state_dict={})
    with pytest.raises(InputError, match="config"):
        load_dsvae(bad)


def test_cli_train_dsvae(tmp_path):
    data = tmp_path / "sp.nc"
    write_netcdf(make_sprites("all", size=8, characters=3), data)
    out = tmp_path / "m.pt"
    args = ["train", "dsvae", str(data), "-o", str(out), "--epochs", "1", "--static-dim", "4",
            "--dynamic-dim", "2", "--hidden-dim", "8", "--feature-dim", "8",
            "--conv-channels", "4", "--no-progress"]
    assert main(args + ["--adversarial"]) == 0
    model, extra = load_dsvae(out)
    assert model.adversarial and model.size == 8 and len(extra["history"]) == 1
    assert main(["train", "dsvae", str(tmp_path / "missing.nc"), "-o", str(out)]) == 2


def test_grey_moving_digits_train_and_swap(tmp_path):
    """Second data set: moving digits (frames(clip, time, y, x), read as one channel)."""
    from pyro_videossm.data.moving_digits import moving_digits

    g = np.random.default_rng(0)
    digits = ((g.random((20, 6, 6)) > 0.5) * 255).astype(np.uint8), np.arange(20) % 10
    ds = moving_digits(6, canvas=16, n_digits=1, n_frames=5, speed=2.0, digits=digits,
                       split="all")
    data = tmp_path / "digits.nc"
    write_netcdf(ds, data)
    x = frames_tensor(ds)
    assert x.shape == (6, 5, 1, 16, 16)
    out = tmp_path / "m.pt"
    assert main(["train", "dsvae", str(data), "-o", str(out), "--epochs", "1", "--static-dim",
                 "3", "--dynamic-dim", "2", "--hidden-dim", "8", "--feature-dim", "8",
                 "--conv-channels", "2", "--no-progress"]) == 0
    model, _ = load_dsvae(out)
    assert model.channels == 1 and model.size == 16
    assert swap(model, x[:2], x[2:4]).shape == (2, 5, 1, 16, 16)
    png = tmp_path / "g.png"
    assert main(["swap", str(out), str(data), "-o", str(png), "--rows", "2", "--cols", "2"]) == 0
    assert png.exists()
