"""``videossm train dmm`` defaults: the flags read :class:`HybridDMMOptions`, the RK4 steps."""

from __future__ import annotations

import dataclasses

import pytest

from pyro_videossm.cli import build_parser
from pyro_videossm.cli.train_dmm import options_from_args
from pyro_videossm.data import simulate
from pyro_videossm.errors import InputError
from pyro_videossm.experiments.dmm import HybridDMMOptions, build_dmm


def _options(*flags: str) -> HybridDMMOptions:
    args = build_parser().parse_args(["train", "dmm", "obs.nc", "-o", "m.pt", *flags])
    return options_from_args(args)


def test_flags_without_values_are_the_options_defaults():
    assert _options() == HybridDMMOptions()
    # the tuned Lorenz-63 recipe of docs/RESULTS.md
    defaults = dataclasses.asdict(HybridDMMOptions())
    assert {k: defaults[k] for k in ("epochs", "batch_size", "lr", "lr_decay",
                                     "physics_substeps", "rnn_dim", "window",
                                     "smoother_iterations")} == {
        "epochs": 10, "batch_size": 64, "lr": 2e-3, "lr_decay": 0.9, "physics_substeps": 5,
        "rnn_dim": 64, "window": 20, "smoother_iterations": 5}
    assert _options("--epochs", "3", "--physics-substeps", "0").epochs == 3
    assert _options("--physics-substeps", "0").physics_substeps is None
    with pytest.raises(InputError, match="--physics-substeps must be >= 0"):
        _options("--physics-substeps", "-1")


def test_physics_steps_per_cycle_never_exceed_the_data_s():
    l63 = simulate("lorenz63", cycles=30, seed=0)            # 25 integration steps per cycle
    l96 = simulate("lorenz96", cycles=30, seed=0)            # 1 integration step per cycle
    small = {"rnn_dim": 4, "correction_hidden": (4,)}

    def steps(obs, **kw):
        return build_dmm(obs, HybridDMMOptions(**small, **kw)).config["physics"]["steps_per_obs"]

    assert steps(l63) == 5 and steps(l63, physics_substeps=None) == 25
    assert steps(l63, physics_substeps=0) == 25 and steps(l63, physics_substeps=50) == 25
    assert int(l96.attrs["steps_per_obs"]) == 1
    assert steps(l96) == 1 and steps(l96, physics_substeps=None) == 1
    # the same physics step either way: dt * steps is the observation interval
    dmm = build_dmm(l63, HybridDMMOptions(**small))
    assert dmm.config["physics"]["dt"] * 5 == pytest.approx(float(l63.attrs["obs_interval"]))


def test_default_smoother_iterations_are_5_and_3_stays_reachable():
    """The default recipe's smoothing guide relinearises 5 times (docs/LORENZ63_DMM.md: it
    beats the iEnKS, 3 does not); ``--smoother-iterations 3`` is the earlier default."""
    from pyro_videossm.experiments.dmm import DEMO_TRAINING

    assert HybridDMMOptions().smoother_iterations == 5
    assert _options().smoother_iterations == 5
    assert _options("--smoother-iterations", "3").smoother_iterations == 3
    assert DEMO_TRAINING["smoother_iterations"] == 5
    l63 = simulate("lorenz63", cycles=30, seed=0)
    small = {"rnn_dim": 4, "correction_hidden": (4,)}
    assert build_dmm(l63, HybridDMMOptions(**small)).config["smoother_iterations"] == 5
    old = build_dmm(l63, HybridDMMOptions(**small, smoother_iterations=3))
    assert old.config["smoother_iterations"] == 3
    assert old.guide.combiner.smoother_iterations == 3
