"""Data-parallel training with ``torchrun``: process group, rank roles and reductions.

``torchrun --nproc_per_node K -m equicat.cli.main train CONFIG.yaml`` starts K processes with
``RANK``, ``LOCAL_RANK`` and ``WORLD_SIZE`` set; :func:`init_distributed` joins them (NCCL on
CUDA, gloo on CPU). The trainer then splits every global batch of ``data.batch_size``
structures across the ranks (rank ``r`` takes structures ``r, r + K, ...``), normalises each
rank's loss by the *global* structure and atom counts and scales it by ``K``, so that the
gradient DistributedDataParallel averages is exactly the single-process gradient of the whole
batch. Only rank 0 writes checkpoints, the training state and the logs.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["DistContext", "init_distributed", "all_reduce_sum", "barrier", "shutdown"]


@dataclass(frozen=True)
class DistContext:
    """This process's place in a data-parallel run (one process: rank 0 of 1).

    Attributes:
        rank: Global rank.
        world_size: Number of processes.
        local_rank: Rank on this machine (picks the CUDA device).
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        """Whether more than one process takes part."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Whether this process writes files (rank 0)."""
        return self.rank == 0


def init_distributed(device: torch.device) -> DistContext:
    """Join the process group ``torchrun`` set up (a no-op when ``WORLD_SIZE`` is unset or 1).

    Args:
        device: The configured device; ``cuda`` selects NCCL and the ``LOCAL_RANK`` GPU,
            anything else gloo.

    Raises:
        ValueError: ``WORLD_SIZE > 1`` without ``RANK`` (not started by ``torchrun``).
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistContext()
    if "RANK" not in os.environ:
        raise ValueError(
            "WORLD_SIZE is set but RANK is not; start multi-process training with torchrun"
        )
    rank = int(os.environ["RANK"])
    local = int(os.environ.get("LOCAL_RANK", rank))
    if not torch.distributed.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(local)
        torch.distributed.init_process_group(backend)
    return DistContext(rank, world, local)


def all_reduce_sum(
    values: Sequence[float] | np.ndarray, ctx: DistContext, device: torch.device
) -> np.ndarray:
    """Element-wise sum over all ranks (the values themselves on a single process), float64."""
    array = np.asarray(values, dtype=np.float64)
    if not ctx.enabled:
        return array
    tensor = torch.as_tensor(array, device=device)
    torch.distributed.all_reduce(tensor)
    return tensor.cpu().numpy()


def barrier(ctx: DistContext) -> None:
    """Wait for every rank (no-op on a single process)."""
    if ctx.enabled:
        torch.distributed.barrier()


def shutdown(ctx: DistContext) -> None:
    """Leave the process group if this process joined one."""
    if ctx.enabled and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
