"""A Verlet (skin) neighbour list for optimizers and integrators.

A neighbour search finds *candidate* pairs within ``cutoff + skin`` of the positions ``r0`` at
search time. While no atom of a system has moved more than ``skin / 2`` from ``r0``, no pair
can have come from beyond ``cutoff + skin`` to within ``cutoff`` (each end moved at most
``skin / 2``), so the model's graph at the current positions is exactly the candidates with
``0 < |d| <= cutoff``, truncated to the ``max_neighbors`` nearest per atom by the same rule
as :func:`equicat.data.build_edges` (:func:`equicat.data.neighbors.select_edges`). That
selection is redone at every step from the candidates, a cheap float64 distance computation
and sort; only the search is skipped. A system whose atoms moved more than ``skin / 2``
gets a fresh search (systems are searched independently).

Why truncation needs a fresh selection at every step: the ``max_neighbors`` nearest set is a
discontinuous function of the positions: an arbitrarily small displacement can swap the last
kept and the first dropped neighbour. A graph reused from an earlier step is then a different
potential from the one the model defines at the current positions, and the optimizer would
converge to a point where the model's own forces are not zero. The candidates are therefore
never truncated, and the truncation is applied afresh at every step. ``skin = 0`` gives a full
neighbour search at every step of every moving system (what fairchem's on-the-fly graphs do).

When the cell changes too (cell relaxation, NPT), write the current cell as ``h = h0 T`` (rows,
``h0`` the cell at the search) and the non-affine displacements ``delta_i = r_i - r0_i T``.
A pair vector becomes ``d = d0 T + (delta_j - delta_i)``, so ``|d| >= s_min(T) |d0| -
2 max|delta|`` (``s_min`` the smallest singular value). A pair that was no candidate had
``|d0| > cutoff + skin``; none can be within the cutoff while ``s_min(T) (cutoff + skin) -
2 max|delta| >= cutoff``, and a system is searched again once that fails. With a fixed cell
(``T = I``) this is the ``skin / 2`` rule above.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from equicat.calculators.batching import (
    cat_fields,
    per_atom,
    per_system,
    segment_max,
    static,
    take_edges,
    take_fields,
    take_graph,
)
from equicat.data import AtomicGraph, build_edges
from equicat.data.neighbors import select_edges

__all__ = ["NeighborList"]


@dataclass
class NeighborList:
    """Candidate pairs within ``cutoff + skin`` of each system's last search."""

    # [2, C] int64, candidate pairs (row 0 source j, row 1 target i), grouped by system
    candidates: Tensor
    # [C, 3] int64, image offsets of the candidate sources
    shifts: Tensor
    # [N, 3] Å, positions at each system's last search
    reference: Tensor = per_atom()
    # [B, 3, 3] Å, cells at each system's last search
    reference_cell: Tensor = per_system()
    # [B] int64, neighbour searches done for each system (the first at build time)
    searches: Tensor = per_system()
    # Å, the potential's edge cutoff
    cutoff: float = static()
    # nearest neighbours kept per atom, None for all within the cutoff
    max_neighbors: int | None = static()
    # Å, extra search radius; a system is searched again once an atom moved > skin / 2
    skin: float = static()

    @classmethod
    def build(
        cls, graph: AtomicGraph, cutoff: float, max_neighbors: int | None, skin: float
    ) -> NeighborList:
        """Search every system of ``graph``."""
        if skin < 0:
            raise ValueError(f"skin must be >= 0 Å, got {skin}")
        edges, shifts = _search(graph, cutoff + skin)
        return cls(
            candidates=edges,
            shifts=shifts,
            reference=graph.positions.detach().clone(),
            reference_cell=graph.cell.detach().clone(),
            searches=torch.ones_like(graph.natoms),
            cutoff=cutoff,
            max_neighbors=max_neighbors,
            skin=skin,
        )

    def update(self, graph: AtomicGraph) -> NeighborList:
        """Search again the systems of ``graph`` where a pair may have come within the cutoff.

        (An atom moved more than ``skin / 2``, or the cell-change rule in the module docstring.)
        """
        stale = self._stale(graph)
        if not bool(stale.any()):
            return self
        atom_stale = stale[graph.batch]
        old, edge_old = take_edges(self.candidates, ~atom_stale)
        sub = _take_positions(graph, stale)
        new, new_shifts = _search(sub, self.cutoff + self.skin)
        # new edges: sub-graph atom index -> batch atom index
        new = torch.nonzero(atom_stale)[:, 0][new]
        keep_index = torch.nonzero(~atom_stale)[:, 0]
        edges = torch.cat([keep_index[old], new], dim=1)
        shifts = torch.cat([self.shifts[edge_old], new_shifts])
        # group edges by system again (stable: each system keeps its search order)
        order = torch.sort(graph.batch[edges[1]], stable=True).indices
        return dataclasses.replace(
            self,
            candidates=edges[:, order],
            shifts=shifts[order],
            reference=torch.where(atom_stale[:, None], graph.positions.detach(), self.reference),
            reference_cell=torch.where(
                stale[:, None, None], graph.cell.detach(), self.reference_cell
            ),
            searches=self.searches + stale.long(),
        )

    def _stale(self, graph: AtomicGraph) -> Tensor:
        """[B] bool, systems that need a fresh search."""
        pos, cell, b = graph.positions.detach(), graph.cell.detach(), graph.num_systems
        changed = (cell != self.reference_cell).flatten(1).any(1)  # [B]
        if not bool(changed.any()):
            moved = (pos - self.reference).norm(dim=1)  # [N] Å
            return segment_max(moved, graph.batch, b) > 0.5 * self.skin
        eye = torch.eye(3, dtype=cell.dtype, device=cell.device).expand(b, 3, 3)
        safe_ref = torch.where(changed[:, None, None], self.reference_cell, eye)
        # T = h0^-1 h  ([B, 3, 3]), identity where the cell did not change
        t = torch.where(changed[:, None, None], torch.linalg.solve(safe_ref, cell), eye)
        affine = torch.bmm(self.reference[:, None, :], t[graph.batch])[:, 0]  # [N, 3] r0 T
        delta = segment_max((pos - affine).norm(dim=1), graph.batch, b)  # [B] Å
        s_min = torch.linalg.svdvals(t)[:, -1]  # [B]
        return s_min * (self.cutoff + self.skin) - 2 * delta < self.cutoff

    def select(self, graph: AtomicGraph) -> AtomicGraph:
        """``graph`` with the model's edges at its current positions (cutoff and truncation)."""
        j, i = self.candidates
        pos = graph.positions.detach().double()
        cell = graph.cell.detach().double()
        # [C, 1, 3] @ [C, 3, 3] -> [C, 3] Cartesian image offsets
        offsets = torch.bmm(self.shifts.double()[:, None, :], cell[graph.batch[i]])[:, 0]
        dist = (pos[j] + offsets - pos[i]).norm(dim=1)
        if self.max_neighbors is None:
            keep = (dist > 0) & (dist <= self.cutoff)
            edge_index, shifts = self.candidates[:, keep], self.shifts[keep]
        else:
            i, j, shifts = select_edges(
                i, j, self.shifts, dist, graph.num_atoms, self.cutoff, self.max_neighbors
            )
            edge_index = torch.stack([j, i])
        return dataclasses.replace(
            graph, edge_index=edge_index, cell_shifts=shifts.to(graph.positions.dtype)
        )

    def take(self, atom_keep: Tensor, keep: Tensor) -> NeighborList:
        """The systems where ``keep`` ([B] bool) is set."""
        edges, edge_keep = take_edges(self.candidates, atom_keep)
        out = take_fields(self, atom_keep, keep)
        return dataclasses.replace(out, candidates=edges, shifts=self.shifts[edge_keep])

    @staticmethod
    def cat(lists: Sequence[NeighborList]) -> NeighborList:
        """Join neighbour lists of consecutive batches."""
        sizes = [0] + [n.reference.shape[0] for n in lists[:-1]]
        offsets = torch.cumsum(torch.tensor(sizes), 0).tolist()  # first atom of each list
        out = cat_fields(lists)
        edges = [n.candidates + o for n, o in zip(lists, offsets, strict=True)]
        return dataclasses.replace(
            out, candidates=torch.cat(edges, 1), shifts=torch.cat([n.shifts for n in lists])
        )


def _take_positions(graph: AtomicGraph, keep: Tensor) -> AtomicGraph:
    """Positions, cell and sizes of the kept systems (edges dropped)."""
    empty = dataclasses.replace(
        graph, edge_index=graph.edge_index[:, :0], cell_shifts=graph.cell_shifts[:0]
    )
    return take_graph(empty, keep)


def _search(graph: AtomicGraph, radius: float) -> tuple[Tensor, Tensor]:
    """All pairs within ``radius`` (untruncated), grouped by system; ``([2, C], [C, 3])``."""
    # no min_distance check: inputs were checked when their graph was built, and atoms that
    # an optimizer pushes together must not abort the other relaxations of the batch
    edges, shifts = build_edges(
        graph.positions, graph.cell, graph.pbc, graph.natoms, radius, None, min_distance=0.0
    )
    return edges, shifts.long()
