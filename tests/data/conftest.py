"""Structures shared by the graph and neighbour-list tests."""

import numpy as np
import pytest
from ase import Atoms
from ase.build import add_adsorbate, bulk, fcc111, molecule
from ase.constraints import FixAtoms


def cu111_co(size: tuple[int, int, int], seed: int) -> Atoms:
    """Cu(111) slab with CO on top, every atom rattled, bottom two layers fixed, OC20 tags.

    (Rattled before fixing: ase's rattle leaves constrained atoms in place, and a perfect
    lattice has exactly tied neighbour distances.)
    """
    slab = fcc111("Cu", size, vacuum=10.0)
    layer = slab.get_tags()  # 1 = top layer
    slab.set_tags(np.where(layer >= 3, 0, 1))
    add_adsorbate(slab, molecule("CO"), 2.0, "ontop")
    slab.set_tags(np.where(np.arange(len(slab)) >= len(slab) - 2, 2, slab.get_tags()))
    slab.rattle(0.05, seed=seed)
    slab.set_constraint(FixAtoms(indices=np.flatnonzero(layer >= 3)))
    return slab


def triclinic_cu() -> Atoms:
    atoms = bulk("Cu", "fcc", a=3.61).repeat((2, 2, 2))
    strain = np.eye(3) + 0.08 * np.random.default_rng(3).normal(size=(3, 3))
    atoms.set_cell(atoms.cell.array @ strain, scale_atoms=True)
    atoms.rattle(0.03, seed=4)
    return atoms


STRUCTURES = {
    "cu111_co_3x3x4": lambda: cu111_co((3, 3, 4), seed=0),
    "cu111_co_5x5x4": lambda: cu111_co((5, 5, 4), seed=1),
    "cu_fcc_1atom": lambda: bulk("Cu", "fcc", a=3.61),
    "ti_hcp": lambda: bulk("Ti", "hcp", a=2.95, c=4.69),
    "cu_triclinic": triclinic_cu,
    "ethanol": lambda: molecule("CH3CH2OH"),
}


@pytest.fixture(params=sorted(STRUCTURES))
def structure(request) -> tuple[str, Atoms]:
    """(name, atoms) for every test structure."""
    return request.param, STRUCTURES[request.param]()


@pytest.fixture(scope="session")
def structure_factories() -> dict:
    """{name: zero-argument function returning a fresh Atoms}."""
    return dict(STRUCTURES)
