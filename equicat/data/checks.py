"""Input checks for graph construction, each raising one sentence a user can act on."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from ase.data import chemical_symbols
from torch import Tensor

__all__ = ["check_cell", "check_finite", "check_min_distance"]

# Å; a periodic cell vector shorter than this counts as missing
_MIN_CELL_LENGTH = 1e-6
# a set of periodic cell vectors whose normalised Gram determinant is below this is degenerate
_MIN_CELL_VOLUME_RATIO = 1e-10


def _atom(numbers: Sequence[int] | Tensor | None, index: int) -> str:
    if numbers is None:
        return f"atom {index}"
    z = int(numbers[index])
    symbol = chemical_symbols[z] if 0 <= z < len(chemical_symbols) else f"Z={z}"
    return f"atom {index} ({symbol})"


def check_finite(positions: Tensor, cell: Tensor, system: int) -> None:
    """Raise ``ValueError`` if a position or cell entry is NaN or infinite.

    Args:
        positions: [n, 3] Å, positions of one system.
        cell: [3, 3] Å, its cell.
        system: index of the system in the batch (for the message).
    """
    bad = ~torch.isfinite(positions).all(dim=1)
    if bool(bad.any()):
        k = int(torch.nonzero(bad)[0])
        raise ValueError(
            f"System {system}: atom {k} has a non-finite position {positions[k].tolist()}; "
            "fix or remove that atom before building a graph."
        )
    if not bool(torch.isfinite(cell).all()):
        raise ValueError(
            f"System {system}: the cell {cell.tolist()} contains NaN or inf; set a finite "
            "cell (atoms.cell) before building a graph."
        )


def check_cell(cell: Tensor, pbc: Tensor, system: int) -> None:
    """Raise ``ValueError`` for a periodic direction without a usable cell vector.

    A periodic direction needs a non-zero cell vector, and the periodic vectors together must
    be linearly independent (non-zero area or volume).

    Args:
        cell: [3, 3] Å, cell vectors as rows.
        pbc: [3] bool, periodicity per cell vector.
        system: index of the system in the batch (for the message).
    """
    periodic = [k for k in range(3) if bool(pbc[k])]
    if not periodic:
        return
    cell = cell.detach().to(torch.float64)
    lengths = torch.linalg.norm(cell, dim=1)
    for k in periodic:
        if float(lengths[k]) < _MIN_CELL_LENGTH:
            raise ValueError(
                f"System {system}: missing cell on a periodic system: pbc[{k}] is True but cell "
                f"vector {k} is {cell[k].tolist()} Å; set atoms.cell (e.g. with "
                f"atoms.center(vacuum=...)) or set pbc[{k}] = False."
            )
    rows = cell[periodic]  # [p, 3]
    gram = torch.linalg.det(rows @ rows.T) / torch.prod(lengths[periodic] ** 2)
    if float(gram) < _MIN_CELL_VOLUME_RATIO:
        raise ValueError(
            f"System {system}: the periodic cell vectors {periodic} are linearly dependent "
            f"(degenerate cell {cell.tolist()} Å); give the cell independent vectors or set "
            "pbc False along the redundant direction."
        )


def check_min_distance(
    i: Tensor,
    j: Tensor,
    shifts: Tensor,
    distances: Tensor,
    min_distance: float,
    system: int,
    numbers: Sequence[int] | Tensor | None = None,
) -> None:
    """Raise ``ValueError`` if two atoms (or an atom and its image) are closer than allowed.

    Uses the candidate pairs of the neighbour search, so it costs one comparison per pair.

    Args:
        i: [P] int64, target indices within the system.
        j: [P] int64, source indices within the system.
        shifts: [P, 3] int64 image offsets of the source.
        distances: [P] Å, pair distances.
        min_distance: Å, smallest allowed distance; ``0`` disables the check.
        system: index of the system in the batch (for the message).
        numbers: [n] atomic numbers, to name the elements in the message.
    """
    if min_distance <= 0 or distances.numel() == 0:
        return
    p = int(torch.argmin(distances))
    d = float(distances[p])
    if d >= min_distance:
        return
    a, b = sorted((int(i[p]), int(j[p])))
    if a == b:
        raise ValueError(
            f"System {system}: {_atom(numbers, a)} is {d:.4g} Å from its own periodic image "
            f"(shift {shifts[p].tolist()}), closer than min_distance={min_distance} Å; the "
            "cell is far too small, check its units and vectors."
        )
    raise ValueError(
        f"System {system}: {_atom(numbers, a)} and {_atom(numbers, b)} are {d:.4g} Å apart, "
        f"closer than min_distance={min_distance} Å; remove the duplicate or overlapping atom "
        "(or pass min_distance=0 to skip this check)."
    )
