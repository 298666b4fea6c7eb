"""FIRE, the Fast Inertial Relaxation Engine (Bitzek et al., PRL 97, 170201, 2006), batched.

Molecular dynamics with unit masses, steered downhill. For each system ``b`` separately, with
forces ``F`` and velocities ``v`` over its atoms (``[n_b, 3]`` flattened to vectors), a step
is:

1. ``P = F . v``. If ``P > 0`` (downhill): mix ``v <- (1 - a) v + a |v| F / |F|``; if more
   than ``n_min`` steps have passed since the last uphill step, ``dt <- min(dt f_inc, dt_max)``
   and ``a <- a f_alpha``. If ``P <= 0`` (uphill): ``v <- 0``, ``dt <- dt f_dec``,
   ``a <- a_start``. (At the start ``v = 0``: neither.)
2. MD step (semi-implicit Euler, mass 1): ``v <- v + dt F``, ``dr = dt v``.
3. ``dr`` is capped to ``maxstep`` per atom and applied (:func:`equicat.relax.state.advance`).

Time is in units where a unit mass moves ``dt^2 F`` Å under a force ``F`` in eV/Å; the
defaults (``dt = 0.1``, ``dt_max = 1.0``, ``n_min = 5``, ``f_inc = 1.1``, ``f_dec = 0.5``,
``a_start = 0.1``, ``f_alpha = 0.99``) are the paper's recommended values in those units.
With cell relaxation the vectors are a system's dof rows (atoms and cell, see
:mod:`equicat.relax.state`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
from torch import Tensor

from equicat.data import AtomicGraph
from equicat.relax.batching import per_atom, per_system, segment_sum, static
from equicat.relax.potential import Potential
from equicat.relax.state import RelaxState, advance, join, new_state, split

__all__ = ["FireMemory", "fire_init", "fire_step"]


@dataclass
class FireMemory:
    """FIRE's per-system dynamics."""

    # [N, 3] Å per time unit, velocities
    velocity: Tensor = per_atom()
    # [B, K, 3] velocities of the cell rows (K = 3 with cell relaxation, else 0)
    cell_velocity: Tensor = per_system()
    # [B] time step
    dt: Tensor = per_system()
    # [B] mixing weight a of the velocity with the force direction
    alpha: Tensor = per_system()
    # [B] int64, downhill steps since the last uphill step
    downhill_steps: Tensor = per_system()
    dt_max: float = static(1.0)
    n_min: int = static(5)
    f_inc: float = static(1.1)
    f_dec: float = static(0.5)
    alpha_start: float = static(0.1)
    f_alpha: float = static(0.99)


def fire_init(
    graph: AtomicGraph,
    potential: Potential,
    *,
    fmax: float | Tensor = 0.02,
    max_steps: int | Tensor = 300,
    maxstep: float | Tensor = 0.2,
    dt: float = 0.1,
    dt_max: float = 1.0,
    n_min: int = 5,
    f_inc: float = 1.1,
    f_dec: float = 0.5,
    alpha_start: float = 0.1,
    f_alpha: float = 0.99,
    skin: float = 1.0,
    relax_cell: bool = False,
    pressure: float | Tensor = 0.0,
    exp_cell_factor: float | Tensor | None = None,
) -> RelaxState:
    """Evaluate the systems of ``graph`` and start FIRE at rest.

    Args:
        graph: the systems (positions Å, ``fixed`` atoms never move).
        potential: energies and forces (see :mod:`equicat.relax.potential`).
        fmax: eV/Å, convergence threshold on the largest force on a free atom (or ``[B]``).
        max_steps: steps after which a system stops unconverged (or ``[B]``).
        maxstep: Å, largest displacement of an atom in one step (or ``[B]``).
        dt: initial time step.
        dt_max: largest time step.
        n_min: downhill steps before the time step may grow.
        f_inc: time-step growth factor.
        f_dec: time-step shrink factor after an uphill step.
        alpha_start: initial (and reset) mixing weight.
        f_alpha: mixing-weight decay factor.
        skin: Å, Verlet skin of the neighbour list (see :mod:`equicat.relax.neighbors`).
        relax_cell: relax the cells too (:mod:`equicat.relax.cell`; needs stress).
        pressure: eV/Å^3, external pressure of the cell relaxation (or ``[B]``).
        exp_cell_factor: scale ``c`` of the cell dofs (default: atoms per system).
    """
    n, b = graph.num_atoms, graph.num_systems
    k = 3 if relax_cell else 0
    dtype, device = potential.dtype, potential.device
    memory = FireMemory(
        velocity=torch.zeros((n, 3), dtype=dtype, device=device),
        cell_velocity=torch.zeros((b, k, 3), dtype=dtype, device=device),
        dt=torch.full((b,), dt, dtype=dtype, device=device),
        alpha=torch.full((b,), alpha_start, dtype=dtype, device=device),
        downhill_steps=torch.zeros(b, dtype=torch.int64, device=device),
        dt_max=dt_max,
        n_min=n_min,
        f_inc=f_inc,
        f_dec=f_dec,
        alpha_start=alpha_start,
        f_alpha=f_alpha,
    )
    return new_state(
        graph, potential, memory, fmax=fmax, max_steps=max_steps, maxstep=maxstep, skin=skin,
        relax_cell=relax_cell, pressure=pressure, exp_cell_factor=exp_cell_factor,
    )  # fmt: skip


def fire_step(state: RelaxState, potential: Potential) -> RelaxState:
    """One FIRE step of every active system (equations in the module docstring)."""
    mem: FireMemory = state.memory
    n, b = state.graph.num_atoms, state.num_systems
    batch = state.dof_batch  # [N + B K]
    f, v = state.dof_forces, join(mem.velocity, mem.cell_velocity)
    power = segment_sum((f * v).sum(1), batch, b)  # [B] P = F . v
    v_norm = segment_sum((v * v).sum(1), batch, b).sqrt()
    f_norm = segment_sum((f * f).sum(1), batch, b).sqrt()
    moving = v_norm > 0
    downhill, uphill = moving & (power > 0), moving & (power <= 0)
    mix = mem.alpha[batch, None]
    f_hat = f / f_norm.clamp_min(torch.finfo(f.dtype).tiny)[batch, None]
    mixed = (1 - mix) * v + mix * v_norm[batch, None] * f_hat
    v = torch.where(downhill[batch, None], mixed, v)
    v = torch.where(uphill[batch, None], torch.zeros_like(v), v)
    speed_up = downhill & (mem.downhill_steps > mem.n_min)
    dt = torch.where(speed_up, (mem.dt * mem.f_inc).clamp_max(mem.dt_max), mem.dt)
    dt = torch.where(uphill, mem.dt * mem.f_dec, dt)
    alpha = torch.where(speed_up, mem.alpha * mem.f_alpha, mem.alpha)
    alpha = torch.where(uphill, torch.full_like(alpha, mem.alpha_start), alpha)
    count = torch.where(uphill, 0, mem.downhill_steps + downhill.long())
    v = v + dt[batch, None] * f  # MD: unit masses
    active = state.active
    new = advance(state, potential, dt[batch, None] * v)
    v_atom, v_cell = split(v, n, b)
    memory = dataclasses.replace(
        mem,
        velocity=torch.where(active[state.graph.batch, None], v_atom, mem.velocity),
        cell_velocity=torch.where(active[:, None, None], v_cell, mem.cell_velocity),
        dt=torch.where(active, dt, mem.dt),
        alpha=torch.where(active, alpha, mem.alpha),
        downhill_steps=torch.where(active, count, mem.downhill_steps),
    )
    return dataclasses.replace(new, memory=memory)
