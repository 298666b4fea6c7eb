"""Extended XYZ frames via ``ase.io`` (text: floats keep 8 decimals, not bit-exact)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator

from equicat.data.formats.frame import atomic_path

__all__ = ["ExtxyzFrames", "append_extxyz", "write_extxyz"]


def write_extxyz(path: str | os.PathLike, frames: Iterable[Atoms]) -> Path:
    """Write frames to a new extxyz file, atomically (temp file + rename), as ase.io does.

    Frames are written as they are (every ``info`` and ``arrays`` entry ase.io can write).
    """
    import ase.io

    with atomic_path(path, ".extxyz") as tmp:
        ase.io.write(tmp, list(frames), format="extxyz")
    return Path(path)


def append_extxyz(path: str | os.PathLike, frames: Iterable[Atoms]) -> Path:
    """Append frames to an extxyz file (a kill mid-append can leave a partial last frame)."""
    import ase.io

    ase.io.write(path, list(frames), format="extxyz", append=True)
    return Path(path)


class ExtxyzFrames(Sequence):
    """Every frame of a structure file ``ase.io`` reads, held in memory."""

    def __init__(self, path: str | os.PathLike, format: str | None = None) -> None:
        import ase.io

        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"data file {str(path)!r} does not exist")
        try:
            frames = ase.io.read(self.path, ":", format=format)
        except Exception as err:
            raise ValueError(f"cannot read data file {str(path)!r}: {err}") from err
        self.frames: list[Atoms] = frames if isinstance(frames, list) else [frames]

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, index):  # type: ignore[override]
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        atoms = self.frames[index]
        out = atoms.copy()  # a copy drops the calculator: attach the stored labels again
        if atoms.calc is not None and getattr(atoms.calc, "results", None):
            out.calc = SinglePointCalculator(out, **atoms.calc.results)
        return out

    @property
    def natoms(self) -> np.ndarray:
        """[B] int64, atoms per frame."""
        return np.array([len(a) for a in self.frames], np.int64)

    def read_all(self) -> list[Atoms]:
        """Every frame (the objects held, not copies)."""
        return list(self.frames)

    def __repr__(self) -> str:
        return f"ExtxyzFrames({str(self.path)!r}, {len(self)} frames)"
