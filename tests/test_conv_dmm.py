"""ConvDMM: blocks, the vectorised model/guide densities against per-step loops, masks,
annealing, training, forecasts and model files. Tiny grids (16×16) so it runs in seconds."""

from __future__ import annotations

import numpy as np
import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro import poutine
from pyro.infer import Predictive, Trace_ELBO

from pyro_videossm.errors import InputError
from pyro_videossm.models.ssm.conv_dmm import ConvDMM, ConvDMMForecaster, MarkovChainGuide
from pyro_videossm.nn.conv_blocks import (
    ConvCombiner,
    ConvDecoder,
    ConvEncoder,
    ConvGatedTransition,
    pad_to_multiple,
)

B, T, H, W = 3, 5, 16, 16


def tiny(**kw) -> ConvDMM:
    opts = dict(latent_channels=3, hidden_channels=6, rnn_channels=5, encoder_channels=4,
                n_down=2)
    opts.update(kw)
    return ConvDMM(**opts)


def tiny_batch(seed: int = 0, h: int = H, w: int = W, missing: float = 0.2):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, T, h, w, generator=g) * 0.3
    mask = torch.rand(B, T, h, w, generator=g) > missing
    mask[0, 2] = False  # a whole missing frame
    return {"x": x * mask, "mask": mask}


@pytest.fixture(autouse=True)
def clean_param_store():
    pyro.clear_param_store()
    pyro.set_rng_seed(0)
    yield
    pyro.clear_param_store()


def test_block_shapes():
    assert ConvEncoder(2, 4, 7, n_down=2)(torch.zeros(5, 2, 16, 12)).shape == (5, 7, 4, 3)
    assert ConvDecoder(7, 4, 1, n_up=2)(torch.zeros(5, 7, 4, 3)).shape == (5, 1, 16, 12)
    loc, scale = ConvGatedTransition(3, 6)(torch.randn(5, 3, 4, 4))
    assert loc.shape == scale.shape == (5, 3, 4, 4) and (scale > 0).all()
    loc, scale = ConvCombiner(3, 5)(torch.randn(5, 3, 4, 4), torch.randn(5, 5, 4, 4))
    assert loc.shape == scale.shape == (5, 3, 4, 4) and (scale > 0).all()
    x = pad_to_multiple(torch.ones(2, 15, 13), 4)
    assert x.shape == (2, 16, 16) and x[:, 15].sum() == 0 and x[:, :15, :13].all()
    m = pad_to_multiple(torch.ones(2, 15, 13, dtype=torch.bool), 4, value=False)
    assert m.dtype == torch.bool and m.sum() == 2 * 15 * 13


def test_transition_starts_near_identity_with_closed_gate():
    """With the gate closed, loc is the 1×1 convolution, initialised as the identity."""
    tr = ConvGatedTransition(3, 6)
    with torch.no_grad():
        tr.gate_out.weight.zero_()
        tr.gate_out.bias.fill_(-50.0)
    z = torch.randn(2, 3, 4, 4)
    loc, _ = tr(z)
    assert torch.allclose(loc, z, atol=1e-6)


def per_step_log_joint(m: ConvDMM, batch, z):
    """log p(x, z) by an explicit loop over time (reference for the vectorised model)."""
    x = pad_to_multiple(batch["x"] * batch["mask"], m.multiple)
    mask = pad_to_multiple(batch["mask"], m.multiple, value=False)
    z_prev = m.z_0.expand(B, *z.shape[2:])
    total = torch.zeros(())
    for t in range(z.shape[1]):
        loc, scale = m.trans(z_prev)
        total = total + dist.Normal(loc, scale).log_prob(z[:, t]).sum()
        mean = m.emitter(z[:, t])[:, 0]
        if m.likelihood == "student_t":
            lp = dist.StudentT(m.df, mean, m.obs_scale).log_prob(x[:, t])
        else:
            lp = dist.Normal(mean, m.obs_scale).log_prob(x[:, t])
        total = total + (lp * mask[:, t]).sum()
        z_prev = z[:, t]
    return total


def per_step_log_guide(m: ConvDMM, batch, z):
    """log q(z | x) by an explicit loop over time."""
    x = pad_to_multiple(batch["x"] * batch["mask"], m.multiple)
    mask = pad_to_multiple(batch["mask"], m.multiple, value=False)
    h = m.encode(x, mask)
    z_prev = m.z_q_0.expand(B, *z.shape[2:])
    total = torch.zeros(())
    for t in range(z.shape[1]):
        loc, scale = m.combiner(z_prev, h[:, t])
        total = total + dist.Normal(loc, scale).log_prob(z[:, t]).sum()
        z_prev = z[:, t]
    return total


@pytest.mark.parametrize("likelihood", ["gaussian", "student_t"])
def test_vectorised_model_log_prob_equals_per_step(likelihood):
    m = tiny(likelihood=likelihood, df=3.0)
    batch = tiny_batch(1, h=15, w=14)  # padded to 16×16: padding must be masked out
    guide_tr = poutine.trace(m.guide).get_trace(batch)
    z = guide_tr.nodes["z"]["value"]
    assert z.shape == (B, T, 3, 4, 4)
    model_tr = poutine.trace(poutine.replay(m.model, trace=guide_tr)).get_trace(batch)
    expected = per_step_log_joint(m, batch, z)
    assert torch.allclose(model_tr.log_prob_sum(), expected, rtol=1e-5, atol=1e-3)
    # the guide's cached density of its own draw, and its vectorised density of a copy
    guide_tr.compute_log_prob()
    expected_q = per_step_log_guide(m, batch, z)
    assert torch.allclose(guide_tr.nodes["z"]["log_prob_sum"], expected_q, rtol=1e-5, atol=1e-3)
    fn = guide_tr.nodes["z"]["fn"]
    assert torch.allclose(fn.log_prob(z.clone()).sum(), expected_q, rtol=1e-5, atol=1e-3)


def test_guide_cache_has_the_same_gradient_as_recomputation():
    m = tiny()
    batch = tiny_batch(2)
    x = pad_to_multiple(batch["x"], 4)
    mask = pad_to_multiple(batch["mask"], 4, value=False)
    grads = []
    for use_cache in (True, False):
        torch.manual_seed(5)
        m.zero_grad()
        d = MarkovChainGuide(m.combine, m.z_q_0.expand(B, 3, 4, 4), m.encode(x, mask))
        z = d.rsample()
        lp = d.log_prob(z if use_cache else z + 0.0)
        (lp.sum() + (z**2).sum()).backward()
        grads.append(torch.cat([p.grad.flatten() for p in m.parameters() if p.grad is not None]))
    assert torch.allclose(grads[0], grads[1], rtol=1e-4, atol=1e-5)


def test_masked_pixels_do_not_change_the_loss():
    m = tiny()
    batch = tiny_batch(3)
    changed = {"x": batch["x"].clone(), "mask": batch["mask"]}
    changed["x"][~batch["mask"]] = 1e3  # values at missing pixels (and the missing frame)
    control = {"x": batch["x"].clone(), "mask": batch["mask"]}
    control["x"][batch["mask"]] += 0.5
    losses = []
    for b in (batch, changed, control):
        pyro.set_rng_seed(7)
        losses.append(Trace_ELBO().loss(m.model, m.guide, b))
    assert losses[0] == pytest.approx(losses[1], rel=1e-6)
    assert losses[0] != pytest.approx(losses[2], rel=1e-3)


def test_annealing_scales_only_the_latent_terms():
    m = tiny()
    batch = tiny_batch(4)
    pieces = []
    for factor in (1.0, 0.3):
        pyro.set_rng_seed(11)
        g = poutine.trace(m.guide).get_trace(batch, annealing_factor=factor)
        mt = poutine.trace(poutine.replay(m.model, trace=g)).get_trace(batch,
                                                                       annealing_factor=factor)
        g.compute_log_prob()
        mt.compute_log_prob()
        pieces.append((mt.nodes["x"]["log_prob_sum"], mt.nodes["z"]["log_prob_sum"],
                       g.nodes["z"]["log_prob_sum"]))
        pyro.set_rng_seed(11)
        elbo = -Trace_ELBO().loss(m.model, m.guide, batch, annealing_factor=factor)
        lx, lz, lq = pieces[-1]
        # scaled log-probs: the z terms carry the factor, the x term does not
        assert elbo == pytest.approx(float((lx + lz - lq).detach()), rel=1e-5)
    (lx1, lz1, lq1), (lx2, lz2, lq2) = pieces
    assert torch.allclose(lx1, lx2)
    assert torch.allclose(lz2, 0.3 * lz1, rtol=1e-5) and torch.allclose(lq2, 0.3 * lq1, rtol=1e-5)


def test_elbo_rises_with_the_shared_trainer():
    from pyro_videossm.infer import SVIObjective, TrainConfig, Trainer

    m = tiny()
    g = torch.Generator().manual_seed(0)
    # smooth, slowly moving blobs: learnable structure
    yy, xx = torch.meshgrid(torch.arange(H), torch.arange(W), indexing="ij")
    c = torch.rand(8, 1, 2, generator=g) * 8 + 4
    t = torch.arange(T).view(1, T, 1)
    cy, cx = c[..., 0] + 0.5 * t[..., 0], c[..., 1]
    x = torch.exp(-((yy - cy[..., None, None]) ** 2 + (xx - cx[..., None, None]) ** 2) / 8)
    data = {"x": x, "mask": torch.ones_like(x, dtype=torch.bool)}
    config = TrainConfig(epochs=12, batch_size=8, lr=1e-2, progress=False, seed=0)
    history = Trainer(SVIObjective(m), config).fit(data)
    losses = [h["train_loss"] for h in history]
    assert sum(losses[-3:]) / 3 < sum(losses[:3]) / 3 - 10.0  # loss per frame drops


def test_forecast_shapes_members_and_reproducibility():
    m = tiny()
    batch = tiny_batch(5, h=15, w=13)
    g = torch.Generator().manual_seed(0)
    out = m.forecast(batch["x"], batch["mask"], leads=4, members=6, generator=g)
    assert out.shape == (B, 4, 6, 15, 13)
    assert torch.isfinite(out).all()
    assert out.std(dim=2).mean() > 0  # members differ
    again = m.forecast(batch["x"], batch["mask"], 4, 6, generator=torch.Generator().manual_seed(0))
    assert torch.equal(out, again)
    fc = ConvDMMForecaster(m)
    assert fc.predict(batch["x"], batch["mask"], 2, members=3).shape == (B, 2, 3, 15, 13)
    with pytest.raises(InputError):
        m.forecast(batch["x"][0], batch["mask"][0], 2)


def test_predictive_draws_latents_in_parallel():
    m = tiny()
    batch = tiny_batch(6)
    samples = Predictive(m.model, guide=m.guide, num_samples=2, parallel=True,
                         return_sites=["z"])(batch)
    assert samples["z"].shape == (2, B, T, 3, 4, 4)
    prior = Predictive(m.model, num_samples=2, parallel=True, return_sites=["z"])(batch)
    assert prior["z"].shape == (2, B, T, 3, 4, 4)


def test_forecast_dataset_and_model_file_round_trip(tmp_path):
    import numpy as np
    import xarray as xr

    from pyro_videossm.forecast import FieldScaling, load_forecaster
    from pyro_videossm.models.forecasters.convlstm import ConvLSTMForecaster

    m = tiny(likelihood="student_t")
    fc = ConvDMMForecaster(m, scaling=FieldScaling(offset=10.0, scale=2.0), context_length=T)
    path = tmp_path / "convdmm.pt"
    fc.save(path)
    back = load_forecaster(path)
    assert isinstance(back, ConvDMMForecaster) and back.scaling == fc.scaling
    assert back.module.architecture() == m.architecture()
    for k, v in m.state_dict().items():
        assert torch.equal(back.module.state_dict()[k], v)
    ds = xr.Dataset({"obs": (("sample", "time", "y", "x"),
                             np.random.default_rng(0).normal(10, 1, (2, T, H, W)))},
                    coords={"time": np.arange(T)})
    out = back.forecast(ds, leads=3, members=4, seed=1)
    assert out["forecast"].dims == ("sample", "lead_time", "member", "y", "x")
    assert out["forecast"].shape == (2, 3, 4, H, W)
    with pytest.raises(InputError, match="convdmm"):
        ConvLSTMForecaster.load(path)
    # a file whose architecture does not fit its weights
    from pyro_videossm.infer import save_model_file
    bad = fc.model_config()
    bad["architecture"]["latent_channels"] = 5
    save_model_file(tmp_path / "bad.pt", name="convdmm", config=bad, state_dict=m.state_dict())
    with pytest.raises(InputError, match="does not fit"):
        load_forecaster(tmp_path / "bad.pt")


def test_bad_options():
    with pytest.raises(InputError):
        tiny(likelihood="cauchy")
    with pytest.raises(InputError):
        tiny(obs_scale=-1.0)
    fixed = tiny(obs_scale=0.5)
    assert float(fixed.obs_scale) == pytest.approx(0.5)
    assert "raw_obs_scale" not in dict(fixed.named_parameters())


def test_input_clip_hides_outliers_from_the_encoder_only():
    m = tiny(input_clip=(-1.0, 2.0))
    batch = tiny_batch(8)
    spiked = {"x": batch["x"].clone(), "mask": batch["mask"]}
    spiked["x"][batch["mask"] & (batch["x"] > 0.2)] = 1e4  # only values above the clip
    g1 = torch.Generator().manual_seed(0)
    g2 = torch.Generator().manual_seed(0)
    a = m.forecast(spiked["x"].clamp(max=2.0), batch["mask"], 2, 2, generator=g1)
    b = m.forecast(spiked["x"], batch["mask"], 2, 2, generator=g2)
    assert torch.equal(a, b)  # the guide sees clamped values
    pyro.set_rng_seed(1)
    la = Trace_ELBO().loss(m.model, m.guide, {"x": spiked["x"].clamp(max=2.0),
                                                "mask": batch["mask"]})
    pyro.set_rng_seed(1)
    lb = Trace_ELBO().loss(m.model, m.guide, spiked)
    assert lb > la + 1.0  # the likelihood sees the raw outliers
    assert m.architecture()["input_clip"] == [-1.0, 2.0]
    with pytest.raises(InputError):
        tiny(input_clip=(1.0, 0.0))


def test_cli_train_and_forecast_round_trip(tmp_path):
    import xarray as xr

    from pyro_videossm.cli import main
    from pyro_videossm.data.conventions import write_netcdf
    from pyro_videossm.data.heat import simulate_heat
    from pyro_videossm.experiments.normalization import fit_scaling

    write_netcdf(simulate_heat(samples=4, steps=8, grid=16, seed=0), tmp_path / "heat.nc")
    common = ["--context", "3", "--leads", "2", "--epochs", "1", "--batch-size", "4",
              "--no-progress"]
    assert main(["train", "convdmm", str(tmp_path / "heat.nc"), *common, "--hidden-channels",
                 "8", "--rnn-channels", "8", "--encoder-channels", "8", "--latent-channels", "2",
                 "--likelihood", "student_t", "--input-clip", "-0.5", "1.5",
                 "-o", str(tmp_path / "m.pt")]) == 0
    assert main(["forecast", str(tmp_path / "heat.nc"), "--model", str(tmp_path / "m.pt"),
                 "--context", "3", "--leads", "4", "--members", "2", "--no-progress",
                 "-o", str(tmp_path / "fc.nc")]) == 0
    with xr.open_dataset(tmp_path / "fc.nc") as fc:
        assert fc["forecast"].shape == (4, 4, 2, 16, 16)
        assert fc.attrs["model"] == "convdmm"
    # the context is too long for the data: one line, exit status 2, no file
    assert main(["train", "convlstm", str(tmp_path / "heat.nc"), "--context", "8", "--leads",
                 "4", "-o", str(tmp_path / "bad.pt")]) == 2
    assert not (tmp_path / "bad.pt").exists()
    # robust scaling: the 1st..99th percentiles map to [0, 1], outliers do not set the scale
    v = np.concatenate([np.linspace(0.0, 1.0, 1001), [1e9, -1e9]])
    s = fit_scaling(v, "robust")
    assert abs(s.offset) < 0.02 and abs(s.scale - 1.0) < 0.04


@pytest.mark.parametrize("parallel", [False, True])
def test_prior_predictive_without_frames(parallel):
    """``Predictive(m.model, num_samples=S)`` without ``x`` draws latents and frames from the
    prior; frames of a grid that is not a multiple of 2**n_down keep their own size."""
    m = tiny()
    for h, w in ((H, W), (15, 13)):
        mask = torch.ones(B, T, h, w, dtype=torch.bool)
        out = Predictive(m.model, num_samples=3, parallel=parallel)({"mask": mask})
        hz, wz = -(-h // 4), -(-w // 4)
        assert out["z"].shape == (3, B, T, 3, hz, wz)
        assert out["x"].shape == (3, B, T, h, w) and torch.isfinite(out["x"]).all()
        assert out["x"].std() > 0
    with pytest.raises(InputError, match="mask"):
        m.model({"x": torch.zeros(B, T, H, W)})


def test_two_conv_dmms_train_one_after_the_other():
    """The second model trains its own parameters, not the first one's left in the store."""
    from pyro.infer import SVI

    batch = tiny_batch()
    for model in (tiny(), tiny()):
        before = {n: p.detach().clone() for n, p in model.named_parameters()}
        svi = SVI(model.model, model.guide, pyro.optim.Adam({"lr": 0.01}), Trace_ELBO())
        for _ in range(2):
            svi.step(batch)
        assert [n for n, p in model.named_parameters() if torch.equal(p, before[n])] == []
