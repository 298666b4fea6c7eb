"""The state of a batch of relaxations and the parts every optimizer step shares.

An optimizer is a pair of pure functions ``init(graph, potential, ...) -> RelaxState`` and
``step(state, potential) -> RelaxState`` (see :mod:`equicat.relax.fire` and
:mod:`equicat.relax.lbfgs`). Each step proposes a displacement ``dr`` ``[N, 3]``;
:func:`advance` then applies what all optimizers share:

1. ``dr`` is zeroed on fixed atoms and on systems that are done (converged, or out of steps);
2. each system's ``dr`` is scaled by ``min(1, maxstep_b / max_i |dr_i|)`` so that no atom moves
   more than ``maxstep_b`` (Å) in one step, the direction kept;
3. the neighbour list is updated (:class:`~equicat.relax.neighbors.NeighborList`);
4. energies and forces are evaluated for the moving systems only; forces on fixed atoms are
   set to zero (as ASE's ``FixAtoms`` does);
5. ``steps`` grows by one for each moving system, and a system is converged once
   ``max_force_b = max over free atoms |F_i| < fmax_b``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from equicat.data import AtomicGraph
from equicat.relax.batching import (
    cat_fields,
    cat_graphs,
    per_atom,
    per_system,
    segment_max,
    take_fields,
    take_graph,
)
from equicat.relax.neighbors import NeighborList
from equicat.relax.potential import Potential

__all__ = ["RelaxState", "advance", "cap_displacement", "cat_states", "new_state", "take_state"]


@dataclass
class RelaxState:
    """A batch of ``B`` systems under relaxation (``N`` atoms in all).

    ``memory`` is the optimizer's own state (a dataclass of per-atom / per-system tensors, see
    :mod:`equicat.relax.batching`); ``neighbors`` is ``None`` for potentials without edges.
    """

    # the systems: current positions [N, 3] Å, and the potential's edges at those positions
    graph: AtomicGraph
    # [B] eV, energy at the current positions
    energy: Tensor = per_system()
    # [N, 3] eV/Å, forces at the current positions, zero on fixed atoms
    forces: Tensor = per_atom()
    # [B] eV/Å, max_i |F_i| over the free atoms
    max_force: Tensor = per_system()
    # [B] bool, max_force < fmax was reached (the system no longer moves)
    converged: Tensor = per_system()
    # [B] int64, optimizer steps taken (position updates)
    steps: Tensor = per_system()
    # [B] eV/Å, convergence threshold on max_force
    fmax: Tensor = per_system()
    # [B] int64, steps after which an unconverged system stops
    max_steps: Tensor = per_system()
    # [B] Å, largest displacement of any atom in one step
    maxstep: Tensor = per_system()
    # optimizer memory (FireMemory, LbfgsMemory)
    memory: Any = None
    # the Verlet neighbour list, None when the potential needs no edges
    neighbors: NeighborList | None = None

    @property
    def active(self) -> Tensor:
        """[B] bool, systems that still move: not converged and ``steps < max_steps``."""
        return ~self.converged & (self.steps < self.max_steps)

    @property
    def num_systems(self) -> int:
        """B."""
        return self.graph.num_systems


def _per_system(value: float | Sequence[float] | Tensor, b: int, like: Tensor) -> Tensor:
    """A scalar or ``[B]`` setting as a ``[B]`` tensor like ``like``."""
    out = torch.as_tensor(value, dtype=like.dtype, device=like.device)
    if out.ndim == 0:
        return out.expand(b).clone()
    if out.shape != (b,):
        raise ValueError(f"a per-system setting needs one value or {b} values, got {out.shape}")
    return out.clone()


def new_state(
    graph: AtomicGraph,
    potential: Potential,
    memory: Any,
    *,
    fmax: float | Tensor,
    max_steps: int | Tensor,
    maxstep: float | Tensor,
    skin: float,
) -> RelaxState:
    """Evaluate ``graph`` and wrap it as a state (the common part of every ``init``)."""
    graph = graph.to(device=potential.device, dtype=potential.dtype)
    graph = dataclasses.replace(graph, positions=graph.positions.detach())
    neighbors = None
    if potential.cutoff is not None:
        neighbors = NeighborList.build(graph, potential.cutoff, potential.max_neighbors, skin)
        graph = neighbors.select(graph)
    b = graph.num_systems
    energy, forces = potential(graph)
    forces = torch.where(graph.fixed[:, None], torch.zeros_like(forces), forces)
    max_force = segment_max(forces.norm(dim=1), graph.batch, b)
    fmax_b = _per_system(fmax, b, max_force)
    for name, value in (("fmax", fmax_b), ("maxstep", _per_system(maxstep, b, max_force))):
        if bool((value <= 0).any()):
            raise ValueError(f"{name} must be positive, got {value.tolist()}")
    return RelaxState(
        graph=graph,
        energy=energy,
        forces=forces,
        max_force=max_force,
        converged=max_force < fmax_b,
        steps=torch.zeros_like(graph.natoms),
        fmax=fmax_b,
        max_steps=_per_system(max_steps, b, graph.natoms),
        maxstep=_per_system(maxstep, b, max_force),
        memory=memory,
        neighbors=neighbors,
    )


def cap_displacement(dr: Tensor, batch: Tensor, maxstep: Tensor) -> Tensor:
    """Scale each system's ``dr`` ``[N, 3]`` so that ``max_i |dr_i| <= maxstep_b`` (``[B]``)."""
    longest = segment_max(dr.norm(dim=1), batch, maxstep.shape[0])  # [B] Å
    scale = torch.where(
        longest > maxstep, maxstep / longest.clamp_min(torch.finfo(dr.dtype).tiny), 1.0
    )
    return dr * scale[batch, None]


def _evaluate(
    potential: Potential, graph: AtomicGraph, moving: Tensor, energy: Tensor, forces: Tensor
) -> tuple[Tensor, Tensor]:
    """Energies and forces of the moving systems; the others keep ``energy`` and ``forces``."""
    if bool(moving.all()):
        return potential(graph)
    if not bool(moving.any()):
        return energy, forces
    e_sub, f_sub = potential(take_graph(graph, moving))
    energy, forces = energy.clone(), forces.clone()
    energy[moving] = e_sub
    forces[moving[graph.batch]] = f_sub
    return energy, forces


def advance(state: RelaxState, potential: Potential, dr: Tensor) -> RelaxState:
    """Move the active systems by ``dr`` ``[N, 3]`` Å and re-evaluate (steps 1-5 above)."""
    graph, active = state.graph, state.active
    moving_atom = active[graph.batch] & ~graph.fixed
    dr = torch.where(moving_atom[:, None], dr, torch.zeros_like(dr))
    dr = cap_displacement(dr, graph.batch, state.maxstep)
    graph = graph.with_positions(graph.positions + dr)
    neighbors = state.neighbors
    if neighbors is not None:
        neighbors = neighbors.update(graph)
        graph = neighbors.select(graph)
    energy, forces = _evaluate(potential, graph, active, state.energy, state.forces)
    forces = torch.where(graph.fixed[:, None], torch.zeros_like(forces), forces)
    max_force = segment_max(forces.norm(dim=1), graph.batch, graph.num_systems)
    return dataclasses.replace(
        state,
        graph=graph,
        energy=energy,
        forces=forces,
        max_force=max_force,
        converged=state.converged | (active & (max_force < state.fmax)),
        steps=state.steps + active.long(),
        neighbors=neighbors,
    )


def take_state(state: RelaxState, keep: Tensor) -> RelaxState:
    """The systems where ``keep`` ([B] bool) is set, with their optimizer memory."""
    atom_keep = keep[state.graph.batch]
    out = take_fields(state, atom_keep, keep)
    return dataclasses.replace(
        out,
        graph=take_graph(state.graph, keep),
        memory=take_fields(state.memory, atom_keep, keep),
        neighbors=None if state.neighbors is None else state.neighbors.take(atom_keep, keep),
    )


def cat_states(states: Sequence[RelaxState]) -> RelaxState:
    """One state holding the systems of ``states`` in order (same optimizer and settings)."""
    if len({type(s.memory) for s in states}) > 1:
        raise ValueError("cannot join states of different optimizers")
    out = cat_fields(states)
    lists = [s.neighbors for s in states]
    return dataclasses.replace(
        out,
        graph=cat_graphs([s.graph for s in states]),
        memory=cat_fields([s.memory for s in states]),
        neighbors=None if lists[0] is None else NeighborList.cat(lists),  # type: ignore[arg-type]
    )
