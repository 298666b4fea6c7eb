"""Langevin and Bussi NVT reach and hold the target temperature; initial velocities."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from ase import units
from ase.calculators.emt import EMT

from equicat.calculators.potential import AsePotential
from equicat.md import MDConfig, step
from equicat.md.runner import init_from_atoms

from .systems import Harmonic, cu_bulk, emt_slab

B = 24  # independent systems: their time averages give the statistical error


def _sample(config: MDConfig, frames, steps: int) -> np.ndarray:
    """``[steps, B]`` K, temperatures along a run started off-target (100 K, displaced)."""
    pot = Harmonic(frames)
    start = [a.copy() for a in frames]
    for k, atoms in enumerate(start):
        atoms.rattle(0.03, seed=100 + k)
    cold = init_from_atoms(start, pot, MDConfig(temperature=100.0, seed=config.seed))
    state = init_from_atoms(start, pot, config, keep_velocities=True)
    state = dataclasses.replace(state, momenta=cold.momenta)
    temps = []
    for _ in range(steps):
        state = step(state, pot)
        temps.append(state.temperature.numpy().copy())
    return np.array(temps)


def _frames(fixed: bool):
    frames = [cu_bulk(seed) for seed in range(B // 2)]  # 32 atoms, no fixed atom
    if fixed:
        frames = [emt_slab(seed) for seed in range(B // 2)]  # 13 atoms, 4 fixed
    return frames + frames


@pytest.mark.parametrize("fixed", [False, True])
@pytest.mark.parametrize(
    "config",
    [
        MDConfig(ensemble="nvt-langevin", temperature=400.0, friction=0.05, seed=1),
        MDConfig(ensemble="nvt-bussi", temperature=400.0, taut=20.0, seed=2),
    ],
    ids=["langevin", "bussi"],
)
def test_reaches_and_holds_temperature(config, fixed, error_table):
    temps = _sample(config, _frames(fixed), 1000)
    second = temps[500:]  # [T/2, B] after ~25 thermostat times
    per_system = second.mean(axis=0)  # independent systems
    mean = per_system.mean()
    stderr = per_system.std(ddof=1) / np.sqrt(B)
    error_table.append(f"|<T> - T0| K ({config.ensemble})", abs(mean - 400.0), 4 * stderr)
    # a wrong count of degrees of freedom would bias the mean by 3/93 (12 K) or 12/39 (120 K)
    assert abs(mean - 400.0) < 4 * stderr
    assert abs(mean - 400.0) < 5.0  # the bar; seeded runs measured 1.6-2.7 K
    # canonical kinetic energy: Gamma(N_f / 2), so std(T) / T = sqrt(2 / N_f)
    dof = 3 * 9 if fixed else 3 * 32 - 3
    rel = second.std(axis=0).mean() / 400.0
    error_table.append("std(T)/T vs sqrt(2/N_f)", rel / np.sqrt(2.0 / dof) - 1.0, 0.1)
    assert abs(rel / np.sqrt(2.0 / dof) - 1.0) < 0.1


def test_fixed_atoms_stay_under_langevin():
    frames = [emt_slab(0)]
    pot = AsePotential(EMT())
    cfg = MDConfig(ensemble="nvt-langevin", temperature=500.0, friction=0.1)
    state = init_from_atoms(frames, pot, cfg)
    start = state.graph.positions[:4].clone()
    for _ in range(5):
        state = step(state, pot)
    assert torch.equal(state.graph.positions[:4], start)
    assert not state.momenta[:4].any()
    assert (state.graph.positions[4:].numpy() != frames[0].positions[4:]).any()


def test_langevin_reservoir_balances_energy(error_table):
    """``E_pot + E_kin + reservoir`` stays constant under Langevin (dt-small error only)."""
    frames = [cu_bulk(0, repeat=1)]
    pot = Harmonic(frames)
    cfg = MDConfig(ensemble="nvt-langevin", temperature=300.0, friction=0.05, timestep=0.5)
    state = init_from_atoms(frames, pot, cfg)
    e0 = float(state.energy + state.kinetic + state.reservoir)
    drift = 0.0
    for _ in range(400):
        state = step(state, pot)
        drift = max(drift, abs(float(state.energy + state.kinetic + state.reservoir) - e0))
    error_table.append("max |conserved - start| eV", drift, 2e-3)
    assert drift < 2e-3  # the kinetic energy itself swings by ~0.1 eV
    assert float(state.reservoir) != 0.0


def test_maxwell_boltzmann_initial_velocities():
    frames = [cu_bulk(0, repeat=3), emt_slab(0)]  # 108 free atoms; a slab with 4 fixed
    pot = AsePotential(EMT())
    state = init_from_atoms(frames, pot, MDConfig(temperature=600.0, seed=3))
    p = state.momenta
    np.testing.assert_allclose(p[:108].sum(0).numpy(), 0.0, atol=1e-12)  # zero total momentum
    assert not p[108 + 0 : 108 + 4].any()  # fixed atoms
    t = state.temperature.numpy()
    assert abs(t[0] - 600.0) < 4 * 600.0 * np.sqrt(2.0 / (3 * 108 - 3))
    assert float(state.dof[0]) == 3 * 108 - 3 and float(state.dof[1]) == 3 * 9
    np.testing.assert_allclose(
        t, 2 * state.kinetic.numpy() / (state.dof.numpy() * units.kB), rtol=1e-12
    )
