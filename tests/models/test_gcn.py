"""L-set GCN physics: symmetries for several degree sets, batching, -dE/dr, stress, embeddings."""

import numpy as np
import pytest
import torch

from equicat.calculators import EquiCatCalculator
from equicat.checkpoints import save
from equicat.models import build
from equicat.models.gcn import GCNConfig, LSetGCN

from .physics import (
    assert_batch_consistency,
    assert_conservative_forces,
    assert_permutation_equivariance,
    assert_rotation_equivariance,
    finite_difference_stress,
    graph_of,
    perturb_parameters,
    predict,
    random_rotation,
    symmetry_errors,
    transform,
)
from .structures import PERIODIC, STRUCTURES

SMALL = dict(hidden_channels=4, atom_embedding_dim=8, num_layers=2, num_bessel=8,
             radial_hidden=8, readout_hidden=8, cutoff=4.0, avg_degree=6.0)  # fmt: skip
SETS = [(0, 1, 2), (0, 3, 4, 5, 6)]
# e3nn's Clebsch-Gordan buffers are built in float32 (4e-9 off), see test_allegro.py
E3NN_TOL = 1e-8


def small_gcn(degrees=(0, 1, 2), seed: int = 0, **overrides) -> LSetGCN:
    """A float64 :data:`SMALL` GCN over ``degrees`` with perturbed weights, eval mode."""
    torch.manual_seed(seed)
    model = LSetGCN(GCNConfig(degrees=degrees, **{**SMALL, **overrides})).double().eval()
    return perturb_parameters(model, 0.1, seed)


@pytest.fixture(scope="module", params=SETS, ids=str)
def model(request):
    return small_gcn(request.param)


@pytest.mark.parametrize("name", sorted(STRUCTURES))
def test_rotation_translation_invariance(model, name, error_table):
    worst = assert_rotation_equivariance(model, STRUCTURES[name](), tol=E3NN_TOL)
    error_table.append(f"GCN {list(model.config.degrees)} rotation, {name}",
                       max(worst.values()), E3NN_TOL)  # fmt: skip


def test_permutation_and_batching(model):
    assert_permutation_equivariance(model, STRUCTURES["cu111_co"]())
    assert_batch_consistency(model, [STRUCTURES[n]() for n in sorted(STRUCTURES)])
    assert_batch_consistency(model, [STRUCTURES[n]() for n in PERIODIC], stress=True)


_CACHE: dict = {}


def cached_gcn(degrees) -> LSetGCN:
    if degrees not in _CACHE:
        _CACHE[degrees] = small_gcn(degrees)
    return _CACHE[degrees]


# finite differences of the large degree set take minutes on a shared CPU: slow-marked
BIG = (0, 3, 4, 5, 6)


@pytest.mark.parametrize(
    ("degrees", "name"),
    [((0, 1, 2), "ethanol"), ((0, 1, 2), "cu_bulk"),
     pytest.param(BIG, "ethanol", marks=pytest.mark.slow),
     pytest.param(BIG, "cu_bulk", marks=pytest.mark.slow)],
)  # fmt: skip
def test_forces_are_minus_energy_gradient(degrees, name):
    assert_conservative_forces(cached_gcn(degrees), STRUCTURES[name]())


@pytest.mark.parametrize("degrees", [(0, 1, 2), pytest.param(BIG, marks=pytest.mark.slow)])
def test_stress_matches_finite_strain(degrees):
    model = cached_gcn(degrees)
    atoms = STRUCTURES["cu_bulk"]()
    stress = predict(model, atoms, stress=True)["stress"][0]
    numeric = finite_difference_stress(model, atoms)
    assert stress.abs().max() > 1e-4
    torch.testing.assert_close(stress, 0.5 * (numeric + numeric.T), rtol=0, atol=1e-9)


def test_embeddings_per_degree_have_rotation_invariant_norms(model):
    atoms = STRUCTURES["ethanol"]()
    rotated = transform(atoms, random_rotation(4), np.array([0.3, -1.0, 2.0]))
    emb, emb_rot = model.node_embeddings(graph_of(model, atoms)), model.node_embeddings(
        graph_of(model, rotated))  # fmt: skip
    assert sorted(emb) == list(model.config.degrees)
    for l_, x in emb.items():
        assert x.shape == (len(atoms), model.config.hidden_channels, 2 * l_ + 1)
        assert x.abs().max() > 1e-6  # every degree is populated
        torch.testing.assert_close(x.norm(dim=2), emb_rot[l_].norm(dim=2), rtol=0, atol=1e-8)


def test_skipped_degrees_are_absent():
    cfg = small_gcn((0, 3, 4, 5, 6)).config
    assert cfg.degrees == (0, 3, 4, 5, 6)
    with pytest.raises(ValueError, match="must include 0"):
        GCNConfig(degrees=(1, 2))


def test_checkpoint_loads_into_the_calculator(tmp_path):
    model = small_gcn((0, 3, 4))
    atoms = STRUCTURES["cu_bulk"]()
    path = save(model, tmp_path / "gcn.pt")
    atoms.calc = EquiCatCalculator.from_checkpoint(path, dtype="float64")
    want = predict(model, atoms, stress=True)
    # the checkpoint rebuilds a float32 model, so weights are rounded to float32
    assert abs(atoms.get_potential_energy() - float(want["energy"][0])) < 1e-5
    np.testing.assert_allclose(atoms.get_forces(), want["forces"].numpy(), atol=1e-5)
    again = build("gcn", **model.config.to_dict())
    assert again.config == model.config


def test_improper_rotations_keep_e_and_turn_f(model):
    """O(3), not only SO(3): parities are tracked (a parity mislabel gives O(1) errors)."""
    atoms = STRUCTURES["ethanol"]()
    errors = symmetry_errors(model, atoms, -random_rotation(2), np.zeros(3))
    assert max(errors.values()) < E3NN_TOL, errors
