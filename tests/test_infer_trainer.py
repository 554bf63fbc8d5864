"""The training loop on tiny models with known optima (pyro_videossm.infer)."""

from __future__ import annotations

import math

import pyro
import pytest
import torch
from pyro.infer import JitTrace_ELBO, Trace_ELBO, TraceMeanField_ELBO
from torch.utils.data import Dataset
from toy_models import ConjugateGaussian, LinearRegression, mse_loss

from pyro_videossm.errors import InputError
from pyro_videossm.infer import (
    LossObjective,
    SVIObjective,
    TrainConfig,
    Trainer,
    TrainingDiverged,
    annealing_factor,
)


@pytest.fixture(autouse=True)
def _clean_param_store():
    pyro.clear_param_store()
    yield
    pyro.clear_param_store()


def conjugate_data(n: int = 256, d: int = 4, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return 1.1 * torch.randn(n, d, generator=g)


def regression_data(n: int = 128, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 2, generator=g)
    y = x @ torch.tensor([[3.0], [-2.0]]) + 0.5 + 0.1 * torch.randn(n, 1, generator=g)
    return {"x": x, "y": y}


@pytest.mark.parametrize("elbo", [Trace_ELBO, TraceMeanField_ELBO, JitTrace_ELBO])
def test_svi_learns_exact_posterior(elbo):
    x = conjugate_data()
    torch.manual_seed(0)
    model = ConjugateGaussian(obs_std=0.5)
    config = TrainConfig(epochs=40, batch_size=64, lr=0.05, lr_decay=0.9, progress=False,
                         drop_last=True)
    history = Trainer(SVIObjective(model, elbo()), config).fit({"x": x}, {"x": x})
    w, std = model.exact_posterior()  # 0.8, 0.447
    assert model.encoder.weight.item() == pytest.approx(w, abs=0.02)
    assert model.encoder.bias.item() == pytest.approx(0.0, abs=0.02)
    assert pyro.param("conjugate_q_scale").item() == pytest.approx(std, abs=0.02)
    # the loss falls to -log p(x), reached only by the exact posterior
    assert history[0]["train_loss"] > history[-1]["train_loss"] + 3
    assert history[-1]["valid_loss"] == pytest.approx(model.exact_nll(x), abs=0.05)
    assert [h["epoch"] for h in history] == list(range(1, 41))
    assert history[-1]["lr"] == pytest.approx(0.05 * 0.9**40, rel=1e-4)


def test_annealing_schedule_values():
    config = TrainConfig(anneal_epochs=2, min_anneal=0.2)
    values = [annealing_factor(config, e, b, 4) for e in range(3) for b in range(4)]
    expected = [0.2 + 0.8 * k / 8 for k in range(1, 9)] + [1.0] * 4
    assert values == pytest.approx(expected)
    assert annealing_factor(TrainConfig(anneal_epochs=0), 0, 0, 4) == 1.0


class RecordingConjugate(ConjugateGaussian):
    """Records the annealing factor the model receives."""

    def __init__(self):
        super().__init__()
        self.factors: list[float] = []

    def model(self, batch, annealing_factor=1.0):
        self.factors.append(float(annealing_factor))
        super().model(batch, annealing_factor)


def test_model_receives_annealing_factor_and_validation_is_unannealed():
    model = RecordingConjugate()
    config = TrainConfig(epochs=3, batch_size=10, anneal_epochs=2, min_anneal=0.5,
                         progress=False)
    history = Trainer(SVIObjective(model), config).fit({"x": conjugate_data(40)},
                                                       {"x": conjugate_data(10, seed=1)})
    # per epoch: 4 training steps, then one validation batch at factor 1
    train = [f for i, f in enumerate(model.factors) if i % 5 != 4]
    valid = [f for i, f in enumerate(model.factors) if i % 5 == 4]
    assert train == pytest.approx([0.5 + 0.5 * k / 8 for k in range(1, 9)] + [1.0] * 4)
    assert valid == [1.0, 1.0, 1.0]
    assert [h["anneal"] for h in history] == pytest.approx([0.75, 1.0, 1.0])


def test_loss_objective_fits_regression():
    data = regression_data()
    module = LinearRegression(2)
    config = TrainConfig(epochs=150, batch_size=32, lr=0.1, lr_decay=0.97, progress=False)
    history = Trainer(LossObjective(module, mse_loss), config).fit(data, data)
    x1 = torch.cat([data["x"], torch.ones(len(data["x"]), 1)], 1)
    exact = torch.linalg.lstsq(x1, data["y"]).solution.squeeze(1)
    fitted = torch.cat([module.linear.weight.detach().squeeze(0), module.linear.bias.detach()])
    assert torch.allclose(fitted, exact, atol=0.005)
    assert history[-1]["valid_loss"] < 0.02 < history[0]["train_loss"]


def test_early_stopping_stops_and_restores_best():
    # Training pulls w from 0 to 2, validation is best at w = 1: the validation loss falls,
    # then rises, and training must stop `patience` epochs after the best one.
    x = torch.linspace(-1, 1, 32).unsqueeze(1)
    train = {"x": x, "y": 2 * x}
    valid = {"x": x, "y": x}
    module = torch.nn.Linear(1, 1, bias=False)
    torch.nn.init.zeros_(module.weight)
    config = TrainConfig(epochs=200, batch_size=32, lr=0.02, patience=3, progress=False)
    history = Trainer(LossObjective(module, mse_loss), config).fit(train, valid)
    losses = [h["valid_loss"] for h in history]
    best = min(range(len(losses)), key=losses.__getitem__)
    assert len(history) == best + 1 + 3 < 200
    assert module.weight.item() == pytest.approx(1.0, abs=0.05)
    with torch.no_grad():
        assert mse_loss(module, valid).item() == pytest.approx(losses[best], rel=1e-6)


class DictDataset(Dataset):
    def __init__(self, data):
        self.data = data

    def __len__(self):
        return len(self.data["x"])

    def __getitem__(self, i):
        return {k: v[i] for k, v in self.data.items()}


def test_dataset_input_equals_dict_input():
    data = regression_data(50)
    results = []
    for source in (data, DictDataset(data)):
        torch.manual_seed(0)
        module = LinearRegression(2)
        config = TrainConfig(epochs=3, batch_size=8, lr=0.05, progress=False)
        history = Trainer(LossObjective(module, mse_loss), config).fit(source, source)
        results.append((module.state_dict(), history))
    (a, ha), (b, hb) = results
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert [h["valid_loss"] for h in ha] == [h["valid_loss"] for h in hb]


class Interrupted(Exception):
    pass


class StopAt:
    """Raises after ``stop_at`` optimiser steps (a crash in the middle of an epoch)."""

    def __init__(self, *args, stop_at, **kwargs):
        super().__init__(*args, **kwargs)
        self.stop_at, self.steps = stop_at, 0

    def apply(self, params):
        super().apply(params)
        self.steps += 1
        if self.steps == self.stop_at:
            raise Interrupted


class LossStopAt(StopAt, LossObjective):
    pass


class SVIStopAt(StopAt, SVIObjective):
    pass


def _resume_run(tmp_path, stop_at, resume, name="ckpt.pt", kind="loss", **overrides):
    torch.manual_seed(0)
    if kind == "loss":
        data = regression_data(60)
        module = LinearRegression(2)
        objective = LossStopAt(module, mse_loss, stop_at=stop_at)
    else:
        data = {"x": conjugate_data(60, 2)}
        module = ConjugateGaussian()
        objective = SVIStopAt(module, stop_at=stop_at)
    options = dict(epochs=3, batch_size=8, lr=0.05, lr_decay=0.5, checkpoint_path=str(
        tmp_path / name), checkpoint_every=5, progress=False, patience=10, anneal_epochs=1)
    options.update(overrides)
    trainer = Trainer(objective, TrainConfig(**options))
    history = trainer.fit(DictDataset(data), data, resume=resume)
    return module, history


@pytest.mark.parametrize("kind", ["loss", "svi"])
def test_resume_from_mid_epoch_checkpoint_is_exact(tmp_path, kind):
    # 8 batches per epoch; checkpoints at steps 5 (mid-epoch 1), 8 (end), 10 (mid-epoch 2)
    full, full_history = _resume_run(tmp_path, 0, False, name="full.pt", kind=kind)
    full_store = {k: v.detach().clone() for k, v in pyro.get_param_store().items()}
    with pytest.raises(Interrupted):
        _resume_run(tmp_path, 13, False, kind=kind)
    ckpt = torch.load(tmp_path / "ckpt.pt", weights_only=True)
    assert (ckpt["epoch"], ckpt["step"], ckpt["batch_pos"]) == (1, 10, 2)
    resumed, history = _resume_run(tmp_path, 0, True, kind=kind)
    assert all(torch.equal(v, resumed.state_dict()[k]) for k, v in full.state_dict().items())
    if kind == "svi":
        assert torch.equal(full_store["conjugate_q_scale"], pyro.param("conjugate_q_scale"))
    strip = [{k: v for k, v in h.items() if k != "seconds"} for h in full_history]
    assert strip == [{k: v for k, v in h.items() if k != "seconds"} for h in history]


def test_resume_refuses_other_settings(tmp_path):
    _resume_run(tmp_path, 0, False, epochs=1)
    with pytest.raises(InputError, match="batch_size"):
        _resume_run(tmp_path, 0, True, batch_size=4)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match="junk.pt"):
        _resume_run(tmp_path, 0, True, name="junk.pt")


class NaNAt(SVIObjective):
    """Reports a NaN loss at optimiser step ``nan_at``, as a diverging model would; the loss
    is a float (Pyro's Trace_ELBO.loss_and_grads) or a device tensor (sync-free step)."""

    def __init__(self, module, nan_at, as_tensor=False):
        super().__init__(module, Trace_ELBO(), sync_free=as_tensor)
        self.nan_at, self.calls = nan_at, 0

    def loss_and_grads(self, batch, annealing_factor):
        loss, params = super().loss_and_grads(batch, annealing_factor)
        self.calls += 1
        if self.calls == self.nan_at:
            loss = loss * math.nan
        return loss, params


@pytest.mark.parametrize("as_tensor", [False, True])
def test_nan_loss_raises_and_keeps_last_good_checkpoint(tmp_path, as_tensor):
    path = tmp_path / "ckpt.pt"
    model = ConjugateGaussian()
    config = TrainConfig(epochs=5, batch_size=10, checkpoint_path=str(path), checkpoint_every=3,
                         progress=False, log_every=4)
    objective = NaNAt(model, nan_at=11, as_tensor=as_tensor)
    with pytest.raises(TrainingDiverged, match=r"nan at step 11 \(epoch 3, batch 3\).*step 9"):
        Trainer(objective, config).fit({"x": conjugate_data(40)})
    ckpt = torch.load(path, weights_only=True)
    assert ckpt["step"] == 9
    assert all(torch.isfinite(v).all() for v in ckpt["module"].values())
    if not as_tensor:  # a float loss is checked before the optimiser step
        assert all(torch.isfinite(p).all() for p in model.parameters())


def test_bad_data_is_input_error():
    objective = LossObjective(LinearRegression(2), mse_loss)
    trainer = Trainer(objective, TrainConfig(epochs=1, progress=False))
    with pytest.raises(InputError, match="first"):
        trainer.fit({"x": torch.zeros(4, 2), "y": torch.zeros(5, 1)})
    with pytest.raises(InputError, match="no items"):
        trainer.fit({"x": torch.zeros(0, 2), "y": torch.zeros(0, 1)})
    with pytest.raises(InputError, match="lr"):
        TrainConfig(lr=-1.0)
    with pytest.raises(InputError, match="wrong type"):
        TrainConfig(epochs=None)


class DiscreteLatent(torch.nn.Module):
    """``z ~ Bernoulli(0.3)``, ``x ~ N(2 z, 1)``; guide ``Bernoulli(sigmoid(a x + b))``: a
    non-reparameterised site, so the gradient goes through the score-function term."""

    def __init__(self):
        super().__init__()
        self.net = torch.nn.Linear(1, 1)

    def model(self, batch, annealing_factor=1.0):
        x = batch["x"]
        with pyro.plate("items", x.shape[0]):
            with pyro.poutine.scale(scale=annealing_factor):
                z = pyro.sample("z", pyro.distributions.Bernoulli(0.3 * torch.ones(len(x))))
            pyro.sample("x", pyro.distributions.Normal(2 * z, 1.0), obs=x)

    def guide(self, batch, annealing_factor=1.0):
        pyro.module("discrete", self)
        x = batch["x"]
        with pyro.plate("items", x.shape[0]):
            with pyro.poutine.scale(scale=annealing_factor):
                logits = self.net(x.unsqueeze(-1)).squeeze(-1)
                pyro.sample("z", pyro.distributions.Bernoulli(logits=logits))


@pytest.mark.parametrize("make", [ConjugateGaussian, DiscreteLatent])
def test_sync_free_trace_elbo_matches_pyro(make):
    torch.manual_seed(0)
    module = make()
    x = conjugate_data(16, 1) if make is DiscreteLatent else conjugate_data(16, 3)
    batch = {"x": x.squeeze(-1) if make is DiscreteLatent else x}
    results = []
    for sync_free in (False, True):
        objective = SVIObjective(module, Trace_ELBO(num_particles=2), sync_free=sync_free)
        pyro.set_rng_seed(1)
        loss, params = objective.loss_and_grads(batch, 0.7)
        results.append((loss, [p.grad.clone() for p in params]))
        for p in params:
            p.grad = None
    (pyro_loss, pyro_grads), (loss, grads) = results
    assert isinstance(pyro_loss, float) and isinstance(loss, torch.Tensor)
    assert loss.item() == pytest.approx(pyro_loss, rel=1e-5)
    assert len(grads) == len(pyro_grads) >= 2
    assert all(torch.equal(a, b) for a, b in zip(pyro_grads, grads))


def test_jit_elbo_takes_annealing_factor_as_input():
    torch.manual_seed(0)
    module = ConjugateGaussian()
    batch = {"x": conjugate_data(8, 2)}
    jit = SVIObjective(module, JitTrace_ELBO())
    plain = SVIObjective(module, Trace_ELBO(), sync_free=False)
    for p in jit.loss_and_grads(batch, 0.3)[1]:  # compiles (and runs the model once more)
        p.grad = None
    for factor in (0.3, 1.0, 0.6):
        losses = []
        for objective in (jit, plain):
            pyro.set_rng_seed(2)
            loss, params = objective.loss_and_grads(batch, factor)
            losses.append(loss)
            for p in params:
                p.grad = None
        assert losses[0] == pytest.approx(losses[1], rel=1e-5)
    assert len(jit.elbo._loss_and_surrogate_loss.compiled) == 1  # compiled once


def test_config_from_cli_arguments():
    import argparse

    from pyro_videossm.cli.train import add_common_training_arguments

    parser = argparse.ArgumentParser()
    add_common_training_arguments(parser)
    args = parser.parse_args(["data.nc", "-o", "m.pt", "--lr", "0.01", "--checkpoint", "c.pt",
                              "--no-progress"])
    config = TrainConfig.from_args(args, epochs=7, lr=1.0, anneal_epochs=3)
    assert (config.epochs, config.lr, config.anneal_epochs, config.batch_size) == (7, 0.01, 3, 32)
    assert (config.checkpoint_path, config.progress, config.seed) == ("c.pt", False, 0)


@pytest.mark.parametrize("make", [ConjugateGaussian, DiscreteLatent])
@pytest.mark.parametrize("sync_free", [False, True])
def test_forward_loss_gives_the_gradients_of_loss_and_grads(make, sync_free):
    # the forward pass of a data-parallel step, differentiated by the caller, against the
    # single-process step
    torch.manual_seed(0)
    module = make()
    x = conjugate_data(16, 1) if make is DiscreteLatent else conjugate_data(16, 3)
    batch = {"x": x.squeeze(-1) if make is DiscreteLatent else x}
    objective = SVIObjective(module, Trace_ELBO(num_particles=2), sync_free=sync_free)
    pyro.set_rng_seed(1)
    loss, params = objective.loss_and_grads(batch, 0.7)
    expected = [p.grad.clone() for p in params]
    for p in params:
        p.grad = None
    pyro.set_rng_seed(1)
    reported, differentiable = objective.forward_loss(batch, 0.7)
    differentiable.backward()
    assert isinstance(reported, torch.Tensor) and not reported.requires_grad
    assert reported.item() == pytest.approx(float(loss), rel=1e-5)
    assert all(torch.allclose(p.grad, g, rtol=1e-5, atol=1e-6) for p, g in zip(params, expected))


def test_trained_parameters_hold_param_store_sites_as_parameters():
    torch.manual_seed(0)
    module = ConjugateGaussian()
    objective = SVIObjective(module)
    named, differentiable = objective.trained_parameters({"x": conjugate_data(8, 2)}, 1.0)
    assert list(named) == ["conjugate$$$encoder.bias", "conjugate$$$encoder.weight",
                           "conjugate_q_scale"]
    assert named["conjugate$$$encoder.weight"] is module.encoder.weight
    q = named["conjugate_q_scale"]  # created in this call, now a Parameter in the store
    assert isinstance(q, torch.nn.Parameter)
    assert pyro.get_param_store()._params["conjugate_q_scale"] is q
    assert pyro.param("conjugate_q_scale").item() == 1.0
    grads = torch.autograd.grad(differentiable, list(named.values()))
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    reg = LinearRegression(2)
    named, _ = LossObjective(reg, mse_loss).trained_parameters(regression_data(8), 1.0)
    assert list(named) == ["linear.weight", "linear.bias"]


class FactorisationFailsAt(SVIObjective):
    """Raises ``torch.linalg.LinAlgError`` at step ``fail_at``, as a guide whose covariance
    lost positive definiteness does inside a Cholesky factorisation."""

    def __init__(self, module, fail_at):
        super().__init__(module, Trace_ELBO())
        self.fail_at, self.calls = fail_at, 0

    def loss_and_grads(self, batch, annealing_factor):
        self.calls += 1
        if self.calls == self.fail_at:
            torch.linalg.cholesky(-torch.eye(2))
        return super().loss_and_grads(batch, annealing_factor)


def test_a_failed_factorisation_stops_training_in_one_line(tmp_path):
    path = tmp_path / "ckpt.pt"
    config = TrainConfig(epochs=3, batch_size=10, checkpoint_path=str(path), checkpoint_every=3,
                         progress=False, log_every=4)
    objective = FactorisationFailsAt(ConjugateGaussian(), fail_at=5)
    with pytest.raises(TrainingDiverged) as info:
        Trainer(objective, config).fit({"x": conjugate_data(40)})
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("training diverged: a numerical failure (")
    assert "at step 5 (epoch 2, batch 1)" in message and "(step 4) is kept" in message
