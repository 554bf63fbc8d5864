"""The hybrid DMM's training recipe for a benchmark setting (a :class:`~assimilation.config.
TrainedModel` recipe): train on the setting's own kind of data, never on the scored records.

``train_for_setting(path, setting="lorenz63_x_only", seed=1001, ...)`` simulates ``cycles``
cycles with the setting's ``simulate`` arguments and the training ``seed`` (the runner scores
seeds 0, 1, ...), builds the hybrid DMM with the setting's known physics (its
``known_system`` under model error, else the truth's) and trains it with
:func:`pyro_videossm.experiments.dmm.train_hybrid_dmm`; the other keywords are
:class:`~pyro_videossm.experiments.dmm.HybridDMMOptions` fields (default: the demo recipe,
``DEMO_TRAINING``: 5000 cycles, windows of 20, 10 epochs, lr 0.002 decaying by 0.9, 5 RK4 steps
per cycle, a 64-unit guide RNN, but 3 Gauss-Newton iterations in the smoothing guide, the
earlier demo recipe that the settings' records were measured with). ``untrained_for_setting``
writes the same model untrained (a diagnostic row).
"""

from __future__ import annotations

from pathlib import Path

import torch

from pyro_videossm.data import simulate
from pyro_videossm.dynamics import make_system
from pyro_videossm.experiments.dmm import HybridDMMOptions, train_hybrid_dmm


def train_for_setting(path: str | Path, *, setting: str, seed: int = 1001, cycles: int = 5000,
                      **options) -> None:
    """Train the hybrid DMM of benchmark ``setting`` and write it to ``path``."""
    from assimilation.run import load_setting

    spec = load_setting(setting)
    train = simulate(**spec.simulate, cycles=int(cycles), seed=int(seed))
    system = None
    if spec.known_system:
        known = dict(spec.known_system)
        system = make_system(known.pop("system"), **known)
    # 3 smoother iterations: the recipe the settings' records were measured with (the
    # HybridDMMOptions default is now 5)
    defaults = {"window": 20, "epochs": 10, "lr": 2e-3, "lr_decay": 0.9, "batch_size": 64,
                "physics_substeps": 5, "rnn_dim": 64, "smoother_iterations": 3}
    settings = {**defaults, **options}
    settings.setdefault("stride", max(1, int(settings["window"]) // 5))
    if "correction_hidden" in settings:
        settings["correction_hidden"] = tuple(settings["correction_hidden"])
    hybrid = HybridDMMOptions(seed=int(seed), **settings)
    train_hybrid_dmm(train, hybrid, system=system, output=path,
                     extra={"recipe": {"setting": setting, "seed": int(seed),
                                       "cycles": int(cycles), **settings,
                                       "known_system": spec.known_system}})


def untrained_for_setting(path: str | Path, *, setting: str, seed: int = 1001,
                          window: int = 20, **options) -> None:
    """Write the hybrid DMM of benchmark ``setting`` as built, before any training (its
    guide is then the Gauss-Newton smoother of the known physics and the observations, the
    learned message and correction still silent): a diagnostic row that separates what the
    guide's structure does from what training adds. ``options``: as :func:`train_for_setting`
    (those that shape the model; the training ones are ignored)."""
    from assimilation.run import load_setting
    from pyro_videossm.experiments.dmm import build_dmm
    from pyro_videossm.models.ssm.dmm_file import save_dmm

    spec = load_setting(setting)
    obs = simulate(**spec.simulate, cycles=max(2 * int(window), 50), seed=int(seed))
    system = None
    if spec.known_system:
        known = dict(spec.known_system)
        system = make_system(known.pop("system"), **known)
    settings = {"physics_substeps": 5, "rnn_dim": 64, **options, "window": int(window)}
    for key in ("cycles", "epochs", "lr", "lr_decay", "batch_size", "stride"):
        settings.pop(key, None)
    if "correction_hidden" in settings:
        settings["correction_hidden"] = tuple(settings["correction_hidden"])
    hybrid = HybridDMMOptions(seed=int(seed), **settings)
    hybrid.check()
    torch.manual_seed(int(seed))
    save_dmm(path, build_dmm(obs, hybrid, system).cpu(), extra={
        "window": int(window), "training": None,
        "recipe": {"setting": setting, "seed": int(seed), "untrained": True, **settings}})


__all__ = ["train_for_setting", "untrained_for_setting"]
