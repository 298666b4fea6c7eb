"""EquiformerV2: rotation, translation and permutation symmetry, batching, determinism.

Two kinds of rotation checks:

* with the sphere-grid non-linearities linearised (:func:`physics.linearize_grid_nonlinearities`)
  the model is exactly equivariant, so everything else (edge frames, Wigner matrices, order
  truncation and its rescaling, attention, heads) must be equivariant to ~1e-10 in float64;
* the model as it is leaves a residual from its grid activations, which is measured, bounded
  and must shrink as the grid is refined.

Measured values are printed in the "measured errors" section at the end of the run.
"""

import numpy as np
import pytest
import torch
from ase import Atoms

from .physics import (
    assert_batch_consistency,
    assert_permutation_equivariance,
    assert_rotation_equivariance,
    linearize_grid_nonlinearities,
    predict,
    random_rotation,
    small_equiformer,
    symmetry_errors,
)
from .structures import PERIODIC, STRUCTURES

CONFIGS = {"l2m1": dict(lmax=2, mmax=1), "l3m2": dict(lmax=3, mmax=2)}
MODES = ["direct", "conservative"]
SHIFT = np.array([0.31, -1.7, 2.2])  # Å


def _label(quantity: str) -> str:
    return "energy (eV/atom)" if quantity == "energy_per_atom" else f"{quantity} (rel)"


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("config", sorted(CONFIGS))
@pytest.mark.parametrize("structure", sorted(STRUCTURES))
def test_exactly_equivariant_without_grid_nonlinearities(structure, config, mode, error_table):
    model = linearize_grid_nonlinearities(small_equiformer(forces=mode, **CONFIGS[config]))
    worst = assert_rotation_equivariance(model, STRUCTURES[structure](), tol=1e-10)
    for quantity, err in worst.items():
        error_table.append(f"linearised {_label(quantity)}", err, 1e-10)


# bounds on the grid residual at the default 18x18 grid, about 4x the largest value measured
# over these structures, two rotations, both configs and both force modes (energies of these
# random models are O(1) eV per structure; "energy" relative to |E| is only recorded)
RESIDUAL_BOUNDS = {"energy_per_atom": 3e-4, "forces": 5e-2, "stress": 5e-2}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("config", sorted(CONFIGS))
@pytest.mark.parametrize("structure", sorted(STRUCTURES))
def test_grid_residual_of_rotation_symmetry_is_bounded(structure, config, mode, error_table):
    model = small_equiformer(forces=mode, **CONFIGS[config])
    atoms = STRUCTURES[structure]()
    worst: dict[str, float] = {}
    for seed in (1, 2):
        for quantity, err in symmetry_errors(model, atoms, random_rotation(seed), SHIFT).items():
            worst[quantity] = max(worst.get(quantity, 0.0), err)
    for quantity, err in worst.items():
        bound = RESIDUAL_BOUNDS.get(quantity, float("nan"))
        error_table.append(f"grid 18 {_label(quantity)}", err, bound)
        assert not err >= bound, (quantity, err)
    # the grid activations are really in use: the residual is not round-off
    assert worst["energy"] > 1e-10


@pytest.mark.parametrize("mode", MODES)
def test_grid_residual_shrinks_with_grid_resolution(mode, error_table):
    atoms = STRUCTURES["cu111_co"]()
    by_res = {}
    for res in (10, 18, 28):
        model = small_equiformer(forces=mode, grid_resolution=res)
        by_res[res] = symmetry_errors(model, atoms, random_rotation(1), SHIFT)
        for quantity, err in by_res[res].items():
            error_table.append(f"grid {res} {_label(quantity)}", err, float("nan"))
    for quantity in ("energy", "forces"):
        errs = [by_res[r][quantity] for r in (10, 18, 28)]
        assert errs[0] > errs[1] > errs[2], (quantity, errs)
        assert errs[2] < 0.05 * errs[0], (quantity, errs)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("structure", sorted(STRUCTURES))
def test_translation_invariance_is_exact(structure, mode):
    """A translation (and re-wrapping into the cell) leaves every edge vector unchanged."""
    model = small_equiformer(forces=mode)
    atoms = STRUCTURES[structure]()
    moved = atoms.copy()
    moved.positions += SHIFT
    if atoms.pbc.all():
        moved.wrap()
    ref, new = predict(model, atoms), predict(model, moved)
    torch.testing.assert_close(new["energy"], ref["energy"], rtol=1e-12, atol=0)
    torch.testing.assert_close(new["forces"], ref["forces"], rtol=0, atol=1e-11)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("structure", sorted(STRUCTURES))
def test_permutation_invariance(structure, mode):
    assert_permutation_equivariance(small_equiformer(forces=mode), STRUCTURES[structure]())


@pytest.mark.parametrize("mode", MODES)
def test_batched_equals_one_by_one(mode):
    structures = [STRUCTURES[name]() for name in ("cu111_co", "cu_bulk", "ethanol")]
    assert_batch_consistency(small_equiformer(forces=mode), structures)


def test_batched_stress_equals_one_by_one():
    model = small_equiformer(forces="conservative")
    assert_batch_consistency(model, [STRUCTURES[name]() for name in PERIODIC], stress=True)


@pytest.mark.parametrize("mode", MODES)
def test_deterministic(mode):
    """Two calls on the same input agree bitwise (no random roll in the edge frames)."""
    model = small_equiformer(forces=mode)
    atoms = STRUCTURES["cu111_co"]()
    first, second = predict(model, atoms), predict(model, atoms.copy())
    assert torch.equal(first["energy"], second["energy"])
    assert torch.equal(first["forces"], second["forces"])


@pytest.mark.parametrize("z", [0, 90, 92])
def test_unknown_element_is_a_value_error_naming_the_atom(z):
    model = small_equiformer(max_num_elements=90)
    atoms = Atoms(numbers=[6, 8, z, 1], positions=[[0, 0, 0], [1.2, 0, 0], [0, 1.5, 0.3],
                                                   [-1.0, 0.2, 0.1]])  # fmt: skip
    with pytest.raises(ValueError, match=rf"atom 2\b.*\b{z}\b"):
        predict(model, atoms)
