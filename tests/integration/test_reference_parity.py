"""EquiformerV2 and eSCN parity with the fairchem-1.x reference, same weights (skipped without it).

Loads the checkpoint the reference harness writes with EquiCatCalculator.from_checkpoint
and compares energies (1e-4 eV) and forces (1e-4 relative) on rattled OC-like structures.
"""

from __future__ import annotations

import ase.io
import pytest

from equicat.calculators import EquiCatCalculator, Predictor

from .reference import available, compare, parity_structures, run_reference, ties_at_cut

pytestmark = pytest.mark.reference


@pytest.fixture(scope="module")
def reference_ok() -> None:
    ok, why = available()
    if not ok:
        pytest.skip(why)


CUTOFFS = {"eqv2-small": 6.0, "eqv2-31M": 12.0, "escn-small": 6.0, "escn-L6-M3-Lay20": 12.0}


def _check(model: str, tmp_path, *extra: str, max_atoms: int | None = None) -> None:
    structures = [a for a in parity_structures() if max_atoms is None or len(a) <= max_atoms]
    for atoms in structures:  # precondition: the reference's truncation is well defined
        assert ties_at_cut(atoms, CUTOFFS[model], 20) == 0, atoms.get_chemical_formula()
    out = run_reference(model, structures, tmp_path / model, *extra)
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


def test_parity_escn_small(reference_ok, tmp_path) -> None:
    _check("escn-small", tmp_path)


def test_parity_escn_legacy_config_layout(reference_ok, tmp_path) -> None:
    _check("escn-small", tmp_path, "--legacy-config", "--seed", "3")


@pytest.mark.slow
def test_parity_escn_l6_m3_lay20(reference_ok, tmp_path) -> None:
    # the reference needs more than 23 GB on the 102-atom slab (killed by the OOM killer on a
    # 24 GB machine), so the full-size check skips it
    _check("escn-L6-M3-Lay20", tmp_path, max_atoms=40)


def test_non_periodic_direction_is_respected(reference_ok, tmp_path):
    """Where a slab's image across the vacuum is inside the cutoff, the reference (which
    treats every direction as periodic) and equicat (which follows atoms.pbc) must differ;
    with pbc set to True everywhere they agree again."""
    slab = parity_structures()[2].copy()
    slab.center(vacuum=2.5, axis=2)  # image along z well inside 6 Å
    out = run_reference("eqv2-small", [slab], tmp_path / "pbc")
    (ref,) = ase.io.read(out / "reference.extxyz", ":")
    pred = Predictor.from_checkpoint(out / "checkpoint.pt", device="cpu", dtype="float64")
    as_given = ref.copy()
    as_given.pbc = (True, True, False)
    all_periodic = ref.copy()
    all_periodic.pbc = True
    (_, de_slab, df_slab), (_, de_bulk, df_bulk) = compare(
        pred.predict([as_given, all_periodic]), [ref, ref]
    )
    print(
        f"\npbc as given: |dE| {de_slab:.2e}, dF {df_slab:.2e}; all periodic: "
        f"|dE| {de_bulk:.2e}, dF {df_bulk:.2e}"
    )
    assert df_slab > 1e-2  # forces: far outside the parity tolerance (energy moves less)
    assert de_bulk < 1e-4 and df_bulk < 1e-4
