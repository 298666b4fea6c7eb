"""Labelled frames for the file-format tests: varying sizes, fixed atoms, tags, stress, ids."""

from __future__ import annotations

import numpy as np
from ase import Atoms
from ase.build import add_adsorbate, bulk, fcc111, molecule
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator
from ase.constraints import FixAtoms


def _label(atoms: Atoms, stress: bool = True) -> Atoms:
    atoms.calc = EMT()
    results = {"energy": atoms.get_potential_energy(), "forces": atoms.get_forces()}
    if stress:
        results["stress"] = atoms.get_stress()
    atoms.calc = SinglePointCalculator(atoms, **results)
    return atoms


def slab(size: tuple[int, int, int], seed: int) -> Atoms:
    """Cu(111) + CO, OC20 tags, bottom layers fixed, rattled, EMT energy/forces/stress."""
    atoms = fcc111("Cu", size, vacuum=6.0)
    layer = atoms.get_tags()
    add_adsorbate(atoms, molecule("CO"), 2.0, "ontop")
    atoms.info.pop("adsorbate_info", None)
    n = len(atoms)
    tags = np.where(np.arange(n) >= n - 2, 2, np.where(np.r_[layer, [0, 0]] == 1, 1, 0))
    atoms.set_tags(tags)
    atoms.rattle(0.05, seed=seed)
    atoms.set_constraint(FixAtoms(indices=np.flatnonzero(np.r_[layer, [0, 0]] >= 2)))
    atoms.info.update(system_id=100 + seed, frame_kind="relax")
    return _label(atoms)


def labelled_frames() -> list[Atoms]:
    """Five frames of 2 to 26 atoms; one without stress, one without a system id."""
    frames = [slab((2, 2, 3), 0), slab((3, 2, 4), 1)]
    cu = bulk("Cu", "fcc", a=3.6, cubic=True).repeat((1, 1, 2))
    cu.rattle(0.03, seed=2)
    frames.append(_label(cu))
    co = molecule("CO", vacuum=4.0, pbc=True)
    frames.append(_label(co, stress=False))
    frames[-1].info["system_id"] = 7
    frames.append(slab((2, 2, 2), 3))
    return frames


def assert_same_frames(got: list[Atoms], want: list[Atoms], atol: float = 0.0) -> None:
    """Positions, cell, pbc, numbers, energy, forces, stress, fixed, tags and ids agree."""
    assert len(got) == len(want)
    for b, (g, w) in enumerate(zip(got, want, strict=True)):
        assert np.array_equal(g.numbers, w.numbers), b
        np.testing.assert_allclose(g.positions, w.positions, rtol=0, atol=atol, err_msg=str(b))
        np.testing.assert_allclose(g.cell.array, w.cell.array, rtol=0, atol=atol)
        assert np.array_equal(g.pbc, w.pbc), b
        gr, wr = g.calc.results, w.calc.results
        assert set(gr) == set(wr), (b, set(gr), set(wr))
        for key in wr:
            np.testing.assert_allclose(gr[key], wr[key], rtol=0, atol=atol, err_msg=f"{b} {key}")
        assert np.array_equal(g.get_tags(), w.get_tags()), b
        assert fixed(g).tolist() == fixed(w).tolist(), b
        assert g.info.get("system_id") == w.info.get("system_id"), b
        assert g.info.get("frame_kind") == w.info.get("frame_kind"), b


def fixed(atoms: Atoms) -> np.ndarray:
    mask = np.zeros(len(atoms), bool)
    for c in atoms.constraints:
        if isinstance(c, FixAtoms):
            mask[c.get_indices()] = True
    return mask
