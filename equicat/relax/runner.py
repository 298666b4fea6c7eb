"""Relax many structures: a queue that keeps a batch full, and the ``relax`` entry point.

:func:`relax_iter` takes ``batch_size`` structures into one batched optimizer state, steps it,
and as systems finish (converged, or out of steps) hands them out and refills the batch with
the next waiting structures (in input order), so the batch stays full until the queue runs
dry. Systems that stay in the batch keep their optimizer memory, so each structure follows
exactly the path it would follow alone.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator
from ase.constraints import FixAtoms

from equicat.relax.fire import fire_init, fire_step
from equicat.relax.lbfgs import lbfgs_init, lbfgs_step
from equicat.relax.potential import Potential, as_potential
from equicat.relax.state import RelaxState, cat_states, take_state

__all__ = ["OPTIMIZERS", "RelaxResult", "relax", "relax_iter", "relax_many", "relaxed_atoms"]

InitFn = Callable[..., RelaxState]
StepFn = Callable[[RelaxState, Potential], RelaxState]

# name -> (init, step)
OPTIMIZERS: dict[str, tuple[InitFn, StepFn]] = {
    "lbfgs": (lbfgs_init, lbfgs_step),
    "fire": (fire_init, fire_step),
}


@dataclass
class RelaxResult:
    """One finished relaxation."""

    # position of the structure in the input
    index: int
    # [n, 3] Å, final positions (input positions + the optimizer's displacement, float64)
    positions: np.ndarray
    # eV, energy at the final positions
    energy: float
    # [n, 3] eV/Å, forces at the final positions, zero on fixed atoms
    forces: np.ndarray
    # eV/Å, largest force on a free atom
    max_force: float
    # whether max_force < fmax was reached
    converged: bool
    # optimizer steps taken
    steps: int
    # [3, 3] Å, final cell (rows; the input cell unless the cell was relaxed)
    cell: np.ndarray | None = None
    # [3, 3] eV/Å^3, stress at the end of a cell relaxation (ASE sign), else None
    stress: np.ndarray | None = None
    # (positions, energy, forces) before the first step and after each step, when recorded
    trajectory: list[tuple[np.ndarray, float, np.ndarray]] = field(default_factory=list)
    # [3, 3] Å, the cell of each trajectory frame, when recorded
    trajectory_cells: list[np.ndarray] = field(default_factory=list)


def _optimizer(name: str) -> tuple[InitFn, StepFn]:
    try:
        return OPTIMIZERS[name.lower()]
    except KeyError:
        raise ValueError(f"unknown optimizer {name!r}; use one of {sorted(OPTIMIZERS)}") from None


def _check_constraints(structures: Sequence[Atoms]) -> None:
    for k, atoms in enumerate(structures):
        for c in atoms.constraints:
            if not isinstance(c, FixAtoms):
                raise ValueError(
                    f"structure {k} has a {type(c).__name__} constraint; batched relaxation "
                    "supports only FixAtoms (use an ase.optimize optimizer with "
                    "EquiCatCalculator for other constraints)"
                )


def _frames(state: RelaxState, which: torch.Tensor) -> Iterator[tuple[int, tuple]]:
    """``(system, (positions, energy, forces, cell))`` of the systems where ``which`` is set."""
    bounds = np.concatenate([[0], np.cumsum(state.graph.natoms.cpu().numpy())])
    pos = state.graph.positions.detach().double().cpu().numpy()
    forces = state.forces.detach().double().cpu().numpy()
    energy = state.energy.detach().double().cpu().numpy()
    cell = state.graph.cell.detach().double().cpu().numpy()
    for b in torch.nonzero(which)[:, 0].tolist():
        lo, hi = bounds[b], bounds[b + 1]
        yield b, (pos[lo:hi], float(energy[b]), forces[lo:hi], cell[b])


def relax_iter(
    structures: Sequence[Atoms],
    potential: Potential | Any,
    *,
    optimizer: str = "lbfgs",
    batch_size: int = 16,
    fmax: float = 0.02,
    steps: int = 300,
    record_trajectory: bool = False,
    **options: Any,
) -> Iterator[RelaxResult]:
    """Relax ``structures`` in batches of up to ``batch_size``, yielding each as it finishes.

    Args:
        structures: the structures (``FixAtoms`` constraints respected).
        potential: a :class:`~equicat.relax.potential.Potential`, a ``Predictor``, an equicat
            model or an ASE calculator (see :func:`~equicat.relax.potential.as_potential`).
        optimizer: ``"lbfgs"`` or ``"fire"``.
        batch_size: systems relaxed together.
        fmax: eV/Å, convergence threshold on the largest force on a free atom.
        steps: most optimizer steps per structure.
        record_trajectory: keep every step's positions, energy and forces in the results.
        **options: passed to the optimizer's init (``maxstep``, ``memory``, ``skin``,
            ``relax_cell``, ``pressure`` in eV/Å^3, ``exp_cell_factor``, ...).

    Yields:
        :class:`RelaxResult` in the order the relaxations finish.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    init, step = _optimizer(optimizer)
    potential = as_potential(potential)
    _check_constraints(structures)
    waiting = deque(range(len(structures)))
    ids: list[int] = []  # input index of each system in the batch
    start: dict[int, tuple] = {}  # positions and cell as the state first held them
    traj: dict[int, list] = {}
    state: RelaxState | None = None
    while True:
        if waiting and len(ids) < batch_size:
            new = [waiting.popleft() for _ in range(min(batch_size - len(ids), len(waiting)))]
            graph = potential.graph([structures[k] for k in new])
            fresh = init(graph, potential, fmax=fmax, max_steps=steps, **options)
            for b, frame in _frames(fresh, torch.ones_like(fresh.converged)):
                start[new[b]] = (frame[0], frame[3])
                traj[new[b]] = [frame] if record_trajectory else []
            state = fresh if state is None else cat_states([state, fresh])
            ids += new
        if state is None or not ids:
            return
        done = ~state.active
        if bool(done.any()):
            for b, (pos, energy, forces, cell) in _frames(state, done):
                k = ids[b]
                pos0, cell0 = start.pop(k)
                filt = state.cell_filter
                yield RelaxResult(
                    index=k,
                    positions=structures[k].positions + (pos - pos0),
                    energy=energy,
                    forces=forces,
                    max_force=float(state.max_force[b]),
                    converged=bool(state.converged[b]),
                    steps=int(state.steps[b]),
                    trajectory=[f[:3] for f in traj[k]],
                    trajectory_cells=[f[3] for f in traj.pop(k)],
                    cell=structures[k].cell.array + (cell - cell0),
                    stress=None if filt is None else filt.stress[b].double().cpu().numpy(),
                )
            ids = [k for k, d in zip(ids, done.tolist(), strict=True) if not d]
            state = take_state(state, ~done) if ids else None
            continue
        moving = state.active
        state = step(state, potential)
        if record_trajectory:
            for b, frame in _frames(state, moving):
                traj[ids[b]].append(frame)


def relax_many(
    structures: Sequence[Atoms], potential: Potential | Any, batch_size: int = 16, **kwargs: Any
) -> list[RelaxResult]:
    """All results of :func:`relax_iter`, in input order."""
    results = list(relax_iter(structures, potential, batch_size=batch_size, **kwargs))
    return sorted(results, key=lambda r: r.index)


def relaxed_atoms(atoms: Atoms, res: RelaxResult) -> Atoms:
    """A copy of ``atoms`` at the result's positions with energy, converged, steps in info."""
    out = atoms.copy()
    out.calc = None
    if res.cell is not None:
        out.set_cell(res.cell, scale_atoms=False)
    out.positions = res.positions
    out.info.update(
        energy=res.energy, converged=res.converged, steps=res.steps, max_force=res.max_force
    )
    return out


def _write_trajectory(directory: Path, atoms: Atoms, res: RelaxResult) -> None:
    import ase.io

    frames = []
    cells = res.trajectory_cells or [atoms.cell.array] * len(res.trajectory)
    for (pos, energy, forces), cell in zip(res.trajectory, cells, strict=True):
        frame = atoms.copy()
        frame.set_cell(atoms.cell.array + (cell - cells[0]), scale_atoms=False)
        frame.positions = atoms.positions + (pos - res.trajectory[0][0])
        frame.calc = SinglePointCalculator(frame, energy=energy, forces=forces)
        frames.append(frame)
    ase.io.write(directory / f"relax_{res.index}.traj", frames)


def relax(
    atoms_list: Atoms | Sequence[Atoms],
    predictor_or_model: Potential | Any,
    optimizer: str = "lbfgs",
    fmax: float = 0.02,
    steps: int = 300,
    batch_size: int = 16,
    trajectory: str | os.PathLike | None = None,
    progress: bool = True,
    **options: Any,
) -> list[Atoms]:
    """Relax structures in batches; the high-level entry point.

    Args:
        atoms_list: one structure or a list (``FixAtoms`` constraints respected).
        predictor_or_model: an equicat ``Predictor`` or model, an ASE calculator, or a
            :class:`~equicat.relax.potential.Potential`.
        optimizer: ``"lbfgs"`` (default, OC20 practice) or ``"fire"``.
        fmax: eV/Å, convergence threshold on the largest force on a free atom.
        steps: most optimizer steps per structure.
        batch_size: structures relaxed together (the batch is refilled as they finish).
        trajectory: a directory; structure ``i``'s path is written to ``relax_{i}.traj`` in
            it (ASE trajectory with energy and forces per frame).
        progress: show a tqdm progress bar (on stderr).
        **options: optimizer settings (``maxstep``, ``memory``, ``damping``, ``alpha``, ``dt``,
            ``skin``, ...; see :func:`lbfgs_init` and :func:`fire_init`).

    Returns:
        Copies of the structures at their relaxed positions, in input order, with
        ``info["energy"]`` (eV), ``info["converged"]``, ``info["steps"]`` and
        ``info["max_force"]`` (eV/Å).
    """
    from tqdm import tqdm

    frames = [atoms_list] if isinstance(atoms_list, Atoms) else list(atoms_list)
    directory = None if trajectory is None else Path(trajectory)
    if directory is not None:
        directory.mkdir(parents=True, exist_ok=True)
    out: list[Atoms | None] = [None] * len(frames)
    bar = tqdm(
        total=len(frames), desc=f"relax ({optimizer})", unit="structure", disable=not progress
    )
    n_conv = 0
    with bar:
        for res in relax_iter(
            frames, predictor_or_model, optimizer=optimizer, batch_size=batch_size, fmax=fmax,
            steps=steps, record_trajectory=directory is not None, **options,
        ):  # fmt: skip
            out[res.index] = relaxed_atoms(frames[res.index], res)
            if directory is not None:
                _write_trajectory(directory, frames[res.index], res)
            n_conv += res.converged
            bar.update(1)
            bar.set_postfix(converged=n_conv)
    return out  # type: ignore[return-value]
