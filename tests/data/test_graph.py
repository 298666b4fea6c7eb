import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk, molecule
from ase.neighborlist import neighbor_list

from equicat.data import AtomicGraph, build_edges
from equicat.data.neighbors import (
    TIE_RESOLUTION,
    pair_distances,
    select_edges,
    vesin_candidates,
)

CUTOFF = 6.0


def graph64(atoms, max_neighbors=None, **kwargs) -> AtomicGraph:
    return AtomicGraph.from_atoms(atoms, CUTOFF, max_neighbors, dtype=torch.float64, **kwargs)


def edge_dict(graph: AtomicGraph) -> dict[tuple, float]:
    """{(i, j, shift): length} of a single-system graph."""
    j, i = graph.edge_index.tolist()
    shifts = graph.cell_shifts.round().long().tolist()
    lengths = graph.edge_vectors().norm(dim=1).tolist()
    return {(a, b, tuple(s)): d for a, b, s, d in zip(i, j, shifts, lengths, strict=True)}


# ---------------------------------------------------------------------------------------------
# neighbour search


@pytest.mark.parametrize("max_neighbors", [None, 20, 5])
def test_vesin_equals_torch(structure, max_neighbors):
    _, atoms = structure
    a = graph64(atoms, max_neighbors, method="vesin")
    b = graph64(atoms, max_neighbors, method="torch")
    assert a.num_edges > 0
    assert torch.equal(a.edge_index, b.edge_index)
    assert torch.equal(a.cell_shifts, b.cell_shifts)


def test_unwrapped_positions(structure):
    """Atoms outside the cell: same edges as the wrapped structure, shifts compensate."""
    name, atoms = structure
    moved = atoms.copy()
    moved.positions += np.array([13.3, -27.1, 5.2])  # not a lattice vector
    if atoms.pbc.any():
        moved.positions[::2] += 3 * atoms.cell.array[np.flatnonzero(atoms.pbc)[0]]
    ref = sorted(edge_dict(graph64(atoms)).values())
    for method in ("vesin", "torch"):
        graph = graph64(moved, method=method)
        np.testing.assert_allclose(sorted(edge_dict(graph).values()), ref, atol=1e-9)
    assert torch.equal(graph64(moved).edge_index, graph64(moved, method="torch").edge_index)


def test_edges_match_ase_neighbor_list(structure):
    _, atoms = structure
    graph = graph64(atoms)
    ours = edge_dict(graph)
    i, j, shifts, d = neighbor_list("ijSd", atoms, CUTOFF)
    theirs = {(a, b, tuple(s)): x for a, b, s, x in zip(i, j, shifts.tolist(), d, strict=True)}
    assert ours.keys() == theirs.keys()
    np.testing.assert_allclose([ours[k] for k in theirs], list(theirs.values()), atol=1e-10)
    lengths = np.array(list(ours.values()))
    assert (lengths > 0).all() and (lengths <= CUTOFF).all()


def test_edge_lengths_equal_minimum_image_distances(structure_factories):
    """5x5 slab: the cell is wider than 2 * cutoff, so every edge is the minimum image."""
    atoms = structure_factories["cu111_co_5x5x4"]()
    graph = graph64(atoms)
    j, i = graph.edge_index.numpy()
    mic = np.array([atoms.get_distance(a, b, mic=True) for a, b in zip(i, j, strict=True)])
    np.testing.assert_allclose(graph.edge_vectors().norm(dim=1).numpy(), mic, atol=1e-10)


def test_edge_sign_convention():
    """edge_index[0] is the source j: d = r_j - r_i (+ image offset)."""
    atoms = Atoms("H2", positions=[[0, 0, 0], [0.0, 0.0, 0.74]])
    graph = graph64(atoms)
    assert graph.edge_index.tolist() == [[1, 0], [0, 1]]
    np.testing.assert_allclose(graph.edge_vectors().numpy(), [[0, 0, 0.74], [0, 0, -0.74]])


def test_periodic_self_images_and_cutoff_inclusive():
    atoms = Atoms("Cu", positions=[[0.1, 0.2, 0.3]], cell=np.diag([3.0, 4.0, 30.0]), pbc=True)
    ours = edge_dict(AtomicGraph.from_atoms(atoms, 6.0, dtype=torch.float64))
    assert all(j == 0 and s != (0, 0, 0) for _, j, s in ours)
    # images at exactly the cutoff (2 * 3 Å) are neighbours: 0 < d <= cutoff
    assert (0, 0, (2, 0, 0)) in ours and (0, 0, (-2, 0, 0)) in ours
    assert (0, 0, (0, 0, 1)) not in ours


# ---------------------------------------------------------------------------------------------
# truncation


@pytest.mark.parametrize("max_neighbors", [20, 5, 1, 0])
def test_truncation_keeps_nearest_first(structure, max_neighbors):
    _, atoms = structure
    full = edge_dict(graph64(atoms))
    graph = graph64(atoms, max_neighbors)
    kept = edge_dict(graph)
    assert kept.keys() <= full.keys()
    for i in range(len(atoms)):
        mine = [d for (a, _, _), d in kept.items() if a == i]
        dropped = [d for k, d in full.items() if k[0] == i and k not in kept]
        assert len(mine) == min(max_neighbors, len(mine) + len(dropped))
        if mine and dropped:
            assert max(mine) <= min(dropped) + TIE_RESOLUTION


def test_edges_sorted_by_target_then_distance(structure):
    _, atoms = structure
    graph = graph64(atoms, 20)
    i = graph.edge_index[1]
    d = graph.edge_vectors().norm(dim=1)
    assert (i[1:] >= i[:-1]).all()
    same = i[1:] == i[:-1]
    assert (d[1:][same] >= d[:-1][same] - TIE_RESOLUTION).all()


def test_exact_ties_broken_by_source_and_shift():
    """fcc: 12 + 6 neighbours, then 2 of the 24 at a*sqrt(3/2) -- the smallest (j, shift).

    Off the origin, float64 round-off makes the 24 equal lengths differ in the last bits;
    that must not decide.
    """
    atoms = bulk("Cu", "fcc", a=3.61)
    atoms.positions += [0.3, 1.7, -2.9]
    full = edge_dict(graph64(atoms))
    kept = edge_dict(graph64(atoms, 20))
    third = sorted(k for k, d in full.items() if abs(d - 3.61 * 1.5**0.5) < 1e-6)
    assert len(third) == 24
    assert sorted(k for k in kept if k in third) == third[:2]
    shells = np.unique(np.round(list(kept.values()), 6), return_counts=True)[1]
    assert shells.tolist() == [12, 6, 2]


@pytest.mark.parametrize("max_neighbors", [None, 20])
def test_selection_independent_of_candidate_order(structure, max_neighbors):
    """The kept edges and their order depend on the pairs found, not on the search's order."""
    _, atoms = structure
    found = vesin_candidates(atoms.positions, atoms.cell.array, atoms.pbc, CUTOFF)
    i, j, s = (torch.from_numpy(x) for x in found)
    pos, cell = torch.from_numpy(atoms.positions), torch.from_numpy(atoms.cell.array)
    d = pair_distances(pos, cell, i, j, s)
    expected = select_edges(i, j, s, d, len(atoms), CUTOFF, max_neighbors)
    for seed in range(3):
        p = torch.randperm(i.shape[0], generator=torch.Generator().manual_seed(seed))
        got = select_edges(i[p], j[p], s[p], d[p], len(atoms), CUTOFF, max_neighbors)
        assert all(torch.equal(a, b) for a, b in zip(got, expected, strict=True))


# ---------------------------------------------------------------------------------------------
# batching, fields, API


def test_batched_equals_single(structure_factories):
    frames = [structure_factories[k]() for k in ("cu111_co_3x3x4", "cu_fcc_1atom", "ethanol")]
    batched = graph64(frames, 20)
    singles = [graph64(f, 20) for f in frames]
    offsets = np.cumsum([0] + [len(f) for f in frames[:-1]])
    edge_index = torch.cat(
        [g.edge_index + int(o) for g, o in zip(singles, offsets, strict=True)], 1
    )
    assert torch.equal(batched.edge_index, edge_index)
    assert torch.equal(batched.cell_shifts, torch.cat([g.cell_shifts for g in singles]))
    assert torch.equal(batched.edge_vectors(), torch.cat([g.edge_vectors() for g in singles]))
    for name in ("positions", "atomic_numbers", "batch", "fixed", "tags"):
        parts = [getattr(g, name) + (k if name == "batch" else 0) for k, g in enumerate(singles)]
        assert torch.equal(getattr(batched, name), torch.cat(parts)), name
    for name in ("cell", "pbc", "natoms"):
        assert torch.equal(getattr(batched, name), torch.cat([getattr(g, name) for g in singles]))
    assert (batched.num_systems, batched.num_atoms) == (3, sum(len(f) for f in frames))


def test_fixed_and_tags(structure_factories):
    slab = structure_factories["cu111_co_3x3x4"]()
    graph = AtomicGraph.from_atoms(slab, CUTOFF, 20)
    expected = np.zeros(len(slab), dtype=bool)
    expected[slab.constraints[0].get_indices()] = True
    assert expected.sum() == 18
    assert graph.fixed.tolist() == expected.tolist() and graph.fixed.dtype == torch.bool
    assert graph.tags.tolist() == slab.get_tags().tolist() and graph.tags.dtype == torch.int64
    assert set(graph.tags.tolist()) == {0, 1, 2}
    mol = AtomicGraph.from_atoms(molecule("H2O"), CUTOFF)
    assert not mol.fixed.any() and not mol.tags.any()
    assert torch.equal(mol.cell, torch.zeros(1, 3, 3)) and not mol.pbc.any()


def test_dtypes_devices_and_repr(structure_factories):
    graph = AtomicGraph.from_atoms(structure_factories["cu_triclinic"](), CUTOFF, 20)
    assert graph.positions.dtype == graph.cell.dtype == graph.cell_shifts.dtype == torch.float32
    assert graph.edge_index.dtype == graph.batch.dtype == graph.natoms.dtype == torch.int64
    g64 = graph.to(dtype=torch.float64)
    assert g64.positions.dtype == g64.cell_shifts.dtype == torch.float64
    assert g64.edge_index.dtype == torch.int64 and g64.pbc.dtype == torch.bool
    assert graph.positions.dtype == torch.float32  # the original is untouched
    with pytest.raises(ValueError, match="float dtype"):
        graph.to(dtype=torch.int32)
    assert repr(graph) == f"AtomicGraph(N=8, B=1, E={graph.num_edges}, float32, cpu)"
    with pytest.raises(ValueError, match="AtomicGraph.tags has shape"):
        AtomicGraph(**{**vars(graph), "tags": graph.tags[:3]})


def test_with_positions_and_rebuild_edges(structure_factories):
    atoms = structure_factories["cu111_co_3x3x4"]()
    graph = graph64(atoms, 20)
    moved = atoms.copy()
    moved.rattle(0.3, seed=7)
    same_edges = graph.with_positions(torch.from_numpy(moved.positions))
    assert torch.equal(same_edges.edge_index, graph.edge_index)
    assert not torch.allclose(same_edges.edge_vectors(), graph.edge_vectors())
    rebuilt = same_edges.rebuild_edges(CUTOFF, 20)
    fresh = graph64(moved, 20)
    assert torch.equal(rebuilt.edge_index, fresh.edge_index)
    assert torch.equal(rebuilt.cell_shifts, fresh.cell_shifts)
    assert rebuilt.positions is same_edges.positions
    strained = graph.with_positions(graph.positions * 1.01, graph.cell * 1.01)
    np.testing.assert_allclose(
        strained.edge_vectors().numpy(), 1.01 * graph.edge_vectors().numpy(), rtol=1e-12
    )


def test_build_edges_on_tensors(structure_factories):
    graph = graph64(structure_factories["ti_hcp"](), 20)
    edge_index, shifts = build_edges(
        graph.positions, graph.cell, graph.pbc, graph.natoms, CUTOFF, 20
    )
    assert torch.equal(edge_index, graph.edge_index)
    assert torch.equal(shifts.to(torch.float64), graph.cell_shifts)


# ---------------------------------------------------------------------------------------------
# gradients


def test_edge_vector_gradients(structure_factories):
    graph = graph64(structure_factories["cu_triclinic"](), 20)
    positions = graph.positions.clone().requires_grad_(True)
    cell = graph.cell.clone().requires_grad_(True)
    lengths = graph.with_positions(positions, cell).edge_vectors().norm(dim=1)
    lengths.sum().backward()
    assert torch.isfinite(positions.grad).all() and positions.grad.abs().sum() > 0
    assert torch.isfinite(cell.grad).all() and cell.grad.abs().sum() > 0

    def vectors(p, c):
        return graph.with_positions(p, c).edge_vectors()

    inputs = (graph.positions.clone().requires_grad_(True), graph.cell.clone().requires_grad_(True))
    assert torch.autograd.gradcheck(vectors, inputs)


# ---------------------------------------------------------------------------------------------
# errors a user can act on


def test_nan_position_names_the_atom(structure_factories):
    atoms = structure_factories["cu111_co_3x3x4"]()
    atoms.positions[5, 1] = np.nan
    with pytest.raises(ValueError, match=r"System 0: atom 5 has a non-finite position"):
        AtomicGraph.from_atoms(atoms, CUTOFF)
    with pytest.raises(ValueError, match=r"System 1: atom 5 has a non-finite position"):
        AtomicGraph.from_atoms([molecule("H2O"), atoms], CUTOFF, method="torch")


@pytest.mark.parametrize("method", ["vesin", "torch"])
def test_overlapping_atoms_named_with_distance(structure_factories, method):
    atoms = structure_factories["cu111_co_3x3x4"]()
    atoms.positions[30] = atoms.positions[7] + [0.03, 0.0, 0.04]
    with pytest.raises(ValueError, match=r"atom 7 \(Cu\) and atom 30 \(Cu\) are 0\.05 Å apart"):
        AtomicGraph.from_atoms(atoms, CUTOFF, method=method)
    # the threshold is a keyword; 0 switches the check off and zero-length edges never appear
    AtomicGraph.from_atoms(atoms, CUTOFF, min_distance=0.04, method=method)
    atoms.positions[30] = atoms.positions[7]
    graph = AtomicGraph.from_atoms(atoms, CUTOFF, min_distance=0, method=method)
    assert (graph.edge_vectors().norm(dim=1) > 0).all()


def test_tiny_cell_names_the_self_image():
    atoms = Atoms("Cu", cell=np.diag([0.05, 3.0, 3.0]), pbc=True)
    with pytest.raises(ValueError, match=r"atom 0 \(Cu\) is 0\.05 Å from its own periodic image"):
        AtomicGraph.from_atoms(atoms, CUTOFF)


def test_missing_cell_on_periodic_system():
    atoms = molecule("H2O")
    atoms.pbc = [True, True, False]
    atoms.cell = [[10.0, 0, 0], [0, 0, 0], [0, 0, 0]]
    with pytest.raises(ValueError, match=r"missing cell on a periodic system: pbc\[1\] is True"):
        AtomicGraph.from_atoms(atoms, CUTOFF)
    atoms.cell = [[10.0, 0, 0], [20.0, 0, 0], [0, 0, 0]]
    with pytest.raises(ValueError, match=r"periodic cell vectors \[0, 1\] are linearly dependent"):
        AtomicGraph.from_atoms(atoms, CUTOFF, method="torch")
    atoms.pbc = [True, False, False]  # the redundant vector is no longer periodic: fine
    assert AtomicGraph.from_atoms(atoms, CUTOFF).num_edges == 6


@pytest.mark.parametrize("method", ["vesin", "torch"])
def test_empty_system_in_batch(method):
    frames = [molecule("H2O"), Atoms(), Atoms("H", cell=[2.0, 2.0, 2.0], pbc=True)]
    graph = AtomicGraph.from_atoms(frames, 3.0, 4, method=method)
    assert graph.natoms.tolist() == [3, 0, 1]
    assert graph.batch.tolist() == [0, 0, 0, 2]
    # water: 3 * 2 edges; the lone H: 4 of its 6 images at 2 Å
    assert torch.bincount(graph.edge_index[1]).tolist() == [2, 2, 2, 4]


def test_bad_arguments():
    with pytest.raises(ValueError, match="no structures"):
        AtomicGraph.from_atoms([], CUTOFF)
    with pytest.raises(TypeError, match="Structure 1 is a str"):
        AtomicGraph.from_atoms([molecule("H2O"), "H2O"], CUTOFF)
    with pytest.raises(ValueError, match="Unknown neighbour method 'ase'"):
        AtomicGraph.from_atoms(molecule("H2O"), CUTOFF, method="ase")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_torch_method_on_cuda(structure):
    _, atoms = structure
    cpu = graph64(atoms, 20)
    gpu = graph64(atoms, 20, method="torch", device="cuda")
    assert gpu.edge_index.is_cuda and gpu.positions.is_cuda
    assert torch.equal(gpu.edge_index.cpu(), cpu.edge_index)
    assert torch.equal(gpu.cell_shifts.cpu(), cpu.cell_shifts)
