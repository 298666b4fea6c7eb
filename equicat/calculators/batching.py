"""Taking systems out of a batch and putting batches together (for queues of relaxations).

A batch holds ``B`` systems with ``N`` atoms in total, each system's atoms contiguous. State
dataclasses mark each tensor field with what its leading dimension counts, using
:func:`per_atom`, :func:`per_system` or :func:`static`; :func:`take_fields` and
:func:`cat_fields` then slice or join any such dataclass. Edge tensors hold atom indices and
need re-indexing, which :func:`take_graph`, :func:`cat_graphs` and :func:`take_edges` do.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, TypeVar

import torch
from torch import Tensor

from equicat.data import AtomicGraph

__all__ = [
    "atom_offsets",
    "cat_fields",
    "cat_graphs",
    "per_atom",
    "per_system",
    "segment_max",
    "segment_sum",
    "static",
    "take_edges",
    "take_fields",
    "take_graph",
]

T = TypeVar("T")


def per_atom() -> Any:
    """Field whose leading dimension is the atom (``N``)."""
    return dataclasses.field(metadata={"per": "atom"})


def per_system() -> Any:
    """Field whose leading dimension is the system (``B``)."""
    return dataclasses.field(metadata={"per": "system"})


def static(default: Any = dataclasses.MISSING) -> Any:
    """Field shared by the whole batch (a setting); must agree when batches are joined."""
    return dataclasses.field(default=default, metadata={"per": "static"})


def segment_sum(values: Tensor, batch: Tensor, num_systems: int) -> Tensor:
    """Per-system sum: ``[N, ...] -> [B, ...]``."""
    out = values.new_zeros((num_systems, *values.shape[1:]))
    return out.index_add_(0, batch, values)


def segment_max(values: Tensor, batch: Tensor, num_systems: int) -> Tensor:
    """Per-system maximum of non-negative values: ``[N] -> [B]`` (0 for an empty system)."""
    out = values.new_zeros(num_systems)
    return out.scatter_reduce(0, batch, values, "amax", include_self=True)


def atom_offsets(natoms: Tensor) -> Tensor:
    """``[B] -> [B]`` index of each system's first atom."""
    return torch.cumsum(natoms, 0) - natoms


def take_edges(edge_index: Tensor, atom_keep: Tensor) -> tuple[Tensor, Tensor]:
    """Edges whose target atom is kept, re-indexed to the kept atoms.

    Args:
        edge_index: [2, E] int64 atom indices (both ends in the same system).
        atom_keep: [N] bool.

    Returns:
        ``(new_edge_index [2, E'], edge_keep [E] bool)``.
    """
    new_index = torch.cumsum(atom_keep.long(), 0) - 1  # [N] old -> new atom index
    edge_keep = atom_keep[edge_index[1]]
    return new_index[edge_index[:, edge_keep]], edge_keep


def take_graph(graph: AtomicGraph, keep: Tensor) -> AtomicGraph:
    """The systems of ``graph`` where ``keep`` ([B] bool) is set, in order."""
    atom_keep = keep[graph.batch]
    natoms = graph.natoms[keep]
    edge_index, edge_keep = take_edges(graph.edge_index, atom_keep)
    return AtomicGraph(
        positions=graph.positions[atom_keep],
        atomic_numbers=graph.atomic_numbers[atom_keep],
        cell=graph.cell[keep],
        pbc=graph.pbc[keep],
        batch=torch.repeat_interleave(torch.arange(len(natoms), device=natoms.device), natoms),
        natoms=natoms,
        edge_index=edge_index,
        cell_shifts=graph.cell_shifts[edge_keep],
        fixed=graph.fixed[atom_keep],
        tags=graph.tags[atom_keep],
    )


def cat_graphs(graphs: Sequence[AtomicGraph]) -> AtomicGraph:
    """One graph holding the systems of ``graphs`` in order."""
    shift = torch.cumsum(torch.tensor([0] + [g.num_atoms for g in graphs[:-1]]), 0).tolist()
    sys_shift = torch.cumsum(torch.tensor([0] + [g.num_systems for g in graphs[:-1]]), 0).tolist()

    def cat(name: str) -> Tensor:
        return torch.cat([getattr(g, name) for g in graphs])

    return AtomicGraph(
        positions=cat("positions"),
        atomic_numbers=cat("atomic_numbers"),
        cell=cat("cell"),
        pbc=cat("pbc"),
        batch=torch.cat([g.batch + s for g, s in zip(graphs, sys_shift, strict=True)]),
        natoms=cat("natoms"),
        edge_index=torch.cat([g.edge_index + s for g, s in zip(graphs, shift, strict=True)], 1),
        cell_shifts=cat("cell_shifts"),
        fixed=cat("fixed"),
        tags=cat("tags"),
    )


def take_fields(obj: T, atom_keep: Tensor, keep: Tensor) -> T:
    """Slice a state dataclass: per-atom fields by ``atom_keep``, per-system by ``keep``."""
    changes = {}
    for f in dataclasses.fields(obj):  # type: ignore[arg-type]
        kind = f.metadata.get("per")
        if kind == "atom":
            changes[f.name] = getattr(obj, f.name)[atom_keep]
        elif kind == "system":
            changes[f.name] = getattr(obj, f.name)[keep]
    return dataclasses.replace(obj, **changes)  # type: ignore[type-var]


def cat_fields(objs: Sequence[T]) -> T:
    """Join state dataclasses of one type: per-atom and per-system fields concatenated."""
    first = objs[0]
    changes = {}
    for f in dataclasses.fields(first):  # type: ignore[arg-type]
        kind = f.metadata.get("per")
        values = [getattr(o, f.name) for o in objs]
        if kind in ("atom", "system"):
            changes[f.name] = torch.cat(values)
        elif kind == "static" and any(v != values[0] for v in values[1:]):
            raise ValueError(
                f"cannot join batches with different {type(first).__name__}.{f.name}: "
                f"{values}; use one setting for all systems of a queue"
            )
    return dataclasses.replace(first, **changes)  # type: ignore[type-var]
