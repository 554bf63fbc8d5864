"""The trained-model file written by ``videossm train ... -o model.pt``.

A model file is a ``torch.save`` of a plain dictionary::

    {"format": "pyro_videossm.model", "version": 1, "name": "dmm",
     "config": {...plain python...}, "state_dict": {...tensors...}, "extra": {...}}

written atomically and read with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

import torch

from pyro_videossm.errors import InputError
from pyro_videossm.infer.state import atomic_torch_save, is_plain, safe_torch_load

MODEL_FORMAT = "pyro_videossm.model"
MODEL_VERSION = 1


def save_model_file(
    path: str | os.PathLike,
    name: str,
    config: Mapping[str, Any],
    state_dict: Mapping[str, torch.Tensor],
    extra: Mapping[str, Any] | None = None,
) -> None:
    """Write a trained model atomically.

    Args:
        path: destination file (its folder must exist).
        name: architecture name (``"dmm"``, ``"convdmm"``, ...), checked on load.
        config: constructor options, plain python only (None/bool/int/float/str, lists,
            tuples, dicts) so that the model can be rebuilt with ``Model(**config)``.
        state_dict: ``module.state_dict()``; tensors are moved to CPU.
        extra: anything else to keep (normalisation statistics, training history, ...):
            plain python and tensors.

    Raises:
        TypeError: ``config``/``extra`` hold something ``torch.load(weights_only=True)``
            could not read back.
    """
    if not isinstance(name, str) or not name:
        raise TypeError("model name must be a non-empty string")
    config = dict(config)
    extra = dict(extra or {})
    if not is_plain(config, allow_tensors=False):
        raise TypeError(f"model config for {name} must hold plain python values only")
    if not is_plain(extra):
        raise TypeError(f"model extra for {name} must hold plain python values and tensors")
    state = {k: v.detach().cpu() for k, v in state_dict.items()}
    atomic_torch_save(
        {"format": MODEL_FORMAT, "version": MODEL_VERSION, "name": name, "config": config,
         "state_dict": state, "extra": extra},
        path,
    )


def load_model_file(
    path: str | os.PathLike,
    expected_name: str | None = None,
    map_location: Any = "cpu",
) -> dict[str, Any]:
    """Read a file written by :func:`save_model_file`.

    Returns a dict with ``name``, ``config``, ``state_dict`` and ``extra``.

    Raises:
        InputError: one line, for a missing file, a truncated or non-torch file, a torch file
            that is not a model file (a training checkpoint included), or a model of another
            architecture than ``expected_name``.
    """
    obj = safe_torch_load(path, "model file", map_location=map_location)
    if isinstance(obj, dict) and obj.get("format") == "pyro_videossm.checkpoint":
        raise InputError(f"{path} is a training checkpoint, not a model file "
                         "(the model file is the -o output of videossm train)")
    if not (isinstance(obj, dict) and obj.get("format") == MODEL_FORMAT):
        raise InputError(f"{path} is not a pyro-videossm model file")
    missing = [k for k in ("name", "config", "state_dict", "extra") if k not in obj]
    if missing or not isinstance(obj["state_dict"], dict):
        raise InputError(f"model file {path} is incomplete (missing {', '.join(missing)})")
    if obj.get("version", 0) > MODEL_VERSION:
        raise InputError(f"model file {path} has format version {obj['version']}; this "
                         f"pyro-videossm reads version {MODEL_VERSION} or older")
    if expected_name is not None and obj["name"] != expected_name:
        raise InputError(f"model file {path} holds a {obj['name']!r} model, "
                         f"not {expected_name!r}")
    return {k: obj[k] for k in ("name", "config", "state_dict", "extra")}


def load_state_checked(module: torch.nn.Module, state_dict: Mapping[str, torch.Tensor],
                       source: str = "state_dict") -> None:
    """``module.load_state_dict(state_dict)`` after checking keys and shapes.

    Raises:
        InputError: naming the first missing, unexpected or differently shaped entry, e.g. a
            model file of another architecture or of other sizes.
    """
    own = module.state_dict()
    for key, value in own.items():
        if key not in state_dict:
            raise InputError(f"{source} does not fit this model: missing {key}")
        other = state_dict[key]
        if not isinstance(other, torch.Tensor):
            raise InputError(f"{source} does not fit this model: {key} is not a tensor")
        if tuple(other.shape) != tuple(value.shape):
            raise InputError(f"{source} does not fit this model: {key} has shape "
                             f"{tuple(other.shape)}, expected {tuple(value.shape)}")
    for key in state_dict:
        if key not in own:
            raise InputError(f"{source} does not fit this model: unexpected {key}")
    module.load_state_dict(state_dict)


def rebuild_module(cls: Callable[..., torch.nn.Module], ckpt: Mapping[str, Any],
                   source: str) -> torch.nn.Module:
    """``cls(**ckpt["config"])`` with ``ckpt["state_dict"]`` loaded (checked by
    :func:`load_state_checked`); ``ckpt`` as :func:`load_model_file` returns it.

    Raises:
        InputError: one line starting with ``source`` (e.g. ``"model file x.pt"``) for a config
            the constructor refuses or a state that does not fit.
    """
    try:
        module = cls(**ckpt["config"])
    except TypeError as err:
        raise InputError(f"{source} has an unusable config ({err})") from None
    load_state_checked(module, ckpt["state_dict"], source)
    return module
