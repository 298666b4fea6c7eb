"""The labelled frame every file format stores: arrays in, ``Atoms`` out.

A :class:`Frame` is the format-neutral record of one structure and its labels. Readers
build :class:`Frame` objects and hand out ``Atoms`` via :meth:`Frame.to_atoms`; writers take
``Atoms`` and read them with :meth:`Frame.from_atoms`, so every format agrees on where a
label lives on an ``Atoms``:

- energy (eV), forces (eV/Å) and stress (eV/Å³, ASE's sign) in the attached calculator's
  ``results`` (a ``SinglePointCalculator`` on the way out), else ``info["energy"]``,
  ``arrays["forces"]`` and ``info["stress"]``;
- fixed atoms as ``FixAtoms`` constraints; OC20 tags as ``Atoms.get_tags()``;
- the system id as ``info["system_id"]`` (``-1`` when absent);
- any other JSON-serialisable ``info`` entries (strings, numbers, booleans).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator
from ase.constraints import FixAtoms
from ase.stress import full_3x3_to_voigt_6_stress, voigt_6_to_full_3x3_stress

__all__ = ["Frame", "NO_SYSTEM", "atomic_path"]

# system id of a frame that has none
NO_SYSTEM = -1
# info keys the Frame holds in its own fields (never copied into Frame.info)
_OWN_KEYS = ("energy", "stress", "system_id", "source")


@dataclass
class Frame:
    """One structure with optional labels, as plain arrays.

    A missing energy is ``nan``; missing forces or stress are ``None``.
    """

    # [n] int64, atomic numbers
    numbers: np.ndarray
    # [n, 3] Å, Cartesian positions
    positions: np.ndarray
    # [3, 3] Å, cell vectors as rows
    cell: np.ndarray
    # [3] bool, periodicity per cell vector
    pbc: np.ndarray
    # eV, total energy (nan when unlabelled)
    energy: float = float("nan")
    # [n, 3] eV/Å, forces, or None
    forces: np.ndarray | None = None
    # [3, 3] eV/Å³, stress with ASE's sign, or None
    stress: np.ndarray | None = None
    # [n] bool, atoms held fixed
    fixed: np.ndarray | None = None
    # [n] int64, OC20 tags (0 subsurface, 1 surface, 2 adsorbate)
    tags: np.ndarray | None = None
    # system id (OC20 "sid"), NO_SYSTEM when absent
    system_id: int = NO_SYSTEM
    # other JSON-serialisable per-frame metadata
    info: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.numbers)
        self.numbers = np.asarray(self.numbers, dtype=np.int64).reshape(n)
        self.positions = np.asarray(self.positions, dtype=np.float64).reshape(n, 3)
        self.cell = np.asarray(self.cell, dtype=np.float64).reshape(3, 3)
        self.pbc = np.broadcast_to(np.asarray(self.pbc, dtype=bool), (3,)).copy()
        self.energy = float(self.energy)
        if self.forces is not None:
            self.forces = np.asarray(self.forces, dtype=np.float64).reshape(n, 3)
        if self.stress is not None:
            stress = np.asarray(self.stress, dtype=np.float64)
            self.stress = voigt_6_to_full_3x3_stress(stress) if stress.shape == (6,) else stress
            self.stress = self.stress.reshape(3, 3)
        fixed = np.zeros(n, bool) if self.fixed is None else self.fixed
        self.fixed = np.asarray(fixed, dtype=bool).reshape(n)
        tags = np.zeros(n, np.int64) if self.tags is None else self.tags
        self.tags = np.asarray(tags).astype(np.int64).reshape(n)
        self.system_id = int(self.system_id)

    @property
    def natoms(self) -> int:
        """Number of atoms."""
        return len(self.numbers)

    @classmethod
    def from_atoms(cls, atoms: Atoms) -> Frame:
        """The frame of an ``Atoms`` (labels looked up as the module docstring says)."""
        if not isinstance(atoms, Atoms):
            raise TypeError(f"expected ase.Atoms, got {type(atoms).__name__}")
        results = dict(getattr(atoms.calc, "results", {}) or {}) if atoms.calc else {}
        energy = results.get("energy", atoms.info.get("energy"))
        fixed = np.zeros(len(atoms), bool)
        for constraint in atoms.constraints:
            if isinstance(constraint, FixAtoms):
                fixed[constraint.get_indices()] = True
        info = {
            k: v.item() if isinstance(v, np.generic) else v
            for k, v in atoms.info.items()
            if k not in _OWN_KEYS and _jsonable(v)
        }
        return cls(
            numbers=atoms.numbers,
            positions=atoms.positions,
            cell=atoms.cell.array,
            pbc=atoms.pbc,
            energy=float("nan") if energy is None else energy,
            forces=results.get("forces", atoms.arrays.get("forces")),
            stress=results.get("stress", atoms.info.get("stress")),
            fixed=fixed,
            tags=atoms.get_tags(),
            system_id=atoms.info.get("system_id", NO_SYSTEM),
            info=info,
        )

    def to_atoms(self) -> Atoms:
        """An ``Atoms`` with the labels in a ``SinglePointCalculator`` (see module docstring)."""
        atoms = Atoms(
            numbers=self.numbers, positions=self.positions, cell=self.cell, pbc=self.pbc,
            tags=self.tags if self.tags.any() else None,
        )  # fmt: skip
        if self.fixed.any():
            atoms.set_constraint(FixAtoms(indices=np.flatnonzero(self.fixed)))
        atoms.info.update(self.info)
        if self.system_id != NO_SYSTEM:
            atoms.info["system_id"] = self.system_id
        results: dict = {}
        if np.isfinite(self.energy):
            results["energy"] = self.energy
        if self.forces is not None:
            results["forces"] = self.forces.copy()
        if self.stress is not None:
            results["stress"] = full_3x3_to_voigt_6_stress(self.stress)
        if results:
            atoms.calc = SinglePointCalculator(atoms, **results)
        return atoms

    def info_json(self) -> str:
        """``info`` as a JSON string (for formats that store metadata as text)."""
        return json.dumps(self.info, sort_keys=True)


def _jsonable(value: object) -> bool:
    """Whether ``value`` survives a JSON round trip unchanged (scalars and strings only)."""
    if isinstance(value, np.generic):
        return isinstance(value, (np.number, np.bool_))
    return isinstance(value, (str, bool, int, float))


@contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """A temporary path beside ``path``; on success it replaces ``path`` in one rename.

    For writers that need a file name rather than a handle (HDF5, SQLite, LMDB). Readers see
    the old file or the complete new one; on an error the temporary file is removed.

    Args:
        path: The final file.
        suffix: Suffix of the temporary name (some libraries choose behaviour by suffix).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{suffix}", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    tmp.unlink()  # let the library create it fresh
    try:
        yield tmp
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
        Path(f"{tmp}-lock").unlink(missing_ok=True)
