"""Datasets over files of any format: lazy labelled frames, and per-structure graphs.

:class:`FrameDataset` reads frames on demand from any file :mod:`equicat.data.formats`
opens (so an LMDB or HDF5 file larger than memory can be trained on) and yields the same
:class:`~equicat.data.dataset.Sample` as :class:`~equicat.data.dataset.StructureDataset`.
:class:`GraphDataset` turns each sample into a one-system
:class:`~equicat.data.dataset.Batch` with its neighbour list built on the fly (in DataLoader
workers when ``num_workers > 0``), and :func:`collate_batches` joins those into one batch,
identical to :func:`~equicat.data.dataset.collate` on the same samples.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import torch

from equicat.data.dataset import Batch, Sample, collate, frame_labels
from equicat.data.formats import open_frames
from equicat.data.graph import AtomicGraph

__all__ = ["FrameDataset", "GraphDataset", "collate_batches", "concat_graphs"]


class FrameDataset(torch.utils.data.Dataset):
    """Labelled frames of one or several files, read lazily; ``dataset[i]`` is a ``Sample``.

    Args:
        paths: Data files (extxyz, ``.db``, ``.h5``, ``.lmdb`` or an LMDB directory).
        format: Force one format for every path (default: by suffix).
    """

    def __init__(
        self, paths: str | os.PathLike | Sequence[str | os.PathLike], format: str | None = None
    ) -> None:
        paths = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
        if not paths:
            raise ValueError("FrameDataset got no data files")
        self.paths = [str(p) for p in paths]
        self.sources = [open_frames(p, format) for p in paths]
        lengths = [len(s) for s in self.sources]
        self.starts = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        if self.starts[-1] == 0:
            raise ValueError(f"FrameDataset: the files {self.paths} hold no frames")

    def __len__(self) -> int:
        return int(self.starts[-1])

    def locate(self, index: int) -> tuple[int, int]:
        """``(file number, frame number in that file)`` of dataset index ``index``."""
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} frames")
        source = int(np.searchsorted(self.starts, index, side="right") - 1)
        return source, index - int(self.starts[source])

    def __getitem__(self, index: int) -> Sample:
        source, local = self.locate(int(index))
        atoms = self.sources[source][local]
        atoms.info["source"] = f"{self.paths[source]}@{local}"
        energy, forces = frame_labels(atoms, f"frame {atoms.info['source']}")
        return Sample(atoms, energy, forces)

    @property
    def natoms(self) -> np.ndarray:
        """[len] int64, atoms per frame (for :class:`~equicat.data.sampler.AtomBatchSampler`)."""
        return np.concatenate([np.asarray(s.natoms, np.int64) for s in self.sources])

    def __repr__(self) -> str:
        return f"FrameDataset({len(self)} frames from {len(self.paths)} file(s))"


class GraphDataset(torch.utils.data.Dataset):
    """One-system graphs with targets: ``dataset[i]`` is a ``Batch`` of ``frames[i]``.

    Args:
        frames: A dataset of ``Sample`` (``FrameDataset`` or ``StructureDataset``).
        cutoff: Å, neighbour cutoff of the model.
        max_neighbors: Neighbour cap of the model (``None`` for none).
        dtype: Float dtype of the graph and the targets.
    """

    def __init__(
        self,
        frames: torch.utils.data.Dataset,
        cutoff: float,
        max_neighbors: int | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        self.frames, self.cutoff, self.max_neighbors, self.dtype = (
            frames, cutoff, max_neighbors, dtype,
        )  # fmt: skip

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, index: int) -> Batch:
        return collate([self.frames[index]], self.cutoff, self.max_neighbors, self.dtype)

    @property
    def natoms(self) -> np.ndarray:
        """[len] int64, atoms per structure."""
        natoms = getattr(self.frames, "natoms", None)
        if natoms is None:  # StructureDataset holds the atoms in memory
            natoms = [len(s.atoms) for s in self.frames.samples]
        return np.asarray(natoms, np.int64)


def concat_graphs(graphs: Sequence[AtomicGraph]) -> AtomicGraph:
    """One graph of several, systems in order, edge indices shifted by the atoms before."""
    if not graphs:
        raise ValueError("concat_graphs got no graphs")
    atoms = torch.tensor([0] + [g.num_atoms for g in graphs[:-1]]).cumsum(0)
    systems = torch.tensor([0] + [g.num_systems for g in graphs[:-1]]).cumsum(0)

    def cat(name: str) -> torch.Tensor:
        return torch.cat([getattr(g, name) for g in graphs])

    return AtomicGraph(
        positions=cat("positions"), atomic_numbers=cat("atomic_numbers"), cell=cat("cell"),
        pbc=cat("pbc"), natoms=cat("natoms"), fixed=cat("fixed"), tags=cat("tags"),
        batch=torch.cat([g.batch + s for g, s in zip(graphs, systems, strict=True)]),
        # [2, E_g] per graph -> [2, E] with atom offsets
        edge_index=torch.cat([g.edge_index + a for g, a in zip(graphs, atoms, strict=True)], 1),
        cell_shifts=cat("cell_shifts"),
    )  # fmt: skip


def collate_batches(batches: Sequence[Batch]) -> Batch:
    """Join per-structure batches (from :class:`GraphDataset`) into one ``Batch``."""
    graph = concat_graphs([b.graph for b in batches])
    energy = torch.cat([b.energy for b in batches])
    forces = torch.cat([b.forces for b in batches])
    return Batch(graph, energy, forces)
