"""Heavy-tailed observations at DMM inference: IRLS-reweighted observation messages."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from toy_models import Rotation

from pyro_videossm.assimilate import assimilate
from pyro_videossm.data import simulate, to_tensor_and_mask
from pyro_videossm.errors import InputError
from pyro_videossm.metrics import rmse
from pyro_videossm.models.ssm.hybrid import hybrid_dmm
from pyro_videossm.models.ssm.robust_guide import irls_weights


def test_irls_weights_closed_form():
    x = torch.tensor([[[1.0, 30.0], [2.0, -1e4]]])  # (1, 2, 2)
    mask = torch.tensor([[[True, True], [False, True]]])
    mean, var, obs_var = torch.tensor([0.5, 1.0]), torch.tensor([0.25, 2.0]), torch.tensor(
        [0.75, 2.0])
    s2 = var + obs_var  # predicted variance: (1, 4)
    d = x - mean
    w, pseudo = irls_weights(x, mask, mean, var, obs_var, "student_t", 3.0)
    ref = (4.0 / (3.0 + d**2 / s2)).clamp(max=1.0)
    ref[0, 1, 0] = 1.0  # not observed
    torch.testing.assert_close(w, ref)
    torch.testing.assert_close(pseudo[mask], (mean + ref * d)[mask])
    assert pseudo[0, 1, 0] == 0
    w, pseudo = irls_weights(x, mask, mean, var, obs_var, "huber", 1.345)
    z = d / s2.sqrt()
    torch.testing.assert_close(w[mask], (1.345 / z.abs()).clamp(max=1.0)[mask])
    # Huber's pseudo-observation is the winsorised observation m + s clip(z, -c, c)
    torch.testing.assert_close(pseudo[mask], (mean + s2.sqrt() * z.clamp(-1.345, 1.345))[mask])
    assert pseudo[0, 1, 1] > mean[1] - 1.345 * 2.0 - 1e-4  # the outlier of -1e4 is bounded


def test_weighted_message_is_the_exact_posterior_with_variance_divided_by_the_weight():
    """Linear-Gaussian model, RNN message off: the smoother guide with IRLS weights ``w`` is
    the exact posterior of the model whose noise variance is ``r^2 / w``; the
    pseudo-observations (read by the learned parts only) change nothing there."""
    obs = simulate(Rotation(), cycles=10, dt=0.1, steps_per_obs=3, obs_noise_std=0.5, seed=0)
    dmm = hybrid_dmm(obs, system=Rotation(), rnn_dim=4, correction_hidden=(),
                     transition_scale=0.3, smoother_iterations=1)
    with torch.no_grad():
        dmm.combiner.lin_precision.weight.zero_()
        dmm.combiner.lin_precision.bias.fill_(-40.0)
    dmm = dmm.double()  # float64: the central-difference Jacobian is exact to 1e-9 there
    x, m = to_tensor_and_mask(obs["obs"].values)
    x = x.double()
    w = torch.ones_like(x)
    w[3, 0], w[6, 1] = 0.02, 0.3
    batch = {"x": x[None], "mask": m[None], "obs_weight": w[None],
             "x_pseudo": (x + 7.0)[None]}
    data = dmm.unpack(batch)
    q = dmm.posterior_chain(data)
    p = dmm.prior_chain(data)
    z = q.rsample(torch.Size((6,))) + torch.randn(6, 1, 10, 2, dtype=torch.float64)
    scale = dmm.likelihood.log_scale.exp() / w.sqrt()
    with torch.no_grad():
        like = torch.distributions.Normal(dmm.emitter(z), scale).log_prob(x).sum((-1, -2))
        log_ratio = q.log_prob(z) - p.log_prob(z) - like  # -log p_w(x) for every z
    assert log_ratio.std() < 1e-6 * log_ratio.abs().mean(), log_ratio
    without_pseudo = dmm.posterior_chain(dmm.unpack({"x": x[None], "mask": m[None],
                                                     "obs_weight": w[None]}))
    with torch.no_grad():
        torch.testing.assert_close(without_pseudo.log_prob(z), q.log_prob(z))
    # and the weights matter: without them the ratio is not constant
    plain = dmm.posterior_chain(dmm.unpack({"x": x[None], "mask": m[None]}))
    with torch.no_grad():
        other = plain.log_prob(z) - p.log_prob(z) - like
    assert other.std() > 100 * log_ratio.std()


@pytest.fixture(scope="module")
def outliers():
    """Lorenz-63, 300 cycles; 1 % of the observations replaced by +-1e3..1e4."""
    clean = simulate("lorenz63", seed=1, cycles=300)
    bad = clean.copy(deep=True)
    rng = np.random.default_rng(0)
    values = bad["obs"].values
    idx = rng.choice(values.size, values.size // 100, replace=False)
    values.flat[idx] = rng.uniform(1e3, 1e4, idx.size) * rng.choice([-1, 1], idx.size)
    torch.manual_seed(0)
    dmm = hybrid_dmm(simulate("lorenz63", seed=3, cycles=40), rnn_dim=8,
                     correction_hidden=(8,), guide_substeps=5)
    return clean, bad, dmm, int(np.sort(idx)[0] // values.shape[1])


@pytest.mark.parametrize("likelihood", ["student_t", "huber"])
def test_robust_dmm_rides_through_gross_outliers(outliers, likelihood):
    """The posterior with 1 % gross outliers stays within 15 % of the clean record's RMSE
    (measured: within 2 %) and well below the observation noise."""
    clean, bad, dmm, _ = outliers
    options = dict(model=dmm, samples=32, window=20, obs_likelihood=likelihood)
    ref = rmse(assimilate(clean, "dmm", **options)["mean"], clean["truth"], burn_in=20)
    score = rmse(assimilate(bad, "dmm", **options)["mean"], clean["truth"], burn_in=20)
    assert score < 1.15 * ref, (score, ref)
    assert ref < 0.5 * float(clean.attrs["obs_noise_std"])


def test_gaussian_dmm_refuses_gross_outliers_naming_the_cycle(outliers):
    clean, bad, dmm, first = outliers
    with pytest.raises(InputError, match=f"cycle {first} ") as err:
        assimilate(bad, "dmm", model=dmm, samples=8, window=20)
    assert "\n" not in str(err.value) and "obs_likelihood" in str(err.value)


def test_robust_options_are_checked(outliers):
    _, _, dmm, _ = outliers
    with pytest.raises(InputError, match="obs_likelihood"):
        assimilate(outliers[0], "dmm", model=dmm, obs_likelihood="cauchy")
    with pytest.raises(InputError, match="robust_param"):
        assimilate(outliers[0], "dmm", model=dmm, obs_likelihood="huber", robust_param=0)
    with pytest.raises(InputError, match="robust_iterations"):
        assimilate(outliers[0], "dmm", model=dmm, obs_likelihood="huber", robust_iterations=0)
