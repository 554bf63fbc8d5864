"""The advection ConvDMM's optional linear stencil (``linear_kernel``): a diffusion step plus
drift in the transition, checked against the FTCS closed form."""

from __future__ import annotations

import pytest
import torch

from pyro_videossm.data.heat import ftcs_step
from pyro_videossm.errors import InputError
from pyro_videossm.models.ssm.advection_conv_dmm import AdvectionConvDMM
from pyro_videossm.nn.advection_blocks import AdvectionTransition


def test_stencil_starts_at_zero_and_represents_an_ftcs_step_plus_drift():
    torch.manual_seed(0)
    trans = AdvectionTransition(1, 4, linear_kernel=3)
    z = torch.rand(2, 1, 12, 12)
    z[..., 0, :] = z[..., -1, :] = z[..., :, 0] = z[..., :, -1] = 0.0  # Dirichlet border
    flow = torch.zeros(2, 2, 12, 12)
    # untrained: pure advection (identity for a zero flow), as without the stencil
    torch.testing.assert_close(trans(z, flow)[0], z)
    # the 5-point Laplacian times D dt / dx² and a drift b: one FTCS step plus b, interior
    r, b = 0.2, 0.01
    with torch.no_grad():
        w = torch.tensor([[0.0, r, 0.0], [r, -4 * r, r], [0.0, r, 0.0]])
        trans.linear.weight.copy_(w.reshape(1, 1, 3, 3))
        trans.linear.bias.fill_(b)
    loc = trans(z, flow)[0]
    want = ftcs_step(z[:, 0], diffusivity=r, dt=1.0, dx=1.0, dy=1.0) + b
    torch.testing.assert_close(loc[:, 0, 1:-1, 1:-1], want[:, 1:-1, 1:-1])
    # the correction still adds on top: a changed change_out moves loc
    with torch.no_grad():
        trans.change_out.bias.fill_(0.1)
    assert not torch.allclose(trans(z, flow)[0], loc)


def test_linear_kernel_option_is_checked_stored_and_off_by_default():
    from pyro_videossm.experiments.field_recipes import AdvectionConvDMMOptions

    opts = dict(latent_channels=2, hidden_channels=4, rnn_channels=4, encoder_channels=4,
                n_down=1, motion="none", transform="none")
    assert AdvectionConvDMMOptions().architecture()["linear_kernel"] == 0
    assert AdvectionConvDMM(**opts).trans.linear is None
    m = AdvectionConvDMM(**opts, linear_kernel=3)
    assert m.architecture()["linear_kernel"] == 3 and m.trans.linear.weight.shape == (2, 2, 3, 3)
    # the architecture rebuilds the same parameters (model files reload)
    same = AdvectionConvDMM(**m.architecture())
    assert same.state_dict().keys() == m.state_dict().keys()
    for bad in (-1, 2):
        with pytest.raises(InputError, match="linear_kernel"):
            AdvectionConvDMM(**opts, linear_kernel=bad)
    # a model file written before the option existed loads without a stencil
    old = {k: v for k, v in m.architecture().items() if k != "linear_kernel"}
    assert AdvectionConvDMM(**old).trans.linear is None


def test_heat_benchmark_stencil_variants():
    from pyro_videossm.experiments.heat_benchmark import heat_architectures

    archs = heat_architectures(32, latent_channels=8, latent_dim=32, likelihood="student_t",
                               df=2.0, input_clip=(-0.5, 1.5), rollout_horizon=20)
    plain = archs["advection-convdmm"]
    assert archs["advection-convdmm-stencil"] == {**plain, "linear_kernel": 3}
    assert archs["advection-convdmm-stencil-rollout"] == {**plain, "linear_kernel": 3,
                                                          "rollout_horizon": 20}
