"""Test structures for model checks: a slab with an adsorbate, a bulk crystal, a molecule."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from ase import Atoms
from ase.build import add_adsorbate, bulk, fcc111, molecule


def cu_slab_with_co() -> Atoms:
    """Cu(111) 2x2x3 slab, 6 Å vacuum, CO on top, rattled (14 atoms)."""
    slab = fcc111("Cu", (2, 2, 3), vacuum=6.0)
    add_adsorbate(slab, molecule("CO"), 2.0, "ontop")
    slab.rattle(0.05, seed=1)
    return slab


def cu_bulk() -> Atoms:
    """Two-atom fcc Cu cell, sheared and rattled (no cell vector along an axis)."""
    atoms = bulk("Cu", "fcc", a=3.6).repeat((2, 1, 1))
    shear = np.eye(3) + 0.05 * np.random.default_rng(5).normal(size=(3, 3))
    atoms.set_cell(atoms.cell.array @ shear, scale_atoms=True)
    atoms.rattle(0.05, seed=2)
    return atoms


def ethanol() -> Atoms:
    """Ethanol, no cell, no periodicity, rattled."""
    atoms = molecule("CH3CH2OH")
    atoms.rattle(0.02, seed=3)
    return atoms


STRUCTURES: dict[str, Callable[[], Atoms]] = {
    "cu111_co": cu_slab_with_co,
    "cu_bulk": cu_bulk,
    "ethanol": ethanol,
}
PERIODIC = ("cu111_co", "cu_bulk")
