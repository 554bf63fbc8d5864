"""Data-parallel training under ``torchrun`` with torch's ``DistributedDataParallel``.

:class:`DistContext` joins the process group from the environment and offers the few small
collectives the trainer needs (sums, gathering picklable objects). :func:`wrap_data_parallel`
puts an :class:`~pyro_videossm.infer.Objective` behind ``DistributedDataParallel`` (DDP):
every training step's forward pass goes through the DDP wrapper, and DDP all-reduces the
gradients bucket by bucket while the backward pass still runs.

The wrapped module is a :class:`StepLoss`: ``forward(batch, annealing_factor)`` returns
``(reported loss, differentiable loss)`` of the objective, and its parameters are exactly the
tensors the objective trains, the same objects (module parameters and Pyro ``pyro.param``
sites that live only in the param store), so DDP's gradient hooks sit on the tensors the
optimiser steps.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from pyro_videossm.infer.state import get_rng_state, set_rng_state

if TYPE_CHECKING:
    from pyro_videossm.infer.objectives import Batch, Objective


@dataclass
class DistContext:
    """Rank and world size of this process (``world == 1``: plain single-process training).

    Under ``torchrun`` (``WORLD_SIZE`` > 1 in the environment) :meth:`from_env` joins the
    process group (``gloo`` on CPU, ``nccl`` on CUDA, each rank on ``cuda:LOCAL_RANK``).
    """

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    created_group: bool = False

    @classmethod
    def from_env(cls, device: str | torch.device) -> DistContext:
        device = torch.device(device)
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return cls(device=device)
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if device.type == "cuda":
            device = torch.device("cuda", local_rank)
            torch.cuda.set_device(device)
        created = False
        if not dist.is_initialized():
            dist.init_process_group(backend=cls.backend_for(device))
            created = True
        return cls(rank=dist.get_rank(), world=dist.get_world_size(), local_rank=local_rank,
                   device=device, created_group=created)

    @staticmethod
    def backend_for(device: torch.device) -> str:
        """``nccl`` for CUDA, ``gloo`` otherwise."""
        return "nccl" if device.type == "cuda" else "gloo"

    @property
    def active(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def close(self) -> None:
        if self.created_group and dist.is_initialized():
            dist.destroy_process_group()

    def sum(self, values: list[float]) -> list[float]:
        """Sum a few numbers over processes (float64)."""
        if not self.active:
            return list(values)
        t = torch.tensor(values, dtype=torch.float64,
                         device=self.device if self.device.type == "cuda" else "cpu")
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return t.tolist()

    def gather_objects(self, obj: Any) -> list[Any]:
        """Every process's ``obj`` (pickled between processes, never written to disk)."""
        if not self.active:
            return [obj]
        out: list[Any] = [None] * self.world
        dist.all_gather_object(out, obj)
        return out


class StepLoss(nn.Module):
    """The module DDP wraps: ``forward(batch, annealing_factor)`` is
    ``objective.forward_loss(batch, annealing_factor)``, i.e. ``(reported loss (0-d, detached),
    differentiable loss (0-d))``.

    Its parameters are ``params`` (registered by reference: the very tensors the objective
    trains) and its buffers are those of ``objective.module`` (also by reference, so that DDP
    starts every rank from rank 0's buffers and keeps them in step).
    """

    def __init__(self, objective: Objective, params: list[nn.Parameter]) -> None:
        super().__init__()
        self.trained = nn.ParameterList(params)
        for i, buffer in enumerate(objective.module.buffers()):
            self.register_buffer(f"buffer{i}", buffer)
        self._forward_loss = objective.forward_loss

    def forward(self, batch: Batch, annealing_factor: float
                ) -> tuple[torch.Tensor, torch.Tensor]:
        return self._forward_loss(batch, annealing_factor)


def wrap_data_parallel(objective: Objective, batch: Batch, annealing_factor: float,
                       dctx: DistContext) -> tuple[DistributedDataParallel, list[nn.Parameter]]:
    """``DistributedDataParallel(StepLoss(objective, params))`` and ``params``, the trained
    tensors in an order that is the same on every process.

    The parameters are found by one forward and backward pass of the objective on ``batch``
    (:meth:`~pyro_videossm.infer.Objective.trained_parameters`, which also creates lazily
    initialised ``pyro.param`` sites); the random-number generators and the module's buffers
    are put back afterwards, so this pass leaves no trace in the training trajectory.
    ``find_unused_parameters`` is ``objective.find_unused_parameters`` or, when that is
    ``None``, true when some trained tensor received no gradient in that pass on any process
    (e.g. a network registered with ``pyro.module`` that the model and guide do not use).
    Creating the wrapper broadcasts rank 0's parameters and buffers to every process.
    """
    module = objective.module
    rng = get_rng_state(dctx.device)
    buffers = [b.detach().clone() for b in module.buffers()]
    named, loss = objective.trained_parameters(batch, annealing_factor)
    if not named:
        raise RuntimeError("no parameters to train")
    params = list(named.values())
    if loss.requires_grad:
        grads = torch.autograd.grad(loss, params, allow_unused=True)
    else:
        grads = (None,) * len(params)
    del loss
    with torch.no_grad():
        for b, saved in zip(module.buffers(), buffers):
            b.copy_(saved)
    set_rng_state(rng)
    unused = [name for name, g in zip(named, grads) if g is None]
    find_unused = objective.find_unused_parameters
    if find_unused is None:
        find_unused = dctx.sum([float(len(unused))])[0] > 0
    device_ids = [dctx.device.index] if dctx.device.type == "cuda" else None
    wrapped = DistributedDataParallel(StepLoss(objective, params), device_ids=device_ids,
                                      find_unused_parameters=bool(find_unused))
    if dctx.is_main:
        tqdm.write(f"data parallel: DistributedDataParallel over {dctx.world} processes "
                   f"({dist.get_backend()}), {len(params)} parameter tensors, "
                   f"find_unused_parameters={bool(find_unused)}"
                   + (f" (no gradient: {', '.join(unused[:3])}"
                      f"{', ...' if len(unused) > 3 else ''})" if unused else ""),
                   file=sys.stderr)
    return wrapped, params
