"""The recipe registry and ``videossm train``: built-in recipes, flags and defaults unchanged
from the former per-model trainers, options dataclasses, ``register_trainer`` plug-ins, and
the command line as a thin layer over :meth:`Recipe.fit`."""

from __future__ import annotations

import argparse
import dataclasses
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from pyro_videossm.cli import build_parser, main
from pyro_videossm.errors import InputError
from pyro_videossm.experiments.recipes import RECIPES, TrainingRun

ROOT = Path(__file__).resolve().parents[1]
BUILTIN = ("convdmm", "convlstm", "dmm-flat", "dsvae", "judge", "lstm", "seq2seq",
           "seq2seq-attn", "spatrans", "transformer")

# The flags (besides the common ones) and defaults of ``videossm train MODEL`` before the
# recipes existed (cli/train_fields.py, train_sequence.py, train_dsvae.py): (default, nargs).
# The sequence models' --normalize gained the ``robust`` choice; nothing else may change.
# The three LSTM baselines (lstm, seq2seq, seq2seq-attn) had the same flags.
LSTM_FLAGS = {
    '--context': (10, None), '--d-model': (256, None), '--hidden': (512, None),
    '--leads': (10, None), '--lr-decay': (1.0, None), '--lstm-layers': (2, None),
    '--normalize': ('none', None), '--patience': (None, None), '--quantile': (False, 0),
    '--quantiles': (None, '+'), '--stride': (1, None), '--valid-fraction': (0.1, None),
    '--variable': (None, None),
}

OLD_FLAGS = {
    'convdmm': {
        '--anneal-epochs': (0, None), '--context': (10, None), '--df': (4.0, None),
        '--encoder-channels': (32, None), '--hidden-channels': (32, None),
        '--input-clip': (None, 2), '--latent-channels': (8, None), '--leads': (10, None),
        '--likelihood': ('gaussian', None), '--lr-decay': (1.0, None),
        '--min-anneal': (0.2, None), '--n-down': (2, None), '--normalize': ('robust', None),
        '--obs-scale': (None, None), '--patience': (None, None), '--rnn-channels': (32, None),
        '--stride': (1, None), '--valid-fraction': (0.1, None), '--variable': (None, None),
    },
    'convlstm': {
        '--context': (10, None), '--hidden-channels': ([32, 32], '+'), '--input-clip': (None, 2),
        '--leads': (10, None), '--lr-decay': (1.0, None), '--normalize': ('robust', None),
        '--patience': (None, None), '--stem-channels': (16, None), '--stride': (1, None),
        '--target-clip': (None, 2), '--valid-fraction': (0.1, None), '--variable': (None, None),
    },
    'dmm-flat': {
        '--anneal-epochs': (0, None), '--context': (10, None), '--conv-channels': (16, None),
        '--df': (4.0, None), '--hidden-dim': (64, None), '--input-clip': (None, 2),
        '--latent-dim': (32, None), '--leads': (10, None), '--likelihood': ('gaussian', None),
        '--lr-decay': (1.0, None), '--min-anneal': (0.2, None), '--n-down': (2, None),
        '--normalize': ('robust', None), '--obs-scale': (None, None), '--patience': (None, None),
        '--rnn-dim': (64, None), '--stride': (1, None), '--valid-fraction': (0.1, None),
        '--variable': (None, None),
    },
    'dsvae': {
        '--adversarial': (False, 0), '--adversary-mode': ('minmax', None),
        '--adversary-weight': (30.0, None), '--anneal-epochs': (0, None),
        '--conv-channels': (32, None), '--dynamic-dim': (8, None),
        '--dynamic-encoder': ('frame', None), '--dynamic-kl-weight': (1.0, None),
        '--feature-dim': (128, None), '--hidden-dim': (128, None),
        '--likelihood': ('bernoulli', None), '--motion-label': ('motion', None),
        '--pixel-scale': (0.1, None), '--static-dim': (32, None),
    },
    'judge': {
        '--conv-channels': (32, None), '--hidden-dim': (128, None),
        '--labels': ('motion,skin,top,bottom,hair', None),
    },
    'lstm': LSTM_FLAGS,
    'seq2seq': LSTM_FLAGS,
    'seq2seq-attn': LSTM_FLAGS,
    'spatrans': {
        '--context': (10, None), '--d-model': (64, None), '--decoder': ('direct', None),
        '--heads': (4, None), '--layers': (2, None), '--leads': (10, None),
        '--lr-decay': (1.0, None), '--normalize': ('none', None), '--patch': (8, None),
        '--patience': (None, None), '--quantile': (False, 0), '--quantiles': (None, '+'),
        '--stride': (1, None), '--valid-fraction': (0.1, None), '--variable': (None, None),
    },
    'transformer': {
        '--context': (10, None), '--d-model': (128, None), '--decoder': ('direct', None),
        '--heads': (4, None), '--layers': (2, None), '--leads': (10, None),
        '--lr-decay': (1.0, None), '--normalize': ('none', None), '--patience': (None, None),
        '--quantile': (False, 0), '--quantiles': (None, '+'), '--stride': (1, None),
        '--valid-fraction': (0.1, None), '--variable': (None, None),
    },
}


def _train_parsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    train = sub.choices["train"]
    return next(a for a in train._actions
                if isinstance(a, argparse._SubParsersAction)).choices


def test_builtin_recipes_and_unknown_names():
    assert set(BUILTIN) <= set(RECIPES.names())
    for name in BUILTIN:
        recipe = RECIPES[name]
        assert recipe.name == name and recipe.help and dataclasses.is_dataclass(recipe.options)
        for f in dataclasses.fields(recipe.options):
            assert f.metadata.get("help"), f"{name}.{f.name} has no help"
    with pytest.raises(InputError, match="unknown recipe 'nope'"):
        RECIPES["nope"]
    with pytest.raises(InputError, match="no option 'widht'"):
        RECIPES["convlstm"].make_options(widht=3)


def test_every_flag_and_default_is_kept():
    parsers = _train_parsers()
    common = {"-h", "-o", "--epochs", "--lr", "--batch-size", "--device", "--seed",
              "--checkpoint", "--resume", "--progress", "--no-progress"}
    for name, expected in OLD_FLAGS.items():
        got = {a.option_strings[0]: (a.default, a.nargs) for a in parsers[name]._actions
               if a.option_strings and a.option_strings[0] not in common}
        assert got == expected, name
    normalize = next(a for a in parsers["spatrans"]._actions if a.dest == "normalize")
    assert set(normalize.choices) == {"robust", "minmax", "log", "none"}


def test_flags_fill_the_options_dataclass():
    from pyro_videossm.cli.train import options_from_args

    parser = _train_parsers()["convlstm"]
    args = parser.parse_args(["d.nc", "-o", "m.pt", "--hidden-channels", "4", "8",
                              "--target-clip", "-1", "2", "--context", "3"])
    opts = options_from_args(RECIPES["convlstm"].options, args)
    assert opts == RECIPES["convlstm"].make_options(hidden_channels=[4, 8],
                                                    target_clip=(-1.0, 2.0), context=3)
    assert opts.architecture() == {"hidden_channels": [4, 8], "stem_channels": 16,
                                   "input_clip": None}
    # defaults of the dataclass are the flags' defaults
    args = _train_parsers()["spatrans"].parse_args(["d.nc", "-o", "m.pt"])
    assert options_from_args(RECIPES["spatrans"].options, args) == \
        RECIPES["spatrans"].make_options()


def test_register_trainer_plugs_in(tmp_path):
    from pyro_videossm.cli.train import register_trainer

    seen = {}

    def arguments(parser):
        parser.add_argument("--width", type=int, default=3)

    def run(args):
        seen.update(width=args.width, data=args.data)
        return 0

    register_trainer("toy-trainer", "a toy", arguments, run)
    try:
        assert "toy-trainer" in RECIPES
        assert main(["train", "toy-trainer", str(tmp_path / "d.nc"), "-o",
                     str(tmp_path / "m.pt"), "--width", "5"]) == 0
        assert seen == {"width": 5, "data": tmp_path / "d.nc"}
    finally:
        RECIPES.unregister("toy-trainer")
    assert "toy-trainer" not in RECIPES


def _heat(tmp_path):
    from pyro_videossm.data.conventions import write_netcdf
    from pyro_videossm.data.heat import simulate_heat

    path = tmp_path / "heat.nc"
    write_netcdf(simulate_heat(samples=4, steps=8, grid=16, seed=0), path)
    return path


def test_cli_is_the_recipe(tmp_path):
    """``videossm train convlstm`` and ``RECIPES["convlstm"].fit`` give the same model file."""
    from pyro_videossm.forecast import load_forecaster
    from pyro_videossm.infer import load_model_file

    data = _heat(tmp_path)
    assert main(["train", "convlstm", str(data), "-o", str(tmp_path / "cli.pt"), "--context",
                 "3", "--leads", "2", "--epochs", "1", "--batch-size", "4", "--no-progress",
                 "--hidden-channels", "4", "4", "--stem-channels", "4", "--seed", "3"]) == 0
    recipe = RECIPES["convlstm"]
    history = recipe.fit(
        TrainingRun(data, tmp_path / "api.pt", epochs=1, batch_size=4, seed=3, progress=False),
        recipe.make_options(context=3, leads=2, hidden_channels=[4, 4], stem_channels=4))
    cli, api = load_model_file(tmp_path / "cli.pt"), load_model_file(tmp_path / "api.pt")
    assert cli["name"] == api["name"] == "convlstm"
    assert cli["config"] == api["config"]
    for k, v in cli["state_dict"].items():
        torch.testing.assert_close(api["state_dict"][k], v)
    # the model file records what it did: history, data, variable, leads, training settings
    extra = cli["extra"]
    assert set(extra) >= {"history", "data", "variable", "leads", "train_config"}
    assert extra["variable"] == "obs" and extra["leads"] == 2 and len(history) == 1
    assert extra["train_config"]["epochs"] == 1 and extra["train_config"]["lr"] == 1e-3
    fc = load_forecaster(tmp_path / "cli.pt")
    assert fc.context_length == 3 and not fc.scaling.is_identity  # robust by default


def test_recipe_parts_build_the_model():
    from pyro_videossm.experiments.windows import build_windows

    ds = _series_dataset()
    data = build_windows(ds, 3, 2, normalize="minmax")
    recipe = RECIPES["transformer"]
    opts = recipe.make_options(context=3, leads=2, d_model=8, heads=2, layers=1,
                               quantile=True)
    module = recipe.build(opts, data)
    assert module.frame_shape == (4, 4) and module.quantiles == (0.1, 0.5, 0.9)
    assert module.scaling == data.scaling
    objective = recipe.objective(module, opts)
    batch = {k: v[:2] for k, v in data.train.items()}
    loss = objective.loss_fn(module, batch)
    assert torch.isfinite(loss) and loss.dim() == 0


def _series_dataset(t=12, h=4, w=4):
    import xarray as xr

    rng = np.random.default_rng(0)
    return xr.Dataset({"precip": (("time", "y", "x"), 5.0 * rng.random((t, h, w)),
                                  {"units": "mm/h"})}, coords={"time": np.arange(t) * 300.0})


def test_experiments_package_is_import_light():
    code = ("import sys, pyro_videossm.experiments as e; "
            "assert 'torch' not in sys.modules, 'torch imported'; "
            "assert e.build_windows.__module__ == 'pyro_videossm.experiments.windows'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=str(ROOT))
