"""AtomicGraph: the one batch type, from ASE ``Atoms`` to model to calculator to optimizer."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from ase import Atoms
from ase.constraints import FixAtoms
from torch import Tensor

from equicat.data.checks import check_cell, check_finite, check_min_distance
from equicat.data.neighbors import (
    pair_distances,
    select_edges,
    torch_candidates,
    vesin_candidates,
)

__all__ = ["AtomicGraph", "NeighborMethod", "build_edges"]

NeighborMethod = Literal["vesin", "torch"]


def build_edges(
    positions: Tensor,
    cell: Tensor,
    pbc: Tensor,
    natoms: Tensor,
    cutoff: float,
    max_neighbors: int | None = None,
    *,
    method: NeighborMethod = "vesin",
    min_distance: float = 0.1,
    atomic_numbers: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Radius graph with periodic images for a batch of systems, nearest first.

    Each system is searched on its own; edges are ``0 < |d| <= cutoff`` with
    ``d = positions[j] + S @ cell[b] - positions[i]``, truncated strictly to the
    ``max_neighbors`` nearest per target (see :mod:`equicat.data.neighbors`), then concatenated
    with atom-index offsets. Order: by target, then distance, then ``(j, S)``.

    Args:
        positions: [N, 3] Å, Cartesian positions.
        cell: [B, 3, 3] Å, cell vectors as rows.
        pbc: [B, 3] bool, periodicity per cell vector.
        natoms: [B] int64, atoms per system (systems are contiguous in ``positions``).
        cutoff: Å, neighbour cutoff radius.
        max_neighbors: per-target cap, ``None`` for none.
        method: ``"vesin"`` (CPU cell list) or ``"torch"`` (brute force on positions' device).
        min_distance: Å, raise ``ValueError`` for a pair closer than this; ``0`` disables.
        atomic_numbers: [N], only used to name elements in error messages.

    Returns:
        ``(edge_index, cell_shifts)``: [2, E] int64 (row 0 source j, row 1 target i) and
        [E, 3] int64 image offsets, on the positions' device.
    """
    if method not in ("vesin", "torch"):
        raise ValueError(f"Unknown neighbour method {method!r}; use 'vesin' or 'torch'.")
    if max_neighbors is not None and max_neighbors < 0:
        raise ValueError(f"max_neighbors must be >= 0 or None, got {max_neighbors}.")
    home = positions.device
    work = torch.device("cpu") if method == "vesin" else home
    positions = positions.detach().to(device=work, dtype=torch.float64)
    cell = cell.detach().to(device=work, dtype=torch.float64)
    pbc = pbc.to(device=work)
    counts = [int(n) for n in natoms]
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(int)
    sources, targets, shifts = [], [], []
    for b, (start, n) in enumerate(zip(starts, counts, strict=True)):
        pos = positions[start : start + n]
        check_finite(pos, cell[b], b)
        check_cell(cell[b], pbc[b], b)
        if method == "vesin":
            found = vesin_candidates(pos.numpy(), cell[b].numpy(), pbc[b].numpy(), cutoff)
            i, j, s = (torch.from_numpy(x) for x in found)
        else:
            i, j, s = torch_candidates(pos, cell[b], pbc[b], cutoff)
        d = pair_distances(pos, cell[b], i, j, s)
        numbers = None if atomic_numbers is None else atomic_numbers[start : start + n]
        check_min_distance(i, j, s, d, min_distance, b, numbers)
        i, j, s = select_edges(i, j, s, d, n, cutoff, max_neighbors)
        targets.append(i + start)
        sources.append(j + start)
        shifts.append(s)
    edge_index = torch.stack([torch.cat(sources), torch.cat(targets)])
    return edge_index.to(home), torch.cat(shifts).reshape(-1, 3).to(home)


def _fixed_mask(atoms: Atoms) -> np.ndarray:
    """[n] bool, atoms held by ``FixAtoms`` constraints."""
    fixed = np.zeros(len(atoms), dtype=bool)
    for constraint in atoms.constraints:
        if isinstance(constraint, FixAtoms):
            fixed[constraint.get_indices()] = True
    return fixed


@dataclass(eq=False)
class AtomicGraph:
    """A batch of atomic systems as one disjoint graph with periodic edges.

    Edge ``e`` points from source ``j = edge_index[0, e]`` to target ``i = edge_index[1, e]``
    and its vector is ``positions[j] + cell_shifts[e] @ cell[batch[i]] - positions[i]``.
    """

    # [N, 3] Å, Cartesian positions
    positions: Tensor
    # [N] int64, atomic numbers
    atomic_numbers: Tensor
    # [B, 3, 3] Å, cell vectors as rows (zeros for a non-periodic system)
    cell: Tensor
    # [B, 3] bool, periodicity per cell vector
    pbc: Tensor
    # [N] int64, system index of each atom
    batch: Tensor
    # [B] int64, atoms per system
    natoms: Tensor
    # [2, E] int64, row 0 = source/neighbour j, row 1 = target/centre i
    edge_index: Tensor
    # [E, 3] integer image offsets of the source atom (stored in positions' float dtype)
    cell_shifts: Tensor
    # [N] bool, atoms held fixed (ase FixAtoms)
    fixed: Tensor
    # [N] int64, OC20 tags (0 subsurface, 1 surface, 2 adsorbate); zeros if absent
    tags: Tensor

    def __post_init__(self) -> None:
        n, b, e = self.positions.shape[0], self.natoms.shape[0], self.edge_index.shape[-1]
        expected = {
            "positions": (n, 3), "atomic_numbers": (n,), "cell": (b, 3, 3), "pbc": (b, 3),
            "batch": (n,), "natoms": (b,), "edge_index": (2, e), "cell_shifts": (e, 3),
            "fixed": (n,), "tags": (n,),
        }  # fmt: skip
        for name, shape in expected.items():
            got = tuple(getattr(self, name).shape)
            if got != shape:
                raise ValueError(
                    f"AtomicGraph.{name} has shape {list(got)} but N={n} atoms, B={b} systems "
                    f"and E={e} edges require {list(shape)}; fix the tensor passed as {name}."
                )

    @classmethod
    def from_atoms(
        cls,
        atoms: Atoms | Sequence[Atoms],
        cutoff: float,
        max_neighbors: int | None = None,
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
        method: NeighborMethod = "vesin",
        min_distance: float = 0.1,
    ) -> AtomicGraph:
        """Build a graph of one or several ASE structures.

        Edges are found in float64 from the structures' own positions (see
        :func:`build_edges`), then all float fields are stored in ``dtype`` on ``device``.

        Args:
            atoms: one ``Atoms`` or a sequence of them (one system each).
            cutoff: Å, neighbour cutoff radius.
            max_neighbors: keep at most this many nearest neighbours per atom (strictly,
                as fairchem-1.x models do); ``None`` keeps all within the cutoff.
            device: where the graph lives (default CPU).
            dtype: float dtype of positions, cell and cell_shifts.
            method: ``"vesin"`` (CPU cell list) or ``"torch"`` (brute force on ``device``).
            min_distance: Å, raise ``ValueError`` if two atoms are closer; ``0`` disables.

        Returns:
            The batched graph, systems in input order.
        """
        frames = [atoms] if isinstance(atoms, Atoms) else list(atoms)
        if not frames:
            raise ValueError("AtomicGraph.from_atoms got no structures; pass at least one Atoms.")
        for b, frame in enumerate(frames):
            if not isinstance(frame, Atoms):
                raise TypeError(f"Structure {b} is a {type(frame).__name__}, not ase.Atoms.")
        natoms = torch.tensor([len(f) for f in frames], dtype=torch.int64)
        graph = cls(
            positions=torch.from_numpy(np.concatenate([f.positions for f in frames])),
            atomic_numbers=torch.from_numpy(np.concatenate([f.numbers for f in frames])).long(),
            cell=torch.from_numpy(np.stack([f.cell.array for f in frames])).to(torch.float64),
            pbc=torch.from_numpy(np.stack([f.pbc for f in frames])).to(torch.bool),
            batch=torch.repeat_interleave(torch.arange(len(frames)), natoms),
            natoms=natoms,
            edge_index=torch.zeros((2, 0), dtype=torch.int64),
            cell_shifts=torch.zeros((0, 3), dtype=torch.float64),
            fixed=torch.from_numpy(np.concatenate([_fixed_mask(f) for f in frames])),
            tags=torch.from_numpy(np.concatenate([f.get_tags() for f in frames])).long(),
        )
        if method == "torch":
            graph = graph.to(device=device)
        graph = graph.rebuild_edges(cutoff, max_neighbors, method=method, min_distance=min_distance)
        return graph.to(device=device, dtype=dtype)

    @property
    def num_systems(self) -> int:
        """B, the number of systems."""
        return int(self.natoms.shape[0])

    @property
    def num_atoms(self) -> int:
        """N, the number of atoms over all systems."""
        return int(self.positions.shape[0])

    @property
    def num_edges(self) -> int:
        """E, the number of edges over all systems."""
        return int(self.edge_index.shape[1])

    def edge_vectors(self) -> Tensor:
        """Edge vectors ``d_e = r_j + S_e @ cell[b_i] - r_i``, differentiable in r and cell.

        Returns:
            [E, 3] Å, in positions' dtype.
        """
        j, i = self.edge_index
        # [E, 1, 3] @ [E, 3, 3] -> [E, 3] Cartesian image offsets
        offsets = torch.bmm(self.cell_shifts[:, None, :], self.cell[self.batch[i]])[:, 0]
        return self.positions[j] + offsets - self.positions[i]

    def to(
        self, device: torch.device | str | None = None, dtype: torch.dtype | None = None
    ) -> AtomicGraph:
        """A copy on ``device`` with float fields (positions, cell, cell_shifts) in ``dtype``.

        Integer and bool fields keep their dtype. Returns ``self``'s tensors untouched where
        nothing changes.
        """
        if dtype is not None and not dtype.is_floating_point:
            raise ValueError(f"AtomicGraph.to needs a float dtype, got {dtype}.")
        fields = {}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            cast = dtype if value.is_floating_point() else None
            fields[field.name] = value.to(device=device, dtype=cast)
        return AtomicGraph(**fields)

    def with_positions(self, positions: Tensor, cell: Tensor | None = None) -> AtomicGraph:
        """A copy with new positions (and optionally cell), keeping the same edges.

        Args:
            positions: [N, 3] Å, new positions (may require grad).
            cell: [B, 3, 3] Å, new cell, or ``None`` to keep the current one.
        """
        cell = self.cell if cell is None else cell
        return dataclasses.replace(self, positions=positions, cell=cell)

    def rebuild_edges(
        self,
        cutoff: float,
        max_neighbors: int | None = None,
        *,
        method: NeighborMethod = "vesin",
        min_distance: float = 0.1,
    ) -> AtomicGraph:
        """A copy with fresh edges for the current positions and cell (same rule as from_atoms).

        The positions tensor is kept as is (with its autograd history); only edge_index and
        cell_shifts change.
        """
        edge_index, shifts = build_edges(
            self.positions, self.cell, self.pbc, self.natoms, cutoff, max_neighbors,
            method=method, min_distance=min_distance, atomic_numbers=self.atomic_numbers,
        )  # fmt: skip
        return dataclasses.replace(
            self,
            edge_index=edge_index.to(self.positions.device),
            cell_shifts=shifts.to(device=self.positions.device, dtype=self.positions.dtype),
        )

    def __repr__(self) -> str:
        return (
            f"AtomicGraph(N={self.num_atoms}, B={self.num_systems}, E={self.num_edges}, "
            f"{str(self.positions.dtype).removeprefix('torch.')}, {self.positions.device})"
        )
