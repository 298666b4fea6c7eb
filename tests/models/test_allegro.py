"""Allegro physics: symmetries, batching, -dE/dr forces and strain stress, checkpoint round trip."""

import numpy as np
import pytest
import torch

from equicat.calculators import EquiCatCalculator
from equicat.checkpoints import save
from equicat.models import build
from equicat.models.allegro import Allegro, AllegroConfig

from .physics import (
    assert_batch_consistency,
    assert_conservative_forces,
    assert_permutation_equivariance,
    assert_rotation_equivariance,
    finite_difference_forces,
    finite_difference_stress,
    perturb_parameters,
    predict,
    random_rotation,
    symmetry_errors,
)
from .structures import PERIODIC, STRUCTURES

SMALL = dict(num_layers=2, lmax=2, num_channels=4, two_body_hidden=(16, 16),
             latent_hidden=(16,), edge_energy_hidden=(8,), cutoff=4.0, avg_degree=6.0)  # fmt: skip


def small_allegro(seed: int = 0, **overrides) -> Allegro:
    """A float64 :data:`SMALL` Allegro with perturbed weights (pair scales != 1), eval mode."""
    torch.manual_seed(seed)
    model = Allegro(AllegroConfig(**{**SMALL, **overrides})).double().eval()
    return perturb_parameters(model, 0.2, seed)


@pytest.fixture(scope="module")
def model():
    return small_allegro()


# e3nn builds its Clebsch-Gordan buffers in torch's default dtype (float32: 4e-9 off the
# float64 values), so the float64 model is equivariant to ~1e-9, not to round-off
E3NN_TOL = 1e-8


@pytest.mark.parametrize("name", sorted(STRUCTURES))
def test_rotation_translation_invariance(model, name, error_table):
    worst = assert_rotation_equivariance(model, STRUCTURES[name](), tol=E3NN_TOL)
    error_table.append(f"Allegro rotation error, {name}", max(worst.values()), E3NN_TOL)


@pytest.mark.parametrize("name", sorted(STRUCTURES))
def test_permutation_equivariance(model, name):
    assert_permutation_equivariance(model, STRUCTURES[name]())


def test_batched_equals_single(model):
    assert_batch_consistency(model, [STRUCTURES[n]() for n in sorted(STRUCTURES)])
    assert_batch_consistency(model, [STRUCTURES[n]() for n in PERIODIC], stress=True)


@pytest.mark.parametrize(
    "name", ["cu_bulk", "ethanol", pytest.param("cu111_co", marks=pytest.mark.slow)]
)
def test_forces_are_minus_energy_gradient(model, name):
    assert_conservative_forces(model, STRUCTURES[name]())


@pytest.mark.slow
def test_forces_match_finite_differences_per_component(model):
    atoms = STRUCTURES["ethanol"]()
    numeric = finite_difference_forces(model, atoms)
    torch.testing.assert_close(predict(model, atoms)["forces"], numeric, rtol=0, atol=1e-8)


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=pytest.mark.slow) if n != "cu_bulk" else n for n in PERIODIC]
)
def test_stress_matches_finite_strain(model, name):
    atoms = STRUCTURES[name]()
    stress = predict(model, atoms, stress=True)["stress"][0]
    numeric = finite_difference_stress(model, atoms)
    numeric = 0.5 * (numeric + numeric.T)
    assert stress.abs().max() > 1e-4  # a real, non-zero stress
    torch.testing.assert_close(stress, numeric, rtol=0, atol=1e-9)


def test_pair_scale_is_per_species_pair(model):
    """Scaling sigma_{Cu,C} changes the energy of CO on Cu but not of ethanol (no Cu)."""
    slab, mol = STRUCTURES["cu111_co"](), STRUCTURES["ethanol"]()
    e_slab, e_mol = predict(model, slab)["energy"], predict(model, mol)["energy"]
    changed = small_allegro()
    with torch.no_grad():
        changed.pair_scale[29, 6] += 1.0
    assert abs(float(predict(changed, slab)["energy"] - e_slab)) > 1e-6
    assert float(predict(changed, mol)["energy"] - e_mol) == 0.0


def test_checkpoint_loads_into_the_calculator(tmp_path, model):
    atoms = STRUCTURES["cu_bulk"]()
    path = save(model.float(), tmp_path / "allegro.pt")
    model.double()
    calc = EquiCatCalculator.from_checkpoint(path, dtype="float64")
    atoms.calc = calc
    want = predict(model, atoms, stress=True)
    assert abs(atoms.get_potential_energy() - float(want["energy"][0])) < 1e-5
    np.testing.assert_allclose(atoms.get_forces(), want["forces"].numpy(), atol=1e-5)
    np.testing.assert_allclose(atoms.get_stress(voigt=False), want["stress"][0].numpy(),
                               atol=1e-6)  # fmt: skip
    assert type(calc.predictor.model) is Allegro


def test_config_round_trips_through_plain_data():
    model = build("allegro", **SMALL, element_energies=[0.0, -1.5])
    again = build("allegro", **model.config.to_dict())
    assert again.config == model.config


def test_improper_rotations_keep_e_and_turn_f(model):
    """O(3), not only SO(3): parities are tracked (a parity mislabel gives O(1) errors)."""
    atoms = STRUCTURES["ethanol"]()
    errors = symmetry_errors(model, atoms, -random_rotation(2), np.zeros(3))
    assert max(errors.values()) < E3NN_TOL, errors
