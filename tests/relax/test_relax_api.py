"""The high-level relax(): inputs it takes, what it returns, trajectories, errors."""

from __future__ import annotations

import ase.io
import numpy as np
import pytest
import torch
from ase.calculators.emt import EMT
from ase.constraints import FixBondLength

from equicat.relax import relax, relax_many

from .systems import emt_slab, model, near


def test_relax_returns_atoms_with_info(tmp_path):
    frames = [emt_slab(0), emt_slab(1, rattle=0.2)]
    out = relax(frames, EMT(), fmax=0.05, steps=100, trajectory=tmp_path, progress=False)
    assert len(out) == 2
    for k, (atoms, res) in enumerate(zip(frames, out, strict=True)):
        assert res is not atoms and res.calc is None
        assert res.info["converged"] and 0 < res.info["steps"] <= 100
        assert res.info["max_force"] < 0.05
        check = res.copy()
        check.calc = EMT()
        assert res.info["energy"] == pytest.approx(check.get_potential_energy(), abs=1e-10)
        traj = ase.io.read(tmp_path / f"relax_{k}.traj", ":")
        assert len(traj) == res.info["steps"] + 1
        np.testing.assert_allclose(traj[0].positions, atoms.positions, atol=1e-12)
        np.testing.assert_allclose(traj[-1].positions, res.positions, atol=1e-12)
        assert traj[-1].get_potential_energy() == pytest.approx(res.info["energy"])
        energies = [f.get_potential_energy() for f in traj]
        assert energies[-1] < energies[0]
    out_file = tmp_path / "relaxed.extxyz"
    for atoms in out:
        atoms.info.pop("adsorbate_info")  # a dict; extxyz cannot store it
    ase.io.write(out_file, out)  # the info keys survive a file round trip
    back = ase.io.read(out_file, ":")
    assert [b.info["steps"] for b in back] == [o.info["steps"] for o in out]


def test_unconverged_is_reported():
    (res,) = relax(emt_slab(0, rattle=0.2), EMT(), fmax=1e-4, steps=3, progress=False)
    assert res.info["converged"] is False and res.info["steps"] == 3


def test_bare_model_float32(minimum):
    start = near(minimum, 0)
    (res,) = relax([start], model(), fmax=0.01, steps=20, progress=False)
    assert np.abs(res.positions - start.positions).max() > 1e-3
    assert isinstance(res.info["energy"], float)


def test_errors():
    with pytest.raises(ValueError, match="unknown optimizer"):
        relax([emt_slab(0)], EMT(), optimizer="bfgs", progress=False)
    atoms = emt_slab(0)
    atoms.set_constraint(FixBondLength(0, 1))
    with pytest.raises(ValueError, match="structure 0 has a FixBondLength"):
        relax([atoms], EMT(), progress=False)
    with pytest.raises(TypeError, match="cannot relax with a str"):
        relax([emt_slab(0)], "emt", progress=False)
    with pytest.raises(ValueError, match="fmax must be positive"):
        relax_many([emt_slab(0)], EMT(), fmax=0.0)
    with pytest.raises(ValueError, match="batch_size"):
        relax_many([emt_slab(0)], EMT(), batch_size=0)
    assert torch.get_default_dtype() == torch.float32
