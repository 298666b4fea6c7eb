"""Limited-memory BFGS without line search, batched.

After Nocedal & Wright, Numerical Optimization, 2nd ed., Algorithms 7.4 and 7.5.

For each system ``b`` separately, with gradient ``g = -F`` (``[n_b, 3]`` flattened) and the
``m <= memory`` most recent pairs ``s_k = r_{k+1} - r_k``, ``y_k = g_{k+1} - g_k``,
``rho_k = 1 / (y_k . s_k)``, the two-loop recursion computes ``z = H g``:

    q = g
    for k = newest .. oldest:  a_k = rho_k s_k . q;   q <- q - a_k y_k
    z = H0 q,  with H0 = 1 / alpha  (a fixed initial inverse Hessian, Å^2/eV)
    for k = oldest .. newest:  c = rho_k y_k . z;     z <- z + s_k (a_k - c)

The step is ``dr = -damping z``, capped so that no atom moves more than ``maxstep``
(:func:`equicat.relax.state.advance`), and accepted without a line search (as in ASE's and
fairchem's relaxations; a line search costs extra force calls per step). A pair is stored only
when ``y_k . s_k > min_curvature`` (default 0: the curvature condition), so ``H`` stays
positive definite and ``-H g`` points downhill; the oldest pair is dropped once ``memory`` are
stored. ``min_curvature = -inf`` stores every pair, as
``ase.optimize.LBFGS`` does: on rough energy surfaces (an untrained model, a start far from a
minimum) a negative-curvature pair makes ``H`` indefinite and the steps can wander uphill for
hundreds of steps where the default converges. Defaults follow OC20 practice:
``maxstep = 0.04`` Å, ``memory = 50``, ``damping = 1``, ``alpha = 70`` eV/Å^2.
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

__all__ = ["LbfgsMemory", "lbfgs_direction", "lbfgs_init", "lbfgs_step"]


@dataclass
class LbfgsMemory:
    """Curvature pairs of each system, newest first; unused slots are zero."""

    # [N, M, 3] Å, position differences s_k
    s: Tensor = per_atom()
    # [N, M, 3] eV/Å, gradient differences y_k
    y: Tensor = per_atom()
    # [B, K, M, 3], s_k of the cell rows (K = 3 with cell relaxation, else 0)
    cell_s: Tensor = per_system()
    # [B, K, M, 3], y_k of the cell rows
    cell_y: Tensor = per_system()
    # [B, M] 1/eV, rho_k = 1 / (y_k . s_k), zero for unused slots
    rho: Tensor = per_system()
    # [B] int64, stored pairs
    count: Tensor = per_system()
    # eV/Å^2, H0 = 1 / alpha
    alpha: float = static(70.0)
    # scale of the step -H g
    damping: float = static(1.0)
    # eV, pairs with y . s <= min_curvature are not stored
    min_curvature: float = static(0.0)


def lbfgs_init(
    graph: AtomicGraph,
    potential: Potential,
    *,
    fmax: float | Tensor = 0.02,
    max_steps: int | Tensor = 300,
    maxstep: float | Tensor = 0.04,
    memory: int = 50,
    damping: float = 1.0,
    alpha: float = 70.0,
    min_curvature: float = 0.0,
    skin: float = 1.0,
    relax_cell: bool = False,
    pressure: float | Tensor = 0.0,
    exp_cell_factor: float | Tensor | None = None,
) -> RelaxState:
    """Evaluate the systems of ``graph`` and start L-BFGS with an empty memory.

    Args:
        graph: the systems (positions Å, ``fixed`` atoms never move).
        potential: energies and forces (see :mod:`equicat.relax.potential`).
        fmax: eV/Å, convergence threshold on the largest force on a free atom (or ``[B]``).
        max_steps: steps after which a system stops unconverged (or ``[B]``).
        maxstep: Å, largest displacement of an atom in one step (or ``[B]``).
        memory: curvature pairs kept per system.
        damping: factor on the quasi-Newton step.
        alpha: eV/Å^2, the initial Hessian is ``alpha`` times the identity.
        min_curvature: eV, store a pair only if ``y . s`` exceeds this (``-inf``: every pair,
            like ase's LBFGS; see the module docstring).
        skin: Å, Verlet skin of the neighbour list (see :mod:`equicat.relax.neighbors`).
        relax_cell: relax the cells too (:mod:`equicat.relax.cell`; needs stress).
        pressure: eV/Å^3, external pressure of the cell relaxation (or ``[B]``).
        exp_cell_factor: scale ``c`` of the cell dofs (default: atoms per system).
    """
    if memory < 1:
        raise ValueError(f"memory must be >= 1, got {memory}")
    if alpha <= 0:
        raise ValueError(f"alpha must be positive, got {alpha}")
    n, b = graph.num_atoms, graph.num_systems
    k = 3 if relax_cell else 0
    dtype, device = potential.dtype, potential.device
    mem = LbfgsMemory(
        s=torch.zeros((n, memory, 3), dtype=dtype, device=device),
        y=torch.zeros((n, memory, 3), dtype=dtype, device=device),
        cell_s=torch.zeros((b, k, memory, 3), dtype=dtype, device=device),
        cell_y=torch.zeros((b, k, memory, 3), dtype=dtype, device=device),
        rho=torch.zeros((b, memory), dtype=dtype, device=device),
        count=torch.zeros(b, dtype=torch.int64, device=device),
        alpha=alpha,
        damping=damping,
        min_curvature=min_curvature,
    )
    return new_state(
        graph, potential, mem, fmax=fmax, max_steps=max_steps, maxstep=maxstep, skin=skin,
        relax_cell=relax_cell, pressure=pressure, exp_cell_factor=exp_cell_factor,
    )  # fmt: skip


def lbfgs_direction(mem: LbfgsMemory, grad: Tensor, batch: Tensor) -> Tensor:
    """``z = H g`` ``[D, 3]`` by the two-loop recursion, each system with its own pairs.

    ``grad`` and ``batch`` are in the dof layout (``[N + B K, 3]``, ``[N + B K]``).
    """
    b = mem.rho.shape[0]
    used = int(mem.count.max()) if b else 0
    s_all, y_all = join(mem.s, mem.cell_s), join(mem.y, mem.cell_y)  # [D, M, 3]
    q = grad
    a = []
    for k in range(used):  # newest first; unused slots have s = y = rho = 0
        a_k = mem.rho[:, k] * segment_sum((s_all[:, k] * q).sum(1), batch, b)  # [B]
        q = q - a_k[batch, None] * y_all[:, k]
        a.append(a_k)
    z = q / mem.alpha
    for k in reversed(range(used)):
        c = mem.rho[:, k] * segment_sum((y_all[:, k] * z).sum(1), batch, b)
        z = z + (a[k] - c)[batch, None] * s_all[:, k]
    return z


def lbfgs_step(state: RelaxState, potential: Potential) -> RelaxState:
    """One L-BFGS step of every active system (equations in the module docstring)."""
    mem: LbfgsMemory = state.memory
    n, b = state.graph.num_atoms, state.num_systems
    batch = state.dof_batch  # [D = N + B K]
    z = lbfgs_direction(mem, -state.dof_forces, batch)
    new = advance(state, potential, -mem.damping * z)
    s = new.dof_positions - state.dof_positions  # [D, 3], zero where nothing moved
    y = state.dof_forces - new.dof_forces  # g_new - g_old
    sy = segment_sum((s * y).sum(1), batch, b)  # [B] eV
    push = state.active & (sy > mem.min_curvature) & (sy != 0)  # s = 0: nothing moved
    push_dof = push[batch, None, None]
    s_old, y_old = join(mem.s, mem.cell_s), join(mem.y, mem.cell_y)  # [D, M, 3]
    # [D, M, 3]: the new pair in slot 0, the others one slot older, the oldest dropped
    s_hist = torch.where(push_dof, torch.cat([s[:, None], s_old[:, :-1]], 1), s_old)
    y_hist = torch.where(push_dof, torch.cat([y[:, None], y_old[:, :-1]], 1), y_old)
    s_atom, s_cell = split(s_hist, n, b)
    y_atom, y_cell = split(y_hist, n, b)
    rho_new = 1.0 / torch.where(push, sy, torch.ones_like(sy))
    rho = torch.where(push[:, None], torch.cat([rho_new[:, None], mem.rho[:, :-1]], 1), mem.rho)
    memory = dataclasses.replace(
        mem,
        s=s_atom,
        y=y_atom,
        cell_s=s_cell,
        cell_y=y_cell,
        rho=rho,
        count=torch.where(push, (mem.count + 1).clamp_max(mem.rho.shape[1]), mem.count),
    )
    return dataclasses.replace(new, memory=memory)
