"""Our batched optimizers against ase.optimize on the same potential."""

from __future__ import annotations

import numpy as np
import pytest
from ase.calculators.emt import EMT
from ase.optimize import FIRE, LBFGS

from equicat.calculators import EquiCatCalculator
from equicat.relax import AsePotential, ModelPotential, relax_many

from ..helpers import cu_slab
from .systems import FIXED, max_displacement, near, predictor

# ase's settings that are ours by construction (ase FIRE's maxstep caps |dr| of the whole
# system, ours per atom; no step of these runs reaches either cap)
ASE = {
    "lbfgs": (LBFGS, dict(maxstep=0.04, memory=50, damping=1.0, alpha=70.0)),
    "fire": (FIRE, dict(dt=0.1, dtmax=1.0, maxstep=0.2)),
}


def ase_relax(atoms, calc, optimizer, fmax, steps=1000):
    cls, kwargs = ASE[optimizer]
    atoms = atoms.copy()
    atoms.calc = calc
    opt = cls(atoms, logfile=None, **kwargs)
    converged = opt.run(fmax=fmax, steps=steps)
    return atoms.positions.copy(), atoms.get_potential_energy(), opt.nsteps, converged


@pytest.mark.parametrize("optimizer", ["lbfgs", "fire"])
def test_emt_same_path_as_ase(optimizer, error_table):
    from .systems import emt_slab

    frames = [emt_slab(seed) for seed in range(2)]
    ours = relax_many(frames, AsePotential(EMT()), optimizer=optimizer, fmax=1e-3, steps=1000)
    for atoms, res in zip(frames, ours, strict=True):
        pos, energy, nsteps, converged = ase_relax(atoms, EMT(), optimizer, 1e-3)
        assert res.converged and converged
        # the same algorithm: the same number of steps to the same point
        assert res.steps == nsteps
        assert res.energy == pytest.approx(energy, abs=1e-8)
        error_table.append("|dr| vs ase / Å", max_displacement(res.positions, pos), 1e-6)
        np.testing.assert_allclose(res.positions, pos, atol=1e-6)


@pytest.mark.parametrize("optimizer", ["lbfgs", "fire"])
def test_model_same_minimum_as_ase(optimizer, pred, minimum, error_table):
    frames = [near(minimum, seed) for seed in range(2)]
    potential = ModelPotential.from_predictor(pred)
    ours = relax_many(frames, potential, optimizer=optimizer, fmax=1e-3, steps=500)
    assert potential.calls < sum(r.steps for r in ours)  # both systems in one batch
    for atoms, res in zip(frames, ours, strict=True):
        pos, energy, _, converged = ase_relax(atoms, EquiCatCalculator(pred), optimizer, 1e-3)
        assert res.converged and converged
        error_table.append("|dE| vs ase / eV", abs(res.energy - energy), 1e-4)
        error_table.append("|dr| vs ase / Å", max_displacement(res.positions, pos), 1e-3)
        assert res.energy == pytest.approx(energy, abs=1e-4)
        assert max_displacement(res.positions, pos) < 1e-3
        assert not np.allclose(res.positions, atoms.positions, atol=1e-3)  # it did move


def test_truncated_graph_reselected_every_step(minimum):
    """With max_neighbors truncation the graph is redone at every step from the candidates
    (no fresh search within the skin): the path equals ase's, whose calculator builds a fresh
    truncated graph at every call."""
    pred = predictor(max_neighbors=6)
    start = near(minimum, 3, rattle=0.1)
    potential = ModelPotential.from_predictor(pred)
    (res,) = relax_many([start], potential, fmax=1e-6, steps=8, skin=2.0, record_trajectory=True)
    atoms = start.copy()
    atoms.calc = EquiCatCalculator(pred)
    opt = LBFGS(atoms, logfile=None, **ASE["lbfgs"][1])
    ase_path = [atoms.positions.copy() for _ in opt.irun(fmax=1e-6, steps=8)]
    assert len(res.trajectory) == len(ase_path) == 9
    for (pos, _, _), ref in zip(res.trajectory, ase_path, strict=True):
        np.testing.assert_allclose(start.positions + (pos - res.trajectory[0][0]), ref, atol=1e-9)


def test_lbfgs_curvature_condition_on_a_rough_surface(pred):
    """Far from a minimum the model gives negative-curvature pairs: min_curvature=-inf stores
    them as ase's LBFGS does (same path), the default skips them (another path)."""
    start = cu_slab(0, fixed=FIXED)
    atoms = start.copy()
    atoms.calc = EquiCatCalculator(pred)
    opt = LBFGS(atoms, logfile=None, **ASE["lbfgs"][1])
    ase_path = [atoms.positions.copy() for _ in opt.irun(fmax=1e-6, steps=12)]
    deviation = {}
    for min_curvature in (-np.inf, 0.0):
        (res,) = relax_many(
            [start], ModelPotential.from_predictor(pred), fmax=1e-6, steps=12,
            min_curvature=min_curvature, record_trajectory=True,
        )  # fmt: skip
        path = [start.positions + (p - res.trajectory[0][0]) for p, _, _ in res.trajectory]
        pairs = zip(path, ase_path, strict=True)
        deviation[min_curvature] = max(max_displacement(a, b) for a, b in pairs)
    assert deviation[-np.inf] < 1e-9
    assert deviation[0.0] > 1e-3
