"""QM9 from qm9pack: units, atom references, the seeded split."""

from __future__ import annotations

import csv
import itertools

import numpy as np
import pytest
from ase.units import Hartree, kB

from equicat.data import qm9

T = 298.15  # K, the QM9 temperature of U, H, G


def test_split_sizes_disjoint_and_seeded():
    split = qm9.qm9_split(seed=0)
    assert (len(split.train), len(split.val), len(split.test)) == (110_000, 10_000, 10_831)
    every = np.concatenate([split.train, split.val, split.test])
    assert np.array_equal(np.sort(every), np.arange(qm9.QM9_SIZE))
    again = qm9.qm9_split(seed=0)
    assert all(np.array_equal(getattr(split, k), getattr(again, k)) for k in ("train", "val"))
    other = qm9.qm9_split(seed=1)
    assert not np.array_equal(split.val, other.val)
    with pytest.raises(ValueError, match="cannot split 100"):
        qm9.qm9_split(100)


def test_atomref_table_obeys_ideal_gas_thermodynamics():
    # free atoms: U(298 K) - U0 = 3/2 kT (translation), H - U = kT (pV = kT)
    for z, (u0, u, h, _) in qm9.ATOMREF_HARTREE.items():
        assert abs((u - u0) * Hartree - 1.5 * kB * T) < 1e-4, z
        assert abs((h - u) * Hartree - kB * T) < 1e-4, z
    assert qm9.atomref("U0")[1] == -0.500273 * Hartree
    with pytest.raises(ValueError, match="not 'gap'"):
        qm9.atomref("gap")
    with pytest.raises(ValueError, match="Z=16"):
        qm9.atomization([16], 0.0, "U0")


def qm9_folder():
    """qm9pack's data folder; skips where qm9pack is missing (its import is not needed)."""
    try:
        return qm9.data_dir()
    except ImportError:
        pytest.skip("qm9pack is not installed")


@pytest.fixture(scope="module")
def first_molecules():
    folder = qm9_folder()
    with open(folder / "qm9_part1.csv", newline="") as fh:
        rows = list(itertools.islice(csv.DictReader(fh), 20))
    return qm9.load_qm9(limit=20), rows


def test_targets_are_converted_once(first_molecules):
    molecules, rows = first_molecules
    assert len(molecules) == 20 and molecules[0].get_chemical_formula() == "CH4"
    for atoms, row in zip(molecules, rows, strict=True):
        assert len(atoms) == int(row["N_atoms"]) and atoms.info["qm9_index"] == int(row["Index"])
        assert atoms.info["U0"] == float(row["InternalEnergy_0K_au"]) * Hartree
        assert atoms.info["mu"] == float(row["Dipole_debye"])
        assert atoms.info["Cv"] == float(row["Heatcapacity_Cv_cal_mol_K"])
        # molecules: H - U = kT (ideal gas); gap = lumo - homo up to the 1e-4 Ha rounding
        assert abs(atoms.info["H"] - atoms.info["U"] - kB * T) < 1e-4
        assert abs(atoms.info["gap"] - (atoms.info["lumo"] - atoms.info["homo"])) < 3e-3


def test_atomref_subtraction(first_molecules):
    molecules, _ = first_molecules
    for atoms in molecules:
        for target in ("U0", "U", "H", "G"):
            refs = qm9.atomref(target)
            total = sum(refs[int(z)] for z in atoms.numbers)
            assert atoms.info[f"{target}_atom"] == pytest.approx(atoms.info[target] - total)
        # bound molecules: negative atomization energy of a few eV per atom
        assert -8.0 * len(atoms) < atoms.info["U0_atom"] < -1.0 * len(atoms) / 2
    # the atom references remove the size trend: total U0 spans ~1000s of eV, U0_atom ~10s
    u0 = np.array([a.info["U0"] for a in molecules])
    u0_atom = np.array([a.info["U0_atom"] for a in molecules])
    assert np.ptp(u0_atom) < 0.05 * np.ptp(u0)


@pytest.mark.slow
def test_full_load_and_cache(tmp_path):
    qm9_folder()
    molecules = qm9.load_qm9(cache=tmp_path / "qm9.h5")
    assert len(molecules) == qm9.QM9_SIZE
    assert {int(z) for a in molecules for z in a.numbers} == {1, 6, 7, 8, 9}
    cached = qm9.load_qm9(cache=tmp_path / "qm9.h5")
    assert cached[-1].info == molecules[-1].info
    split = qm9.qm9_split(len(molecules), seed=0)
    assert len({molecules[i].info["qm9_index"] for i in split.test}) == len(split.test)


def test_subset_loader_reads_the_same_molecules_in_the_asked_order():
    qm9_folder()
    first = qm9.load_qm9(limit=8)
    picked = qm9.load_qm9_subset([7, 2, 0])
    assert [a.info["qm9_index"] for a in picked] == [first[i].info["qm9_index"] for i in (7, 2, 0)]
    assert np.array_equal(picked[0].positions, first[7].positions)
    assert picked[1].info["U0"] == first[2].info["U0"]
    with pytest.raises(ValueError, match="repeated"):
        qm9.load_qm9_subset([1, 1])
    with pytest.raises(ValueError, match="outside"):
        qm9.load_qm9_subset([qm9.QM9_SIZE])


def test_subset_indices_come_from_the_standard_split_at_random():
    split = qm9.qm9_split(seed=3)
    train, val = qm9.qm9_subset_indices(300, 40, seed=3)
    assert (len(train), len(val)) == (300, 40)
    assert np.isin(train, split.train).all() and np.isin(val, split.val).all()
    # drawn from the whole split, not its front (QM9 is ordered roughly by molecule size)
    assert train.max() > 100_000 and train.min() < 10_000
    again, _ = qm9.qm9_subset_indices(300, 40, seed=3)
    assert np.array_equal(train, again)
    with pytest.raises(ValueError, match="1..10000 validation"):
        qm9.qm9_subset_indices(10, 10_001)
