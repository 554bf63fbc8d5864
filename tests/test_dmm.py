"""DMM: vectorised vs per-step ELBO, masks, ragged lengths, KL, ELBOs, Predictive, files."""

from __future__ import annotations

import pyro
import pytest
import torch
from pyro import poutine
from pyro.infer import (
    SVI,
    JitTrace_ELBO,
    Predictive,
    Trace_ELBO,
    TraceMeanField_ELBO,
)
from pyro.optim import ClippedAdam
from torch.distributions import kl_divergence

from pyro_videossm.errors import InputError
from pyro_videossm.models.ssm.dmm import DMM, MarkovGaussian
from pyro_videossm.models.ssm.dmm_file import load_dmm, save_dmm

B, T, X, Z = 4, 9, 5, 3


def small_dmm(guide="smoothing", combiner="classic", likelihood="gaussian", **kw) -> DMM:
    pyro.clear_param_store()
    torch.manual_seed(0)
    return DMM(X, Z, rnn_dim=8, emission_dim=8, transition_dim=8, guide=guide,
               combiner=combiner, likelihood=likelihood, **kw)


def make_batch(seed=0, ragged=True, binary=False):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, T, X, generator=g).cumsum(1) * 0.5
    if binary:
        x = (x > 0).float()
    mask = torch.rand(B, T, X, generator=g) > 0.25
    batch = {"x": x, "mask": mask}
    if ragged:
        batch["lengths"] = torch.tensor([T, 4, 7, 1])
    return batch


def joint_elbo_at(dmm: DMM, batch, z: torch.Tensor, annealing_factor=0.6) -> torch.Tensor:
    """``log p(x, z) - log q(z | x)`` at a given latent sequence ``z (B, T, Z)``, through the
    vectorised or the per-step sites (whichever ``dmm.per_step`` selects)."""
    data = ({f"z_{t + 1}": z[:, t] for t in range(z.shape[1])} if dmm.per_step
            else {"z": z})
    guide_tr = poutine.trace(poutine.condition(dmm.guide, data=data)).get_trace(
        batch, annealing_factor)
    model_tr = poutine.trace(poutine.condition(dmm.model, data=data)).get_trace(
        batch, annealing_factor)
    return model_tr.log_prob_sum() - guide_tr.log_prob_sum()


@pytest.mark.parametrize("guide,combiner", [
    ("smoothing", "classic"), ("smoothing", "gain"), ("filtering", "classic"),
    ("filtering", "gain"), ("meanfield", "classic"),
])
def test_vectorised_elbo_equals_per_step_for_the_same_draws(guide, combiner):
    dmm = small_dmm(guide, combiner)
    batch = make_batch()
    torch.manual_seed(1)
    guide_tr = poutine.trace(dmm.guide).get_trace(batch, 0.6)
    model_tr = poutine.trace(poutine.replay(dmm.model, trace=guide_tr)).get_trace(batch, 0.6)
    vectorised = model_tr.log_prob_sum() - guide_tr.log_prob_sum()
    z = guide_tr.nodes["z"]["value"].detach()
    assert z.shape == (B, T, Z)
    grads_v = torch.autograd.grad(joint_elbo_at(dmm, batch, z), list(dmm.parameters()),
                                  allow_unused=True)
    dmm.per_step = True
    per_step = joint_elbo_at(dmm, batch, z)
    grads_p = torch.autograd.grad(per_step, list(dmm.parameters()), allow_unused=True)
    torch.testing.assert_close(vectorised, per_step, rtol=1e-5, atol=1e-3)
    for gv, gp in zip(grads_v, grads_p):
        if gv is None or gp is None:
            assert gv is None and gp is None
        else:
            torch.testing.assert_close(gv, gp, rtol=1e-4, atol=1e-4)


def test_markov_gaussian_scores_its_own_draw_and_other_values_alike():
    dmm = small_dmm("smoothing", "gain")
    data = dmm.unpack(make_batch())
    q = dmm.posterior_chain(data)
    z = q.rsample()
    own = q.log_prob(z)  # from the cached per-step parameters
    other = q.log_prob(z.clone())  # recomputed in one batched call
    torch.testing.assert_close(own, other)
    # by hand, step by step, with the lengths mask
    step, _ = dmm.guide_step_fn(dmm.guide_context(data))
    total, z_prev = torch.zeros(B), None
    for t in range(T):
        loc, scale = step(z_prev, t)
        lp = torch.distributions.Normal(loc, scale).log_prob(z[:, t]).sum(-1)
        total = total + lp * data.time_mask[:, t]
        z_prev = z[:, t]
    torch.testing.assert_close(own, total)


@pytest.mark.parametrize("guide", ["smoothing", "filtering"])
def test_classic_fused_sampling_path_equals_chained_steps(guide):
    # the classic combiner draws the whole sequence in one call (sample_path: the scan with
    # its hand-written backward when recording gradients, a plain loop without); both must
    # give the numbers, and the scan the gradients, of chaining its step at every valid step
    dmm = small_dmm(guide, "classic")
    data = dmm.unpack(make_batch())
    valid = data.time_mask.expand(2, B, T)
    weights = torch.randn(2, B, T, Z, generator=torch.Generator().manual_seed(4))

    def chained():
        eps = torch.randn((2, B, T, Z), generator=torch.Generator().manual_seed(3))
        step, _ = dmm.guide_step_fn(dmm.guide_context(data))
        z_prev, by_step = None, []
        for t in range(T):
            loc, scale = step(z_prev, t)
            z_prev = loc + scale * eps[:, :, t]
            by_step.append(z_prev)
        return torch.stack(by_step, -2)

    def fused():
        q = dmm.posterior_chain(data)
        assert q._path is not None
        q.generator = torch.Generator().manual_seed(3)
        return q, q.rsample(torch.Size((2,)))

    q, z = fused()
    reference = chained()
    torch.testing.assert_close(z[valid], reference[valid])
    assert (z[~valid] == 0).all()  # skipped padding: constants
    torch.testing.assert_close(q.log_prob(z), q.log_prob(z.clone()))  # cached = recomputed
    params = [p for p in dmm.parameters() if p.requires_grad]
    grads = torch.autograd.grad((z * weights)[valid].sum(), params, allow_unused=True)
    ref_grads = torch.autograd.grad((reference * weights)[valid].sum(), params,
                                    allow_unused=True)
    for g, r in zip(grads, ref_grads):
        if r is None:
            assert g is None or not g.any()
        else:
            torch.testing.assert_close(g, r, atol=1e-5, rtol=1e-4)
    with torch.no_grad():
        torch.testing.assert_close(fused()[1][valid], reference[valid])


def test_masked_and_padded_observations_change_nothing():
    dmm = small_dmm("smoothing", "gain")
    batch = make_batch()
    changed = {k: v.clone() for k, v in batch.items()}
    hidden = ~batch["mask"]
    hidden[1, 4:] = True  # padding of the sequence of length 4
    changed["x"][hidden] = 1e3
    z = dmm.posterior_chain(dmm.unpack(batch)).sample()
    torch.testing.assert_close(joint_elbo_at(dmm, batch, z), joint_elbo_at(dmm, changed, z))
    # and the guide's draws are identical for the same random numbers
    torch.manual_seed(3)
    z1 = dmm.sample_posterior(batch, 2)
    torch.manual_seed(3)
    z2 = dmm.sample_posterior(changed, 2)
    torch.testing.assert_close(z1[:, 1, :4], z2[:, 1, :4])
    torch.testing.assert_close(z1[:, 0], z2[:, 0])
    # an observed value does change the loss (the test can fail)
    moved = {k: v.clone() for k, v in batch.items()}
    b, t, d = batch["mask"].nonzero()[0].tolist()
    moved["x"][b, t, d] += 1.0
    assert not torch.allclose(joint_elbo_at(dmm, batch, z), joint_elbo_at(dmm, moved, z))


@pytest.mark.parametrize("guide", ["smoothing", "filtering"])
def test_ragged_batch_equals_sequences_scored_alone(guide):
    """A padded batch's ELBO at fixed z is the sum over its sequences cut to their lengths."""
    dmm = small_dmm(guide, "classic")
    batch = make_batch()
    z = torch.randn(B, T, Z)
    together = joint_elbo_at(dmm, batch, z)
    alone = 0.0
    for b, n in enumerate(batch["lengths"].tolist()):
        one = {"x": batch["x"][b:b + 1, :n], "mask": batch["mask"][b:b + 1, :n]}
        alone = alone + joint_elbo_at(dmm, one, z[b:b + 1, :n])
    torch.testing.assert_close(together, alone, rtol=1e-5, atol=1e-3)
    assert dmm.normalizer(batch) == float(batch["lengths"].sum())


def test_markov_kl_is_unbiased_for_the_elbo():
    """E_q[log q(z) - log p(z)] (Monte Carlo) equals E_q[analytic per-step KL]."""
    dmm = small_dmm("smoothing", "gain")
    data = dmm.unpack(make_batch(ragged=True))
    S = 4000
    with torch.no_grad():
        q, p = dmm.posterior_chain(data), dmm.prior_chain(data)
        z = q.rsample((S,))
        mc = q.log_prob(z) - p.log_prob(z)  # (S, B)
        analytic = q.kl_estimate(p, z)  # at the same draws
    assert isinstance(q, MarkovGaussian)
    se = mc.std(0) / S**0.5
    assert ((mc.mean(0) - analytic.mean(0)).abs() < 4 * se + 1e-3).all()
    assert (analytic >= 0).all()


@pytest.mark.parametrize("elbo_cls", [Trace_ELBO, TraceMeanField_ELBO, JitTrace_ELBO])
def test_training_raises_the_elbo(elbo_cls):
    dmm = small_dmm("smoothing", "classic", likelihood="bernoulli")
    batch = make_batch(ragged=False, binary=True)  # fixed shapes for the JIT
    del batch["mask"]
    pyro.set_rng_seed(0)
    svi = SVI(dmm.model, dmm.guide, ClippedAdam({"lr": 0.02}),
              elbo_cls(ignore_jit_warnings=True) if elbo_cls is JitTrace_ELBO else elbo_cls())
    losses = [svi.step(batch) for _ in range(60)]
    first, last = sum(losses[:10]) / 10, sum(losses[-10:]) / 10
    assert torch.isfinite(torch.tensor(losses)).all()
    assert last < first - 0.05 * abs(first)


def test_predictive_and_prior_sampling():
    dmm = small_dmm("filtering", "gain")
    batch = make_batch()
    out = Predictive(dmm.model, guide=dmm.guide, num_samples=3)(batch)
    assert out["z"].shape == (3, B, T, Z)
    assert out["x"].shape == (3, B, T, X)
    # without data the model samples from the prior, sequentially
    prior = Predictive(dmm.model, num_samples=2)({"mask": batch["mask"]})
    assert prior["z"].shape == (2, B, T, Z) and torch.isfinite(prior["x"]).all()
    dmm.per_step = True
    out = Predictive(dmm.model, guide=dmm.guide, num_samples=2)(batch)
    assert out["z_1"].shape == (2, B, Z)


def test_bad_batches_are_input_errors():
    dmm = small_dmm()
    with pytest.raises(InputError, match="observed components"):
        dmm.guide({"x": torch.zeros(2, 3, X + 1)})
    with pytest.raises(InputError, match="lengths"):
        dmm.guide({"x": torch.zeros(2, 3, X), "lengths": torch.tensor([3])})
    with pytest.raises(InputError, match="guide"):
        DMM(X, Z, guide="sideways")


def test_model_file_round_trip_and_wrong_architecture(tmp_path):
    from pyro_videossm.infer import save_model_file

    dmm = small_dmm("smoothing", "gain")
    with torch.no_grad():
        for p in dmm.parameters():
            p.add_(0.01 * torch.randn_like(p))
    path = tmp_path / "dmm.pt"
    save_dmm(path, dmm, extra={"note": "x"})
    again, extra = load_dmm(path)
    assert extra == {"note": "x"} and again.config == dmm.config
    assert DMM(**dmm.config).config == dmm.config  # the config rebuilds a neural DMM
    batch = make_batch()
    torch.testing.assert_close(again.guide_context(again.unpack(batch)),
                               dmm.guide_context(dmm.unpack(batch)))
    other = tmp_path / "other.pt"
    save_model_file(other, name="convdmm", config={}, state_dict={})
    with pytest.raises(InputError, match="convdmm"):
        load_dmm(other)
    wrong = tmp_path / "wrong.pt"
    bigger = DMM(X, Z, rnn_dim=16, emission_dim=8, transition_dim=8, combiner="gain")
    save_model_file(wrong, name="dmm", config=dmm.config, state_dict=bigger.state_dict())
    with pytest.raises(InputError, match="does not fit"):
        load_dmm(wrong)
    with pytest.raises(InputError):
        load_dmm(tmp_path / "missing.pt")


def test_markov_gaussian_kl_is_an_explicit_estimate_without_hidden_state():
    """No KL is registered for two Markov chains (none is exact); ``kl_estimate`` depends on
    the value it is given only, not on which draw the chain made last."""
    dmm = small_dmm("smoothing", "gain")
    data = dmm.unpack(make_batch())
    q, p = dmm.posterior_chain(data), dmm.prior_chain(data)
    z = q.rsample()
    with pytest.raises(NotImplementedError):
        kl_divergence(q, p)
    with torch.no_grad():
        at_own_draw = q.kl_estimate(p, z)  # from the per-step parameters of the draw
        q.rsample()  # another draw: the chain now holds other per-step parameters
        again = q.kl_estimate(p, z)
        recomputed = q.kl_estimate(p, z.clone())
        # by hand, step by step
        step_q, _ = dmm.guide_step_fn(dmm.guide_context(data))
        expected, z_prev = torch.zeros(B), None
        for t in range(T):
            q_loc, q_scale = step_q(z_prev, t)
            p_loc, p_scale = dmm.initial() if t == 0 else dmm.transition(z_prev)
            kl_t = torch.distributions.kl_divergence(
                torch.distributions.Normal(q_loc, q_scale),
                torch.distributions.Normal(p_loc.expand_as(q_loc), p_scale.expand_as(q_loc)))
            expected = expected + kl_t.sum(-1) * data.time_mask[:, t]
            z_prev = z[:, t]
    torch.testing.assert_close(again, at_own_draw)
    torch.testing.assert_close(recomputed, at_own_draw)
    torch.testing.assert_close(at_own_draw, expected)


def _params_left_unchanged(dmm: DMM, batch, steps: int = 3) -> list[str]:
    """Train with a plain user-written SVI loop; names of the parameters it did not move."""
    before = {n: p.detach().clone() for n, p in dmm.named_parameters()}
    svi = SVI(dmm.model, dmm.guide, pyro.optim.Adam({"lr": 0.01}), Trace_ELBO())
    for _ in range(steps):
        svi.step(batch)
    return [n for n, p in dmm.named_parameters() if torch.equal(p.detach(), before[n])]


@pytest.mark.parametrize("combiner", ["classic", "gain"])
def test_two_dmms_train_one_after_the_other_in_one_process(combiner):
    batch = make_batch()
    pyro.clear_param_store()
    torch.manual_seed(0)
    first = DMM(X, Z, rnn_dim=8, emission_dim=8, transition_dim=8, combiner=combiner)
    second = DMM(X, Z, rnn_dim=8, emission_dim=8, transition_dim=8, combiner=combiner)
    assert first.model.pyro_name != second.model.pyro_name
    assert first.guide.pyro_name != second.guide.pyro_name
    assert _params_left_unchanged(first, batch) == []
    assert _params_left_unchanged(second, batch) == []  # the second one trains too
    # and the same name twice (given explicitly): the module's own tensors still win
    third = DMM(X, Z, rnn_dim=8, emission_dim=8, transition_dim=8, combiner=combiner,
                name=first.pyro_name)
    assert _params_left_unchanged(third, batch) == []
    assert _params_left_unchanged(first, batch) == []


def test_elbo_module_exposes_the_parameters_for_a_torch_optimizer():
    """Pyro's Lightning pattern: ``elbo = Trace_ELBO()(model, guide)``, a module whose
    parameters a torch optimiser trains."""
    dmm = small_dmm("smoothing", "classic", likelihood="bernoulli")
    batch = make_batch(ragged=False, binary=True)
    del batch["mask"]
    elbo = Trace_ELBO()(dmm.model, dmm.guide)
    assert {id(p) for p in elbo.parameters()} == {id(p) for p in dmm.parameters()}
    pyro.set_rng_seed(0)
    optimizer = torch.optim.Adam(elbo.parameters(), lr=0.02)
    losses = []
    for _ in range(60):
        optimizer.zero_grad()
        loss = elbo(batch)
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    first, last = sum(losses[:10]) / 10, sum(losses[-10:]) / 10
    assert last < first - 0.05 * abs(first)


def test_composed_dmm_equals_the_one_built_from_options(tmp_path):
    """The parts compose: a DMM given its model parts and guide module is the DMM the options
    describe (same loss for the same draws), and it needs a config to be saved."""
    from pyro_videossm.models.ssm.guides import FilteringGuide
    from pyro_videossm.nn.dmm_blocks import (
        Emitter,
        GatedTransition,
        GaussianLikelihood,
        InitialState,
    )

    reference = small_dmm("filtering", "gain")
    composed = DMM(X, Z, initial=InitialState(Z), transition=GatedTransition(Z, 8),
                   emitter=Emitter(X, Z, 8), likelihood=GaussianLikelihood(X),
                   guide=FilteringGuide(X, Z, rnn_dim=8, combiner="gain"))
    composed.load_state_dict(reference.state_dict())
    assert composed.guide_kind == "filtering" and composed.config is None
    batch = make_batch()
    z = reference.posterior_chain(reference.unpack(batch)).sample()
    torch.testing.assert_close(joint_elbo_at(composed, batch, z),
                               joint_elbo_at(reference, batch, z))
    with pytest.raises(InputError, match="config"):
        save_dmm(tmp_path / "composed.pt", composed)


def test_model_files_of_the_single_module_layout_still_load(tmp_path):
    """Files written before the split hold the parameters as ``transition.*``,
    ``encoder.*``, ...: they load into the ``model.``/``guide.`` children."""
    from pyro_videossm.infer import save_model_file

    dmm = small_dmm("smoothing", "gain")
    legacy = {k.split(".", 1)[1]: v for k, v in dmm.state_dict().items()}
    assert "transition.lin_sig.weight" in legacy and "encoder.h_0.bwd" in legacy
    path = tmp_path / "legacy.pt"
    save_model_file(path, name="dmm", config=dmm.config, state_dict=legacy)
    again, _ = load_dmm(path)
    for key, value in dmm.state_dict().items():
        torch.testing.assert_close(again.state_dict()[key], value)
