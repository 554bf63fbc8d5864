"""Saving and restoring training state with files that ``torch.load(weights_only=True)`` reads.

Everything written here is made of tensors and plain python containers: random-number
generator states (python, numpy, torch CPU and CUDA), Pyro param-store entries with their
constraints described by name, and atomic ``torch.save`` (temp file + ``os.replace``).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import random
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pyro
import pyro.distributions.constraints as pyro_constraints
import torch
from torch.distributions import constraints
from tqdm import tqdm

from pyro_videossm.atomic import atomic_path
from pyro_videossm.errors import InputError

# ----------------------------------------------------------------------------- files


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` to a temporary file beside ``path``, fsync, then ``os.replace``.

    A reader never sees a half-written file, and a crash leaves the previous file intact.
    """
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())


def checkpoint_to_resume(checkpoint_path: str | os.PathLike | None, resume: bool,
                         announce: bool = True) -> Path | None:
    """The checkpoint a trainer restores from: ``checkpoint_path`` when ``resume`` is asked
    and the file exists, else ``None`` (start afresh; said on stderr when ``resume`` was asked
    and ``announce``)."""
    path = Path(checkpoint_path) if checkpoint_path else None
    if resume and path is not None and path.exists():
        return path
    if resume and announce:
        tqdm.write(f"no checkpoint at {path}: starting afresh", file=sys.stderr)
    return None


def safe_torch_load(path: str | os.PathLike, what: str, map_location: Any = "cpu") -> Any:
    """``torch.load(weights_only=True)``; any failure becomes a one-line :class:`InputError`."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{what} {path} does not exist")
    if not path.is_file():
        raise InputError(f"{what} {path} is not a file")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # truncated zip, foreign pickle, random bytes, ...
        if "weights only" in str(e).lower() or "weights_only" in str(e).lower():
            reason = ("it holds python objects other than tensors and plain values, "
                      "which are not loaded for safety")
        else:
            with open(path, "rb") as f:
                magic = f.read(4)
            reason = ("truncated or corrupt" if magic == b"PK\x03\x04"
                      else "not written by torch.save")
        raise InputError(f"{what} {path} is not a readable torch file ({reason})") from None


def load_training_checkpoint(path: Path, checkpoint_format: str, what: str, config: dict,
                             fixed_fields, n_train: int) -> dict:
    """The checkpoint at ``path``, checked to be a ``what`` (its ``format`` entry is
    ``checkpoint_format``) written by a run like this one: the same ``fixed_fields`` of the
    ``config`` dict and ``n_train`` training items. InputError (one line) otherwise."""
    ckpt = safe_torch_load(path, "checkpoint")
    if not (isinstance(ckpt, dict) and ckpt.get("format") == checkpoint_format):
        raise InputError(f"{path} is not a {what}")
    saved = ckpt["config"]
    for key in fixed_fields:
        if saved.get(key) != config[key]:
            raise InputError(f"checkpoint {path} was written with {key}={saved.get(key)!r},"
                             f" this run has {key}={config[key]!r}")
    if ckpt["n_train"] != n_train:
        raise InputError(f"checkpoint {path} was written for {ckpt['n_train']} training "
                         f"items, this run has {n_train}")
    return ckpt


def is_plain(value: Any, allow_tensors: bool = True) -> bool:
    """True if ``value`` is made only of None/bool/int/float/str, lists, tuples, str-keyed
    dicts (and tensors when ``allow_tensors``): what ``weights_only=True`` loads."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return True
    if isinstance(value, torch.Tensor):
        return allow_tensors
    if isinstance(value, (list, tuple)):
        return all(is_plain(v, allow_tensors) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, (str, int)) and is_plain(v, allow_tensors)
                   for k, v in value.items())
    return False


# ----------------------------------------------------------------------------- fingerprints

#: tensors with more elements are hashed on an evenly strided subsample of this many
FINGERPRINT_ELEMENTS = 1 << 24


def data_fingerprint(*datasets: Any) -> str:
    """SHA-256 (hex) of training data: for each mapping of tensors its keys, shapes, dtypes
    and values (an evenly strided subsample of :data:`FINGERPRINT_ELEMENTS` for larger
    tensors); a ``torch.utils.data.Dataset`` by its class and length only; ``None`` as such."""
    h = hashlib.sha256()
    for data in datasets:
        if data is None:
            h.update(b"<none>")
        elif isinstance(data, Mapping):
            for key in sorted(data, key=str):
                value = data[key]
                if not isinstance(value, torch.Tensor):
                    h.update(f"{key}={value!r};".encode())
                    continue
                flat = value.detach().reshape(-1)
                h.update(f"{key}{tuple(value.shape)}{value.dtype};".encode())
                if flat.numel() > FINGERPRINT_ELEMENTS:
                    flat = flat[::-(-flat.numel() // FINGERPRINT_ELEMENTS)]
                h.update(flat.cpu().contiguous().view(torch.uint8).numpy().tobytes())
        else:
            h.update(f"<{type(data).__name__} of {len(data)}>".encode())
    return h.hexdigest()


def module_settings(module: torch.nn.Module) -> dict | None:
    """The module's plain ``config`` (a dict attribute or method: architecture, physics), as
    stored in a checkpoint to compare on resume; ``None`` if it has none."""
    config = getattr(module, "config", None)
    if callable(config):
        config = config()
    if not isinstance(config, dict) or not is_plain(config, allow_tensors=False):
        return None
    return json.loads(json.dumps(config, sort_keys=True))  # tuples -> lists, as saved


# ----------------------------------------------------------------------------- RNG


def get_rng_state(device: torch.device | None = None) -> dict:
    """Python, numpy, torch CPU (and CUDA when ``device`` is CUDA) generator states."""
    py_version, py_state, py_gauss = random.getstate()
    np_kind, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state(legacy=True)
    state = {
        "python": [py_version, list(py_state), py_gauss],
        "numpy": [np_kind, torch.from_numpy(np_keys.astype(np.int64)), int(np_pos),
                  int(np_has_gauss), float(np_gauss)],
        "torch": torch.get_rng_state(),
    }
    if device is not None and torch.device(device).type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Inverse of :func:`get_rng_state`."""
    py_version, py_state, py_gauss = state["python"]
    random.setstate((py_version, tuple(py_state), py_gauss))
    np_kind, np_keys, np_pos, np_has_gauss, np_gauss = state["numpy"]
    np.random.set_state((np_kind, np_keys.numpy().astype(np.uint32), np_pos, np_has_gauss,
                         np_gauss))
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


# ----------------------------------------------------------------------------- constraints

_CONSTRAINT_MODULES = (constraints, pyro_constraints)


@functools.lru_cache(maxsize=1)
def _named_constraints() -> tuple[constraints.Constraint, ...]:
    out = []
    for module in _CONSTRAINT_MODULES:
        for name in dir(module):
            value = getattr(module, name)
            if isinstance(value, constraints.Constraint) and not isinstance(value, type):
                try:
                    constraint_to_spec(value)
                except TypeError:
                    continue
                out.append(value)
    return tuple(out)


def constraint_to_spec(constraint: constraints.Constraint) -> dict:
    """Describe a constraint by class name and its plain attributes (recursively)."""
    attrs = {}
    for key, value in vars(constraint).items():
        if isinstance(value, constraints.Constraint):
            attrs[key] = constraint_to_spec(value)
        elif is_plain(value):
            attrs[key] = value
        else:
            raise TypeError(f"cannot save constraint {constraint!r}: attribute {key} is "
                            f"{type(value).__name__}")
    return {"class": type(constraint).__name__, "attrs": attrs}


def constraint_from_spec(spec: dict) -> constraints.Constraint:
    """Inverse of :func:`constraint_to_spec` (only classes of torch's and Pyro's constraint
    modules are looked up)."""
    name = spec["class"]
    cls = None
    for module in _CONSTRAINT_MODULES:
        candidate = getattr(module, name, None)
        if isinstance(candidate, type) and issubclass(candidate, constraints.Constraint):
            cls = candidate
            break
    if cls is None:
        raise InputError(f"checkpoint names an unknown parameter constraint {name}")
    for singleton in _named_constraints():
        # the named instances (constraints.positive, ...) may map to their own transforms
        if type(singleton) is cls and constraint_to_spec(singleton) == spec:
            return singleton
    obj = cls.__new__(cls)
    for key, value in spec["attrs"].items():
        if isinstance(value, dict) and set(value) == {"class", "attrs"}:
            value = constraint_from_spec(value)
        setattr(obj, key, value)
    return obj


# ----------------------------------------------------------------------------- param store


def param_store_state(skip: set[int] = frozenset()) -> dict:
    """Unconstrained values and constraint specs of the global Pyro param store, leaving out
    the tensors whose ``id`` is in ``skip`` (parameters owned by an ``nn.Module`` that is
    saved through its ``state_dict``)."""
    store = pyro.get_param_store()
    out = {}
    for name in list(store.keys()):
        unconstrained = store._params[name]
        if id(unconstrained) in skip:
            continue
        out[name] = {
            "unconstrained": unconstrained.detach().clone(),
            "constraint": constraint_to_spec(store._constraints[name]),
        }
    return out


def restore_param_store(state: dict, device: torch.device | str = "cpu") -> None:
    """Put saved entries into the global param store (copied in place into same-named
    entries of the same shape, replacing others)."""
    store = pyro.get_param_store()
    for name, entry in state.items():
        if name in store:
            current = store._params[name]
            if current.shape == entry["unconstrained"].shape:
                with torch.no_grad():  # in place: optimisers keyed by this tensor stay valid
                    current.copy_(entry["unconstrained"])
                continue
            del store[name]
        value = entry["unconstrained"].to(device).detach().requires_grad_()
        store._params[name] = value
        store._param_to_name[value] = name
        store._constraints[name] = constraint_from_spec(entry["constraint"])
