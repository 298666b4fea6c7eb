"""Cell relaxation with Frechet cell-filter semantics (ASE's ``FrechetCellFilter``), batched.

Each system ``b`` has a reference cell ``h0`` (rows are cell vectors, the cell when the
relaxation starts) and a deformation gradient ``F`` with ``h = h0 F^T`` and atom positions
``r_i = F u_i`` (``u_i`` are the positions in the reference frame). The optimizer sees, per
system, the ``n_b`` atoms at ``u_i`` plus three "cell atoms": the rows of ``X = c log F``
(``c`` = ``exp_cell_factor``, by default the number of atoms), so the step sizes of cell and
atoms are comparable. The quantity minimised is the enthalpy ``H = E + p V``.

Generalized forces, derived from ``H(u, X)``:

- atoms: ``-dH/du_i = F^T f_i`` (``[n, 3] @ F`` with forces as rows);
- cell: a strain ``eps`` of the current cell (``F -> (I + eps) F``) changes ``H`` by
  ``dH/d eps = V (sigma + p I)`` (``sigma`` the stress with ASE's sign, eV/Å³), so
  ``dH/dF = V (sigma + p I) F^{-T}``; with ``F = exp(X / c)`` the chain rule goes through the
  Fréchet derivative ``L`` of the matrix exponential: ``dH/dX = (1/c) L(X^T / c, dH/dF)``
  (``L(A, .)`` is self-adjoint up to transposing ``A``). The cell force is ``-dH/dX``.

``L(A, E)`` is the upper-right block of ``exp([[A, E], [0, A]])``. A positive ``p``
(eV/Å³) compresses the cell; at convergence ``sigma = -p I`` where the cell forces vanish.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
from torch import Tensor

from equicat.relax.batching import per_system

__all__ = [
    "GPA",
    "CellFilter",
    "atom_forces",
    "cell_forces",
    "deformation",
    "expm_frechet_adjoint",
    "moved_cell",
    "new_cell_filter",
]

# 1 GPa in eV/Å^3
GPA = 1.0 / 160.21766208


@dataclass
class CellFilter:
    """The cell degrees of freedom of a batch (every system relaxes its cell)."""

    # [B, 3, 3] Å, cell vectors (rows) when the relaxation started
    reference: Tensor = per_system()
    # [B, 3, 3], X = c log F, the cell "positions" the optimizer moves
    log_deformation: Tensor = per_system()
    # [B], c = exp_cell_factor
    factor: Tensor = per_system()
    # [B] eV/Å^3, external scalar pressure p
    pressure: Tensor = per_system()
    # [B, 3, 3] eV/Å^3, stress at the current cell (ASE sign)
    stress: Tensor = per_system()

    def deformation(self) -> Tensor:
        """[B, 3, 3] ``F = exp(X / c)``."""
        return deformation(self.log_deformation, self.factor)


def deformation(log_deformation: Tensor, factor: Tensor) -> Tensor:
    """``F = exp(X / c)``: ``[B, 3, 3]``, ``[B]`` -> ``[B, 3, 3]``."""
    return torch.linalg.matrix_exp(log_deformation / factor[:, None, None])


def expm_frechet_adjoint(a: Tensor, g: Tensor) -> Tensor:
    """``L(a^T, g)``: the gradient ``d <g, exp(a)> / d a``, ``[B, 3, 3]`` each.

    ``L(A, E) = d/dt exp(A + t E)`` at ``t = 0``, read off the upper-right block of the
    matrix exponential of the block matrix ``[[A, E], [0, A]]``.
    """
    b = a.shape[0]
    block = a.new_zeros((b, 6, 6))
    block[:, :3, :3] = a.transpose(1, 2)
    block[:, 3:, 3:] = a.transpose(1, 2)
    block[:, :3, 3:] = g
    return torch.linalg.matrix_exp(block)[:, :3, 3:]


def new_cell_filter(
    cell: Tensor, stress: Tensor, natoms: Tensor, factor: Tensor | None, pressure: Tensor
) -> CellFilter:
    """The filter at the start of a relaxation: ``F = I`` (``X = 0``), reference = ``cell``.

    Args:
        cell: [B, 3, 3] Å, the current cells.
        stress: [B, 3, 3] eV/Å^3, their stress.
        natoms: [B] atoms per system (the default ``c``).
        factor: [B] ``exp_cell_factor``, or ``None`` for the number of atoms.
        pressure: [B] eV/Å^3.
    """
    c = natoms.to(cell.dtype) if factor is None else factor
    return CellFilter(
        reference=cell.detach().clone(),
        log_deformation=torch.zeros_like(cell),
        factor=c,
        pressure=pressure,
        stress=stress,
    )


def atom_forces(filt: CellFilter, forces: Tensor, batch: Tensor) -> Tensor:
    """``-dH/du_i = F^T f_i``: ``[N, 3]`` eV/Å forces (rows) -> ``[N, 3]``."""
    f_mat = filt.deformation()[batch]  # [N, 3, 3]
    return torch.bmm(forces[:, None, :], f_mat)[:, 0]  # [N, 1, 3] @ [N, 3, 3] -> [N, 3]


def cell_forces(filt: CellFilter, cell: Tensor) -> Tensor:
    """``-dH/dX`` ``[B, 3, 3]`` eV, the forces on the cell rows (module docstring).

    Args:
        filt: the filter, with the stress at ``cell``.
        cell: [B, 3, 3] Å, the current cells (``h0 F^T``).
    """
    f_mat = filt.deformation()  # [B, 3, 3]
    volume = torch.linalg.det(cell).abs()  # [B] Å^3
    eye = torch.eye(3, dtype=cell.dtype, device=cell.device)
    d_eps = volume[:, None, None] * (filt.stress + filt.pressure[:, None, None] * eye)  # dH/d eps
    # dH/dF = dH/deps F^{-T}  (solve F^T Z^T = dH/deps^T  <=>  Z = dH/deps F^{-T})
    d_f = torch.linalg.solve(f_mat, d_eps.transpose(1, 2)).transpose(1, 2)
    c = filt.factor[:, None, None]
    d_x = expm_frechet_adjoint(filt.log_deformation / c, d_f) / c  # dH/dX
    return -d_x


def moved_cell(filt: CellFilter, step: Tensor) -> tuple[CellFilter, Tensor]:
    """``X <- X + step`` (``[B, 3, 3]``); the new filter and cell ``h0 F^T`` ``[B, 3, 3]``."""
    new = dataclasses.replace(filt, log_deformation=filt.log_deformation + step)
    return new, torch.bmm(new.reference, new.deformation().transpose(1, 2))
