"""Several processes, GPUs or machines through ``torchrun`` (DistributedDataParallel).

``torchrun --nproc_per_node=N -m tracker_core.cli train ...`` sets ``RANK`` / ``WORLD_SIZE`` / ``LOCAL_RANK`` /
``MASTER_ADDR`` / ``MASTER_PORT``; :func:`init_distributed` reads them and joins the process group (NCCL on CUDA,
gloo on the CPU).  Each process trains on its own slice of every epoch's shuffled pair order
(:func:`shard_indices`, the semantics of ``torch.utils.data.DistributedSampler``), gradients are averaged by DDP,
and only rank 0 writes checkpoints, logs and the exported model.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist

__all__ = ["DistContext", "all_reduce_mean", "init_distributed", "shard_indices", "wrap_model"]


@dataclass
class DistContext:
    """Where this process stands: ``rank`` of ``world_size`` (1 when not distributed) and its device."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def close(self) -> None:
        if self.enabled and dist.is_initialized():
            dist.destroy_process_group()


def init_distributed(device: str = "auto") -> DistContext:
    """Join the process group described by torchrun's environment variables, if any.

    ``device``: ``auto`` (CUDA when available), ``cpu``, ``cuda`` or ``cuda:K``.  Under torchrun each process
    takes GPU ``LOCAL_RANK``.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() if device == "auto" else device.startswith("cuda")
    if use_cuda:
        dev = torch.device("cuda", local) if world > 1 else torch.device(device if device != "auto" else "cuda")
        torch.cuda.set_device(dev)
    else:
        dev = torch.device("cpu")
    if world > 1 and not dist.is_initialized():
        # A long timeout: the other ranks wait at a barrier while rank 0 builds the feature pool.
        dist.init_process_group("nccl" if use_cuda else "gloo", rank=rank, world_size=world,
                                timeout=datetime.timedelta(hours=12))
    return DistContext(rank, world, local, dev)


def shard_indices(num_items: int, rank: int, world_size: int, seed: int, epoch: int, shuffle: bool = True
                  ) -> np.ndarray:
    """This rank's share of one epoch: a permutation seeded by (seed, epoch), padded by wrapping around to a
    multiple of ``world_size``, then every ``world_size``-th item from ``rank``.  All ranks get the same count.

    Returns (ceil(num_items / world_size),) int64.
    """
    order = (np.random.default_rng([seed, epoch, 7]).permutation(num_items) if shuffle
             else np.arange(num_items))
    per_rank = -(-num_items // world_size)
    padded = np.resize(order, per_rank * world_size)  # np.resize repeats from the start
    return padded[rank::world_size].astype(np.int64)


def wrap_model(model: torch.nn.Module, ctx: DistContext) -> torch.nn.Module:
    """DDP around ``model`` when distributed (parameters are broadcast from rank 0 here), else ``model``."""
    if not ctx.enabled:
        return model
    ids = [ctx.device.index] if ctx.device.type == "cuda" else None
    return torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)


def all_reduce_mean(value: float, ctx: DistContext) -> float:
    """Mean of a scalar over the ranks (the value itself when not distributed)."""
    if not ctx.enabled:
        return float(value)
    t = torch.tensor([float(value)], dtype=torch.float64,
                     device=ctx.device if ctx.device.type == "cuda" else "cpu")
    dist.all_reduce(t)
    return float(t.item()) / ctx.world_size
