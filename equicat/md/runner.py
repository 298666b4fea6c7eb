"""Run MD with output: start from ASE structures or from a trajectory's last frame, advance."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from ase import Atoms
from ase.constraints import FixAtoms

from equicat.calculators.potential import Potential
from equicat.data import AtomicGraph
from equicat.md.hdf5 import H5Writer, momenta_from_velocities
from equicat.md.integrators import step
from equicat.md.report import CsvLog
from equicat.md.state import MDConfig, MDState, md_init

__all__ = ["init_from_atoms", "restore", "run_md"]


def init_from_atoms(
    structures: Sequence[Atoms],
    potential: Potential,
    config: MDConfig,
    keep_velocities: bool = False,
) -> MDState:
    """An MD state of ``structures`` (one system each; ``FixAtoms`` respected).

    Args:
        structures: the systems; masses from ``Atoms.get_masses()`` (amu).
        potential: energies and forces (``potential.graph`` validates the structures).
        config: the run's settings.
        keep_velocities: start from the structures' own momenta instead of drawing
            Maxwell-Boltzmann velocities at ``config.temperature``.
    """
    for k, atoms in enumerate(structures):
        for c in atoms.constraints:
            if not isinstance(c, FixAtoms):
                raise ValueError(
                    f"structure {k} has a {type(c).__name__} constraint; batched MD supports "
                    "only FixAtoms (use ase.md with EquiCatCalculator for other constraints)"
                )
    graph = potential.graph(structures)
    masses = torch.from_numpy(np.concatenate([a.get_masses() for a in structures]))
    momenta = None
    if keep_velocities:
        momenta = torch.from_numpy(np.concatenate([a.get_momenta() for a in structures]))
    return md_init(graph, potential, config, masses, momenta=momenta)


def restore(frame: dict[str, Any], potential: Potential, config: MDConfig) -> MDState:
    """The state of a trajectory frame (see :func:`equicat.md.hdf5.read_frame`).

    Positions, velocities, cell, step, thermostat reservoir and the generator state are
    restored; forces are evaluated again at the frame's positions.
    """
    natoms = torch.from_numpy(frame["natoms"]).long()
    graph = AtomicGraph(
        positions=torch.from_numpy(frame["positions"]),
        atomic_numbers=torch.from_numpy(frame["atomic_numbers"]).long(),
        cell=torch.from_numpy(frame["cell"]),
        pbc=torch.from_numpy(frame["pbc"]).bool(),
        batch=torch.repeat_interleave(torch.arange(len(natoms)), natoms),
        natoms=natoms,
        edge_index=torch.zeros((2, 0), dtype=torch.long),
        cell_shifts=torch.zeros((0, 3), dtype=torch.float64),
        fixed=torch.from_numpy(frame["fixed"]).bool(),
        tags=torch.from_numpy(frame["tags"]).long(),
    )
    momenta = momenta_from_velocities(frame["velocities"], frame["masses"])
    state = md_init(
        graph, potential, config, torch.from_numpy(frame["masses"]),
        momenta=torch.from_numpy(momenta), step=int(frame["step"]),
        reservoir=torch.from_numpy(frame["reservoir"]),
    )  # fmt: skip
    if state.generator is not None and len(frame["rng"]):
        state.generator.set_state(torch.from_numpy(np.asarray(frame["rng"], dtype=np.uint8)))
    return state


def _pressure_available(state: MDState, potential: Potential) -> bool:
    """Whether the stress can be evaluated (conservative model, a cell on every system)."""
    volume = torch.linalg.det(state.graph.cell).abs()
    return bool(getattr(potential, "conservative", True)) and bool((volume > 1e-9).all())


def run_md(
    state: MDState,
    potential: Potential,
    steps: int,
    *,
    writer: H5Writer | None = None,
    log: CsvLog | None = None,
    traj_interval: int = 10,
    log_interval: int = 10,
    flush_interval: int = 100,
    progress: bool = True,
) -> MDState:
    """Advance ``state`` until ``state.step == steps`` (a total, not an increment).

    A frame goes to ``writer`` every ``traj_interval`` steps and at the last step, a log row
    every ``log_interval`` steps (with the pressure where the stress is available), and the
    writer is flushed every ``flush_interval`` steps and at the end.
    """
    from tqdm import tqdm

    for name, value in (("traj", traj_interval), ("log", log_interval), ("flush", flush_interval)):
        if value < 1:
            raise ValueError(f"the {name} interval must be >= 1 step, got {value}")
    with_pressure = _pressure_available(state, potential)
    bar = tqdm(total=max(steps - state.step, 0), desc=f"md ({state.config.ensemble})",
               unit="step", disable=not progress)  # fmt: skip
    with bar:
        while state.step < steps:
            n = state.step + 1
            log_now = log is not None and n % log_interval == 0
            state = step(state, potential, stress=log_now and with_pressure)
            if writer is not None and (n % traj_interval == 0 or n == steps):
                writer.append(state)
            if writer is not None and n % flush_interval == 0:
                writer.flush()
            if log_now:
                log.append(state)  # type: ignore[union-attr]
            bar.update(1)
            if n % log_interval == 0:
                bar.set_postfix(T=f"{float(state.temperature.mean()):.0f}K")
    if writer is not None:
        writer.flush()
    return state
