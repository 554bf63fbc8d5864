"""What a benchmark setting is: how to simulate it, and which methods to score on it.

One module per setting (``assimilation/<name>.py``) defines ``SETTING = Setting(...)``, like
DAPPER keeps one file per setting with the expected RMSE beside each method. Each
:class:`MethodEntry` names a registered method (``pyro_videossm.assimilate.get_method``), its
options, the published RMSE and the bound this toolkit must reach.

Learned methods (the ``dmm`` method, say) need a trained model before they can assimilate.
Their entry names it with a :class:`TrainedModel`: a model file, and optionally the training
recipe that writes it when it is absent (``"module:function"``, called once per run as
``recipe(path, **options)``; it must train on data it simulates itself, never on the records
being scored). The runner passes the file to the method as the option ``model`` (or
``TrainedModel.option``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class TrainedModel:
    """Where a learned method's model comes from.

    Attributes:
        path: the model file; a relative path is taken from the repository root (the runner's
            ``--workdir`` for ``workdir=True``).
        recipe: ``"module:function"`` that trains a model and writes it to ``path`` (called as
            ``recipe(path, **options)`` when the file is absent); None: the file must exist.
        options: keyword arguments of the recipe (its seed, epochs, ...).
        option: the method option that receives the path (``dmm``: ``model``).
        workdir: resolve a relative ``path`` under the runner's work folder.
    """

    path: str
    recipe: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    option: str = "model"
    workdir: bool = False


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
        model: the trained model a learned method needs (None for classical methods).
        note: shown under the table.
        relative_bound: a bound relative to the best classical row of the same run: PASS when
            the mean RMSE is at most ``relative_bound`` times the lowest mean RMSE of the rows
            without a ``model`` (e.g. 0.5: "at most half the best classical method's").
    """

    label: str
    method: str
    options: dict[str, Any] = field(default_factory=dict)
    published: float | None = None
    reference: str = ""
    bound: float | None = None
    model: TrainedModel | None = None
    note: str = ""
    relative_bound: float | None = None


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
        known_system: the physics the methods are given when it differs from the truth's
            (model error): ``{"system": name, **parameters}``, passed to every method as
            ``system=`` / ``system_parameters=``; learned rows' recipes train with it too.
    """

    name: str
    title: str
    description: str
    simulate: dict[str, Any]
    methods: tuple[MethodEntry, ...]
    cycles: int = 1000
    burn_in: int = 100
    known_system: dict[str, Any] | None = None
