from __future__ import annotations

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk, molecule
from ase.calculators.calculator import PropertyNotImplementedError
from ase.calculators.fd import calculate_numerical_forces, calculate_numerical_stress

from equicat import checkpoints
from equicat.calculators import EquiCatCalculator, Predictor
from equicat.data import AtomicGraph

from ..helpers import cu_slab, tiny_model


def _model(**kw):
    return tiny_model(seed=1, max_num_elements=30, **kw)


def _slab(seed=0):
    return cu_slab(seed, fixed=(0, 1))


@pytest.fixture
def calc():
    return EquiCatCalculator(Predictor(_model(), device="cpu", dtype="float64"))


def test_calculator_equals_model(calc):
    atoms = _slab()
    atoms.calc = calc
    g = AtomicGraph.from_atoms(atoms, 4.0, 20, dtype=torch.float64)
    with torch.no_grad():
        out = calc.predictor.model(g)
    assert atoms.get_potential_energy() == pytest.approx(float(out["energy"][0]), abs=1e-12)
    assert atoms.get_potential_energy() == atoms.get_potential_energy(force_consistent=True)
    np.testing.assert_allclose(atoms.get_forces(apply_constraint=False), out["forces"].numpy())
    assert np.all(atoms.get_forces()[[0, 1]] == 0.0)  # FixAtoms applied by ASE


def test_batched_predictor_equals_single(calc):
    frames = [_slab(s) for s in range(3)] + [bulk("Cu", "fcc", a=3.6)]
    batched = calc.predictor.predict(frames, batch_size=4)
    for atoms, res in zip(frames, batched, strict=True):
        (single,) = calc.predictor.predict(atoms)
        assert res["energy"] == pytest.approx(single["energy"], abs=1e-10)
        np.testing.assert_allclose(res["forces"], single["forces"], atol=1e-10)


def test_from_checkpoint(tmp_path):
    m = _model()
    path = checkpoints.save(m, tmp_path / "m.pt")
    atoms = _slab()
    atoms.calc = EquiCatCalculator.from_checkpoint(path, device="cpu", dtype="float64")
    ref = EquiCatCalculator(Predictor(m, device="cpu", dtype="float64"))
    assert atoms.get_potential_energy() == pytest.approx(ref.get_potential_energy(_slab()))


def test_direct_model_has_no_stress(calc):
    atoms = bulk("Cu", "fcc", a=3.6)
    atoms.calc = calc
    assert "stress" not in calc.implemented_properties
    with pytest.raises(PropertyNotImplementedError):
        atoms.get_stress()


def test_conservative_stress_and_forces():
    calc = EquiCatCalculator(Predictor(_model(forces="conservative"), "cpu", "float64"))
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True)
    atoms.rattle(0.05, seed=2)
    atoms.calc = calc
    stress = atoms.get_stress()
    fd = calculate_numerical_stress(atoms, eps=1e-5)
    np.testing.assert_allclose(stress, fd, atol=1e-7)
    forces = atoms.get_forces()
    np.testing.assert_allclose(forces, calculate_numerical_forces(atoms, eps=1e-5), atol=1e-7)


@pytest.mark.parametrize(
    "atoms, message",
    [
        (
            Atoms(numbers=[29, 92], positions=[[0, 0, 0], [2.5, 0, 0]], cell=[8, 8, 8], pbc=True),
            r"atom 1: element U \(Z=92\)",
        ),
        (Atoms("Cu2", positions=[[0, 0, 0], [np.nan, 0, 0]], cell=[8, 8, 8], pbc=True), "atom 1"),
        (Atoms("Cu2", positions=[[0, 0, 0], [0.05, 0, 0]], cell=[8, 8, 8], pbc=True), "0.05"),
        (Atoms("Cu2", positions=[[0, 0, 0], [2.5, 0, 0]], pbc=True), "missing cell"),
    ],
    ids=["unknown-element", "nan-position", "overlap", "missing-cell"],
)
def test_bad_input_errors(calc, atoms, message):
    atoms.calc = calc
    with pytest.raises(ValueError, match=message):
        atoms.get_potential_energy()


def test_trained_elements_restrict(tmp_path):
    m = _model()
    path = checkpoints.save(m, tmp_path / "m.pt", element_references={"29": 0.0, "8": 0.0})
    pred = Predictor.from_checkpoint(path, device="cpu")
    with pytest.raises(ValueError, match=r"element C \(Z=6\) is unknown"):
        pred.predict(molecule("CO"))
