"""The experiment layer's benchmark parts: budgeted fit, run cache, clip windows, pooled
window scores, clip scores, sprite tensors (pyro_videossm/experiments/{budget, run_cache,
clip_benchmark, forecast_benchmark, video_benchmark}.py)."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch
import xarray as xr

from pyro_videossm.errors import InputError
from pyro_videossm.experiments import budget
from pyro_videossm.experiments.budget import fit_within_budget
from pyro_videossm.experiments.run_cache import RunCache, fingerprint
from pyro_videossm.infer import LossObjective, TrainConfig, Trainer


# -- budgeted fit ----------------------------------------------------------------------------
def _regression(seed: int = 0):
    torch.manual_seed(seed)
    x = torch.randn(8, 3)
    data = {"x": x, "y": x @ torch.tensor([1.0, -2.0, 0.5])}
    torch.manual_seed(seed)
    module = torch.nn.Linear(3, 1)
    return module, data


class _Clock:
    """A fake ``time`` module whose clock moves 1 s per training loss."""

    now = 0.0

    @classmethod
    def perf_counter(cls) -> float:
        return cls.now


def _loss(module, batch):
    _Clock.now += 1.0
    return ((module(batch["x"]).squeeze(-1) - batch["y"]) ** 2).mean()


def test_budgeted_fit_stops_at_the_first_step_after_the_deadline(monkeypatch):
    monkeypatch.setattr(budget, "time", _Clock)
    config = TrainConfig(epochs=10, batch_size=4, lr=0.1, progress=False)  # 2 steps/epoch
    module, data = _regression()
    _Clock.now = 0.0
    fit = fit_within_budget(LossObjective(module, _loss), config, data, seconds=3.5)
    # steps start at clock 0, 1, 2, 3 (<= 3.5); the fifth (clock 4) is refused
    assert fit.timed_out and fit.items_seen == 4 * 4 and len(fit.history) == 2
    assert fit.seconds == pytest.approx(4.0)
    # the parameters are those of exactly two epochs without a budget
    ref, _ = _regression()
    Trainer(LossObjective(ref, _loss), TrainConfig(epochs=2, batch_size=4, lr=0.1,
                                                   progress=False)).fit(data)
    for a, b in zip(module.parameters(), ref.parameters()):
        assert torch.equal(a, b)


def test_unbudgeted_fit_equals_the_trainer():
    config = TrainConfig(epochs=3, batch_size=3, lr=0.05, progress=False)
    module, data = _regression(1)
    objective = LossObjective(module, _loss)
    fit = fit_within_budget(objective, config, data, seconds=None)
    assert not fit.timed_out and fit.items_seen == 3 * 8 and len(fit.history) == 3
    assert "loss_and_grads" not in vars(objective)  # the step is restored
    ref, _ = _regression(1)
    history = Trainer(LossObjective(ref, _loss), config).fit(data)
    assert [h["train_loss"] for h in history] == [h["train_loss"] for h in fit.history]
    for a, b in zip(module.parameters(), ref.parameters()):
        assert torch.equal(a, b)


# -- run cache --------------------------------------------------------------------------------
def test_run_cache_names_runs_by_their_settings(tmp_path):
    settings = {"model": "lstm", "lr": 0.001, "arch": {"d_model": 16}}
    expected = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:10]
    assert fingerprint(settings) == expected
    assert fingerprint(dict(reversed(settings.items()))) == expected
    cache = RunCache(tmp_path / "runs")
    path = cache.path("lstm_seed0", settings)
    assert path.name == f"lstm_seed0_{expected}.json"
    assert cache.path("lstm_seed0", {**settings, "lr": 0.002}) != path
    cache.save(path, {"mse": 0.5})
    assert cache.load(path) == {"mse": 0.5} and list(path.parent.iterdir()) == [path]


def test_run_settings_use_the_base_models_architecture():
    """A quantile model's run is fingerprinted with its base model's settings; the device
    only when it is not the CPU (so CPU runs keep their names)."""
    import argparse

    from pyro_videossm.experiments.clip_benchmark import architectures, run_settings

    args = argparse.Namespace(train_clips=10000, test_clips=500, valid_fraction=0.1,
                              data_seed=0, epochs=50, minutes=15.0, batch_size=16, lr=1e-3,
                              threads=1, mnist=None, quick=False, device="cpu")
    arch = architectures(False)
    key = run_settings("persistence", arch, args)
    assert key["arch"] == {} and "device" not in key
    assert run_settings("spatrans-q", arch, args)["arch"] == arch["spatrans"]


def test_architecture_overrides():
    from pyro_videossm.experiments.clip_benchmark import ARCHITECTURES, architectures

    arch = architectures(False, ["spatrans.d_model=192", "lstm.lr=0.002",
                                 "convlstm.hidden_channels=[4, 4]"])
    assert arch["spatrans"]["d_model"] == 192 and arch["lstm"]["lr"] == 0.002
    assert arch["convlstm"]["hidden_channels"] == [4, 4]
    assert ARCHITECTURES["spatrans"]["d_model"] == 128  # the defaults are not touched
    with pytest.raises(InputError, match="MODEL.KEY=VALUE"):
        architectures(True, ["nosuchmodel.d_model=8"])


# -- clips ------------------------------------------------------------------------------------
def test_clip_windows_give_the_former_clips():
    """The windows builder gives the clips the benchmark's former uint8 ``Clips`` gave: the
    same values, the same train / validation split."""
    from pyro_videossm.data.moving_digits import moving_digits
    from pyro_videossm.experiments.clip_benchmark import (
        clip_windows,
        training_clips,
        without_mask,
    )

    n, seed, chunk = 12, 3, 5
    clips = training_clips(n, seed, None, chunk=chunk)
    # the former path: chunks simulated as uint8, each item uint8 / 255 in float32
    parts = [np.rint(moving_digits(min(chunk, n - lo), split="train", seed=100003 * seed + k)
                     ["frames"].values * 255.0).astype(np.uint8)
             for k, lo in enumerate(range(0, n, chunk))]
    old = torch.from_numpy(np.concatenate(parts)).to(torch.float32) / 255.0
    data = clip_windows(clips, valid_fraction=0.25)
    n_valid = max(1, int(round(0.25 * n)))
    assert (data.n_train, data.n_valid) == (n - n_valid, n_valid)
    assert torch.equal(data.train["x"], old[:-n_valid])
    assert torch.equal(data.valid["x"], old[-n_valid:])
    assert bool(data.train["mask"].all())
    streamed = clip_windows(clips, valid_fraction=0.25, in_memory_bytes=0)
    assert len(streamed.train) == n - n_valid
    assert all(torch.equal(streamed.train[i]["x"], old[i]) for i in range(n - n_valid))
    # the frame forecasters train on the clips without their all-True masks
    stacked, items = without_mask(data), without_mask(streamed)
    assert set(stacked.train) == {"x"} and set(stacked.valid) == {"x"}
    assert set(items.train[0]) == {"x"} and set(items.valid[0]) == {"x"}
    assert torch.equal(without_mask(data).train["x"], data.train["x"])
    assert torch.equal(without_mask(streamed).train[3]["x"], old[3])


def test_clip_scores_of_persistence_match_numpy():
    from pyro_videossm.experiments.clip_benchmark import score_clip_forecasts
    from pyro_videossm.forecast import Persistence

    gen = torch.Generator().manual_seed(0)
    test = torch.rand(5, 20, 16, 16, generator=gen)
    scores = score_clip_forecasts(lambda c, m: Persistence().predict(c, m, 10), test, None,
                                  batch_size=2)
    t = test.numpy().astype(np.float64)
    err = t[:, 10:] - t[:, 9:10]
    assert scores["mse"] == pytest.approx((err ** 2).mean(), rel=1e-5)
    assert scores["mae"] == pytest.approx(np.abs(err).mean(), rel=1e-5)
    assert scores["mse_frame"] == pytest.approx(scores["mse"] * 256)


# -- pooled window scores ---------------------------------------------------------------------
class _SeedRecorder:
    def __init__(self) -> None:
        self.seeds: list[int] = []

    def forecast(self, context, leads, members=1, *, seed=0, **kwargs):
        from pyro_videossm.forecast import Persistence

        self.seeds.append(seed)
        return Persistence().forecast(context, leads, members, seed=seed)


def test_pooled_window_scores_equal_a_numpy_computation():
    from pyro_videossm.experiments.forecast_benchmark import pooled_window_scores

    rng = np.random.default_rng(0)
    values = rng.gamma(0.5, 2.0, size=(14, 6, 5))
    values[:, 0, 0] = np.nan  # outside the radar range
    time = np.datetime64("2010-08-26T00:00") + np.arange(14) * np.timedelta64(5, "m")
    da = xr.DataArray(values, dims=("time", "y", "x"), name="rain_rate",
                      coords={"time": time, "y": np.arange(6.0), "x": np.arange(5.0)},
                      attrs={"units": "mm/h"})
    k, lead, start, stop = 3, 2, 7, 13
    recorder = _SeedRecorder()
    scores, forecasts = pooled_window_scores(recorder, da, context=k, leads=lead, start=start,
                                             stop=stop, members=1, seed=5, threshold=1.0,
                                             scales=[1, 3])
    splits = list(range(start, stop - lead + 1))
    assert recorder.seeds == [5 + i for i in range(len(splits))] and len(forecasts) == 5
    fc = np.stack([np.repeat(values[t - 1][None], lead, 0) for t in splits])
    ob = np.stack([values[t:t + lead] for t in splits])
    np.testing.assert_allclose(scores["mse"], np.nanmean((fc - ob) ** 2, axis=(0, 2, 3)),
                               rtol=1e-10)
    ok = ~(np.isnan(fc) | np.isnan(ob))
    f1, o1 = (fc >= 1) & ok, (ob >= 1) & ok
    hits = (f1 & o1).sum((0, 2, 3))
    csi = hits / (hits + (f1 & ~o1).sum((0, 2, 3)) + (~f1 & o1).sum((0, 2, 3)))
    np.testing.assert_allclose(scores["csi"], csi, rtol=1e-10)
    assert list(scores) == ["mse", "crps", "csi", "fss1", "fss3"]
    np.testing.assert_allclose(scores["crps"], np.nanmean(np.abs(fc - ob), axis=(0, 2, 3)),
                               rtol=1e-10)  # one member: CRPS = MAE


def test_train_model_rejects_unknown_models():
    from pyro_videossm.experiments.forecast_benchmark import build_model
    from pyro_videossm.experiments.windows import build_windows

    da = xr.DataArray(np.random.default_rng(0).random((8, 4, 4)), dims=("time", "y", "x"),
                      name="f")
    data = build_windows(da, 2, 2, valid_fraction=0.0)
    with pytest.raises(InputError, match="unknown model"):
        build_model("nosuch", {}, data, context=2, leads=2)


# -- sprites ----------------------------------------------------------------------------------
def test_sprite_tensors_through_the_builder_equal_the_readers():
    from pyro_videossm.data.sprites import frames_tensor, labels_tensor, make_sprites
    from pyro_videossm.experiments.video_benchmark import pick_distinct, training_tensors

    train = make_sprites("train", size=16, characters=2, seed=0)
    x, motion = training_tensors(train)
    assert torch.equal(x, frames_tensor(train))
    assert torch.equal(motion, labels_tensor(train, ["motion"])["motion"])
    picks = pick_distinct(train["motion"].values, 4, np.random.default_rng(0))
    assert len(set(train["motion"].values[picks].tolist())) == 4


# -- heat benchmark end to end (tiny) ---------------------------------------------------------
def test_heat_benchmark_tiny_run_scores_persistence_exactly(tmp_path):
    import importlib.util
    from pathlib import Path

    from pyro_videossm.experiments.heat_benchmark import heat_data

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "heat_forecast.py"
    spec = importlib.util.spec_from_file_location("heat_forecast_bench", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    results = tmp_path / "R.md"
    assert bench.main(["--sim-grid", "16", "--coarsen", "2", "--train-samples", "6",
                       "--test-samples", "3", "--context", "3", "--leads", "2", "--epochs", "1",
                       "--hidden-channels", "8", "--members", "2", "--models", "convlstm",
                       "persistence", "--out", str(tmp_path), "--results", str(results)]) == 0
    rows = {line.split(",")[0]: np.array([float(v) for v in line.split(",")[1:]])
            for line in (tmp_path / "heat_mse.csv").read_text().splitlines()[1:]}
    test = heat_data(3, 5, 2, 16, 2)
    last = test["obs"].values[:, 2:3]                      # the last context frame
    truth = test["truth"].values[:, 3:5]
    np.testing.assert_allclose(rows["persistence"], ((last - truth) ** 2).mean(axis=(0, 2, 3)),
                               rtol=1e-5)
    assert np.isfinite(rows["convlstm"]).all() and (tmp_path / "convlstm.pt").exists()
    assert "| convlstm | 1 |" in results.read_text()
