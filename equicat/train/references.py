"""Per-element reference energies and the scale of the training targets.

The total energy of a structure is split as ``E = sum_i e[Z_i] + E_int``: the element
references ``e`` are fitted by least squares over the training set
(``min_e sum_s (E_s - sum_z n_sz e_z)^2``, ``n_sz`` the count of element ``z`` in structure
``s``) so the network only learns the remaining, interaction part ``E_int``. The scale of
the targets is the RMS of the force components; it sets both the network's energy and force
output units (``energy_std = force_std = scale``), so one number serves a conservative model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np

__all__ = [
    "Normalization",
    "fit_element_references",
    "reference_energy",
    "compute_normalization",
    "element_energy_table",
]


def _composition(numbers: Sequence[np.ndarray], elements: list[int]) -> np.ndarray:
    """[S, K] count of each element (columns in ``elements`` order) in each structure."""
    column = {z: k for k, z in enumerate(elements)}
    counts = np.zeros((len(numbers), len(elements)))
    for s, z in enumerate(numbers):
        for value, n in zip(*np.unique(np.asarray(z), return_counts=True), strict=True):
            counts[s, column[int(value)]] = n
    return counts


def fit_element_references(
    numbers: Sequence[np.ndarray], energies: Sequence[float]
) -> dict[int, float]:
    """Least-squares element energies, ``E_s ≈ sum_z n_sz e_z``.

    When the compositions do not determine every element (e.g. two elements always
    appear in the same ratio) the minimum-norm solution is returned; the remainder is left
    to the network.

    Args:
        numbers: Atomic numbers of each structure.
        energies: Total energy of each structure, eV.

    Returns:
        ``{Z: e_Z}`` in eV for every element present, sorted by Z.
    """
    if len(numbers) != len(energies) or not numbers:
        raise ValueError(
            f"need one energy per structure and at least one structure, got {len(numbers)} "
            f"structures and {len(energies)} energies"
        )
    elements = sorted({int(z) for zs in numbers for z in np.asarray(zs)})
    counts = _composition(numbers, elements)
    solution, *_ = np.linalg.lstsq(counts, np.asarray(energies, dtype=float), rcond=None)
    return {z: float(e) for z, e in zip(elements, solution, strict=True)}


def reference_energy(numbers: np.ndarray, references: Mapping[int, float]) -> float:
    """``sum_i e[Z_i]`` in eV (``KeyError`` for an element without a reference)."""
    return float(sum(references[int(z)] for z in np.asarray(numbers)))


@dataclass(frozen=True)
class Normalization:
    """Statistics of the training targets.

    Attributes:
        energy_std: eV/atom, standard deviation of the per-atom energy after subtracting the
            element references.
        force_rms: eV/Å, root mean square of the force components.
        scale: The unit of the loss and of the network's outputs (``force_rms``, or
            ``energy_std`` when every force is zero, or 1).
    """

    energy_std: float
    force_rms: float
    scale: float

    def to_dict(self) -> dict[str, float]:
        """Plain-data form (stored in checkpoints)."""
        return asdict(self)


def compute_normalization(
    numbers: Sequence[np.ndarray],
    energies: Sequence[float],
    forces: Sequence[np.ndarray | None],
    references: Mapping[int, float],
) -> Normalization:
    """Target statistics of a training set (see :class:`Normalization`).

    Args:
        numbers: Atomic numbers of each structure.
        energies: Total energies, eV.
        forces: ``[n_s, 3]`` eV/Å forces of each structure (``None`` for a structure
            without force labels; with none at all the scale is the energy spread).
        references: Element energies from :func:`fit_element_references`.
    """
    pairs = zip(numbers, energies, strict=True)
    per_atom = np.array([(e - reference_energy(z, references)) / len(z) for z, e in pairs])
    labelled = [np.asarray(f, dtype=float).reshape(-1) for f in forces if f is not None]
    components = np.concatenate(labelled) if labelled else np.zeros(0)
    energy_std = float(per_atom.std())
    force_rms = float(np.sqrt(np.mean(components**2))) if components.size else 0.0
    scale = force_rms if force_rms > 1e-6 else energy_std if energy_std > 1e-6 else 1.0
    return Normalization(energy_std=energy_std, force_rms=force_rms, scale=scale)


def element_energy_table(references: Mapping[int, float]) -> tuple[float, ...]:
    """References as a tuple indexed by atomic number (zeros for absent elements).

    This is the form of EquiformerV2's ``element_energies`` config field.
    """
    if not references:
        return ()
    table = [0.0] * (max(int(z) for z in references) + 1)
    for z, e in references.items():
        table[int(z)] = float(e)
    return tuple(table)
