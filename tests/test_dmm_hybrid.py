"""Hybrid-physics DMM and the ``dmm`` assimilation method (Python API and CLI)."""

from __future__ import annotations

import pyro
import pytest
import torch
from toy_models import Rotation

from pyro_videossm.assimilate import assimilate, get_method
from pyro_videossm.data import simulate, write_netcdf
from pyro_videossm.dynamics import Lorenz63
from pyro_videossm.errors import InputError
from pyro_videossm.infer import TrainConfig
from pyro_videossm.metrics.posterior import rmse
from pyro_videossm.models.ssm.dmm import fit_dmm
from pyro_videossm.models.ssm.dmm_file import load_dmm, save_dmm
from pyro_videossm.models.ssm.hybrid import hybrid_dmm, observation_windows


@pytest.fixture(scope="module")
def l63():
    return simulate("lorenz63", cycles=120, seed=11)


def test_zero_correction_is_the_pure_physics_forecast(l63):
    dmm = hybrid_dmm(l63, system=Lorenz63(rho=24.0))
    # seeded: the coarse-proposal tolerance below is a bound for typical states, and an
    # unseeded draw occasionally hit a state where RK4 at dt 0.05 is further off
    generator = torch.Generator().manual_seed(0)
    z = torch.randn(7, 3, generator=generator) * 5 + torch.tensor([0.0, 0.0, 24.0])
    loc, scale = dmm.transition(z)
    physics = Lorenz63(rho=24.0).integrate(z, 25, 0.01)
    torch.testing.assert_close(loc, physics)
    assert scale.shape == (7, 3) and (scale > 0).all()
    # the correction is live: moving its output layer moves the forecast
    with torch.no_grad():
        dmm.transition.correction[-1].bias.fill_(0.1)
    assert not torch.allclose(dmm.transition(z)[0], physics)
    # the guide's coarser proposal is close to the exact forecast
    coarse = hybrid_dmm(l63, guide_substeps=5)
    torch.testing.assert_close(coarse.transition.proposal(z)[0],
                               Lorenz63().integrate(z, 25, 0.01), atol=0.05, rtol=0.01)


def test_hybrid_emission_is_the_observation_operator():
    ds = simulate("lorenz96", n=8, cycles=30, obs_operator="every:2", seed=2)
    dmm = hybrid_dmm(ds, rnn_dim=8)
    assert dmm.emitter.component_mask.tolist() == [True, False] * 4
    assert torch.allclose(dmm.likelihood.log_scale.exp(), torch.ones(8))
    from pyro_videossm.data import to_tensor_and_mask

    x, m = to_tensor_and_mask(ds["obs"].values)
    x[:, 1::2] = 123.0  # values at unobserved components are ignored
    data = dmm.unpack({"x": x[None], "mask": torch.ones_like(m)[None]})
    assert not data.obs_mask[..., 1::2].any() and (data.x[..., 1::2] == 0).all()


def test_brief_training_gives_a_posterior_better_than_the_observations(tmp_path):
    # Lorenz-63 observed every 5 RK4 steps (interval 0.05) with the standard noise
    torch.manual_seed(0)
    train = simulate("lorenz63", cycles=400, steps_per_obs=5, seed=5)
    test = simulate("lorenz63", cycles=120, steps_per_obs=5, seed=11)
    dmm = hybrid_dmm(train, rnn_dim=16, correction_hidden=(16,))
    config = TrainConfig(epochs=8, batch_size=32, lr=1e-2, progress=False, seed=0)
    history = fit_dmm(dmm, observation_windows(train, 20, 5), config)
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    post = assimilate(test, "dmm", model=dmm, samples=32)
    score = rmse(post["mean"], test["truth"], burn_in=10)
    noise = float(test.attrs["obs_noise_std"])
    assert score < 0.8 * noise, score
    assert post.attrs["estimate"] == "smoother" and "quantiles" in post
    # the trained model survives a round trip through its file
    path = tmp_path / "hybrid.pt"
    save_dmm(path, dmm)
    again, _ = load_dmm(path)
    again_post = assimilate(test, "dmm", model=str(path), samples=32)
    assert rmse(again_post["mean"], post["mean"]) < 0.1 * noise
    assert again.config["physics"]["system"] == "lorenz63"


def test_dmm_method_options_are_checked(l63, tmp_path):
    with pytest.raises(InputError, match="model"):
        get_method("dmm")
    pyro.clear_param_store()
    dmm = hybrid_dmm(l63, guide="filtering", rnn_dim=8)
    path = tmp_path / "f.pt"
    save_dmm(path, dmm)
    method = get_method("dmm", model=str(path))
    assert method.kind == "filter" and method.guide == "filtering"
    with pytest.raises(InputError, match="filtering"):
        get_method("dmm", model=str(path), guide="smoothing")
    l96 = simulate("lorenz96", n=8, cycles=20, seed=1)
    with pytest.raises(InputError, match="components"):
        method(l96)
    slow = simulate("lorenz63", cycles=20, steps_per_obs=5, seed=1)
    with pytest.raises(InputError, match="interval"):
        method(slow)


def test_cli_train_and_assimilate(tmp_path, l63):
    from pyro_videossm.cli import main

    obs = tmp_path / "obs.nc"
    write_netcdf(l63, obs)
    model = tmp_path / "model.pt"
    assert main(["train", "dmm", str(obs), "--physics", "lorenz63", "--rho", "24",
                 "--window", "20", "--epochs", "1", "--rnn-dim", "8", "--correction", "8",
                 "--guide-substeps", "5", "--no-progress", "-o", str(model)]) == 0
    dmm, extra = load_dmm(model)
    assert dmm.config["physics"]["parameters"]["rho"] == 24.0 and extra["window"] == 20
    post = tmp_path / "post.nc"
    assert main(["assimilate", str(obs), "--method", "dmm", "--model", str(model),
                 "--set", "samples=8", "-o", str(post), "--no-progress"]) == 0
    assert post.exists()
    neural = tmp_path / "neural.pt"
    assert main(["train", "dmm", str(obs), "--physics", "none", "--guide", "filtering",
                 "--window", "10", "--epochs", "1", "--rnn-dim", "8", "--no-progress",
                 "-o", str(neural)]) == 0
    assert get_method("dmm", model=str(neural)).kind == "filter"
    assert main(["train", "dmm", str(obs), "--physics", "lorenz63", "--forcing", "8",
                 "--epochs", "1", "-o", str(tmp_path / "x.pt")]) == 2
    assert main(["assimilate", str(obs), "--method", "dmm", "--model", str(obs),
                 "-o", str(tmp_path / "y.nc")]) == 2


def test_look_ahead_message_uses_the_physics(l63):
    """Reading the next observation through the linearised physics sharpens even an untrained
    guide a lot; its log-density is the same whether scored from its own draw or recomputed in
    one batched call (the finite-difference Jacobians included)."""
    scores = {}
    for k in (0, 1):
        torch.manual_seed(0)
        dmm = hybrid_dmm(l63, rnn_dim=8, guide_substeps=5, look_ahead=k, smoother_iterations=0)
        post = assimilate(l63, "dmm", model=dmm, samples=32)
        scores[k] = rmse(post["mean"], l63["truth"], burn_in=10)
    assert scores[1] < 0.75 * scores[0], scores
    from pyro_videossm.data import to_tensor_and_mask

    x, m = to_tensor_and_mask(l63["obs"].values[:15])
    data = dmm.unpack({"x": x[None].expand(3, -1, -1), "mask": m[None].expand(3, -1, -1)})
    q = dmm.posterior_chain(data)
    z = q.rsample()
    torch.testing.assert_close(q.log_prob(z), q.log_prob(z.clone()), rtol=1e-4, atol=1e-2)


def test_windowed_assimilation_picks_each_cycle_from_a_fitting_window(l63):
    from pyro_videossm.models.ssm.dmm_assimilation import window_choice, window_starts

    for stride, central, past in ((None, 5, 10), (5, 7, 15)):  # default: half a window
        starts = window_starts(100, 20, "smoother", stride)
        assert starts[0] == 0 and starts[-1] == 80
        assert (starts.diff() == (stride or 10)).all()
        for kind in ("smoother", "filter"):
            which, pos = window_choice(starts, 20, 100, kind)
            assert ((starts[which] + pos) == torch.arange(100)).all()
            assert ((pos >= 0) & (pos < 20)).all()
        which, pos = window_choice(starts, 20, 100, "smoother")
        assert (torch.minimum(pos, 19 - pos)[20:80] >= central).all()  # central in its window
        which, pos = window_choice(starts, 20, 100, "filter")
        assert (pos[20:] >= past).all()  # the longest past available
    torch.manual_seed(0)
    dmm = hybrid_dmm(l63, rnn_dim=8, guide_substeps=5)
    windowed = assimilate(l63, "dmm", model=dmm, samples=32, window=30)
    whole = assimilate(l63, "dmm", model=dmm, samples=32)
    noise = float(l63.attrs["obs_noise_std"])
    assert rmse(windowed["mean"], l63["truth"], burn_in=10) < noise
    assert rmse(windowed["mean"], whole["mean"], burn_in=10) < 0.5 * noise


def test_smoother_guide_is_the_exact_posterior_of_a_linear_gaussian_model():
    """With a linear transition and no learned parts, the guide with backward messages is
    p(z_{1:T} | x_{1:T}) itself: log q(z) - log p(x, z) = -log p(x) for every z."""
    obs = simulate(Rotation(), cycles=12, dt=0.1, steps_per_obs=3, obs_noise_std=0.5, seed=0)
    obs["obs"][4:6, 1] = float("nan")  # some missing observations
    dmm = hybrid_dmm(obs, system=Rotation(), rnn_dim=4, correction_hidden=(),
                     transition_scale=0.3, smoother_iterations=1)
    with torch.no_grad():  # switch the RNN's message off: physics and observations only
        dmm.combiner.lin_precision.weight.zero_()
        dmm.combiner.lin_precision.bias.fill_(-40.0)
    from pyro_videossm.data import to_tensor_and_mask

    x, m = to_tensor_and_mask(obs["obs"].values)
    data = dmm.unpack({"x": x[None], "mask": m[None]})
    q = dmm.posterior_chain(data)
    p = dmm.prior_chain(data)
    z = q.rsample(torch.Size((6,))) + torch.randn(6, 1, 12, 2)  # own draws moved anywhere
    with torch.no_grad():
        like = dmm.likelihood(dmm.emitter(z)).log_prob(x).masked_fill(~m, 0.0).sum((-1, -2))
        log_ratio = q.log_prob(z) - p.log_prob(z) - like  # (6, 1): -log p(x) for all z
    assert log_ratio.std() < 1e-3 * log_ratio.abs().mean(), log_ratio
    # its mean path (the chain of conditional means) is then the smoother mean
    mean_path = dmm.guide_mean_path(dmm.guide_context(data))
    draws = q.sample(torch.Size((4000,)))
    torch.testing.assert_close(draws.mean(0), mean_path, atol=0.03, rtol=0)


def test_smoother_messages_beat_the_one_step_look_ahead(l63):
    """All later observations through the relinearised physics (the default smoothing guide
    of a hybrid DMM) against the next one only, both untrained."""
    scores = {}
    for name, options in {"look_ahead": dict(look_ahead=1, smoother_iterations=0),
                          "smoother": dict()}.items():
        torch.manual_seed(0)
        dmm = hybrid_dmm(l63, rnn_dim=8, guide_substeps=5, **options)
        post = assimilate(l63, "dmm", model=dmm, samples=32, window=20)
        scores[name] = rmse(post["mean"], l63["truth"], burn_in=10)
    assert dmm.combiner.smoother_iterations == 3
    assert scores["smoother"] < 0.6 * scores["look_ahead"], scores
    assert scores["smoother"] < 0.3 * float(l63.attrs["obs_noise_std"]), scores


def test_full_covariance_guide_kl_matches_the_gaussian_formula():
    """The closed-form KL estimate of the smoother guide's full-covariance steps against the
    model's diagonal transition equals torch's per-step KL."""
    from torch.distributions import MultivariateNormal, kl_divergence

    from pyro_videossm.data import to_tensor_and_mask

    obs = simulate(Rotation(), cycles=8, dt=0.1, steps_per_obs=3, obs_noise_std=0.5, seed=1)
    dmm = hybrid_dmm(obs, system=Rotation(), rnn_dim=4, correction_hidden=(),
                     transition_scale=0.3, smoother_iterations=2)
    x, m = to_tensor_and_mask(obs["obs"].values)
    data = dmm.unpack({"x": x[None].expand(3, -1, -1), "mask": m[None].expand(3, -1, -1)})
    q, p = dmm.posterior_chain(data), dmm.prior_chain(data)
    with torch.no_grad():
        z = q.rsample()
        kl = q.kl_estimate(p, z)  # (3,)
        q_loc, q_tril = q.conditionals(z)
        p_loc, p_scale = p.conditionals(z)
        precision = q_tril @ q_tril.transpose(-1, -2)
        expected = kl_divergence(MultivariateNormal(q_loc, precision_matrix=precision),
                                 MultivariateNormal(p_loc, scale_tril=torch.diag_embed(p_scale))
                                 ).sum(-1)
    torch.testing.assert_close(kl, expected, rtol=1e-4, atol=1e-3)


def test_hybrid_dmm_composes_from_its_parts(l63):
    """A DMM composed from a PhysicsTransition, an ObservationOperator and a SmootherGuide is
    the DMM hybrid_dmm builds (same loss for the same draws)."""
    from pyro import poutine

    from pyro_videossm.models.ssm.dmm import DMM
    from pyro_videossm.models.ssm.guides import SmootherGuide
    from pyro_videossm.models.ssm.hybrid import ObservationOperator, PhysicsTransition
    from pyro_videossm.nn.dmm_blocks import GaussianLikelihood, InitialState

    reference = hybrid_dmm(l63, system=Lorenz63(rho=24.0), rnn_dim=8, correction_hidden=(8,))
    physics = reference.config["physics"]
    loc, scale = physics["clim_loc"], physics["clim_scale"]
    noise = float(l63.attrs["obs_noise_std"])
    composed = DMM(
        3, initial=InitialState(3, loc, scale, learn=False),
        transition=PhysicsTransition(Lorenz63(rho=24.0), physics["dt"], physics["steps_per_obs"],
                                     loc, scale, hidden=(8,), scale=0.1 * noise),
        emitter=ObservationOperator(3, [0, 1, 2]),
        likelihood=GaussianLikelihood(3, noise, learn_scale=False),
        guide=SmootherGuide(3, iterations=3, rnn_dim=8, x_loc=loc, x_scale=scale, z_loc=loc,
                            z_scale=scale))
    composed.load_state_dict(reference.state_dict())
    batch = observation_windows(l63, 20, 10)
    traces = []
    for dmm in (reference, composed):
        torch.manual_seed(3)
        guide_tr = poutine.trace(dmm.guide).get_trace(batch)
        model_tr = poutine.trace(poutine.replay(dmm.model, trace=guide_tr)).get_trace(batch)
        traces.append(model_tr.log_prob_sum() - guide_tr.log_prob_sum())
    torch.testing.assert_close(traces[1], traces[0])


def test_no_import_cycle_between_the_dmm_and_its_hybrid_physics():
    import ast
    from pathlib import Path

    import pyro_videossm.models.ssm as ssm

    root = Path(ssm.__file__).parent
    for name in ("dmm.py", "guides.py", "markov_gaussian.py", "pyro_names.py"):
        tree = ast.parse((root / name).read_text())
        imported = [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
        assert not any("hybrid" in (m or "") or "dmm_file" in (m or "") for m in imported), name


def test_windows_are_cut_on_the_record_device():
    """Window starts live on the CPU; the windows are cut where the record is (the meta
    device stands in for a GPU: mixing it with CPU tensors raises as CUDA would)."""
    from pyro_videossm.models.ssm.dmm_assimilation import window_batch, window_starts

    starts = window_starts(50, 20, "smoother")
    x = torch.empty(50, 3, device="meta")
    batch = window_batch(x, torch.empty(50, 3, dtype=torch.bool, device="meta"), starts, 20)
    assert batch["x"].device.type == "meta" and batch["x"].shape == (len(starts), 20, 3)
    record = torch.arange(50.0).unsqueeze(-1).expand(50, 3)
    cut = window_batch(record, torch.ones(50, 3, dtype=torch.bool), starts, 20)["x"]
    assert (cut[:, :, 0] == starts.unsqueeze(-1) + torch.arange(20)).all()


def test_one_training_pipeline_with_documented_options(tmp_path, l63):
    import dataclasses

    from pyro_videossm.experiments.dmm import HybridDMMOptions, train_hybrid_dmm

    assert all(f.metadata.get("help") for f in dataclasses.fields(HybridDMMOptions))
    options = HybridDMMOptions(window=20, rnn_dim=8, correction_hidden=(8,), guide_substeps=5,
                               epochs=2, valid_fraction=0.2, seed=4)
    path = tmp_path / "m.pt"
    run = train_hybrid_dmm(l63, options, system=Lorenz63(rho=24.0), output=path,
                           extra={"note": 1})
    assert len(run.history) == 2 and run.history[-1]["valid_loss"] is not None
    assert run.training["windows"] == (96 - 20) // 4 + 1  # 120 cycles, 24 for validation
    again, extra = load_dmm(path)
    assert extra["window"] == 20 and extra["note"] == 1 and extra["stride"] == 4
    assert again.config["physics"]["parameters"]["rho"] == 24.0
    # the same options and seed give the same model
    twice = train_hybrid_dmm(l63, options, system=Lorenz63(rho=24.0))
    for key, value in run.dmm.state_dict().items():
        torch.testing.assert_close(twice.dmm.state_dict()[key], value)
    with pytest.raises(InputError, match="window"):
        train_hybrid_dmm(l63, HybridDMMOptions(window=1))
    with pytest.raises(InputError, match="too short"):
        train_hybrid_dmm(l63, HybridDMMOptions(window=200))


def test_smoother_iterations_at_inference(l63, tmp_path):
    """``smoother_iterations`` changes the guide's Gauss-Newton passes for one run only; the
    trained number gives the default posterior exactly."""
    pyro.clear_param_store()
    torch.manual_seed(0)
    dmm = hybrid_dmm(l63, rnn_dim=8)  # smoothing guide, 3 relinearisations
    assert dmm.guide.combiner.smoother_iterations == 3
    kwargs = {"samples": 8, "window": 40, "seed": 3}
    default = assimilate(l63, "dmm", model=dmm, **kwargs)["mean"]
    same = assimilate(l63, "dmm", model=dmm, smoother_iterations=3, **kwargs)["mean"]
    one = assimilate(l63, "dmm", model=dmm, smoother_iterations=1, **kwargs)["mean"]
    torch.testing.assert_close(torch.as_tensor(same.values), torch.as_tensor(default.values))
    assert not torch.allclose(torch.as_tensor(one.values), torch.as_tensor(default.values))
    assert dmm.guide.combiner.smoother_iterations == 3  # restored after the run
    with pytest.raises(InputError, match="smoother_iterations must be >= 1"):
        get_method("dmm", model=dmm, smoother_iterations=0)
    with pytest.raises(InputError, match="Gauss-Newton smoother guide"):
        get_method("dmm", model=hybrid_dmm(l63, guide="filtering", rnn_dim=8),
                   smoother_iterations=2)
