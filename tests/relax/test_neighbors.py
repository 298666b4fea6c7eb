"""The Verlet neighbour list gives the model exactly the graph of a fresh search."""

from __future__ import annotations

import pytest
import torch
from ase.build import bulk

from equicat.data import AtomicGraph, build_edges
from equicat.relax import ModelPotential, NeighborList, lbfgs_init, lbfgs_step

from ..helpers import cu_slab
from .systems import predictor

CUTOFF = 4.0


def _graph():
    cu = bulk("Cu", "fcc", a=3.6).repeat((2, 2, 2))
    cu.rattle(0.05, seed=1)
    return AtomicGraph.from_atoms([cu_slab(0), cu], CUTOFF, dtype=torch.float64)


def _edges(graph):
    """Edges as a set of (source, target, shift) and in order."""
    rows = torch.cat([graph.edge_index.T, graph.cell_shifts.long()], 1).tolist()
    return set(map(tuple, rows)), rows


def _moved(graph, scale, systems=(0, 1)):
    """Every atom of ``systems`` displaced by exactly ``scale`` Å in a random direction."""
    gen = torch.Generator().manual_seed(0)
    d = torch.randn(graph.num_atoms, 3, generator=gen, dtype=torch.float64)
    d = scale * d / d.norm(dim=1, keepdim=True)
    d[~torch.isin(graph.batch, torch.tensor(systems))] = 0.0
    return graph.with_positions(graph.positions + d)


@pytest.mark.parametrize("max_neighbors", [None, 8])
def test_selection_equals_fresh_search_within_skin(max_neighbors):
    graph = _graph()
    nl = NeighborList.build(graph, CUTOFF, max_neighbors, skin=1.0)
    moved = _moved(graph, 0.49)  # each pair distance changes by up to 0.98 Å
    nl = nl.update(moved)
    assert nl.searches.tolist() == [1, 1]  # no atom beyond skin / 2: no new search
    ours = nl.select(moved)
    edge_index, shifts = build_edges(
        moved.positions, moved.cell, moved.pbc, moved.natoms, CUTOFF, max_neighbors
    )
    fresh = moved.rebuild_edges(CUTOFF, max_neighbors)
    assert torch.equal(fresh.edge_index, edge_index)
    assert _edges(ours)[0] == _edges(fresh)[0]
    assert _edges(ours)[0] != _edges(nl.select(graph))[0]  # the moves changed the graph
    if max_neighbors is not None:  # truncation: same rule, same order
        assert _edges(ours)[1] == _edges(fresh)[1]
        assert torch.equal(ours.edge_index, fresh.edge_index)


def test_only_systems_beyond_half_skin_are_searched_again():
    graph = _graph()
    nl = NeighborList.build(graph, CUTOFF, None, skin=0.6)
    moved = _moved(graph, 0.31, systems=(1,))
    nl = nl.update(moved)
    assert nl.searches.tolist() == [1, 2]
    assert torch.equal(nl.reference[moved.batch == 1], moved.positions[moved.batch == 1])
    assert torch.equal(nl.reference[moved.batch == 0], graph.positions[graph.batch == 0])
    # the rebuilt list is grouped by system again and selects the fresh graph
    systems = moved.batch[nl.candidates[1]]
    assert bool((systems[1:] >= systems[:-1]).all())
    assert _edges(nl.select(moved))[0] == _edges(moved.rebuild_edges(CUTOFF))[0]


def test_skin_zero_searches_at_every_step(minimum):
    potential = ModelPotential.from_predictor(predictor())
    graph = potential.graph([minimum, cu_slab(1, fixed=(0, 1, 2, 3))])
    state = lbfgs_init(graph, potential, fmax=1e-6, skin=0.0)
    for _ in range(3):
        state = lbfgs_step(state, potential)
    assert state.neighbors.searches.tolist() == [4, 4]
    state = lbfgs_init(graph, potential, fmax=1e-6, skin=1.0)
    for _ in range(3):
        state = lbfgs_step(state, potential)
    assert state.neighbors.searches.tolist() == [1, 1]  # L-BFGS moves < 0.04 Å per step
    assert _edges(state.graph)[0] == _edges(state.graph.rebuild_edges(4.0))[0]
