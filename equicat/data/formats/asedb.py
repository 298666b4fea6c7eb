"""ASE database (SQLite) frames via ``ase.db``.

Each frame is one row: positions, cell, pbc, tags and ``FixAtoms`` constraints as ASE stores
them, energy/forces/stress from the attached calculator's results, the system id as the
key-value pair ``system_id``, and other metadata in the row's ``data["info"]``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
from ase import Atoms

from equicat.data.formats.frame import NO_SYSTEM, Frame, atomic_path

__all__ = ["AseDbFrames", "append_asedb", "write_asedb"]


def _connect(path: Path, append: bool = True):
    import ase.db

    return ase.db.connect(str(path), type="db", append=append)


def _write_rows(db, frames: Iterable[Atoms]) -> None:
    for atoms in frames:
        frame = Frame.from_atoms(atoms)
        out = frame.to_atoms()
        out.info.clear()
        pairs = {} if frame.system_id == NO_SYSTEM else {"system_id": frame.system_id}
        db.write(out, key_value_pairs=pairs, data={"info": frame.info})


def write_asedb(path: str | os.PathLike, frames: Iterable[Atoms]) -> Path:
    """Write ``frames`` to a new ASE SQLite database, atomically (temp file + rename)."""
    with atomic_path(path, ".db") as tmp:
        with _connect(tmp, append=False) as db:
            _write_rows(db, frames)
    return Path(path)


def append_asedb(path: str | os.PathLike, frames: Iterable[Atoms]) -> Path:
    """Append ``frames`` to an ASE database in one transaction (created if missing)."""
    path = Path(path)
    if path.exists():
        _check(path)
    with _connect(path) as db:
        _write_rows(db, frames)
    return path


def _check(path: Path) -> None:
    if not path.is_file():
        raise FileNotFoundError(f"ASE database {str(path)!r} does not exist")
    with open(path, "rb") as fh:
        head = fh.read(16)
    if head != b"SQLite format 3\x00":
        raise ValueError(f"{str(path)!r} is not an SQLite file (corrupt or another format)")


class AseDbFrames(Sequence):
    """Random access to the rows of an ASE database, in id order; ``frames[i]`` is ``Atoms``."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        _check(self.path)
        try:
            db = _connect(self.path)
            rows = list(db.select(columns=["id", "numbers"], include_data=False))
        except Exception as err:
            raise ValueError(
                f"{str(self.path)!r} is an SQLite file but not a readable ASE database: {err}"
            ) from err
        self.ids = np.array([r.id for r in rows], np.int64)
        self._natoms = np.array([len(r.numbers) for r in rows], np.int64)
        self._db = None
        self._pid = -1

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def natoms(self) -> np.ndarray:
        """[B] int64, atoms per frame."""
        return self._natoms

    def _connection(self):
        if self._db is None or self._pid != os.getpid():
            self._db, self._pid = _connect(self.path), os.getpid()
        return self._db

    def __getitem__(self, index):  # type: ignore[override]
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"frame {index} out of range for {n} rows in {self.path}")
        return _row_atoms(self._connection().get(id=int(self.ids[index])))

    def read_all(self) -> list[Atoms]:
        """Every frame in id order."""
        return [_row_atoms(row) for row in self._connection().select(sort="id")]

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_db": None, "_pid": -1}

    def __repr__(self) -> str:
        return f"AseDbFrames({str(self.path)!r}, {len(self)} frames)"


def _row_atoms(row) -> Atoms:
    atoms = row.toatoms()
    atoms.info.update((row.data or {}).get("info", {}))
    sid = row.key_value_pairs.get("system_id")
    if sid is not None:
        atoms.info["system_id"] = int(sid)
    return atoms
