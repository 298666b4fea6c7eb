"""Pressure against ASE, the Berendsen NPT, and the guards around it; direct-force warnings."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase import units
from ase.calculators.emt import EMT

from equicat.calculators.potential import AsePotential, ModelPotential
from equicat.md import MDConfig, pressure, step
from equicat.md.runner import init_from_atoms

from .systems import cu_bulk, emt_slab, predictor


def test_pressure_matches_ase_with_ideal_gas_term(error_table):
    atoms = cu_bulk(0)
    pot = AsePotential(EMT())
    state = init_from_atoms([atoms], pot, MDConfig(ensemble="npt", temperature=600.0))
    ref = atoms.copy()
    ref.calc = EMT()
    ref.set_momenta(state.momenta.numpy())
    want = -np.trace(ref.get_stress(voigt=False, include_ideal_gas=True)) / 3.0
    got = float(pressure(state)[0])
    error_table.append("|P - P_ase| eV/Å^3", abs(got - want), 1e-12)
    assert abs(got - want) < 1e-12


def test_npt_relaxes_a_compressed_crystal_towards_target():
    """Cu compressed by 2% (EMT, ~ +10 GPa) expands towards P = 0 under the barostat."""
    frames = [cu_bulk(0, a=3.61 * 0.98)]
    pot = AsePotential(EMT())
    cfg = MDConfig(ensemble="npt", temperature=300.0, taut=50.0, taup=50.0, timestep=2.0,
                   compressibility=1.0 / (140.0 * units.GPa), pressure=0.0)  # fmt: skip
    state = init_from_atoms(frames, pot, cfg)
    p0 = pressure(state) / units.GPa
    v0 = torch.linalg.det(state.graph.cell)
    for _ in range(40):
        state = step(state, pot)
    p1 = pressure(state) / units.GPa
    v1 = torch.linalg.det(state.graph.cell)
    assert bool((p0 > 5.0).all())  # compressed: positive pressure
    assert bool((v1 > v0 * 1.03).all())  # expanded by more than 3% in volume
    assert bool((p1.abs() < 0.5 * p0).all())
    # isotropic: the cell stays cubic
    cell = state.graph.cell[0]
    assert torch.allclose(cell, torch.diag(torch.diagonal(cell)), atol=1e-12)


def test_npt_guards():
    pot = AsePotential(EMT())
    slab = emt_slab(0)
    slab.pbc = True
    with pytest.raises(ValueError, match="fixed atoms"):
        init_from_atoms([slab], pot, MDConfig(ensemble="npt"))
    with pytest.raises(ValueError, match="periodic"):
        init_from_atoms([emt_slab(0, fixed=False)], pot, MDConfig(ensemble="npt"))


def test_direct_force_model_warns_loudly(caplog):
    pot = ModelPotential.from_predictor(predictor(forces="direct"))
    with pytest.warns(RuntimeWarning, match="NOT conserved"):
        state = init_from_atoms([emt_slab(0)], pot, MDConfig())
    assert "NOT conserved" in caplog.text
    state = step(state, pot)  # it still runs
    assert state.step == 1
    with pytest.raises(ValueError, match="conservative"), pytest.warns(RuntimeWarning):
        init_from_atoms([cu_bulk(0, repeat=1)], pot, MDConfig(ensemble="npt"))


def test_conservative_model_does_not_warn(recwarn):
    pot = ModelPotential.from_predictor(predictor())
    init_from_atoms([emt_slab(0)], pot, MDConfig())
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


def test_npt_runs_with_an_equicat_model():
    """The model's stress path and the per-step neighbour search under a changing cell."""
    pot = ModelPotential.from_predictor(predictor())
    cfg = MDConfig(ensemble="npt", temperature=300.0, taup=20.0, pressure=1.0 * units.GPa)
    state = init_from_atoms([cu_bulk(0, repeat=1)], pot, cfg)
    cell0 = state.graph.cell.clone()
    for _ in range(2):
        state = step(state, pot)
    assert torch.isfinite(state.stress).all() and torch.isfinite(pressure(state)).all()
    assert not torch.equal(state.graph.cell, cell0)
    assert state.neighbors is not None and state.neighbors.skin == 0.0
