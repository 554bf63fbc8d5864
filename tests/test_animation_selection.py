"""``--keep``: which epoch's EMA generator the flow-animator model file holds."""

import pytest
import torch
from flow_animator_fixture import fit_tiny_animator, tiny_clouds

from pyro_videossm.errors import InputError
from pyro_videossm.experiments.animation_selection import select_epoch, target_margins

BASE = {"l1": 0.10, "spectrum_distance": 0.20, "motion_epe": 0.05}


def scores(l1, spectrum, epe):
    return {"l1": l1, "spectrum_distance": spectrum, "motion_epe": epe}


def test_target_margins_are_relative_to_the_bounds():
    m = target_margins(scores(0.099, 0.15, 0.066), BASE)
    assert m == pytest.approx({"l1": 0.01, "spectrum_distance": 0.25,
                               "motion_epe": (0.055 - 0.066) / 0.055})


def test_targets_keeps_the_epoch_holding_all_three_not_the_best_l1():
    l1 = {1: 0.0931, 2: 0.0930, 3: 0.0940}
    valid = {1: scores(0.0980, 0.205, 0.050),   # misses the spectrum by 2.5 %
             2: scores(0.0970, 0.210, 0.050),   # best L1, misses the spectrum by 5 %
             3: scores(0.0990, 0.170, 0.052)}   # holds all three: worst margin 1 % (L1)
    assert select_epoch("best", l1, valid, BASE) == 2
    assert select_epoch("last", l1, valid, BASE) == 3
    assert select_epoch("targets", l1, valid, BASE) == 3
    # motion counts too: epoch 3 loses its lead when its EPE exceeds 1.1 x the baseline's
    valid[3] = scores(0.0990, 0.170, 0.058)
    assert select_epoch("targets", l1, valid, BASE) == 1
    # among epochs that all hold, the widest smallest margin wins (epoch 2: 3 %)
    valid = {1: scores(0.099, 0.10, 0.04), 2: scores(0.097, 0.19, 0.04),
             3: scores(0.098, 0.15, 0.04)}
    assert select_epoch("targets", l1, valid, BASE) == 2
    # ties go to the earlier epoch
    assert select_epoch("targets", l1, {e: valid[2] for e in l1}, BASE) == 1


def test_select_epoch_refuses_bad_input():
    with pytest.raises(InputError, match="keep must be one of"):
        select_epoch("first", {1: 0.1})
    with pytest.raises(InputError, match="no validated epoch"):
        select_epoch("best", {})
    with pytest.raises(InputError, match="needs the validation scores"):
        select_epoch("targets", {1: 0.1})


def test_keep_targets_stores_the_selected_epochs_generator(tmp_path, monkeypatch):
    pytest.importorskip("cv2")
    from pyro_videossm.experiments.animation_recipe import (
        ValidationScorer,
        driving_flows,
        load_flow_animator,
    )
    from pyro_videossm.infer import load_model_file

    data = tiny_clouds()
    model = tmp_path / "targets.pt"
    history = fit_tiny_animator(data, model, keep="targets", epochs=3, lr=0.05,
                                spectral_weight=0.3)
    extra = load_model_file(model)["extra"]
    clips = data.frames.values[-2:]
    scorer = ValidationScorer(clips, driving_flows(clips))
    assert extra["valid_baseline"] == pytest.approx(scorer.baseline)
    # every epoch's generator, retrained (training is deterministic), scored on its own
    full = {}
    for e in (1, 2, 3):
        m = tmp_path / f"last{e}.pt"
        fit_tiny_animator(data, m, keep="last", epochs=e, lr=0.05, spectral_weight=0.3)
        full[e] = scorer(load_flow_animator(m)[0])
        h = history[e - 1]
        assert (h["valid_spectrum"], h["valid_epe"]) == pytest.approx(
            (full[e]["spectrum_distance"], full[e]["motion_epe"]), rel=1e-5)
    kept = extra["kept_epoch"]
    assert kept == select_epoch("targets", {e: 0.0 for e in full}, full, scorer.baseline)
    assert scorer(load_flow_animator(model)[0]) == pytest.approx(full[kept], rel=1e-5)

    # validation scores under which neither the best-L1 nor the last epoch holds the targets
    import pyro_videossm.experiments.animation_recipe as recipe

    planted = iter([scores(0.5, 0.5, 0.5), scores(0.01, 0.01, 0.01), scores(0.5, 0.5, 0.5)])
    monkeypatch.setattr(recipe.ValidationScorer, "__call__", lambda self, gen: next(planted))
    chosen = tmp_path / "chosen.pt"
    fit_tiny_animator(data, chosen, keep="targets", epochs=3, lr=0.05, spectral_weight=0.3)
    best = min(h["epoch"] for h in history if h["valid"] == min(g["valid"] for g in history))
    assert load_model_file(chosen)["extra"]["kept_epoch"] == 2 != len(history)
    assert best != 2  # so --keep best or last would store another generator
    state = load_model_file(chosen)["state_dict"]
    for e in (1, 2, 3):
        other = load_model_file(tmp_path / f"last{e}.pt")["state_dict"]
        same = all(torch.equal(state[k], other[k]) for k in state)
        assert same == (e == 2)
