"""The one-structure path: EquiCatCalculator + any ase.optimize optimizer."""

from __future__ import annotations

import numpy as np
import pytest
from ase.optimize import BFGS, FIRE, LBFGS

from equicat.calculators import EquiCatCalculator

from .systems import FIXED, near


@pytest.mark.parametrize("optimizer", [BFGS, LBFGS, FIRE])
def test_ase_optimizer_on_equicat_calculator(optimizer, pred, minimum):
    atoms = near(minimum, 5)
    start = atoms.positions.copy()
    atoms.calc = EquiCatCalculator(pred)
    assert np.linalg.norm(atoms.get_forces(), axis=1).max() > 0.01
    assert optimizer(atoms, logfile=None).run(fmax=0.002, steps=300)
    assert np.linalg.norm(atoms.get_forces(), axis=1).max() < 0.002
    assert np.array_equal(atoms.positions[list(FIXED)], start[list(FIXED)])
