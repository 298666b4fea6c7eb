"""EquiformerV2 parity with the fairchem-1.x reference, same weights (skipped without it).

Loads the checkpoint the reference harness writes with EquiCatCalculator.from_checkpoint
and compares energies (1e-4 eV) and forces (1e-4 relative) on rattled OC-like structures.
"""

from __future__ import annotations

import ase.io
import pytest

from equicat.calculators import EquiCatCalculator, Predictor

from .reference import available, compare, parity_structures, run_reference

pytestmark = pytest.mark.reference


@pytest.fixture(scope="module")
def reference_ok() -> None:
    ok, why = available()
    if not ok:
        pytest.skip(why)


def _check(model: str, tmp_path, *extra: str) -> None:
    out = run_reference(model, parity_structures(), tmp_path / model, *extra)
    frames = ase.io.read(out / "reference.extxyz", ":")
    pred = Predictor.from_checkpoint(out / "checkpoint.pt", device="cpu", dtype="float64")
    rows = compare(pred.predict(frames, batch_size=2), frames)
    print(f"\n{model}: natoms  |dE|/eV  |dF|/|F|")
    for n, de, df in rows:
        print(f"  {n:6d}  {de:.2e}  {df:.2e}")
    for n, de, df in rows:
        assert de < 1e-4, f"{model}, {n} atoms: energy differs by {de:.2e} eV"
        assert df < 1e-4, f"{model}, {n} atoms: forces differ by {df:.2e} (relative)"


def test_parity_eqv2_small(reference_ok, tmp_path) -> None:
    _check("eqv2-small", tmp_path)


def test_parity_legacy_config_layout(reference_ok, tmp_path) -> None:
    """The older ``model: NAME`` + ``model_attributes`` layout imports the same way."""
    _check("eqv2-small", tmp_path, "--legacy-config", "--seed", "3")


def test_calculator_matches_reference(reference_ok, tmp_path) -> None:
    out = run_reference("eqv2-small", parity_structures()[:1], tmp_path / "calc")
    (ref,) = ase.io.read(out / "reference.extxyz", ":")
    atoms = ref.copy()
    atoms.calc = EquiCatCalculator.from_checkpoint(out / "checkpoint.pt", dtype="float64")
    assert abs(atoms.get_potential_energy() - ref.info["ref_energy"]) < 1e-4
    f = atoms.get_forces(apply_constraint=False)
    assert abs(f - ref.arrays["ref_forces"]).max() < 1e-4 * abs(ref.arrays["ref_forces"]).max() * 10


@pytest.mark.slow
def test_parity_eqv2_31m(reference_ok, tmp_path) -> None:
    _check("eqv2-31M", tmp_path)
