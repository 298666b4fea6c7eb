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

With cell relaxation (``relax_cell=True``, :mod:`equicat.relax.cell`) the optimizer's
variables are the *degrees of freedom* (dofs): the ``N`` atoms in each system's reference frame
followed by three cell rows per system (``[N + 3B, 3]``, see :func:`join`), and forces,
steps, the ``maxstep`` cap and ``max_force`` are over all of a system's dof rows, as ASE's
optimizers see a ``FrechetCellFilter``. Without it the dofs are the atoms (``[N, 3]``).
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
from equicat.relax.cell import CellFilter, atom_forces, cell_forces, moved_cell, new_cell_filter
from equicat.relax.neighbors import NeighborList
from equicat.relax.potential import Potential, evaluate_with_stress

__all__ = [
    "RelaxState",
    "advance",
    "cap_displacement",
    "cat_states",
    "join",
    "new_state",
    "split",
    "take_state",
]


def join(atom: Tensor, cell: Tensor) -> Tensor:
    """Dof layout: ``[N, ...]`` and ``[B, K, ...]`` -> ``[N + B K, ...]`` (atoms first)."""
    return torch.cat([atom, cell.reshape(-1, *cell.shape[2:])])


def split(x: Tensor, n: int, b: int) -> tuple[Tensor, Tensor]:
    """Inverse of :func:`join`: ``[N + B K, ...]`` -> ``([N, ...], [B, K, ...])``."""
    k = (x.shape[0] - n) // max(b, 1)
    return x[:n], x[n:].reshape(b, k, *x.shape[1:])


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
    # [B, K, 3] eV, generalized forces -dH/dX on the cell rows (K = 3 with cell relaxation,
    # else K = 0)
    cell_forces: Tensor = per_system()
    # optimizer memory (FireMemory, LbfgsMemory)
    memory: Any = None
    # the Verlet neighbour list, None when the potential needs no edges
    neighbors: NeighborList | None = None
    # the cell degrees of freedom, None without cell relaxation
    cell_filter: CellFilter | None = None

    @property
    def active(self) -> Tensor:
        """[B] bool, systems that still move: not converged and ``steps < max_steps``."""
        return ~self.converged & (self.steps < self.max_steps)

    @property
    def num_systems(self) -> int:
        """B."""
        return self.graph.num_systems

    @property
    def dof_batch(self) -> Tensor:
        """[N + B K] int64, the system of each dof row."""
        b, k = self.num_systems, self.cell_forces.shape[1]
        cell = torch.arange(b, device=self.graph.batch.device).repeat_interleave(k)
        return torch.cat([self.graph.batch, cell])

    @property
    def dof_forces(self) -> Tensor:
        """[N + B K, 3], the generalized forces (the forces without cell relaxation)."""
        if self.cell_filter is None:
            return self.forces
        return join(atom_forces(self.cell_filter, self.forces, self.graph.batch), self.cell_forces)

    @property
    def dof_positions(self) -> Tensor:
        """[N + B K, 3], positions in the reference frame ``u = F^-1 r``, then ``X``."""
        if self.cell_filter is None:
            return self.graph.positions
        f_mat = self.cell_filter.deformation()[self.graph.batch]  # [N, 3, 3]
        u = torch.linalg.solve(f_mat, self.graph.positions[:, :, None])[:, :, 0]
        return join(u, self.cell_filter.log_deformation)


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
    relax_cell: bool = False,
    pressure: float | Tensor = 0.0,
    exp_cell_factor: float | Tensor | None = None,
) -> RelaxState:
    """Evaluate ``graph`` and wrap it as a state (the common part of every ``init``).

    ``relax_cell``, ``pressure`` (eV/Å^3) and ``exp_cell_factor`` (default: atoms per system)
    set up cell relaxation (:mod:`equicat.relax.cell`); it needs periodic systems and a
    potential with stress (a conservative model or an ASE calculator).
    """
    graph = graph.to(device=potential.device, dtype=potential.dtype)
    graph = dataclasses.replace(graph, positions=graph.positions.detach())
    neighbors = None
    if potential.cutoff is not None:
        neighbors = NeighborList.build(graph, potential.cutoff, potential.max_neighbors, skin)
        graph = neighbors.select(graph)
    b = graph.num_systems
    filt = None
    if relax_cell:
        _check_periodic(graph)
        energy, forces, stress = evaluate_with_stress(potential, graph)
        factor = None if exp_cell_factor is None else _per_system(exp_cell_factor, b, energy)
        p = _per_system(pressure, b, energy)
        filt = new_cell_filter(graph.cell, stress, graph.natoms, factor, p)
    else:
        energy, forces = potential(graph)
    forces = torch.where(graph.fixed[:, None], torch.zeros_like(forces), forces)
    cell_f = forces.new_zeros((b, 0, 3))
    if filt is not None:
        cell_f = cell_forces(filt, graph.cell)
    max_force = _max_force(forces, cell_f, graph.batch, filt)
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
        cell_forces=cell_f,
        memory=memory,
        neighbors=neighbors,
        cell_filter=filt,
    )


def _check_periodic(graph: AtomicGraph) -> None:
    bad = torch.nonzero(~graph.pbc.all(dim=1))[:, 0].tolist()
    if bad:
        raise ValueError(
            f"cell relaxation needs periodic systems (pbc on all three cell vectors); system "
            f"{bad[0]} is not. Set atoms.pbc = True with a cell, or relax positions only"
        )


def _max_force(forces: Tensor, cell_f: Tensor, batch: Tensor, filt: CellFilter | None) -> Tensor:
    """[B] the largest generalized force of each system (atoms, and cell rows if any)."""
    b = cell_f.shape[0]
    if filt is None:
        return segment_max(forces.norm(dim=1), batch, b)
    atom = atom_forces(filt, forces, batch)
    return torch.maximum(segment_max(atom.norm(dim=1), batch, b), cell_f.norm(dim=2).amax(1))


def cap_displacement(dr: Tensor, batch: Tensor, maxstep: Tensor) -> Tensor:
    """Scale each system's ``dr`` ``[N, 3]`` so that ``max_i |dr_i| <= maxstep_b`` (``[B]``)."""
    longest = segment_max(dr.norm(dim=1), batch, maxstep.shape[0])  # [B] Å
    scale = torch.where(
        longest > maxstep, maxstep / longest.clamp_min(torch.finfo(dr.dtype).tiny), 1.0
    )
    return dr * scale[batch, None]


def _evaluate(
    potential: Potential, graph: AtomicGraph, moving: Tensor, old: tuple[Tensor, ...]
) -> tuple[Tensor, ...]:
    """Energies, forces (and stress if ``old`` has it) of the moving systems.

    ``old`` = ``(energy [B], forces [N, 3][, stress [B, 3, 3]])`` is kept for the others.
    """
    stress = len(old) == 3

    def call(g: AtomicGraph) -> tuple[Tensor, ...]:
        return evaluate_with_stress(potential, g) if stress else potential(g)

    if bool(moving.all()):
        return call(graph)
    if not bool(moving.any()):
        return old
    sub = call(take_graph(graph, moving))
    out = tuple(t.clone() for t in old)
    atom_moving = moving[graph.batch]
    for k, (o, n) in enumerate(zip(out, sub, strict=True)):
        o[atom_moving if k == 1 else moving] = n
    return out


def _moved_graph(state: RelaxState, dr: Tensor) -> tuple[AtomicGraph, CellFilter | None]:
    """The graph (and cell filter) after a capped, masked dof step ``dr`` ``[N + B K, 3]``."""
    graph, filt = state.graph, state.cell_filter
    n, b = graph.num_atoms, graph.num_systems
    if filt is None:
        return graph.with_positions(graph.positions + dr), None
    dr_atom, dr_cell = split(dr, n, b)
    u = split(state.dof_positions, n, b)[0] + dr_atom  # [N, 3] reference frame
    active = state.active
    filt_new, cell = moved_cell(filt, torch.where(active[:, None, None], dr_cell, 0.0))
    f_mat = filt_new.deformation()[graph.batch]  # [N, 3, 3]
    pos = torch.bmm(f_mat, u[:, :, None])[:, :, 0]  # r = F u
    pos = torch.where(active[graph.batch, None], pos, graph.positions)
    cell = torch.where(active[:, None, None], cell, graph.cell)
    return graph.with_positions(pos, cell), filt_new


def advance(state: RelaxState, potential: Potential, dr: Tensor) -> RelaxState:
    """Move the active systems by the dof step ``dr`` and re-evaluate (steps 1-5 above)."""
    graph, active, filt = state.graph, state.active, state.cell_filter
    b = graph.num_systems
    k = state.cell_forces.shape[1]
    moving_dof = join(active[graph.batch] & ~graph.fixed, active[:, None].expand(b, k))
    dr = torch.where(moving_dof[:, None], dr, torch.zeros_like(dr))
    dr = cap_displacement(dr, state.dof_batch, state.maxstep)
    graph, filt = _moved_graph(state, dr)
    neighbors = state.neighbors
    if neighbors is not None:
        neighbors = neighbors.update(graph)
        graph = neighbors.select(graph)
    old = (state.energy, state.forces)
    if filt is not None:
        old = (*old, filt.stress)
    energy, forces, *stress = _evaluate(potential, graph, active, old)
    forces = torch.where(graph.fixed[:, None], torch.zeros_like(forces), forces)
    cell_f = state.cell_forces
    if filt is not None:
        filt = dataclasses.replace(filt, stress=stress[0])
        cell_f = cell_forces(filt, graph.cell)
    max_force = _max_force(forces, cell_f, graph.batch, filt)
    return dataclasses.replace(
        state,
        graph=graph,
        energy=energy,
        forces=forces,
        max_force=max_force,
        converged=state.converged | (active & (max_force < state.fmax)),
        steps=state.steps + active.long(),
        cell_forces=cell_f,
        neighbors=neighbors,
        cell_filter=filt,
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
        cell_filter=None
        if state.cell_filter is None
        else take_fields(state.cell_filter, atom_keep, keep),
    )


def cat_states(states: Sequence[RelaxState]) -> RelaxState:
    """One state holding the systems of ``states`` in order (same optimizer and settings)."""
    if len({type(s.memory) for s in states}) > 1:
        raise ValueError("cannot join states of different optimizers")
    if len({s.cell_filter is None for s in states}) > 1:
        raise ValueError("cannot join states with and without cell relaxation")
    out = cat_fields(states)
    lists = [s.neighbors for s in states]
    return dataclasses.replace(
        out,
        graph=cat_graphs([s.graph for s in states]),
        memory=cat_fields([s.memory for s in states]),
        neighbors=None if lists[0] is None else NeighborList.cat(lists),  # type: ignore[arg-type]
        cell_filter=None
        if states[0].cell_filter is None
        else cat_fields([s.cell_filter for s in states]),
    )
