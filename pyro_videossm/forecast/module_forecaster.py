"""A forecaster around a trained ``nn.Module``: the model-file format shared by the neural
forecasters (ConvLSTM, ConvDMM, spatiotemporal transformer, sequence baselines)."""

from __future__ import annotations

import os
from typing import Any, ClassVar

import torch
from torch import nn

from pyro_videossm.data.scaling import FieldScaling
from pyro_videossm.errors import InputError
from pyro_videossm.forecast.base import Forecaster


class ModuleForecaster(Forecaster):
    """A :class:`~pyro_videossm.forecast.base.Forecaster` around a trained ``nn.Module``
    (``module_class``) whose constructor arguments are ``module.architecture()``.

    Model files (:meth:`save`, :meth:`from_model_file`) hold ``config = {"architecture",
    "scaling", "context_length"}`` and the module's ``state_dict``. Subclasses set ``name``,
    ``deterministic``, ``module_class`` and implement ``predict``.
    """

    module_class: ClassVar[type[nn.Module]]

    def __init__(self, module: nn.Module | None = None, scaling: FieldScaling | None = None,
                 device: str | torch.device = "cpu", context_length: int | None = None) -> None:
        if module is None:
            raise InputError(f"forecaster {self.name!r} needs a trained model: pass a model "
                             "file (videossm train ... -o model.pt)")
        self.module = module.to(device).eval()
        self.scaling = scaling or FieldScaling()
        self.device = torch.device(device)
        self.context_length = context_length

    def options(self) -> dict[str, Any]:
        return {**self.module.architecture(), "context_length": self.context_length}

    def model_config(self) -> dict[str, Any]:
        """``config`` for :func:`~pyro_videossm.infer.save_model_file` (plain values)."""
        return {"architecture": self.module.architecture(), "scaling": self.scaling.to_dict(),
                "context_length": self.context_length}

    def save(self, path: str | os.PathLike, extra: dict | None = None) -> None:
        """Write the model file (atomically) that :func:`load_forecaster` reads back."""
        from pyro_videossm.infer import save_model_file

        save_model_file(path, name=self.name, config=self.model_config(),
                        state_dict=self.module.state_dict(), extra=extra)

    @classmethod
    def load(cls, path: str | os.PathLike, *, device: str | torch.device = "cpu"):
        """Read a model file of this forecaster (one-line InputError for any other model)."""
        from pyro_videossm.infer import load_model_file

        return cls.from_model_file(load_model_file(path, expected_name=cls.name), device=device)

    @classmethod
    def from_model_file(cls, ckpt: dict[str, Any], *, device: str | torch.device = "cpu"):
        if ckpt.get("name") != cls.name:
            raise InputError(f"model file holds a {ckpt.get('name')!r} model, not {cls.name!r}")
        from pyro_videossm.infer.model_file import load_state_checked

        config = ckpt.get("config") or {}
        try:
            module = cls.module_class(**config["architecture"])
        except (KeyError, TypeError) as err:
            raise InputError(f"model file does not hold a valid {cls.name} architecture "
                             f"({type(err).__name__}: {err})") from None
        load_state_checked(module, ckpt["state_dict"], f"{cls.name} model file")
        return cls(module, FieldScaling.from_dict(config.get("scaling")), device,
                   config.get("context_length"))
