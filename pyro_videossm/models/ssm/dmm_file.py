"""DMM model files: :func:`save_dmm` writes a :class:`~pyro_videossm.models.ssm.dmm.DMM`'s
recipe (``dmm.config``, plain python) and parameters with the toolkit's model-file format;
:func:`load_dmm` rebuilds it, neural (``DMM(**config)``) or hybrid (the ``physics`` entry:
:func:`~pyro_videossm.models.ssm.hybrid.hybrid_dmm_from_config`).

Files written before the DMM was split into model and guide hold the parameters under the
single module's names (``transition.*``, ``encoder.*``, ...); they load unchanged
(:func:`upgrade_state_dict` maps them to ``model.transition.*``, ``guide.encoder.*``, ...).
"""

from __future__ import annotations

from collections.abc import Mapping

from torch import Tensor

from pyro_videossm.errors import InputError
from pyro_videossm.models.ssm.dmm import DMM
from pyro_videossm.models.ssm.hybrid import hybrid_dmm_from_config

#: top-level names of the single-module layout -> the child that owns them now
_LEGACY_OWNER = {"initial": "model", "transition": "model", "emitter": "model",
                 "likelihood": "model", "encoder": "guide", "combiner": "guide"}


def upgrade_state_dict(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """A state dict of the single-module DMM layout in the ``model.``/``guide.`` layout (one
    of the current layout is returned as it is)."""
    out = {}
    for key, value in state_dict.items():
        head = key.split(".", 1)[0]
        owner = _LEGACY_OWNER.get(head)
        out[f"{owner}.{key}" if owner else key] = value
    return out


def dmm_from_config(config: Mapping, *, system=None) -> DMM:
    """The DMM a saved ``config`` describes (``system``: see :func:`load_dmm`)."""
    config = dict(config)
    physics = config.pop("physics", None)
    if physics is not None:
        return hybrid_dmm_from_config({**config, "physics": physics}, system=system)
    return DMM(**config)


def load_dmm(path, *, system=None, map_location="cpu") -> tuple[DMM, dict]:
    """Rebuild a trained :class:`DMM` from a model file; returns ``(dmm, extra)``.

    ``system``: an :class:`~pyro_videossm.dynamics.ODESystem` to use for a hybrid DMM instead
    of rebuilding the saved one by name (unregistered user systems).

    Raises :class:`InputError` (one line) for a missing/invalid file, another architecture,
    or a state that does not fit the saved configuration.
    """
    from pyro_videossm.infer import load_model_file
    from pyro_videossm.infer.model_file import load_state_checked

    ckpt = load_model_file(path, expected_name="dmm", map_location=map_location)
    try:
        dmm = dmm_from_config(ckpt["config"], system=system)
    except TypeError as err:
        raise InputError(f"model file {path}: configuration does not fit DMM ({err})") from None
    load_state_checked(dmm, upgrade_state_dict(ckpt["state_dict"]),
                       source=f"model file {path}")
    return dmm, ckpt["extra"]


def save_dmm(path, dmm: DMM, extra: dict | None = None) -> None:
    """Write ``dmm`` (configuration + parameters) with the toolkit's model-file format."""
    from pyro_videossm.infer import save_model_file

    if dmm.config is None:
        raise InputError("this DMM was composed from parts without a config: give DMM(..., "
                         "config=...) the plain-python recipe that rebuilds it to save it")
    save_model_file(path, name="dmm", config=dmm.config, state_dict=dmm.state_dict(),
                    extra=extra)


__all__ = ["dmm_from_config", "load_dmm", "save_dmm", "upgrade_state_dict"]
