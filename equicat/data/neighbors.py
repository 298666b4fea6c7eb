"""Neighbour lists with periodic images, and the nearest-first truncation rule.

Every function here works on one system at a time and returns *candidate* pairs ``(i, j, S)``
meaning "atom ``j`` shifted by the integer lattice vector ``S`` is a neighbour of atom ``i``",
with edge vector ``d = positions[j] + S @ cell - positions[i]``. Two interchangeable searches
produce them:

- :func:`vesin_candidates`: the ``vesin`` cell-list code on CPU (default, fast);
- :func:`torch_candidates`: brute force over every periodic image that can lie within the
  cutoff, in torch, on the positions' device (works on GPU).

:func:`select_edges` then applies the one rule both share, in float64, so that both searches
give identical graphs: keep pairs with ``0 < |d| <= cutoff`` (a periodic image of the atom
itself counts; the atom with itself, ``S = 0``, never does), order them by target, distance
and then ``(j, S)``, and keep the ``max_neighbors`` nearest of each target.

The truncation is *strict*, as in the graphs that fairchem-1.x EquiformerV2, eSCN and SCN build
(``enforce_max_neighbors_strictly``): exactly ``max_neighbors`` edges survive even when the last
kept and the first dropped neighbour are at the same distance. Where fairchem breaks such
exact ties by float32 round-off, we break them by ``(j, S)``, so our choice among equidistant
neighbours is deterministic.
"""

from __future__ import annotations

import itertools

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "TIE_RESOLUTION",
    "complete_cell",
    "select_edges",
    "torch_candidates",
    "vesin_candidates",
]

# Å; distances closer than this are treated as equal when ordering neighbours (then (j, S) decides)
TIE_RESOLUTION = 1e-8
# the candidate searches look a little beyond the cutoff so that |d| == cutoff is never lost to
# round-off; select_edges applies the exact cutoff afterwards
_SEARCH_MARGIN = 1e-6
# elements of one [K, rows, N, 3] block in the brute-force search
_BLOCK_ELEMENTS = 1 << 22


def vesin_candidates(
    positions: np.ndarray, cell: np.ndarray, pbc: np.ndarray, cutoff: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Candidate pairs within ``cutoff`` (plus a small margin) from vesin's cell list.

    Args:
        positions: [n, 3] Å, float64 Cartesian positions (need not be wrapped into the cell).
        cell: [3, 3] Å, cell vectors as rows; rows along non-periodic directions may be zero.
        pbc: [3] bool, periodicity per cell vector.
        cutoff: Å, neighbour cutoff radius.

    Returns:
        ``(i, j, shifts)``: [P] int64 target indices, [P] int64 source indices and [P, 3]
        int64 image offsets of the source. Includes zero-distance pairs of distinct atoms.
    """
    import vesin

    nl = vesin.NeighborList(cutoff=cutoff + _SEARCH_MARGIN, full_list=True)
    i, j, shifts = nl.compute(
        np.ascontiguousarray(positions, dtype=np.float64),
        np.ascontiguousarray(cell, dtype=np.float64),
        [bool(p) for p in pbc],
        quantities="ijS",
    )
    return i.astype(np.int64), j.astype(np.int64), np.asarray(shifts, dtype=np.int64).reshape(-1, 3)


def complete_cell(cell: Tensor, pbc: Tensor) -> Tensor:
    """Fill the non-periodic rows of a cell so that the three rows form a basis.

    The periodic rows are kept; each non-periodic row is replaced by a unit vector orthogonal
    to the periodic rows (and to the other replacements). The result only serves to express
    positions in fractional coordinates along the periodic directions.

    Args:
        cell: [3, 3] Å, cell vectors as rows; periodic rows must be linearly independent.
        pbc: [3] bool, periodicity per cell vector.

    Returns:
        [3, 3] an invertible matrix in cell's dtype and device.
    """
    periodic = [k for k in range(3) if bool(pbc[k])]
    eye = torch.eye(3, dtype=cell.dtype, device=cell.device)
    # Gram-Schmidt over the periodic rows then the Cartesian axes gives an orthonormal set
    # whose last 3 - len(periodic) members complete the periodic rows to a basis
    basis: list[Tensor] = []
    for v in [cell[k] for k in periodic] + list(eye):
        w = v - sum((v @ b) * b for b in basis) if basis else v
        if torch.linalg.norm(w) > 1e-6 * max(float(torch.linalg.norm(v)), 1e-12):
            basis.append(w / torch.linalg.norm(w))
    fillers = iter(basis[len(periodic) : 3])
    rows = [cell[k] if bool(pbc[k]) else next(fillers) for k in range(3)]
    return torch.stack(rows)


def _image_shifts(cell: Tensor, pbc: Tensor, cutoff: float) -> tuple[Tensor, Tensor]:
    """Fractional wrapping basis and the integer image shifts that cover the cutoff.

    For positions wrapped into the cell (fractional coordinates in [0, 1] along periodic
    directions), every pair within ``cutoff`` has ``|S_k| <= floor(cutoff / h_k) + 1``, where
    ``h_k = 1 / |b_k|`` is the spacing of lattice planes and ``b_k`` the reciprocal vectors.

    Returns:
        ``(full, shifts)``: [3, 3] completed cell and [K, 3] int64 shifts.
    """
    full = complete_cell(cell, pbc)
    # reciprocal vectors are the columns of inv(full): full @ inv(full) = I
    spacing = 1.0 / torch.linalg.norm(torch.linalg.inv(full), dim=0)  # [3] Å
    reach = [int(cutoff / float(spacing[k])) + 1 if bool(pbc[k]) else 0 for k in range(3)]
    ranges = [range(-r, r + 1) for r in reach]
    shifts = torch.tensor(list(itertools.product(*ranges)), dtype=torch.int64, device=cell.device)
    return full, shifts


def torch_candidates(
    positions: Tensor, cell: Tensor, pbc: Tensor, cutoff: float
) -> tuple[Tensor, Tensor, Tensor]:
    """Candidate pairs within ``cutoff`` by brute force over periodic images, in torch.

    Positions are wrapped into the cell along periodic directions, every pair (i, j) is tried
    against every image shift that can reach within the cutoff, and the found shifts are mapped
    back to the unwrapped positions: ``S = s + w_i - w_j`` with ``w`` the wrapping offsets.
    Memory is bounded by working on blocks of target atoms. Runs on the positions' device.

    Args:
        positions: [n, 3] Å, Cartesian positions.
        cell: [3, 3] Å, cell vectors as rows; rows along non-periodic directions may be zero.
        pbc: [3] bool, periodicity per cell vector.
        cutoff: Å, neighbour cutoff radius.

    Returns:
        ``(i, j, shifts)``: [P] int64, [P] int64 and [P, 3] int64 tensors on the positions'
        device. Includes zero-distance pairs of distinct atoms, never ``(i, i, 0)``.
    """
    pos = positions.detach().to(torch.float64)
    cell = cell.detach().to(dtype=torch.float64, device=pos.device)
    pbc = pbc.to(device=pos.device, dtype=torch.bool)
    n = pos.shape[0]
    if bool(pbc.any()):
        full, shifts = _image_shifts(cell, pbc, cutoff)
        wrap = torch.where(pbc, torch.floor(pos @ torch.linalg.inv(full)), 0.0)  # [n, 3]
        pos = pos - wrap @ full
    else:
        full = cell
        shifts = torch.zeros((1, 3), dtype=torch.int64, device=pos.device)
        wrap = torch.zeros_like(pos)
    images = shifts.to(torch.float64) @ full  # [K, 3] Å
    reach2 = (cutoff + _SEARCH_MARGIN) ** 2
    rows = max(1, _BLOCK_ELEMENTS // max(1, shifts.shape[0] * n))
    found = [torch.zeros((3, 0), dtype=torch.int64, device=pos.device)]
    for start in range(0, n, rows):
        centre = pos[start : start + rows]  # [r, 3]
        # [K, 1, n, 3] + [K, 1, 1, 3] - [1, r, 1, 3] -> [K, r, n, 3]
        vec = pos[None, None] + images[:, None, None] - centre[None, :, None]
        k, i, j = torch.nonzero((vec * vec).sum(-1) <= reach2, as_tuple=True)
        found.append(torch.stack([k, i + start, j]))
    k, i, j = torch.cat(found, dim=1)
    not_self = (i != j) | (shifts[k] != 0).any(dim=1)
    k, i, j = k[not_self], i[not_self], j[not_self]
    mapped = shifts[k] + (wrap[i] - wrap[j]).round().to(torch.int64)
    return i, j, mapped


def pair_distances(positions: Tensor, cell: Tensor, i: Tensor, j: Tensor, shifts: Tensor) -> Tensor:
    """Float64 lengths ``|positions[j] + shifts @ cell - positions[i]|`` of candidate pairs.

    Args:
        positions: [n, 3] Å, Cartesian positions.
        cell: [3, 3] Å, cell vectors as rows.
        i: [P] int64, target indices.
        j: [P] int64, source indices.
        shifts: [P, 3] int64, image offsets of the sources.

    Returns:
        [P] Å, float64 on the positions' device.
    """
    pos = positions.detach().to(torch.float64)
    cell = cell.detach().to(dtype=torch.float64, device=pos.device)
    vec = pos[j] + shifts.to(torch.float64) @ cell - pos[i]  # [P, 3]
    return torch.linalg.norm(vec, dim=1)


def _stable_order(keys: list[Tensor]) -> Tensor:
    """Permutation sorting by several keys, most significant first (a lexsort)."""
    order = torch.arange(keys[0].shape[0], device=keys[0].device)
    for key in reversed(keys):
        order = order[torch.sort(key[order], stable=True).indices]
    return order


def select_edges(
    i: Tensor,
    j: Tensor,
    shifts: Tensor,
    distances: Tensor,
    num_atoms: int,
    cutoff: float,
    max_neighbors: int | None,
) -> tuple[Tensor, Tensor, Tensor]:
    """Apply the cutoff, order edges and keep the nearest ``max_neighbors`` of each target.

    Kept: ``0 < d <= cutoff``. Order: target ``i``, then distance (to ``TIE_RESOLUTION``), then
    source ``j``, then the shift. Truncation is strict: the first ``max_neighbors`` edges of
    each target in that order.

    Args:
        i: [P] int64, target indices.
        j: [P] int64, source indices.
        shifts: [P, 3] int64, image offsets of the sources.
        distances: [P] Å, float64 edge lengths.
        num_atoms: number of atoms of the system.
        cutoff: Å, neighbour cutoff radius.
        max_neighbors: per-target cap, ``None`` for no cap.

    Returns:
        ``(i, j, shifts)`` of the kept edges, in order.
    """
    keep = (distances > 0) & (distances <= cutoff)
    i, j, shifts, distances = i[keep], j[keep], shifts[keep], distances[keep]
    grid = torch.round(distances / TIE_RESOLUTION).to(torch.int64)
    order = _stable_order([i, grid, j, shifts[:, 0], shifts[:, 1], shifts[:, 2]])
    i, j, shifts = i[order], j[order], shifts[order]
    if max_neighbors is not None:
        counts = torch.bincount(i, minlength=num_atoms)
        starts = torch.cumsum(counts, 0) - counts
        rank = torch.arange(i.shape[0], device=i.device) - starts[i]
        nearest = rank < max_neighbors
        i, j, shifts = i[nearest], j[nearest], shifts[nearest]
    return i, j, shifts
