"""Labelled structures for training: a dataset of frames and the collate that batches them.

A labelled frame is an ASE ``Atoms`` whose energy (eV) and forces (eV/Å) are held by a
(``SinglePoint``) calculator, as ASE's extxyz reader returns them, or, for frames built in
memory, in ``info["energy"]`` and ``arrays["forces"]``. :func:`collate` turns a list of
samples into one :class:`~equicat.data.AtomicGraph` plus the target tensors, the same graph
type the model sees at inference.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from ase import Atoms
from torch import Tensor

from equicat.data import formats
from equicat.data.graph import AtomicGraph

__all__ = [
    "Sample",
    "atomic_open",
    "Batch",
    "StructureDataset",
    "collate",
    "energy_label",
    "frame_labels",
    "read_frames",
    "write_frames",
]


@dataclass(frozen=True)
class Sample:
    """One labelled structure.

    Attributes:
        atoms: The structure (positions Å, cell, pbc, tags, constraints).
        energy: Total energy, eV.
        forces: [n, 3] eV/Å, forces on every atom; ``None`` in an energy-only dataset.
    """

    atoms: Atoms
    energy: float
    forces: np.ndarray | None


@dataclass
class Batch:
    """A batch of labelled structures as one graph plus targets."""

    # the structures, batched (float fields in the requested dtype)
    graph: AtomicGraph
    # [B] eV, total energy of each system
    energy: Tensor
    # [N, 3] eV/Å, force on each atom; None for energy-only data
    forces: Tensor | None

    def to(self, device: torch.device | str | None = None) -> Batch:
        """A copy on ``device`` (targets keep the graph's float dtype)."""
        forces = None if self.forces is None else self.forces.to(device)
        return Batch(self.graph.to(device=device), self.energy.to(device), forces)


def energy_label(atoms: Atoms, where: str = "frame") -> float:
    """Energy label (eV) of a frame: its calculator's stored result, else ``info["energy"]``.

    Raises:
        ValueError: The frame has no finite energy label.
    """
    results = getattr(atoms.calc, "results", {}) if atoms.calc is not None else {}
    energy = results.get("energy", atoms.info.get("energy"))
    if energy is None or not np.isfinite(energy):
        raise ValueError(
            f"{where} has no finite energy label (a calculator result or info['energy'])."
        )
    return float(energy)


def frame_labels(atoms: Atoms, where: str = "frame") -> tuple[float, np.ndarray]:
    """Energy (eV) and forces (``[n, 3]`` eV/Å) of a labelled frame.

    Reads the attached calculator's stored results, else ``info["energy"]`` and
    ``arrays["forces"]``. Never runs a calculation.

    Raises:
        ValueError: The frame has no energy or forces, or they have the wrong shape.
    """
    results = getattr(atoms.calc, "results", {}) if atoms.calc is not None else {}
    energy = results.get("energy", atoms.info.get("energy"))
    forces = results.get("forces", atoms.arrays.get("forces"))
    if energy is None or forces is None:
        missing = "energy" if energy is None else "forces"
        raise ValueError(
            f"{where} has no {missing} label; training frames need an energy and per-atom "
            "forces (extxyz 'energy=' and a 'forces' column, as `equicat datagen` writes)."
        )
    forces = np.asarray(forces, dtype=float)
    if forces.shape != (len(atoms), 3):
        raise ValueError(
            f"{where} has forces of shape {list(forces.shape)} for {len(atoms)} atoms; "
            f"expected [{len(atoms)}, 3]."
        )
    if not (np.isfinite(energy) and np.isfinite(forces).all()):
        raise ValueError(f"{where} has a non-finite energy or force label; remove the frame.")
    return float(energy), forces


def read_frames(paths: str | os.PathLike | Sequence[str | os.PathLike]) -> list[Atoms]:
    """Every frame of one or several structure files, in order.

    Any format of :mod:`equicat.data.formats` (extxyz, ASE db, equicat HDF5, fairchem LMDB,
    chosen by suffix) or anything ``ase.io`` reads. Each frame's ``info["source"]`` is set to
    ``"FILE@INDEX"`` for error messages.
    """
    paths = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    frames: list[Atoms] = []
    for path in paths:
        if not Path(path).exists():
            raise FileNotFoundError(f"data file {str(path)!r} does not exist")
        read = formats.read_frames(path)
        for i, atoms in enumerate(read):
            atoms.info["source"] = f"{path}@{i}"
        frames += read
    return frames


@contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w") -> Iterator:
    """Open a temporary file beside ``path``; on success it replaces ``path`` in one rename.

    Readers see the old file or the complete new one, never a partial write; on an error the
    temporary file is removed. The new file gets the usual permissions (``0o666 & ~umask``).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_frames(path: str | os.PathLike, frames: Sequence[Atoms]) -> Path:
    """Write frames atomically, in the format of the suffix (extxyz unless .h5/.db/.lmdb).

    See :func:`equicat.data.formats.write_frames` (which also appends).
    """
    return formats.write_frames(path, frames)


class StructureDataset(torch.utils.data.Dataset):
    """Labelled structures held in memory; ``dataset[i]`` is a :class:`Sample`.

    Labels are read and checked once, at construction.

    Args:
        frames: Labelled ``Atoms`` (see :func:`frame_labels`).
        forces: Read force labels. ``False`` makes an energy-only dataset (e.g. QM9, whose
            molecules are equilibrium geometries without forces): only the energy label is
            read (calculator result or ``info["energy"]``) and every sample's ``forces`` is
            ``None``.
    """

    def __init__(self, frames: Sequence[Atoms], forces: bool = True) -> None:
        if len(frames) == 0:
            raise ValueError("StructureDataset got no frames; check the data files.")
        self.has_forces = forces
        self.samples: list[Sample] = []
        for i, atoms in enumerate(frames):
            where = f"frame {atoms.info.get('source', i)}"
            if forces:
                energy, labels = frame_labels(atoms, where)
            else:
                energy, labels = energy_label(atoms, where), None
            self.samples.append(Sample(atoms, energy, labels))

    @classmethod
    def from_files(cls, paths: str | os.PathLike | Sequence[str | os.PathLike]) -> StructureDataset:
        """All frames of the given files (extxyz written by ``equicat datagen``, or any)."""
        return cls(read_frames(paths))

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> Sample:
        return self.samples[index]

    @property
    def elements(self) -> list[int]:
        """Sorted atomic numbers present in the data."""
        return sorted({int(z) for s in self.samples for z in s.atoms.numbers})

    def __repr__(self) -> str:
        atoms = sum(len(s.atoms) for s in self.samples)
        return f"StructureDataset({len(self)} frames, {atoms} atoms, Z={self.elements})"


def collate(
    samples: Sequence[Sample],
    cutoff: float,
    max_neighbors: int | None = None,
    dtype: torch.dtype = torch.float32,
) -> Batch:
    """One batched graph (edges for ``cutoff`` / ``max_neighbors``) and its targets.

    Args:
        samples: The structures of the batch, in order.
        cutoff: Å, neighbour cutoff of the model.
        max_neighbors: Neighbour cap of the model (``None`` for none).
        dtype: Float dtype of the graph and the targets.

    Returns:
        ``Batch(graph, energy [B] eV, forces [N, 3] eV/Å)`` on CPU; ``forces`` is ``None``
        when the samples carry none (energy-only data).
    """
    graph = AtomicGraph.from_atoms([s.atoms for s in samples], cutoff, max_neighbors, dtype=dtype)
    energy = torch.tensor([s.energy for s in samples], dtype=dtype)
    labelled = [s.forces is not None for s in samples]
    if not any(labelled):
        return Batch(graph, energy, None)
    if not all(labelled):
        raise ValueError("collate got samples with and without force labels; batch one kind")
    # [n_b, 3] per system -> [N, 3] in graph atom order
    forces = torch.from_numpy(np.concatenate([s.forces for s in samples])).to(dtype)
    return Batch(graph, energy, forces)
