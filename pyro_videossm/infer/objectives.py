"""What the :class:`~pyro_videossm.infer.Trainer` minimises: an ELBO of a Pyro model
(:class:`SVIObjective`) or a plain torch loss (:class:`LossObjective`).

An objective owns its module and its optimiser (Pyro's ``ClippedAdam``) and splits a training
step in two, so that the trainer can refuse a non-finite loss between them::

    loss, params = objective.loss_and_grads(batch, annealing_factor)
    ...                                    # check the loss
    objective.apply(params)                # optimiser step, zero gradients

Under ``torchrun`` the trainer runs the forward pass through ``DistributedDataParallel``
instead (:mod:`pyro_videossm.infer.distributed`)::

    named, loss = objective.trained_parameters(batch, annealing_factor)   # once, to wrap
    loss, differentiable = ddp(batch, annealing_factor)   # objective.forward_loss
    differentiable.backward()                             # DDP all-reduces the gradients
    objective.apply(params)
"""

from __future__ import annotations

from collections.abc import Callable

import pyro
import pyro.optim
import torch
from pyro import poutine
from pyro.infer import ELBO, Trace_ELBO
from pyro.infer.trace_elbo import _compute_log_r
from pyro.infer.util import is_identically_zero, zero_grads
from pyro.optim.clipped_adam import ClippedAdam as TorchClippedAdam

from pyro_videossm.infer.config import TrainConfig
from pyro_videossm.infer.state import param_store_state, restore_param_store

Batch = dict[str, torch.Tensor]
Loss = float | torch.Tensor


def batch_items(batch: Batch) -> int:
    """Number of items in a batch (first dimension of its first tensor)."""
    return int(next(iter(batch.values())).shape[0])


class Objective:
    """Base class; see the module docstring. Subclasses set :attr:`module`."""

    module: torch.nn.Module

    #: How a batch's loss combines its items: ``"sum"`` (an ELBO, summed over items) or
    #: ``"mean"`` (a mean loss). DDP averages gradients over processes; under ``torchrun``
    #: the trainer multiplies a ``"sum"`` objective's loss by the number of processes first,
    #: so that either way the step follows the gradient of the whole global batch, as one
    #: process with ``world * batch_size`` items would.
    reduction: str = "mean"

    #: ``find_unused_parameters`` of ``DistributedDataParallel``; ``None``: decided from the
    #: first step (true when some trained tensor gets no gradient).
    find_unused_parameters: bool | None = None

    def setup(self, config: TrainConfig, batches_per_epoch: int) -> None:
        """Create a fresh optimiser (called once per :meth:`Trainer.fit`)."""
        raise NotImplementedError

    def reset(self) -> None:
        """Called by a fresh (not resumed) :meth:`Trainer.fit` after :meth:`setup`."""

    def loss_and_grads(self, batch: Batch, annealing_factor: float
                       ) -> tuple[Loss, list[torch.Tensor]]:
        """Loss of the batch summed over items (float or 0-d tensor) and the parameters whose
        ``.grad`` now holds its gradient, in an order that is the same on every process."""
        raise NotImplementedError

    def apply(self, params: list[torch.Tensor]) -> None:
        """Optimiser step on ``params``, then zero their gradients."""
        raise NotImplementedError

    def forward_loss(self, batch: Batch, annealing_factor: float
                     ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(loss, differentiable)``: the loss of the batch summed over items (0-d, detached,
        as :meth:`loss_and_grads` reports it) and a 0-d tensor whose ``backward()`` puts the
        batch's gradient into the trained tensors' ``.grad`` (the forward pass of a
        data-parallel step)."""
        raise NotImplementedError

    def trained_parameters(self, batch: Batch, annealing_factor: float
                           ) -> tuple[dict[str, torch.nn.Parameter], torch.Tensor]:
        """The tensors a step trains, by name in an order that is the same on every process,
        and the differentiable loss of ``batch`` (:meth:`forward_loss`) computed to find
        them. Called once per data-parallel fit, before the first step."""
        named = {name: p for name, p in self.module.named_parameters() if p.requires_grad}
        return named, self.forward_loss(batch, annealing_factor)[1]

    def evaluate(self, batch: Batch) -> Loss:
        """Validation loss of the batch summed over items, without gradients."""
        raise NotImplementedError

    def normalizer(self, batch: Batch) -> Loss:
        """What a batch's loss is divided by for reporting: ``module.normalizer(batch)`` if
        the module has one (e.g. the number of observed values), else the number of items."""
        fn = getattr(self.module, "normalizer", None)
        return fn(batch) if fn is not None else batch_items(batch)

    def lr(self) -> float:
        """Current learning rate."""
        raise NotImplementedError

    def extra_params(self) -> dict:
        """Copy of trained values that live outside ``module.state_dict()`` (Pyro
        ``pyro.param`` sites), for early stopping's best-parameter snapshot."""
        return {}

    def load_extra_params(self, params: dict) -> None:
        """Inverse of :meth:`extra_params`."""

    def state_dict(self) -> dict:
        """Optimiser state and any parameters not in ``module.state_dict()``."""
        raise NotImplementedError

    def load_state_dict(self, state: dict) -> None:
        raise NotImplementedError


def _adam_options(config: TrainConfig, batches_per_epoch: int) -> dict:
    return {"lr": config.lr, "betas": tuple(config.betas), "clip_norm": config.clip_norm,
            "lrd": config.lrd(batches_per_epoch)}


class SVIObjective(Objective):
    """Negative ELBO of ``module.model`` / ``module.guide``.

    Args:
        module: ``nn.Module`` with ``model(batch, annealing_factor=1.0)`` and
            ``guide(batch, annealing_factor=1.0)`` that register their networks with
            ``pyro.module`` (and may create further ``pyro.param`` sites). ``batch`` is a
            ``dict[str, Tensor]``; the model uses ``annealing_factor`` through
            ``poutine.scale`` on the latent sites. Optional ``module.normalizer(batch)``.
        elbo: any Pyro ELBO (default ``Trace_ELBO()``). With a ``Jit*`` ELBO the batch's
            tensors and the annealing factor are passed to the compiled function as tensors
            (so changing annealing does not recompile); ``annealing_factor`` then arrives as a
            0-d tensor, which ``poutine.scale`` accepts. Models whose structure depends on the
            batch size need ``TrainConfig(drop_last=True)`` with a ``Jit*`` ELBO.
        sync_free: compute the loss of a ``Trace_ELBO`` as a device tensor
            (:func:`trace_elbo_loss_and_grads`: the same surrogate, hence the same gradients,
            as Pyro's, without reading every site's log-probability on the host). Default:
            on for ``Trace_ELBO`` itself, off for other ELBOs (whose ``loss_and_grads`` returns
            a float); a non-finite loss is then caught within ``TrainConfig.log_every`` steps
            instead of before the optimiser step.

        find_unused_parameters: for ``DistributedDataParallel`` under ``torchrun``; ``None``
            (default): true when some trained tensor gets no gradient at the first step.

    A fresh :meth:`Trainer.fit` clears Pyro's global param store (see :meth:`reset`).
    Under ``torchrun`` every ``pyro.param`` site must exist after the first step; the
    sites that live only in the param store are turned into ``nn.Parameter`` objects there
    (same values) so that DDP can hold them.
    """

    reduction = "sum"

    def __init__(self, module: torch.nn.Module, elbo: ELBO | None = None,
                 sync_free: bool | None = None,
                 find_unused_parameters: bool | None = None) -> None:
        self.module = module
        self.find_unused_parameters = find_unused_parameters
        self.elbo = elbo if elbo is not None else Trace_ELBO()
        if sync_free is None:
            sync_free = type(self.elbo) is Trace_ELBO
        elif sync_free and not isinstance(self.elbo, Trace_ELBO):
            raise ValueError("sync_free needs a Trace_ELBO")
        self.sync_free = sync_free
        self.jit = type(self.elbo).__name__.startswith("Jit")
        self.optim: pyro.optim.PyroOptim | None = None
        self._names: set[str] = set()  # param-store names seen in training
        self._wrapped_names: set[str] | None = None  # the names DDP holds
        self._config_lr = None
        if self.jit:
            # Stored once: JitTrace_ELBO caches compiled code by id(model), id(guide).
            def jit_model(annealing_factor, *tensors, keys):
                return module.model(dict(zip(keys, tensors)), annealing_factor=annealing_factor)

            def jit_guide(annealing_factor, *tensors, keys):
                return module.guide(dict(zip(keys, tensors)), annealing_factor=annealing_factor)

            self._jit_model, self._jit_guide = jit_model, jit_guide

    def setup(self, config: TrainConfig, batches_per_epoch: int) -> None:
        self.optim = pyro.optim.ClippedAdam(_adam_options(config, batches_per_epoch))
        self._config_lr = config.lr
        self._wrapped_names = None
        drop_stale_module_params(self.module)

    def reset(self) -> None:
        """A fresh fit clears Pyro's global param store (as Pyro's examples do): the module's
        own parameters keep their current values (``pyro.module`` registers them again),
        ``pyro.param`` sites start from their initial values."""
        pyro.clear_param_store()
        self._names.clear()

    def _call_args(self, batch: Batch, annealing_factor: float) -> tuple[tuple, dict]:
        if not self.jit:
            return (batch,), {"annealing_factor": annealing_factor}
        keys = tuple(sorted(batch))
        device = batch[keys[0]].device
        factor = torch.tensor(float(annealing_factor), device=device)
        return (factor, *(batch[k] for k in keys)), {"keys": keys}

    def _model_guide(self) -> tuple[Callable, Callable]:
        if self.jit:
            return self._jit_model, self._jit_guide
        return self.module.model, self.module.guide

    def loss_and_grads(self, batch: Batch, annealing_factor: float
                       ) -> tuple[Loss, list[torch.Tensor]]:
        args, kwargs = self._call_args(batch, annealing_factor)
        model, guide = self._model_guide()
        step = trace_elbo_loss_and_grads if self.sync_free else type(self.elbo).loss_and_grads
        with poutine.trace(param_only=True) as capture:
            loss = step(self.elbo, model, guide, *args, **kwargs)
        names = sorted(capture.trace.nodes)
        self._names.update(names)
        nodes = capture.trace.nodes
        return loss, [nodes[name]["value"].unconstrained() for name in names]

    def forward_loss(self, batch: Batch, annealing_factor: float
                     ) -> tuple[torch.Tensor, torch.Tensor]:
        args, kwargs = self._call_args(batch, annealing_factor)
        model, guide = self._model_guide()
        with poutine.trace(param_only=True) as capture:
            if self.sync_free:
                loss, differentiable = trace_elbo_differentiable_loss(self.elbo, model, guide,
                                                                      *args, **kwargs)
            else:
                if not hasattr(self.elbo, "differentiable_loss"):
                    raise ValueError(f"{type(self.elbo).__name__} has no differentiable_loss, "
                                     "which data-parallel training needs")
                differentiable = self.elbo.differentiable_loss(model, guide, *args, **kwargs)
                loss = differentiable.detach()
        names = set(capture.trace.nodes)
        self._names.update(names)
        if self._wrapped_names is not None and not names <= self._wrapped_names:
            new = ", ".join(sorted(names - self._wrapped_names))
            raise RuntimeError(f"parameter sites {new} appeared after the first step; "
                               "data-parallel training needs every parameter at the first step")
        return loss, differentiable

    def trained_parameters(self, batch: Batch, annealing_factor: float
                           ) -> tuple[dict[str, torch.nn.Parameter], torch.Tensor]:
        """The param-store entries the model and guide use at ``batch`` (sorted by name),
        as ``nn.Parameter`` objects: the module's own, and the ``pyro.param`` sites, which
        are replaced in the store by a ``Parameter`` holding the same values.

        A first pass without gradients creates lazily initialised sites, so that the second,
        differentiable, pass already runs on the ``Parameter`` objects."""
        with torch.no_grad(), poutine.trace(param_only=True) as capture:
            self.elbo.loss(self.module.model, self.module.guide, batch,
                           annealing_factor=annealing_factor)
        for name in capture.trace.nodes:
            param_store_entry_as_parameter(name)
        with poutine.trace(param_only=True) as capture:
            differentiable = self.forward_loss(batch, annealing_factor)[1]
        names = sorted(capture.trace.nodes)
        self._wrapped_names = set(names)
        return {name: param_store_entry_as_parameter(name) for name in names}, differentiable

    def apply(self, params: list[torch.Tensor]) -> None:
        self.optim(params)
        zero_grads(params)

    def evaluate(self, batch: Batch) -> Loss:
        with torch.no_grad():
            return self.elbo.loss(self.module.model, self.module.guide, batch,
                                  annealing_factor=1.0)

    def lr(self) -> float:
        if self.optim is not None and self.optim.optim_objs:
            return float(next(iter(self.optim.optim_objs.values())).param_groups[0]["lr"])
        waiting = self.optim._state_waiting_to_be_consumed if self.optim is not None else {}
        for state in waiting.values():
            return float(state["param_groups"][0]["lr"])
        return float(self._config_lr or 0.0)

    def _module_param_ids(self) -> set[int]:
        return {id(p) for p in self.module.parameters()}

    def _device(self) -> torch.device:
        for p in self.module.parameters():
            return p.device
        for buffer in self.module.buffers():
            return buffer.device
        return torch.device("cpu")

    def extra_params(self) -> dict:
        store = param_store_state(skip=self._module_param_ids())
        return {k: v for k, v in store.items() if k in self._names}

    def load_extra_params(self, params: dict) -> None:
        restore_param_store(params, device=self._device())
        self._names.update(params)

    def state_dict(self) -> dict:
        optim_state = dict(self.optim._state_waiting_to_be_consumed)
        optim_state.update(self.optim.get_state())
        return {"optim": optim_state, "param_store": self.extra_params()}

    def load_state_dict(self, state: dict) -> None:
        self.load_extra_params(state["param_store"])
        self.optim.set_state(state["optim"])
        self._names.update(state["optim"])


def trace_elbo_loss_and_grads(elbo: Trace_ELBO, model, guide, *args, **kwargs) -> torch.Tensor:
    """``Trace_ELBO.loss_and_grads`` returning the loss as a detached 0-d tensor.

    The same traces and the same surrogate loss (so the same gradients) as Pyro's
    ``Trace_ELBO``, whose loss is summed from ``.item()`` of every sample site; here nothing is
    read on the host, so a GPU never waits for the CPU.
    """
    loss: torch.Tensor | float = 0.0
    for elbo_particle, surrogate_loss in _trace_elbo_particles(elbo, model, guide, args,
                                                               kwargs):
        loss = loss - elbo_particle / elbo.num_particles
        if surrogate_loss is not None:
            (surrogate_loss / elbo.num_particles).backward(retain_graph=elbo.retain_graph)
    return torch.as_tensor(loss).detach()


def trace_elbo_differentiable_loss(elbo: Trace_ELBO, model, guide, *args, **kwargs
                                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(loss, surrogate)``: the loss of :func:`trace_elbo_loss_and_grads` and the surrogate
    loss averaged over particles, whose ``backward()`` gives the same gradients, for a
    caller that runs the backward pass itself (DDP). Nothing is read on the host."""
    loss: torch.Tensor | float = 0.0
    surrogate: torch.Tensor | float = 0.0
    for elbo_particle, surrogate_loss in _trace_elbo_particles(elbo, model, guide, args,
                                                               kwargs):
        loss = loss - elbo_particle / elbo.num_particles
        if surrogate_loss is not None:
            surrogate = surrogate + surrogate_loss / elbo.num_particles
    return torch.as_tensor(loss).detach(), torch.as_tensor(surrogate)


def _trace_elbo_particles(elbo: Trace_ELBO, model, guide, args, kwargs):
    """Per particle: the ELBO estimate (detached) and the surrogate loss to differentiate
    (``None`` when nothing in the traces is trainable)."""
    for model_trace, guide_trace in elbo._get_traces(model, guide, args, kwargs):
        elbo_particle: torch.Tensor | float = 0.0
        surrogate: torch.Tensor | float = 0.0
        log_r = None
        for site in model_trace.nodes.values():
            if site["type"] == "sample":
                elbo_particle = elbo_particle + site["log_prob_sum"].detach()
                surrogate = surrogate + site["log_prob_sum"]
        for site in guide_trace.nodes.values():
            if site["type"] == "sample":
                _, score_function_term, entropy_term = site["score_parts"]
                elbo_particle = elbo_particle - site["log_prob_sum"].detach()
                if not is_identically_zero(entropy_term):
                    surrogate = surrogate - entropy_term.sum()
                if not is_identically_zero(score_function_term):
                    if log_r is None:
                        log_r = _compute_log_r(model_trace, guide_trace)
                    site_r = log_r.sum_to(site["cond_indep_stack"])
                    surrogate = surrogate + (site_r * score_function_term).sum()
        trainable = any(site["type"] == "param" for trace in (model_trace, guide_trace)
                        for site in trace.nodes.values())
        surrogate_loss = -surrogate
        if trainable and getattr(surrogate_loss, "requires_grad", False):
            yield elbo_particle, surrogate_loss
        else:
            yield elbo_particle, None


def param_store_entry_as_parameter(name: str) -> torch.nn.Parameter:
    """The unconstrained tensor of param-store entry ``name`` as an ``nn.Parameter``: a
    module's parameter is returned as it is; a plain tensor (a ``pyro.param`` site) is
    replaced in the store by a ``Parameter`` sharing its storage, so that ``pyro.param(name)``
    and any module that registers the ``Parameter`` see the same tensor."""
    store = pyro.get_param_store()
    value = store._params[name]
    if isinstance(value, torch.nn.Parameter):
        return value
    param = torch.nn.Parameter(value.detach(), requires_grad=True)
    store._params[name] = param
    store._param_to_name.pop(value, None)
    store._param_to_name[param] = name
    return param


def drop_stale_module_params(module: torch.nn.Module) -> None:
    """Remove param-store entries of ``pyro.module`` registrations (names with ``$$$``) that
    point at tensors this module does not own but share a parameter name with it: they are
    left over from an earlier instance and would shadow the module's own parameters."""
    store = pyro.get_param_store()
    own = {id(p) for p in module.parameters()}
    suffixes = set()  # "a.b.w", "b.w", "w": names under pyro.module of the module or a child
    for name, _ in module.named_parameters():
        parts = name.split(".")
        suffixes.update(".".join(parts[i:]) for i in range(len(parts)))
    for name in list(store.keys()):
        if "$$$" not in name:
            continue
        prefix, param_name = name.split("$$$", 1)
        if param_name in suffixes and id(store._params[name]) not in own:
            del store[name]


class LossObjective(Objective):
    """A plain torch loss, so that non-Pyro baselines share the loop.

    Args:
        module: any ``nn.Module``; its trainable parameters are optimised with
            ``ClippedAdam``.
        loss_fn: ``loss_fn(module, batch) -> scalar`` mean loss over the batch's items. The
            annealing factor is not used. Optional ``module.normalizer(batch)``; without one
            the reported loss is the item-weighted mean of ``loss_fn``.
        find_unused_parameters: for ``DistributedDataParallel`` under ``torchrun``; ``None``
            (default): true when some trainable parameter gets no gradient at the first step.
    """

    reduction = "mean"

    def __init__(self, module: torch.nn.Module,
                 loss_fn: Callable[[torch.nn.Module, Batch], torch.Tensor],
                 find_unused_parameters: bool | None = None) -> None:
        self.module = module
        self.find_unused_parameters = find_unused_parameters
        self.loss_fn = loss_fn
        self.optimizer: TorchClippedAdam | None = None

    def _params(self) -> list[torch.Tensor]:
        return [p for p in self.module.parameters() if p.requires_grad]

    def setup(self, config: TrainConfig, batches_per_epoch: int) -> None:
        self.optimizer = TorchClippedAdam(self._params(), **_adam_options(config,
                                                                           batches_per_epoch))

    def _summed(self, batch: Batch, mean_loss: torch.Tensor) -> torch.Tensor:
        if mean_loss.dim() != 0:
            raise ValueError(f"loss_fn must return a scalar, got shape {tuple(mean_loss.shape)}")
        fn = getattr(self.module, "normalizer", None)
        weight = fn(batch) if fn is not None else batch_items(batch)
        return mean_loss.detach() * weight

    def forward_loss(self, batch: Batch, annealing_factor: float
                     ) -> tuple[torch.Tensor, torch.Tensor]:
        loss = self.loss_fn(self.module, batch)
        return self._summed(batch, loss), loss

    def loss_and_grads(self, batch: Batch, annealing_factor: float
                       ) -> tuple[Loss, list[torch.Tensor]]:
        summed, loss = self.forward_loss(batch, annealing_factor)
        loss.backward()
        return summed, self._params()

    def apply(self, params: list[torch.Tensor]) -> None:
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)

    def evaluate(self, batch: Batch) -> Loss:
        with torch.no_grad():
            return self._summed(batch, self.loss_fn(self.module, batch))

    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    def state_dict(self) -> dict:
        return {"optim": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.optimizer.load_state_dict(state["optim"])
