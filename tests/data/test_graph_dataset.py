"""Lazy frame datasets, per-structure graphs and their collate, the atom-balanced sampler."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from equicat.data import formats
from equicat.data.dataset import StructureDataset, collate
from equicat.data.graph_dataset import FrameDataset, GraphDataset, collate_batches
from equicat.data.sampler import AtomBatchSampler, pack_by_atoms

from .labelled import labelled_frames

GRAPH_FIELDS = ("positions", "atomic_numbers", "cell", "pbc", "batch", "natoms", "edge_index",
                "cell_shifts", "fixed", "tags")  # fmt: skip


@pytest.fixture
def data_files(tmp_path):
    frames = labelled_frames()
    return frames, [
        formats.write_frames(tmp_path / "a.h5", frames[:3]),
        formats.write_frames(tmp_path / "b.db", frames[3:]),
    ]


def test_frame_dataset_is_lazy_structure_dataset(data_files):
    frames, paths = data_files
    lazy, eager = FrameDataset(paths), StructureDataset.from_files(paths)
    assert len(lazy) == len(eager) == 5
    assert lazy.natoms.tolist() == [len(a) for a in frames]
    for i in range(5):
        assert lazy[i].energy == eager[i].energy
        np.testing.assert_array_equal(lazy[i].forces, eager[i].forces)
    assert lazy[4].atoms.info["source"].endswith("b.db@1")
    assert lazy.locate(3) == (1, 0)


@pytest.mark.parametrize("order", [[0, 1, 2, 3, 4], [4, 1, 3]])
def test_collate_batches_equals_collate(data_files, order):
    _, paths = data_files
    frames = FrameDataset(paths)
    graphs = GraphDataset(frames, cutoff=4.0, max_neighbors=12, dtype=torch.float64)
    joined = collate_batches([graphs[i] for i in order])
    direct = collate([frames[i] for i in order], 4.0, 12, torch.float64)
    for name in GRAPH_FIELDS:
        assert torch.equal(getattr(joined.graph, name), getattr(direct.graph, name)), name
    assert torch.equal(joined.energy, direct.energy) and torch.equal(joined.forces, direct.forces)
    assert joined.graph.num_edges > 0


def test_dataloader_with_workers_and_sampler(data_files):
    _, paths = data_files
    graphs = GraphDataset(FrameDataset(paths), cutoff=4.0)
    first = graphs[0]  # the parent holds open file handles before the workers start
    sampler = AtomBatchSampler(graphs.natoms, max_atoms=30, seed=3)
    loader = torch.utils.data.DataLoader(
        graphs, batch_sampler=sampler, collate_fn=collate_batches, num_workers=2
    )
    batches = list(loader)
    assert len(batches) == len(sampler) >= 2
    for batch, indices in zip(batches, sampler, strict=True):
        direct = collate_batches([graphs[i] for i in indices])
        assert torch.equal(batch.energy, direct.energy)
        assert torch.equal(batch.graph.edge_index, direct.graph.edge_index)
    seen = sorted(int(n) for batch in batches for n in batch.graph.natoms)
    assert seen == sorted(graphs.natoms.tolist())
    assert torch.equal(graphs[0].forces, first.forces)


def test_pack_bounds_every_batch():
    natoms = np.random.default_rng(0).integers(2, 60, 500)
    order = np.random.default_rng(1).permutation(500)
    batches = pack_by_atoms(order, natoms, 200)
    assert sorted(i for b in batches for i in b) == list(range(500))
    assert [i for b in batches for i in b] == order.tolist()
    totals = np.array([natoms[b].sum() for b in batches])
    assert (totals <= 200).all()
    assert (totals[:-1] > 200 - natoms.max()).all()


def test_sampler_balances_atoms_better_than_fixed_size_batches():
    natoms = np.random.default_rng(0).integers(2, 120, 2000)
    sampler = AtomBatchSampler(natoms, max_atoms=600, seed=0)
    totals = np.array([natoms[b].sum() for b in sampler])[:-1]
    per_batch = len(natoms) // len(sampler)
    order = np.random.default_rng(0).permutation(len(natoms))
    fixed = natoms[order[: len(order) // per_batch * per_batch]].reshape(-1, per_batch).sum(1)
    assert totals.std() < 0.5 * fixed.std()


def test_sampler_is_seeded_and_deterministic():
    natoms = np.random.default_rng(0).integers(2, 80, 300)
    a = AtomBatchSampler(natoms, 400, seed=5)
    b = AtomBatchSampler(natoms, 400, seed=5)
    assert list(a) == list(b)
    first = list(a)
    a.set_epoch(1)
    assert list(a) != first
    a.set_epoch(0)
    assert list(a) == first
    assert list(AtomBatchSampler(natoms, 400, seed=6)) != first
    plain = list(AtomBatchSampler(natoms, 400, shuffle=False))
    assert [i for batch in plain for i in batch] == list(range(300))


@pytest.mark.parametrize("world_size", [2, 3])
@pytest.mark.parametrize("drop_last", [False, True])
def test_sampler_partitions_over_ranks(world_size, drop_last):
    natoms = np.random.default_rng(2).integers(2, 80, 301)
    kwargs = {"seed": 1, "world_size": world_size, "drop_last": drop_last}
    ranks = [AtomBatchSampler(natoms, 400, rank=r, **kwargs) for r in range(world_size)]
    single = AtomBatchSampler(natoms, 400, seed=1, drop_last=drop_last)
    lengths = {len(r) for r in ranks}
    assert len(lengths) == 1  # every rank runs the same number of steps
    seen = [i for r in ranks for batch in r for i in batch]
    if drop_last:
        assert len(seen) == len(set(seen))  # disjoint
    else:
        assert set(seen) == set(range(len(natoms)))  # all covered, padding repeats a few
        assert len(seen) - len(natoms) <= (world_size - 1) * max(len(b) for b in single)
    merged = [b for step in zip(*[list(r) for r in ranks], strict=True) for b in step]
    assert merged[: len(list(single))] == list(single)[: len(merged)]


def test_sampler_rejects_bad_arguments():
    with pytest.raises(ValueError, match="rank 2"):
        AtomBatchSampler([3, 4], 10, rank=2, world_size=2)
    with pytest.raises(ValueError, match="max_atoms"):
        AtomBatchSampler([3, 4], 0)
    with pytest.raises(ValueError, match="positive"):
        AtomBatchSampler([3, 0], 10)
