"""Trained-model files: round trip, and one clear InputError for every kind of bad file."""

from __future__ import annotations

import pickle

import pytest
import torch
from toy_models import LinearRegression

from pyro_videossm.errors import InputError
from pyro_videossm.infer import load_model_file, load_state_checked, save_model_file


def saved(tmp_path, name="dmm"):
    module = LinearRegression(3)
    path = tmp_path / "model.pt"
    save_model_file(path, name=name, config={"in_dim": 3, "sizes": [1, 2], "act": None},
                    state_dict=module.state_dict(), extra={"mean": torch.ones(3), "note": "x"})
    return module, path


def test_round_trip(tmp_path):
    module, path = saved(tmp_path)
    loaded = load_model_file(path, expected_name="dmm")
    assert loaded["name"] == "dmm"
    assert loaded["config"] == {"in_dim": 3, "sizes": [1, 2], "act": None}
    assert torch.equal(loaded["extra"]["mean"], torch.ones(3))
    clone = LinearRegression(**{"in_dim": loaded["config"]["in_dim"]})
    load_state_checked(clone, loaded["state_dict"])
    assert all(torch.equal(a, b) for a, b in zip(module.state_dict().values(),
                                                clone.state_dict().values()))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt"]  # no temp file left


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        load_model_file(tmp_path / "absent.pt")


def test_truncated_file(tmp_path):
    _, path = saved(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="truncated or corrupt"):
        load_model_file(path)


@pytest.mark.parametrize("content", [b"", b"hello, I am text\n", bytes(range(256)) * 4])
def test_not_a_torch_file(tmp_path, content):
    path = tmp_path / "junk.pt"
    path.write_bytes(content)
    with pytest.raises(InputError, match="junk.pt"):
        load_model_file(path)


class Foreign:
    pass


def test_foreign_pickle_is_refused_not_executed(tmp_path):
    path = tmp_path / "foreign.pt"
    with open(path, "wb") as f:
        pickle.dump(Foreign(), f)
    with pytest.raises(InputError, match="other than tensors"):
        load_model_file(path)
    torch.save({"weights": torch.zeros(2)}, tmp_path / "plain.pt")  # torch file, not a model
    with pytest.raises(InputError, match="not a pyro-videossm model file"):
        load_model_file(tmp_path / "plain.pt")


def test_other_architecture(tmp_path):
    _, path = saved(tmp_path, name="convdmm")
    with pytest.raises(InputError, match="holds a 'convdmm' model, not 'dmm'"):
        load_model_file(path, expected_name="dmm")


def test_state_dict_mismatch_names_first_key():
    state = LinearRegression(3).state_dict()
    with pytest.raises(InputError, match=r"linear.weight has shape \(1, 3\), expected \(1, 2\)"):
        load_state_checked(LinearRegression(2), state)
    with pytest.raises(InputError, match="missing linear.bias"):
        load_state_checked(LinearRegression(3), {"linear.weight": state["linear.weight"]})
    with pytest.raises(InputError, match="unexpected extra.w"):
        load_state_checked(LinearRegression(3), {**state, "extra.w": torch.zeros(1)})


def test_config_must_be_plain(tmp_path):
    with pytest.raises(TypeError, match="plain python"):
        save_model_file(tmp_path / "m.pt", name="dmm", config={"f": object()}, state_dict={})
    assert list(tmp_path.iterdir()) == []


def test_training_checkpoint_is_not_a_model_file(tmp_path):
    from toy_models import mse_loss

    from pyro_videossm.infer import LossObjective, TrainConfig, Trainer

    path = tmp_path / "ckpt.pt"
    config = TrainConfig(epochs=1, batch_size=4, checkpoint_path=str(path), progress=False)
    Trainer(LossObjective(LinearRegression(1), mse_loss), config).fit(
        {"x": torch.zeros(8, 1), "y": torch.zeros(8, 1)})
    with pytest.raises(InputError, match="training checkpoint, not a model file"):
        load_model_file(path)
