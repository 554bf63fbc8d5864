"""What a benchmark setting is: how to simulate it, and which methods to score on it.

One module per setting (``assimilation/<name>.py``) defines ``SETTING = Setting(...)``, like
DAPPER keeps one file per setting with the expected RMSE beside each method. Each
:class:`MethodEntry` names a registered method (``pyro_videossm.assimilate.get_method``), its
options, the published RMSE and the bound this toolkit must reach.

Learned methods (a DMM, say) need a trained model before they can assimilate. Give their
entry a ``prepare`` hook: it gets a :class:`PrepareContext` (setting, seed, cycles, a work
folder, the observations being assimilated) and returns extra options, e.g.
``{"model_file": "assimilation/_work/lorenz63_sakov2012/dmm_seed0.pt"}``; it can train on data
it simulates itself (use another seed than the evaluation's) or load a file and skip training
when the file already exists. The runner calls it once per seed before running the method.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import xarray as xr


@dataclass(frozen=True)
class PrepareContext:
    """What a ``prepare`` hook receives.

    Attributes:
        setting: the setting being run.
        seed: the evaluation seed (the observations below were simulated with it).
        cycles: number of cycles being assimilated.
        workdir: a folder for artefacts (trained models, caches); created by the runner.
        obs: the observation Dataset the method will assimilate (``truth`` included: a hook
            must not train on it; simulate training data with another seed).
    """

    setting: Setting
    seed: int
    cycles: int
    workdir: Path
    obs: xr.Dataset


@dataclass(frozen=True)
class MethodEntry:
    """One row of a benchmark table.

    Attributes:
        label: the row name, e.g. ``"ETKF N=10"``.
        method: a registered method name (``etkf``, ``pf``, ...).
        options: the method's options (``members``, ``inflation``, ...).
        published: the RMSE reported for this method and setting elsewhere (None if none).
        reference: where ``published`` comes from.
        bound: the time-averaged RMSE (mean over seeds) we must reach; None = no bound.
        prepare: optional hook ``prepare(ctx) -> dict`` of extra options (trained models).
        note: shown under the table.
    """

    label: str
    method: str
    options: dict[str, Any] = field(default_factory=dict)
    published: float | None = None
    reference: str = ""
    bound: float | None = None
    prepare: Callable[[PrepareContext], dict[str, Any]] | None = None
    note: str = ""


@dataclass(frozen=True)
class Setting:
    """A benchmark setting.

    Attributes:
        name: the config module's name (``lorenz63_sakov2012``).
        title: a heading for the results section.
        description: one paragraph: system, observation, noise, references.
        simulate: keyword arguments of :func:`pyro_videossm.data.simulate` except ``cycles``
            and ``seed`` (the runner sets those).
        methods: the rows.
        cycles: default number of cycles.
        burn_in: cycles dropped before averaging scores.
    """

    name: str
    title: str
    description: str
    simulate: dict[str, Any]
    methods: tuple[MethodEntry, ...]
    cycles: int = 1000
    burn_in: int = 100
