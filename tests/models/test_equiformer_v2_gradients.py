"""Conservative EquiformerV2: forces are -dE/dr and stress is (1/V) dE/d(strain).

Finite differences keep the graph's edges fixed (they differentiate the model, not the
neighbour list) and use central steps in float64. Stress is checked against both our own
finite-difference strain derivative and ASE's ``calculate_numerical_stress`` (which rebuilds
the graph for every strained cell).
"""

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk

from .physics import (
    ase_numerical_stress,
    assert_conservative_forces,
    finite_difference_forces,
    finite_difference_stress,
    linearize_grid_nonlinearities,
    predict,
    small_equiformer,
)
from .structures import PERIODIC, STRUCTURES

CONFIGS = {"l2m1": dict(lmax=2, mmax=1), "l3m2": dict(lmax=3, mmax=2)}


def _conservative(config: str = "l2m1", linear: bool = False):
    model = small_equiformer(forces="conservative", **CONFIGS[config])
    return linearize_grid_nonlinearities(model) if linear else model


@pytest.mark.parametrize("config", sorted(CONFIGS))
@pytest.mark.parametrize("structure", sorted(STRUCTURES))
def test_forces_match_directional_finite_differences(structure, config):
    model, atoms = _conservative(config), STRUCTURES[structure]()
    assert predict(model, atoms)["forces"].abs().max() > 1e-2  # a real slope to check
    assert_conservative_forces(model, atoms, rtol=1e-8)


def _axis_bonds() -> Atoms:
    """Bonds exactly along +x, +y, -y and +z: where Euler edge frames are singular."""
    return Atoms("COHHN", positions=[[0.0, 0.0, 0.0], [1.2, 0.0, 0.0], [0.0, 1.1, 0.0],
                                     [0.0, -1.05, 0.0], [0.0, 0.0, 1.3]])  # fmt: skip


@pytest.mark.parametrize("linear", [True, False], ids=["linearised", "full"])
def test_forces_match_finite_differences_for_axis_aligned_bonds(linear):
    """Every component: a lost derivative of an edge frame shows up as a wrong force."""
    model = _conservative(linear=linear)
    atoms = _axis_bonds()
    forces = predict(model, atoms)["forces"]
    numeric = finite_difference_forces(model, atoms, h=1e-4)
    assert numeric.abs().max() > 1e-2
    torch.testing.assert_close(forces, numeric, rtol=0, atol=1e-8)


@pytest.mark.parametrize("config", sorted(CONFIGS))
@pytest.mark.parametrize("structure", PERIODIC)
def test_stress_is_symmetrised_strain_derivative(structure, config):
    model = _conservative(config)
    atoms = STRUCTURES[structure]()
    stress = predict(model, atoms, stress=True)["stress"][0]
    numeric = finite_difference_stress(model, atoms, h=1e-5)  # general (non-symmetric) strain
    assert stress.abs().max() > 1e-3
    torch.testing.assert_close(stress, stress.T, rtol=0, atol=1e-14)
    torch.testing.assert_close(stress, 0.5 * (numeric + numeric.T), rtol=0,
                               atol=1e-8 * float(stress.abs().max()))  # fmt: skip


@pytest.mark.parametrize("structure", PERIODIC)
def test_stress_matches_ase_numerical_stress(structure):
    """Same sign and Voigt semantics as ASE: sigma = (1/V) dE/d(symmetric strain)."""
    model = _conservative()
    atoms = STRUCTURES[structure]()
    stress = predict(model, atoms, stress=True)["stress"][0].numpy()
    numeric = ase_numerical_stress(model, atoms, eps=1e-5)  # plain central differences: O(eps^2)
    np.testing.assert_allclose(stress, numeric, rtol=0, atol=1e-5 * np.abs(stress).max())


def test_stress_sign_under_compression():
    """Squeezing a cell raises the energy: ASE convention gives a negative (compressive) trace
    wherever dE/d(strain) < 0, i.e. the stress trace has the sign of dE/d(log V)."""
    model = _conservative()
    atoms = STRUCTURES["cu_bulk"]()
    trace = float(torch.trace(predict(model, atoms, stress=True)["stress"][0]))
    energies = []
    for scale in (1.0 + 1e-5, 1.0 - 1e-5):
        strained = atoms.copy()
        strained.set_cell(atoms.cell.array * scale, scale_atoms=True)
        energies.append(float(predict(model, strained)["energy"][0]))
    de_dlogv = (energies[0] - energies[1]) / (2 * 3e-5)  # d(log V) = 3 d(scale)
    assert np.sign(trace) == np.sign(de_dlogv)
    assert abs(trace / 3 - de_dlogv / atoms.get_volume()) < 1e-6 * abs(trace)


@pytest.mark.parametrize(("linear", "bound"), [(True, 1e-8), (False, 1e-2)],
                         ids=["linearised", "full"])  # fmt: skip
def test_antisymmetric_strain_derivative_is_a_rotation(linear, bound, error_table):
    """dE/d(strain) is symmetric iff E is rotation invariant: ~0 when linearised, the grid
    residual otherwise (measured 9e-4 here; the symmetrised stress discards it)."""
    numeric = finite_difference_stress(_conservative(linear=linear), STRUCTURES["cu_bulk"]())
    antisym = float((numeric - numeric.T).abs().max() / numeric.abs().max())
    error_table.append("antisymmetric dE/d(strain) (rel)", antisym, bound)
    assert antisym < bound


@pytest.mark.parametrize("linear", [True, False], ids=["linearised", "full"])
def test_stress_of_an_axis_aligned_cubic_cell(linear):
    """Cell vectors along x, y, z: the periodic self-images give edges exactly on the axes."""
    model = _conservative(linear=linear)
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True)
    atoms.rattle(0.05, seed=1)
    stress = predict(model, atoms, stress=True)["stress"][0]
    numeric = finite_difference_stress(model, atoms, h=1e-5)
    torch.testing.assert_close(stress, 0.5 * (numeric + numeric.T), rtol=0,
                               atol=1e-8 * float(stress.abs().max()))  # fmt: skip


def test_stress_needs_a_conservative_model_and_a_cell():
    direct = small_equiformer(forces="direct")
    with pytest.raises(ValueError, match="conservative"):
        predict(direct, STRUCTURES["cu_bulk"](), stress=True)
    with pytest.raises(ValueError, match="volume"):
        predict(_conservative(), STRUCTURES["ethanol"](), stress=True)


def test_forces_sum_to_zero():
    """Translation invariance of E: the total force vanishes (Newton's third law)."""
    for name in sorted(STRUCTURES):
        forces = predict(_conservative(), STRUCTURES[name]())["forces"]
        assert forces.sum(0).abs().max() < 1e-12 * max(1.0, float(forces.abs().max())), name
