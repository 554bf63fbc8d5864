"""Flat DMM (vector latent per frame): blocks, the vectorised model density against a
per-step loop, masks, forecasts and model files."""

from __future__ import annotations

import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro import poutine
from pyro.infer import Trace_ELBO

from pyro_videossm.errors import InputError
from pyro_videossm.models.ssm.dmm_flat import DMMFlat, DMMFlatForecaster
from pyro_videossm.nn.conv_blocks import pad_to_multiple

B, T, H, W = 3, 5, 15, 14


def tiny(**kw) -> DMMFlat:
    opts = dict(grid=(H, W), latent_dim=6, hidden_dim=8, rnn_dim=7, conv_channels=4, n_down=2)
    opts.update(kw)
    return DMMFlat(**opts)


def tiny_batch(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, T, H, W, generator=g) * 0.3
    mask = torch.rand(B, T, H, W, generator=g) > 0.2
    mask[1, 0] = False
    return {"x": x * mask, "mask": mask}


@pytest.fixture(autouse=True)
def clean_param_store():
    pyro.clear_param_store()
    pyro.set_rng_seed(0)
    yield
    pyro.clear_param_store()


def test_vectorised_model_log_prob_equals_per_step():
    m = tiny()
    batch = tiny_batch(1)
    g = poutine.trace(m.guide).get_trace(batch)
    z = g.nodes["z"]["value"]
    assert z.shape == (B, T, 6)
    mt = poutine.trace(poutine.replay(m.model, trace=g)).get_trace(batch)
    x = pad_to_multiple(batch["x"], 4)
    mask = pad_to_multiple(batch["mask"], 4, value=False)
    z_prev, ref = m.z_0.expand(B, 6), torch.zeros(())
    for t in range(T):
        loc, scale = m.trans(z_prev)
        ref = ref + dist.Normal(loc, scale).log_prob(z[:, t]).sum()
        mean = m.emit(z[:, t])
        ref = ref + (dist.Normal(mean, m.obs_scale).log_prob(x[:, t]) * mask[:, t]).sum()
        z_prev = z[:, t]
    assert torch.allclose(mt.log_prob_sum(), ref, rtol=1e-5, atol=1e-3)


def test_masked_pixels_do_not_change_the_loss():
    m = tiny()
    batch = tiny_batch(2)
    changed = {"x": batch["x"].clone(), "mask": batch["mask"]}
    changed["x"][~batch["mask"]] = -50.0
    losses = []
    for b in (batch, changed):
        pyro.set_rng_seed(3)
        losses.append(Trace_ELBO().loss(m.model, m.guide, b))
    assert losses[0] == pytest.approx(losses[1], rel=1e-6)


def test_forecast_shapes_and_wrong_grid():
    m = tiny()
    batch = tiny_batch(3)
    out = m.forecast(batch["x"], batch["mask"], 4, members=5,
                     generator=torch.Generator().manual_seed(0))
    assert out.shape == (B, 4, 5, H, W) and torch.isfinite(out).all()
    assert out.std(dim=2).mean() > 0
    x = torch.zeros(1, 3, 20, 20)
    with pytest.raises(InputError, match="built for"):
        m.forecast(x, torch.ones_like(x, dtype=torch.bool), 2)


def test_model_file_round_trip(tmp_path):
    from pyro_videossm.forecast import load_forecaster

    m = tiny(likelihood="student_t", obs_scale=0.2)
    fc = DMMFlatForecaster(m, context_length=T)
    fc.save(tmp_path / "flat.pt")
    back = load_forecaster(tmp_path / "flat.pt")
    assert isinstance(back, DMMFlatForecaster)
    assert back.module.architecture() == m.architecture()
    batch = tiny_batch(4)
    a = fc.predict(batch["x"], batch["mask"], 2, 3, generator=torch.Generator().manual_seed(1))
    b = back.predict(batch["x"], batch["mask"], 2, 3, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b)
    # same name, other sizes: refused with one line
    from pyro_videossm.infer import save_model_file
    cfg = fc.model_config()
    cfg["architecture"]["latent_dim"] = 9
    save_model_file(tmp_path / "bad.pt", name="dmm-flat", config=cfg, state_dict=m.state_dict())
    with pytest.raises(InputError, match="does not fit"):
        load_forecaster(tmp_path / "bad.pt")
