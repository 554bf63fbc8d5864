"""Data-parallel training under ``torchrun``: process group set-up from the environment,
gradient averaging, and small collectives the trainer needs."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist


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
            backend = "nccl" if device.type == "cuda" else "gloo"
            dist.init_process_group(backend=backend)
            created = True
        return cls(rank=dist.get_rank(), world=dist.get_world_size(), local_rank=local_rank,
                   device=device, created_group=created)

    @property
    def active(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def close(self) -> None:
        if self.created_group and dist.is_initialized():
            dist.destroy_process_group()

    def average_gradients(self, params: list[torch.Tensor], loss: float | torch.Tensor
                          ) -> torch.Tensor:
        """Average the ``.grad`` of ``params`` over processes in one all-reduce; the local
        losses ride along and their sum over processes is returned (0-d tensor), so that
        every process sees a non-finite loss of any process at the same step."""
        if not params:
            raise RuntimeError("no parameters received gradients")
        ref = params[0]
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
        loss_t = torch.as_tensor(loss, dtype=ref.dtype, device=ref.device).reshape(1)
        flat = torch.cat([g.reshape(-1).to(ref.dtype) for g in grads] + [loss_t])
        dist.all_reduce(flat, op=dist.ReduceOp.SUM)
        total_loss = flat[-1]
        flat = flat[:-1] / self.world
        offset = 0
        for p, g in zip(params, grads):
            n = g.numel()
            value = flat[offset: offset + n].view_as(g).to(g.dtype)
            if p.grad is None:
                p.grad = value.clone()
            else:
                p.grad.copy_(value)
            offset += n
        return total_loss

    def broadcast_(self, tensors: list[torch.Tensor]) -> None:
        """Overwrite ``tensors`` in place with rank 0's values."""
        with torch.no_grad():
            for t in tensors:
                dist.broadcast(t.data, src=0)

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
