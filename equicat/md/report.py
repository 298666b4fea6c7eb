"""The CSV log, the energy-drift report, and extxyz export of an HDF5 trajectory."""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms, units
from ase.calculators.singlepoint import SinglePointCalculator
from ase.constraints import FixAtoms

from equicat.md.hdf5 import read_trajectory
from equicat.md.state import MDState, pressure

__all__ = ["LOG_COLUMNS", "CsvLog", "drift_per_atom_per_ps", "drift_report", "write_extxyz"]

LOG_COLUMNS = ("step", "time_fs", "system", "natoms", "epot_eV", "ekin_eV", "etot_eV",
               "conserved_eV", "temperature_K", "pressure_GPa")  # fmt: skip


class CsvLog:
    """One row per system every logged step (``conserved = E_tot + reservoir``).

    Rows are appended and flushed at once. :meth:`open` keeps the rows of steps ``<= last_step``
    of an existing log (rewritten atomically) so a resumed run continues it without duplicates.
    """

    def __init__(self, path: Path, handle: Any) -> None:
        self.path = path
        self.handle = handle
        self.writer = csv.writer(handle)

    @classmethod
    def open(cls, path: str | os.PathLike, last_step: int | None = None) -> CsvLog:
        """Start a new log (``last_step`` None) or continue one after ``last_step``."""
        path = Path(path)
        rows: list[list[str]] = []
        if last_step is not None and path.exists():
            with open(path, newline="") as f:
                rows = [r for r in list(csv.reader(f))[1:] if r and int(r[0]) <= last_step]
        tmp = path.with_name(f".{path.name}.partial")
        with open(tmp, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(LOG_COLUMNS)
            w.writerows(rows)
        os.replace(tmp, path)
        return cls(path, open(path, "a", newline=""))

    def append(self, state: MDState) -> None:
        """Rows of every system at the state's step."""
        epot = state.energy.detach().double().cpu().numpy()
        ekin = state.kinetic.detach().double().cpu().numpy()
        res = state.reservoir.detach().double().cpu().numpy()
        temp = state.temperature.detach().double().cpu().numpy()
        press = pressure(state).detach().double().cpu().numpy() / units.GPa
        natoms = state.graph.natoms.cpu().numpy()
        for b in range(state.num_systems):
            etot = epot[b] + ekin[b]
            self.writer.writerow([
                state.step, f"{state.time:.6g}", b, int(natoms[b]), f"{epot[b]:.10g}",
                f"{ekin[b]:.10g}", f"{etot:.10g}", f"{etot + res[b]:.10g}", f"{temp[b]:.6g}",
                f"{press[b]:.6g}",
            ])  # fmt: skip
        self.handle.flush()

    def close(self) -> None:
        """Close the file."""
        self.handle.close()


def drift_per_atom_per_ps(time_fs: np.ndarray, energy: np.ndarray, natoms: np.ndarray) -> Any:
    """``[B]`` eV/atom/ps: slope of a least-squares line through ``energy [T, B]`` eV / atom.

    NaN for fewer than two frames.
    """
    if len(time_fs) < 2:
        return np.full(energy.shape[1], np.nan)
    per_atom = energy / natoms[None, :]
    slope = np.polyfit(np.asarray(time_fs) / 1000.0, per_atom, 1)[0]  # [B] eV/atom/ps
    return np.atleast_1d(slope)


def drift_report(path: str | os.PathLike) -> dict[str, Any]:
    """Energy drift and temperatures of each system over a whole HDF5 trajectory.

    Returns:
        ``{"frames", "time_ps", "systems": [...]}``, per system: ``natoms``, ``etot_drift``
        (eV/atom/ps of ``E_pot + E_kin``, the NVE figure), ``conserved_drift`` (of
        ``E_tot + reservoir``, the NVT figure), ``etot_std_per_atom`` (eV) and the mean
        temperature (K) and its standard deviation over the second half of the frames.
    """
    traj = read_trajectory(path, ("time", "energy", "kinetic", "reservoir", "velocities"))
    natoms = traj["natoms"].astype(float)
    time, etot = traj["time"], traj["energy"] + traj["kinetic"]
    temps = _temperatures(traj)  # [T, B] K
    second = temps[len(temps) // 2 :]
    drift = drift_per_atom_per_ps(time, etot, natoms)
    conserved = drift_per_atom_per_ps(time, etot + traj["reservoir"], natoms)
    systems = [
        {
            "system": b,
            "natoms": int(natoms[b]),
            "etot_drift_eV_per_atom_per_ps": float(drift[b]),
            "conserved_drift_eV_per_atom_per_ps": float(conserved[b]),
            "etot_std_eV_per_atom": float(np.std(etot[:, b]) / natoms[b]) if len(time) else 0.0,
            "temperature_mean_second_half_K": float(second[:, b].mean()) if len(second) else 0.0,
            "temperature_std_second_half_K": float(second[:, b].std()) if len(second) else 0.0,
        }
        for b in range(len(natoms))
    ]
    span = float(time[-1] - time[0]) / 1000.0 if len(time) else 0.0
    return {"frames": int(len(time)), "time_ps": span, "systems": systems}


def _temperatures(traj: dict[str, Any]) -> np.ndarray:
    """``[T, B]`` K from the stored kinetic energies (degrees of freedom as in the run)."""
    fixed, batch = traj["fixed"], np.repeat(np.arange(len(traj["natoms"])), traj["natoms"])
    free = np.bincount(batch, weights=~fixed, minlength=len(traj["natoms"]))
    any_fixed = np.bincount(batch, weights=fixed, minlength=len(traj["natoms"])) > 0
    dof = np.maximum(3 * free - np.where(any_fixed, 0, 3), 1)
    return 2.0 * traj["kinetic"] / (dof[None, :] * units.kB)


def write_extxyz(h5_path: str | os.PathLike, out: str | os.PathLike) -> int:
    """Export every frame of every system to extxyz (atomically); returns frames written.

    Frames are in time order, systems in batch order within a time; ``info`` holds ``system``,
    ``step``, ``time_fs``; arrays hold ``momenta`` (ASE units, from the velocities) and forces.
    """
    import ase.io

    traj = read_trajectory(h5_path, ("positions", "velocities", "forces", "energy", "cell",
                                     "time", "step"))  # fmt: skip
    bounds = np.concatenate([[0], np.cumsum(traj["natoms"])])
    frames = []
    for t in range(len(traj["step"])):
        for b in range(len(traj["natoms"])):
            lo, hi = bounds[b], bounds[b + 1]
            atoms = Atoms(
                numbers=traj["atomic_numbers"][lo:hi], positions=traj["positions"][t, lo:hi],
                cell=traj["cell"][t, b], pbc=traj["pbc"][b], masses=traj["masses"][lo:hi],
                tags=traj["tags"][lo:hi],
            )  # fmt: skip
            atoms.set_momenta(traj["velocities"][t, lo:hi] * traj["masses"][lo:hi, None]
                              / units.fs, apply_constraint=False)  # fmt: skip
            if traj["fixed"][lo:hi].any():
                atoms.set_constraint(FixAtoms(mask=traj["fixed"][lo:hi]))
            atoms.info.update(system=b, step=int(traj["step"][t]), time_fs=float(traj["time"][t]))
            atoms.calc = SinglePointCalculator(
                atoms, energy=float(traj["energy"][t, b]), forces=traj["forces"][t, lo:hi]
            )
            frames.append(atoms)
    out = Path(out)
    tmp = out.with_name(f".{out.stem}.partial{out.suffix}")
    ase.io.write(tmp, frames, format="extxyz")
    os.replace(tmp, out)
    return len(frames)
