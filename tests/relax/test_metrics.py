"""IS2RS / IS2RE metrics on hand-made cases whose answers are counted by hand."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes
from ase.constraints import FixAtoms

from equicat.relax.metrics import (
    ADWT_THRESHOLDS,
    AFBT_THRESHOLDS,
    mean_free_distance,
    minimum_image,
    score,
)


def box(positions, fixed=(), pbc=True) -> Atoms:
    """Cu atoms in a 10 Å cube."""
    atoms = Atoms(f"Cu{len(positions)}", positions=positions, cell=np.eye(3) * 10.0, pbc=pbc)
    if fixed:
        atoms.set_constraint(FixAtoms(indices=list(fixed)))
    return atoms


REF = [[0.05, 5.0, 5.0], [5.0, 5.0, 5.0], [2.0, 2.0, 2.0]]  # atom 2 is fixed


def moved(d: float) -> Atoms:
    """REF with atom 0 across the x boundary and atom 1 each d Å from the reference, and the
    fixed atom 3 Å away."""
    pos = np.array(REF)
    pos[0, 0] = 0.05 - d + 10.0  # the image of 0.05 - d
    pos[1, 1] += d
    pos[2] += 3.0
    return box(pos, fixed=(2,))


def test_minimum_image_across_the_boundary():
    d = np.array([[9.9, 0.0, -9.8]])
    np.testing.assert_allclose(minimum_image(d, np.eye(3) * 10, [True] * 3), [[-0.1, 0, 0.2]])
    np.testing.assert_allclose(
        minimum_image(d, np.eye(3) * 10, [True, True, False]), d + [[-10, 0, 0]]
    )
    np.testing.assert_allclose(minimum_image(d, np.zeros((3, 3)), [False] * 3), d)


def test_fixed_atoms_excluded_and_periodic_images():
    ref = box(REF, fixed=(2,))
    assert mean_free_distance(moved(0.07), ref) == pytest.approx(0.07, abs=1e-12)
    # without periodicity atom 0 is 9.93 Å away
    open_pred, open_ref = moved(0.07), box(REF, fixed=(2,), pbc=False)
    open_pred.pbc = False
    assert mean_free_distance(open_pred, open_ref) == pytest.approx((9.93 + 0.07) / 2)


def test_adwt_counted_by_hand():
    ref = box(REF, fixed=(2,))
    m = score([moved(0.0505), moved(0.2005)], [ref, ref])
    # thresholds 0.010 + 0.001 k, k = 0..489: 449 of them exceed 0.0505, 299 exceed 0.2005
    assert len(ADWT_THRESHOLDS) == 490 and ADWT_THRESHOLDS[-1] == pytest.approx(0.499)
    assert m.adwt == pytest.approx((0.5 * 449 + 0.5 * 299) / 490, abs=1e-12)
    assert m.dwt[0] == 0.0 and m.dwt[-1] == 1.0 and m.dwt[100] == 0.5
    assert m.energy_mae is None and m.afbt is None
    perfect = score([ref.copy()], [ref])
    assert perfect.adwt == 1.0


def test_energy_mae_and_ewt():
    ref = box(REF, fixed=(2,))
    m = score([ref] * 3, [ref] * 3, energies=[1.0, 2.0, 3.0], reference_energies=[1.01, 2.5, 3.0])
    assert m.energy_mae == pytest.approx(0.17)
    assert m.ewt == pytest.approx(2 / 3)


class KnownForce(Calculator):
    """Forces of magnitude ``info['force']`` on atom 1 (free), 50 eV/Å on atom 2 (fixed)."""

    implemented_properties = ["energy", "forces"]

    def calculate(self, atoms=None, properties=("forces",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        forces = np.zeros((len(atoms), 3))
        forces[1] = [0.0, atoms.info["force"], 0.0]
        forces[2] = [50.0, 0.0, 0.0]
        self.results = {"energy": 0.0, "forces": forces}


def test_fbt_and_afbt_counted_by_hand():
    ref = box(REF, fixed=(2,))
    relaxed = []
    for f in (0.0305, 0.1005):
        atoms = ref.copy()
        atoms.info["force"] = f
        relaxed.append(atoms)
    m = score(relaxed, [ref, ref], oracle=KnownForce())
    assert m.oracle_max_forces == pytest.approx((0.0305, 0.1005))  # the fixed atom's 50 left out
    assert m.fbt == 0.5  # at 0.05 eV/Å
    # thresholds 0.010 + 0.001 k, k = 0..389: 369 exceed 0.0305, 299 exceed 0.1005
    assert len(AFBT_THRESHOLDS) == 390 and AFBT_THRESHOLDS[-1] == pytest.approx(0.399)
    assert m.afbt == pytest.approx((0.5 * 369 + 0.5 * 299) / 390, abs=1e-12)
    assert "afbt_thresholds" in m.to_dict()


def test_mismatch_errors():
    ref = box(REF, fixed=(2,))
    with pytest.raises(ValueError, match="structure 0: the relaxed structure"):
        score([box(REF[:2])], [ref])
    with pytest.raises(ValueError, match="2 relaxed structures but 1 references"):
        score([ref, ref], [ref])
    with pytest.raises(ValueError, match="every atom is fixed"):
        mean_free_distance(ref, box(REF, fixed=(0, 1, 2)))
