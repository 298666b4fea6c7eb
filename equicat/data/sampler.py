"""Batches of roughly equal atom count, seeded, deterministic, DDP-aware."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch

__all__ = ["AtomBatchSampler", "pack_by_atoms"]


def pack_by_atoms(order: np.ndarray, natoms: np.ndarray, max_atoms: int) -> list[list[int]]:
    """Split ``order`` into consecutive batches of at most ``max_atoms`` atoms.

    A batch is closed when the next structure would not fit, so every batch but the last
    holds more than ``max_atoms - max(natoms)`` atoms. A structure larger than ``max_atoms``
    forms a batch of its own.

    Args:
        order: [B] dataset indices in the order to visit.
        natoms: [len(dataset)] atoms per structure.
        max_atoms: Cap on the atoms of a batch.
    """
    batches: list[list[int]] = []
    current: list[int] = []
    total = 0
    for index in order.tolist():
        n = int(natoms[index])
        if current and total + n > max_atoms:
            batches.append(current)
            current, total = [], 0
        current.append(index)
        total += n
    if current:
        batches.append(current)
    return batches


class AtomBatchSampler(torch.utils.data.Sampler[list[int]]):
    """Batch sampler whose batches hold about ``max_atoms`` atoms each.

    Epoch ``e`` visits the structures in the permutation ``default_rng([seed, e])`` (or in
    order when ``shuffle`` is false) and packs them greedily (:func:`pack_by_atoms`). With
    ``world_size > 1`` every rank builds the same batch list, pads it by repeating its first
    batches to a multiple of ``world_size`` (or drops the remainder with ``drop_last``), and
    takes every ``world_size``-th batch from ``rank``, so all ranks run the same number of
    steps. Use as ``DataLoader(dataset, batch_sampler=sampler, collate_fn=...)`` and call
    :meth:`set_epoch` before each epoch.

    Args:
        natoms: [len(dataset)] atoms per structure (``dataset.natoms``).
        max_atoms: Atoms per batch at most (unless one structure alone is larger).
        shuffle: Visit structures in a seeded random order each epoch.
        seed: Seed of the shuffle.
        rank: This process's rank (DDP), ``0 <= rank < world_size``.
        world_size: Number of processes.
        drop_last: Drop the last, partly filled batch (and, under DDP, the remainder).
    """

    def __init__(
        self,
        natoms: Sequence[int] | np.ndarray,
        max_atoms: int,
        *,
        shuffle: bool = True,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        drop_last: bool = False,
    ) -> None:
        self.natoms = np.asarray(natoms, dtype=np.int64)
        if self.natoms.ndim != 1 or len(self.natoms) == 0 or (self.natoms < 1).any():
            raise ValueError("AtomBatchSampler needs a non-empty 1-d natoms of positive counts")
        if max_atoms < 1:
            raise ValueError(f"max_atoms must be >= 1, got {max_atoms}")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not in [0, world_size={world_size})")
        self.max_atoms, self.shuffle, self.seed = int(max_atoms), shuffle, seed
        self.rank, self.world_size, self.drop_last = rank, world_size, drop_last
        self.epoch = 0
        self._cache: tuple[int, list[list[int]]] | None = None

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose permutation the next iteration uses."""
        self.epoch = int(epoch)

    def batches(self) -> list[list[int]]:
        """This rank's batches for the current epoch."""
        if self._cache is not None and self._cache[0] == self.epoch:
            return self._cache[1]
        n = len(self.natoms)
        if self.shuffle:
            order = np.random.default_rng([self.seed, self.epoch]).permutation(n)
        else:
            order = np.arange(n)
        batches = pack_by_atoms(order, self.natoms, self.max_atoms)
        if self.drop_last and len(batches) > 1:
            batches = batches[:-1]
        if self.world_size > 1:
            if self.drop_last:
                batches = batches[: len(batches) - len(batches) % self.world_size]
            else:
                pad = -len(batches) % self.world_size
                batches = batches + (batches * (pad // max(len(batches), 1) + 1))[:pad]
            batches = batches[self.rank :: self.world_size]
        self._cache = (self.epoch, batches)
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        yield from self.batches()

    def __len__(self) -> int:
        return len(self.batches())

    def __repr__(self) -> str:
        return (
            f"AtomBatchSampler({len(self.natoms)} structures, max_atoms={self.max_atoms}, "
            f"rank {self.rank}/{self.world_size}, seed={self.seed})"
        )
