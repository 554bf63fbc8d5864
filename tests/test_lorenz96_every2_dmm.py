"""The hybrid DMM of Lorenz-96 observing every 2nd component (issue 13): the sharp recipe
rows of ``assimilation/lorenz96_every2.py`` (the levers of the N=40 diagnosis) and the
oracle-smoother diagnostic ``benchmarks/lorenz96_every2_oracle.py``."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import torch
import xarray as xr

REPO = Path(__file__).resolve().parents[1]


def _oracle_module():
    path = REPO / "benchmarks" / "lorenz96_every2_oracle.py"
    spec = importlib.util.spec_from_file_location("lorenz96_every2_oracle", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_sharp_rows_use_the_n40_recipe_on_this_setting():
    """Same levers as the N=40 sharp recipe (windows of 160, fixed noise 0.005, no correction,
    no residual, exact physics), trained on this setting's own simulation; the classical
    rows and the earlier untrained DMM row of the every-k-th body are kept unchanged (the
    earlier trained row is dropped: its model file was not kept)."""
    from assimilation.lorenz96_every2 import SETTING
    from assimilation.lorenz96_every_kth import every_kth_setting
    from assimilation.lorenz96_n40 import SHARP_TRAINING

    base = [e for e in every_kth_setting(2)["methods"] if e.label != "hybrid DMM"]
    assert list(SETTING.methods[:len(base)]) == base
    assert "hybrid DMM, untrained" in [e.label for e in base]
    sharp = [e for e in SETTING.methods if e.label.startswith("hybrid DMM, sharp")]
    assert len(sharp) == 3
    for row in sharp:
        assert row.options == {"samples": 64, "window": 160, "stride": 40,
                               "smoother_iterations": 30 if "30" in row.label else 20}
        options = dict(row.model.options)
        assert options.pop("setting") == "lorenz96_every2"
        assert options == SHARP_TRAINING
    assert sharp[0].relative_bound == 1.0
    assert sharp[1].relative_bound is None and sharp[2].relative_bound is None


def test_untrained_sharp_model_observes_every_2nd_component(tmp_path):
    """The diagnostic row's model: transition noise fixed at 0.005 (not a parameter), no
    correction, no residual, the data's own RK4 step, and an emitter that sees components
    0, 2, ..., 38 only (its component mask)."""
    from assimilation.dmm_training import untrained_for_setting
    from assimilation.lorenz96_every2 import SHARP_UNTRAINED
    from pyro_videossm.models.ssm.dmm_file import load_dmm

    path = tmp_path / "untrained.pt"
    untrained_for_setting(path, **{**SHARP_UNTRAINED.options, "window": 20, "rnn_dim": 4})
    dmm, extra = load_dmm(path)
    assert extra["window"] == 20
    assert "log_scale" not in {name for name, _ in dmm.transition.named_parameters()}
    torch.testing.assert_close(dmm.transition.log_scale.exp(), torch.full((40,), 0.005))
    assert dmm.transition.correction is None and not dmm.combiner.residual
    assert dmm.transition.steps_per_obs == 1
    expected = torch.zeros(40, dtype=torch.bool)
    expected[::2] = True
    assert torch.equal(dmm.emitter.component_mask, expected)


def test_block_rmse_is_the_rmse_of_each_block():
    """Closed form: an error of c_b on every component of block b gives RMSE c_b there;
    burn-in cycles and a partial last block are left out."""
    oracle = _oracle_module()
    block, burn_in = oracle.BLOCK, 7
    levels = [0.5, 2.0, 1.0]
    err = np.concatenate([np.full((burn_in, 4), 99.0)]
                         + [np.full((block, 4), c) for c in levels]
                         + [np.full((block // 2, 4), 99.0)])
    truth = xr.DataArray(np.zeros_like(err), dims=("time", "state"))
    post = xr.Dataset({"mean": (("time", "state"), err)})
    assert np.allclose(oracle.block_rmse(post, truth, burn_in), levels)
