"""Mini-batches for the trainer: a dict of tensors or a torch ``Dataset`` of dicts, shuffled
by a dedicated ``torch.Generator`` and sharded across processes under ``torchrun``."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping

import torch
from torch.utils.data import DataLoader, Dataset, Sampler, default_collate

from pyro_videossm.errors import InputError

Batch = dict[str, torch.Tensor]


class ShardedPermutation(Sampler[int]):
    """The item order of one epoch on one process.

    Like ``torch.utils.data.DistributedSampler`` (``drop_last=False``): a permutation drawn
    from ``generator`` (identical on every process, since every process's generator has the
    same seed and state), padded by wrapping around to a multiple of ``world``, then every
    ``world``-th item starting at ``rank``. With ``generator=None`` the order is ``0..n-1``
    and there is no padding (validation: every item is counted exactly once).
    """

    def __init__(self, n: int, generator: torch.Generator | None, rank: int = 0,
                 world: int = 1) -> None:
        if generator is None:
            self.indices = torch.arange(rank, n, world)
            return
        perm = torch.randperm(n, generator=generator)
        total = math.ceil(n / world) * world
        if total > n:
            perm = torch.cat([perm, perm[: total - n]])
        self.indices = perm[rank:total:world]

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices.tolist())

    def __len__(self) -> int:
        return len(self.indices)


class BatchSource:
    """Cuts data into batches on ``device``.

    Args:
        data: ``dict[str, Tensor]`` with equal first dimension (items), or a ``Dataset``
            whose items are ``dict[str, Tensor]`` (collated with ``default_collate``).
        batch_size: items per batch (per process).
        device: where batches go (copied with ``non_blocking=True``, from pinned memory
            when the device is CUDA).
        drop_last: drop a last incomplete batch.
        num_workers: ``DataLoader`` workers for a ``Dataset``.
        name: used in error messages ("training data", "validation data").
    """

    def __init__(self, data: Mapping[str, torch.Tensor] | Dataset, batch_size: int,
                 device: torch.device, drop_last: bool = False, num_workers: int = 0,
                 name: str = "data") -> None:
        self.batch_size = batch_size
        self.device = torch.device(device)
        self.drop_last = drop_last
        self.num_workers = num_workers
        self.pin = self.device.type == "cuda"
        if isinstance(data, Mapping):
            if not data:
                raise InputError(f"{name} is an empty dict")
            sizes = {}
            for key, value in data.items():
                if not isinstance(value, torch.Tensor) or value.dim() == 0:
                    raise InputError(f"{name}[{key!r}] must be a tensor with an item dimension")
                sizes[key] = value.shape[0]
            if len(set(sizes.values())) != 1:
                raise InputError(f"{name} tensors differ in their first (item) dimension: "
                                 + ", ".join(f"{k}={v}" for k, v in sizes.items()))
            self.tensors: dict[str, torch.Tensor] | None = dict(data)
            self.dataset = None
            self.n = next(iter(sizes.values()))
        elif isinstance(data, Dataset):
            self.tensors = None
            self.dataset = data
            try:
                self.n = len(data)
            except TypeError:
                raise InputError(f"{name} must be a map-style Dataset with a length") from None
        else:
            raise InputError(f"{name} must be a dict of tensors or a torch Dataset, "
                             f"not {type(data).__name__}")
        if self.n == 0:
            raise InputError(f"{name} holds no items")

    def num_batches(self, local_items: int) -> int:
        """Batches per epoch of ``local_items`` items; InputError if there is not one."""
        if self.drop_last:
            n = local_items // self.batch_size
        else:
            n = math.ceil(local_items / self.batch_size)
        if n == 0:
            raise InputError(f"training data hold {self.n} items, fewer than one batch of "
                             f"{self.batch_size} (drop_last)")
        return n

    def _to_device(self, batch: Batch) -> Batch:
        out = {}
        for key, value in batch.items():
            if self.pin and value.device.type == "cpu":
                value = value.pin_memory()
            out[key] = value.to(self.device, non_blocking=True)
        return out

    def iterate(self, order: ShardedPermutation, start: int = 0, seed: int = 0
                ) -> Iterator[Batch]:
        """Batches ``start, start+1, ...`` of the epoch whose item order is ``order``.

        ``seed`` seeds the ``DataLoader``'s own generator (worker seeds), so that iterating
        never draws from the global torch generator (which the model's sampling uses)."""
        idx = order.indices
        chunks = [idx[i: i + self.batch_size]
                  for i in range(start * self.batch_size, len(idx), self.batch_size)]
        if self.drop_last and chunks and len(chunks[-1]) < self.batch_size:
            chunks.pop()
        if self.tensors is not None:
            for chunk in chunks:
                yield self._to_device({k: v[chunk.to(v.device)] for k, v in
                                       self.tensors.items()})
            return
        loader = DataLoader(self.dataset, batch_sampler=[c.tolist() for c in chunks],
                            collate_fn=default_collate, num_workers=self.num_workers,
                            pin_memory=self.pin,
                            generator=torch.Generator().manual_seed(seed))
        for batch in loader:
            if not isinstance(batch, Mapping):
                raise InputError("dataset items must be dicts of tensors")
            yield self._to_device(batch)
