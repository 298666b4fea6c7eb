"""Velocity Verlet against ``ase.md.verlet.VelocityVerlet``, step for step, in float64."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase import units
from ase.calculators.emt import EMT
from ase.md.verlet import VelocityVerlet

from equicat.calculators import EquiCatCalculator
from equicat.calculators.potential import AsePotential, ModelPotential
from equicat.md import MDConfig, step
from equicat.md.runner import init_from_atoms

from .systems import emt_slab, predictor


def _thermalised(seed: int, fixed: bool = True):
    atoms = emt_slab(seed, fixed=fixed)
    rng = np.random.default_rng(seed)
    scale = np.sqrt(atoms.get_masses() * units.kB * 800.0)[:, None]
    atoms.set_momenta(rng.standard_normal((len(atoms), 3)) * scale)  # fixed atoms get zero
    return atoms


def _ase_path(atoms, calc, dt_fs: float, steps: int) -> list[tuple[np.ndarray, np.ndarray]]:
    atoms = atoms.copy()
    atoms.calc = calc
    dyn = VelocityVerlet(atoms, timestep=dt_fs * units.fs)
    out = []
    for _ in range(steps):
        dyn.run(1)
        out.append((atoms.get_positions(), atoms.get_momenta()))
    return out


def _ours(frames, potential, dt_fs: float, steps: int):
    state = init_from_atoms(frames, potential, MDConfig(timestep=dt_fs), keep_velocities=True)
    out = []
    for _ in range(steps):
        state = step(state, potential)
        out.append((state.graph.positions.numpy().copy(), state.momenta.numpy().copy()))
    return state, out


def _max_diff(ours, ref, lo, hi):
    dr = max(np.abs(o[0][lo:hi] - r[0]).max() for o, r in zip(ours, ref, strict=True))
    dp = max(np.abs(o[1][lo:hi] - r[1]).max() for o, r in zip(ours, ref, strict=True))
    return dr, dp


@pytest.mark.parametrize("fixed", [True, False])
def test_nve_matches_ase_on_emt(fixed, error_table):
    frames = [_thermalised(seed, fixed) for seed in (1, 2)]  # a batch of two
    state, ours = _ours(frames, AsePotential(EMT()), 2.0, 25)
    for b, atoms in enumerate(frames):
        ref = _ase_path(atoms, EMT(), 2.0, 25)
        lo, hi = 13 * b, 13 * (b + 1)
        dr, dp = _max_diff(ours, ref, lo, hi)
        error_table.append(f"system {b} |dr| Å", dr, 1e-10)
        assert dr < 1e-10 and dp < 1e-10
        if fixed:  # fixed atoms did not move and carry no momentum
            np.testing.assert_array_equal(ours[-1][0][lo : lo + 4], atoms.positions[:4])
            assert not ours[-1][1][lo : lo + 4].any()
    assert state.step == 25


def test_nve_matches_ase_on_equicat_model(error_table):
    """Our integrator with the skin neighbour list == ase with EquiCatCalculator."""
    pred = predictor()
    frames = [_thermalised(3)]
    _, ours = _ours(frames, ModelPotential.from_predictor(pred), 1.0, 8)
    ref = _ase_path(frames[0], EquiCatCalculator(pred), 1.0, 8)
    dr, dp = _max_diff(ours, ref, 0, 13)
    error_table.append("|dr| Å vs ase+EquiCatCalculator", dr, 1e-10)
    assert dr < 1e-10 and dp < 1e-9


def test_batched_equals_single():
    pot = ModelPotential.from_predictor(predictor())
    frames = [_thermalised(4), _thermalised(5, fixed=False)]
    _, both = _ours(frames, pot, 1.0, 5)
    for b, atoms in enumerate(frames):
        _, alone = _ours([atoms], pot, 1.0, 5)
        dr, dp = _max_diff(both, [(p[:13], m[:13]) for p, m in alone], 13 * b, 13 * (b + 1))
        assert dr < 1e-12 and dp < 1e-11


def test_step_rejects_unknown_ensemble():
    with pytest.raises(ValueError, match="unknown ensemble"):
        MDConfig(ensemble="nph")
    with pytest.raises(ValueError, match="timestep"):
        MDConfig(timestep=0.0)


def test_generator_is_seeded():
    frames = [emt_slab(0)]
    pot = AsePotential(EMT())
    a = init_from_atoms(frames, pot, MDConfig(temperature=300, seed=7))
    b = init_from_atoms(frames, pot, MDConfig(temperature=300, seed=7))
    c = init_from_atoms(frames, pot, MDConfig(temperature=300, seed=8))
    assert torch.equal(a.momenta, b.momenta) and not torch.equal(a.momenta, c.momenta)
