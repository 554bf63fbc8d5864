"""The file format of generated clips, shared by every generator and read by the evaluation.

A generated-clips Dataset is an ordinary video Dataset: ``frames(clip, time, channel, y, x)``
in [0, 1], one integer variable on ``clip`` per condition the generator was given, named like
the real data's labels (``motion`` and ``top`` for sprites, ``action``, ``shape``, ``colour``
for shapes-rgbd) with CF ``flag_values`` / ``flag_meanings`` (the class names), optionally
``unseen(clip)`` (0 seen / 1 unseen combination) and ``depth(clip, time, y, x)`` in world
units. :func:`generated_clips` builds one; ``videossm evaluate-generation`` scores it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import xarray as xr

from pyro_videossm import __version__
from pyro_videossm.data.conventions import CONVENTIONS
from pyro_videossm.errors import InputError


def generated_clips(frames, conditions: Mapping[str, Sequence[int]],
                    class_names: Mapping[str, Sequence[str]], *, depth=None, unseen=None,
                    model: str = "", attrs: Mapping | None = None) -> xr.Dataset:
    """A generated-clips Dataset (module doc).

    Args:
        frames: ``(N, T, C, S, S)`` array or tensor in [0, 1].
        conditions: ``{label: (N,) class indices}``.
        class_names: ``{label: names of its classes}`` (the real data's ``flag_meanings``).
        depth: optional ``(N, T, S, S)`` or ``(N, T, 1, S, S)`` in world units.
        unseen: optional ``(N,)`` bool / 0-1 flags.
        model: what generated the clips (an attribute).
        attrs: more global attributes.
    """
    x = np.asarray(frames.detach().cpu() if hasattr(frames, "detach") else frames, np.float32)
    if x.ndim != 5:
        raise InputError(f"frames must be (N, T, C, S, S), got shape {x.shape}")
    n, t, c, h, w = x.shape
    if not np.isfinite(x).all() or x.min() < -1e-6 or x.max() > 1 + 1e-6:
        raise InputError("generated frames must be finite and in [0, 1]")
    data = {"frames": (("clip", "time", "channel", "y", "x"), np.clip(x, 0, 1),
                       {"long_name": "generated intensity", "units": "1", "valid_min": 0.0,
                        "valid_max": 1.0})}
    for name, values in conditions.items():
        if name not in class_names:
            raise InputError(f"no class names for condition {name!r}")
        names = list(class_names[name])
        v = np.asarray(values.detach().cpu() if hasattr(values, "detach") else values)
        if v.shape != (n,) or (n and (v.min() < 0 or v.max() >= len(names))):
            raise InputError(f"condition {name!r} must be {n} class indices in 0..{len(names) - 1}")
        data[name] = (("clip",), v.astype(np.int16 if len(names) > 127 else np.int8),
                      {"long_name": f"condition: {name}", "units": "1",
                       "flag_values": np.arange(len(names), dtype=np.int16 if len(names) > 127
                                                else np.int8),
                       "flag_meanings": " ".join(names)})
    if unseen is not None:
        u = np.asarray(unseen.detach().cpu() if hasattr(unseen, "detach") else unseen)
        if u.shape != (n,):
            raise InputError(f"unseen must have shape ({n},), got {u.shape}")
        data["unseen"] = (("clip",), u.astype(bool).astype(np.int8),
                          {"long_name": "combination never shown in training", "units": "1",
                           "flag_values": np.arange(2, dtype=np.int8),
                           "flag_meanings": "seen unseen"})
    if depth is not None:
        d = np.asarray(depth.detach().cpu() if hasattr(depth, "detach") else depth, np.float32)
        if d.ndim == 5 and d.shape[2] == 1:
            d = d[:, :, 0]
        if d.shape != (n, t, h, w) or not np.isfinite(d).all():
            raise InputError(f"depth must be finite with shape {(n, t, h, w)}, got {d.shape}")
        data["depth"] = (("clip", "time", "y", "x"), d,
                         {"long_name": "generated camera-space depth", "units": "1"})
    ds = xr.Dataset(data, coords={"clip": np.arange(n), "time": np.arange(t),
                                  "y": np.arange(h), "x": np.arange(w)})
    if c == 3:
        ds = ds.assign_coords(channel=["red", "green", "blue"])
    ds.attrs.update({"Conventions": CONVENTIONS, "title": "generated clips",
                     "source": f"pyro_videossm {__version__}", "model": model,
                     **dict(attrs or {})})
    return ds
