from __future__ import annotations

import numpy as np
import pytest
import torch
from ase.build import bulk, fcc111, molecule
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator

from equicat.data import AtomicGraph
from equicat.data.dataset import (
    StructureDataset,
    atomic_open,
    collate,
    frame_labels,
    read_frames,
    write_frames,
)


def emt_frames() -> list:
    frames = [fcc111("Cu", (2, 2, 3), vacuum=6.0), bulk("Pt", "fcc", a=3.9).repeat(2)]
    frames.append(molecule("CO", vacuum=4.0, pbc=True))
    out = []
    for i, atoms in enumerate(frames):
        atoms.info.pop("adsorbate_info", None)
        atoms.rattle(0.05, seed=i)
        atoms.calc = EMT()
        e, f = atoms.get_potential_energy(), atoms.get_forces()
        atoms.calc = SinglePointCalculator(atoms, energy=e, forces=f)
        out.append(atoms)
    return out


def test_labels_from_calculator_or_info_arrays():
    atoms = emt_frames()[0]
    energy, forces = frame_labels(atoms)
    plain = atoms.copy()  # no calculator
    plain.info["energy"] = energy
    plain.arrays["forces"] = forces.copy()
    e2, f2 = frame_labels(plain)
    assert e2 == energy and np.array_equal(f2, forces)


def test_missing_or_bad_labels_name_the_frame(tmp_path):
    atoms = bulk("Cu")
    with pytest.raises(ValueError, match="frame 7 has no energy"):
        frame_labels(atoms, "frame 7")
    atoms.info["energy"] = 1.0
    atoms.arrays["forces"] = np.zeros((1, 3))
    atoms.info["energy"] = float("nan")
    with pytest.raises(ValueError, match="non-finite"):
        frame_labels(atoms)
    path = tmp_path / "unlabelled.extxyz"
    write_frames(path, [bulk("Cu"), bulk("Au")])
    with pytest.raises(ValueError, match=r"unlabelled.extxyz@0 has no energy"):
        StructureDataset.from_files(path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        StructureDataset.from_files(tmp_path / "missing.extxyz")


def test_collate_matches_from_atoms_and_keeps_atom_order(tmp_path):
    frames = emt_frames()
    path = write_frames(tmp_path / "d.extxyz", frames)
    ds = StructureDataset.from_files(path)
    assert len(ds) == 3 and ds.elements == [6, 8, 29, 78]
    batch = collate([ds[2], ds[0]], cutoff=4.0, max_neighbors=None, dtype=torch.float64)
    graph = AtomicGraph.from_atoms([ds[2].atoms, ds[0].atoms], 4.0, None, dtype=torch.float64)
    for name in ("positions", "atomic_numbers", "edge_index", "cell_shifts", "batch", "tags"):
        assert torch.equal(getattr(batch.graph, name), getattr(graph, name)), name
    assert batch.energy.dtype == batch.forces.dtype == torch.float64
    expect_e = [frames[2].get_potential_energy(), frames[0].get_potential_energy()]
    np.testing.assert_allclose(batch.energy.numpy(), expect_e, rtol=1e-12)
    expect_f = np.concatenate([frames[2].get_forces(), frames[0].get_forces()])
    np.testing.assert_allclose(batch.forces.numpy(), expect_f, atol=1e-7)
    assert batch.to("cpu").graph.num_atoms == len(frames[0]) + len(frames[2])


def test_write_frames_is_atomic(tmp_path):
    path = tmp_path / "x.extxyz"
    write_frames(path, emt_frames()[:1])
    before = path.read_text()
    with pytest.raises(RuntimeError), atomic_open(path) as fh:
        fh.write("partial")
        raise RuntimeError("killed mid-write")
    assert path.read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["x.extxyz"]
    assert len(read_frames(path)) == 1
