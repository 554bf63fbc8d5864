"""The free-running (multi-step) training term of the advection ConvDMM
(:mod:`pyro_videossm.models.ssm.rollout_loss`): closed forms against a reference loop, the
Pyro site it adds, and the recipe option that switches it on (off by default)."""

from __future__ import annotations

import pyro
import pytest
import torch

from pyro_videossm.errors import InputError
from pyro_videossm.models.ssm.rollout_loss import free_running_log_likelihood, rollout_starts

pytest.importorskip("cv2")


def test_rollout_starts():
    assert rollout_starts(30, 10) == [0, 10, 20]
    assert rollout_starts(5, 2) == [0, 2]
    assert rollout_starts(2, 5) == [0]
    assert rollout_starts(1, 1) == []


def test_free_running_term_equals_a_reference_loop():
    """Scalar latents, ``m -> a·m``, emission ``m``, log density ``-(loc - y)²``: the term is
    the mean over starts of ``Σ_k -(a^k z_s - y_{s+k})²`` at observed, in-window steps."""
    torch.manual_seed(0)
    B, T, a, horizon, stride = 3, 7, 0.8, 3, 2
    z = torch.randn(B, T, 1)
    y = torch.randn(B, T, 1, 1)
    mask = torch.rand(B, T, 1, 1) > 0.3
    got = free_running_log_likelihood(
        lambda m: a * m, lambda m: m.reshape(-1, 1, 1), lambda loc, v: -(loc - v) ** 2,
        z, y, mask, horizon=horizon, stride=stride)
    starts = [0, 2, 4]
    want = torch.zeros(B)
    for b in range(B):
        for s in starts:
            for k in range(1, horizon + 1):
                if s + k < T and mask[b, s + k, 0, 0]:
                    want[b] -= (a ** k * z[b, s, 0] - y[b, s + k, 0, 0]) ** 2
    torch.testing.assert_close(got, want / len(starts))


def test_free_running_term_crops_padding_and_orders_sequences():
    """Emission on a padded grid is cropped to the frames; a per-sequence step (as the
    flow makes it) sees its own sequence's latents (sequence-major order ``b·S + s``)."""
    B, T, S = 2, 5, 2  # stride 2 -> starts 0, 2
    z = torch.zeros(B, T, 1, 4, 4)
    z[1] = 1.0
    gain = torch.tensor([2.0, 3.0]).repeat_interleave(S).view(-1, 1, 1, 1)
    y = torch.zeros(B, T, 3, 3)
    got = free_running_log_likelihood(
        lambda m: gain * m, lambda m: m[:, 0], lambda loc, v: loc, z, y,
        torch.ones(B, T, 3, 3, dtype=torch.bool), horizon=1, stride=2)
    # sequence 0: zeros; sequence 1: 3 · 1 on 9 pixels, for each of the 2 starts, averaged
    torch.testing.assert_close(got, torch.tensor([0.0, 27.0]))


def tiny(**overrides):
    from pyro_videossm.models.ssm.advection_conv_dmm import AdvectionConvDMM

    options = dict(latent_channels=2, hidden_channels=4, rnn_channels=4, encoder_channels=4,
                   n_down=1, motion="none", transform="none", likelihood="student_t", df=2.0)
    return AdvectionConvDMM(**{**options, **overrides})


def test_model_adds_the_factor_only_when_asked_and_it_trains_the_transition():
    pyro.clear_param_store()
    torch.manual_seed(0)
    x = torch.rand(2, 6, 8, 8)
    batch = {"x": x, "mask": torch.ones_like(x, dtype=torch.bool)}
    plain = tiny()
    assert plain.architecture()["rollout_horizon"] == 0
    guide_tr = pyro.poutine.trace(plain.guide).get_trace(batch)
    tr = pyro.poutine.trace(pyro.poutine.replay(plain.model, trace=guide_tr)).get_trace(batch)
    assert "rollout" not in tr.nodes

    m = tiny(rollout_horizon=3, rollout_weight=0.5, rollout_stride=2)
    m.load_state_dict(plain.state_dict())
    with torch.no_grad():
        m.trans.change_out.weight.normal_(0, 0.1)
    guide_tr = pyro.poutine.trace(m.guide).get_trace(batch)
    tr = pyro.poutine.trace(pyro.poutine.replay(m.model, trace=guide_tr)).get_trace(batch)
    site = tr.nodes["rollout"]
    z = guide_tr.nodes["z"]["value"]
    flow = torch.zeros(2, 2, 8, 8)
    # reference: roll the transition mean by hand from the starts 0, 2, 4
    want = torch.zeros(2)
    for s in (0, 2, 4):
        cur = z[:, s]
        for k in range(1, 4):
            if s + k >= 6:
                break
            cur = m.transition(cur, flow)[0]
            want += m.observation_dist(m.emit(cur)).log_prob(x[:, s + k]).sum((1, 2))
    torch.testing.assert_close(site["fn"].log_prob(site["value"]), 0.5 * want / 3)
    # its gradient reaches the transition's correction
    site["fn"].log_prob(site["value"]).sum().backward()
    assert m.trans.change_out.weight.grad.abs().sum() > 0


def test_rollout_options_are_checked_and_default_off_in_the_recipe():
    from pyro_videossm.experiments.field_recipes import AdvectionConvDMMOptions

    arch = AdvectionConvDMMOptions().architecture()
    assert (arch["rollout_horizon"], arch["rollout_weight"], arch["rollout_stride"]) == \
        (0, 1.0, 10)
    with pytest.raises(InputError, match="rollout"):
        tiny(rollout_horizon=-1)
    with pytest.raises(InputError, match="rollout"):
        tiny(rollout_stride=0)
    with pytest.raises(InputError, match="rollout"):
        tiny(rollout_weight=0.0)
    # a model file written before the option existed (no rollout keys) loads as plain ELBO
    old = {k: v for k, v in tiny().architecture().items() if not k.startswith("rollout")}
    assert tiny(**old).architecture()["rollout_horizon"] == 0


def test_heat_benchmark_variant_uses_the_term():
    from pyro_videossm.experiments.heat_benchmark import heat_architectures

    archs = heat_architectures(32, latent_channels=8, latent_dim=32, likelihood="student_t",
                               df=2.0, input_clip=(-0.5, 1.5), rollout_horizon=20)
    plain, rollout = archs["advection-convdmm"], archs["advection-convdmm-rollout"]
    assert "rollout_horizon" not in plain  # the published variant is unchanged
    assert rollout == {**plain, "rollout_horizon": 20}


def test_mean_path_forecast_is_deterministic_and_follows_the_transition_mean():
    """``noise=False``: no draws (every member and every call the same); an untrained model
    without motion has the identity as its transition mean, so every lead repeats the
    filtered state's emission."""
    torch.manual_seed(0)
    m = tiny()
    x = torch.rand(2, 4, 8, 8)
    mask = torch.ones_like(x, dtype=torch.bool)
    a = m.forecast(x, mask, 3, 2, noise=False)
    b = m.forecast(x, mask, 3, 2, noise=False)
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(a[:, :, 0], a[:, :, 1])
    torch.testing.assert_close(a[:, 0], a[:, 2])
    noisy = m.forecast(x, mask, 3, 2, generator=torch.Generator().manual_seed(0))
    assert not torch.allclose(noisy[:, :, 0], noisy[:, :, 1])
