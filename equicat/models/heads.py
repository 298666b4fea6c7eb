"""Heads shared by all equicat models: conservative forces and stress by autograd."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING

import torch
from torch import Tensor

if TYPE_CHECKING:
    from equicat.data import AtomicGraph


__all__ = ["conservative_outputs", "energy_only", "energy_only_enabled"]

_ENERGY_ONLY: ContextVar[bool] = ContextVar("equicat_energy_only", default=False)


@contextmanager
def energy_only() -> Iterator[None]:
    """Within this block conservative models return ``{"energy": [B]}`` alone.

    Training on energy labels alone (QM9) needs no ``-dE/dr``: skipping it saves the
    gradient with respect to positions in the forward pass and, in training, the
    double-backward through it. Models with direct force heads are unaffected (their forces
    cost one small head and are simply not used).
    """
    token = _ENERGY_ONLY.set(True)
    try:
        yield
    finally:
        _ENERGY_ONLY.reset(token)


def energy_only_enabled() -> bool:
    """Whether the caller is inside :func:`energy_only`."""
    return _ENERGY_ONLY.get()


def conservative_outputs(
    energy_fn: Callable[[Tensor], Tensor],
    graph: AtomicGraph,
    compute_stress: bool,
    training: bool,
) -> dict[str, Tensor]:
    """Energy, forces ``-dE/dr`` and (optionally) stress ``(1/V) dE/d(strain)``.

    The strain ``eps`` ``[B, 3, 3]`` (zero) displaces every edge vector as
    ``r' = r (I + eps)``, so ``dE/d eps`` is the virial derivative; with ASE's sign convention
    the stress is ``sigma = (1/V) sym(dE/d eps)`` (negative under compression), in eV/Å^3,
    symmetrised as for a symmetric strain (what ASE's finite-difference stress measures).

    Args:
        energy_fn: Maps edge vectors ``[E, 3]`` Å to per-system energies ``[B]`` eV.
        graph: The batch (positions, cell, shifts).
        compute_stress: Also return ``stress [B, 3, 3]``; needs a cell on every system.
        training: Keep the graph for a backward pass through the forces.

    Returns:
        ``{"energy": [B], "forces": [N, 3], "stress"?: [B, 3, 3]}``; only ``{"energy"}``
        inside :func:`energy_only`.
    """
    if _ENERGY_ONLY.get():
        if compute_stress:
            raise ValueError("stress needs forces; it cannot be computed inside energy_only()")
        return {"energy": energy_fn(graph.edge_vectors())}
    with torch.enable_grad():
        positions = graph.positions.detach().requires_grad_(True)
        inputs = [positions]
        vec = graph.with_positions(positions).edge_vectors()
        if compute_stress:
            b = graph.num_systems
            strain = positions.new_zeros(b, 3, 3, requires_grad=True)
            inputs.append(strain)
            sys_of_edge = graph.batch[graph.edge_index[1]]
            vec = vec + torch.bmm(vec[:, None, :], strain[sys_of_edge])[:, 0]
        energy = energy_fn(vec)
        grads = torch.autograd.grad(energy.sum(), inputs, create_graph=training, allow_unused=True)
    out = {"energy": energy}
    forces = grads[0] if grads[0] is not None else torch.zeros_like(positions)
    out["forces"] = -forces
    if compute_stress:
        volume = torch.linalg.det(graph.cell).abs()
        if bool((volume < 1e-9).any()):
            raise ValueError("stress needs a cell with non-zero volume on every system")
        g = grads[1] if grads[1] is not None else torch.zeros_like(graph.cell)
        # derivative w.r.t. a symmetric strain (the grid activations leave a tiny antisymmetric
        # part in dE/d eps; a stress tensor is symmetric)
        out["stress"] = 0.5 * (g + g.transpose(1, 2)) / volume[:, None, None]
    return out
