"""Structure files with labels: one interface over extxyz, ASE db, equicat HDF5 and LMDB.

``open_frames(path)`` gives a random-access sequence of ``Atoms`` (with ``natoms`` and
``read_all()``), ``read_frames(path)`` every frame, ``write_frames(path, frames)`` a new file
(atomically) or, with ``append=True``, more frames at its end. The format follows from the
suffix (see :data:`SUFFIXES`) unless ``format=`` names it. Labels live where
:mod:`equicat.data.formats.frame` says, in every format.

============  ==================  =====  ======  ============================================
format        suffixes            write  append  notes
============  ==================  =====  ======  ============================================
``hdf5``      .h5 .hdf5           yes    yes     equicat layout, lazy random access
``asedb``     .db                 yes    yes     ASE SQLite database, lazy random access
``lmdb``      .lmdb, a directory  yes    no      fairchem OC20 layout, safe unpickling
``extxyz``    .extxyz .xyz        yes    yes     text (8 decimals), held in memory
``ase``       anything else       no     no      whatever ``ase.io.read`` reads
============  ==================  =====  ======  ============================================
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from ase import Atoms

from equicat.data.formats.frame import NO_SYSTEM, Frame, atomic_path

__all__ = [
    "Frame",
    "NO_SYSTEM",
    "SUFFIXES",
    "atomic_path",
    "format_of",
    "open_frames",
    "read_frames",
    "write_frames",
]

SUFFIXES = {
    ".h5": "hdf5", ".hdf5": "hdf5", ".db": "asedb", ".lmdb": "lmdb",
    ".extxyz": "extxyz", ".xyz": "extxyz",
}  # fmt: skip
_FORMATS = ("hdf5", "asedb", "lmdb", "extxyz", "ase")


def format_of(path: str | os.PathLike, format: str | None = None) -> str:
    """The format name for ``path``: ``format`` if given, else by suffix (directory -> lmdb)."""
    if format is not None:
        if format not in _FORMATS:
            raise ValueError(f"unknown data format {format!r}; use one of {list(_FORMATS)}")
        return format
    path = Path(path)
    if path.is_dir():
        return "lmdb"
    return SUFFIXES.get(path.suffix.lower(), "ase")


def open_frames(path: str | os.PathLike, format: str | None = None) -> Sequence[Atoms]:
    """Random-access frames of one file; ``len``, ``[i]``, ``.natoms`` and ``.read_all()``."""
    kind = format_of(path, format)
    if kind == "hdf5":
        from equicat.data.formats.hdf5 import HDF5Frames

        return HDF5Frames(path)
    if kind == "asedb":
        from equicat.data.formats.asedb import AseDbFrames

        return AseDbFrames(path)
    if kind == "lmdb":
        from equicat.data.formats.lmdb import LmdbFrames

        return LmdbFrames(path)
    from equicat.data.formats.extxyz import ExtxyzFrames

    return ExtxyzFrames(path, "extxyz" if kind == "extxyz" else None)


def read_frames(path: str | os.PathLike, format: str | None = None) -> list[Atoms]:
    """Every frame of one file, in order, labels in a ``SinglePointCalculator``."""
    return open_frames(path, format).read_all()  # type: ignore[attr-defined]


def write_frames(
    path: str | os.PathLike,
    frames: Iterable[Atoms],
    format: str | None = None,
    *,
    append: bool = False,
) -> Path:
    """Write ``frames`` to ``path`` (a new file, atomically) or append them.

    Args:
        path: Output file; its suffix picks the format unless ``format`` is given.
        frames: Structures with their labels.
        format: ``"hdf5"``, ``"asedb"``, ``"lmdb"`` or ``"extxyz"``.
        append: Add to the end of an existing file (created if missing); not for LMDB.
    """
    kind = format_of(path, format)
    if kind == "ase":
        kind = "extxyz"
    if kind == "hdf5":
        from equicat.data.formats.hdf5 import append_hdf5, write_hdf5

        return (append_hdf5 if append else write_hdf5)(path, frames)
    if kind == "asedb":
        from equicat.data.formats.asedb import append_asedb, write_asedb

        return (append_asedb if append else write_asedb)(path, frames)
    if kind == "lmdb":
        if append:
            raise ValueError("appending to an LMDB is not supported; write HDF5 for long runs")
        from equicat.data.formats.lmdb import write_lmdb

        return write_lmdb(path, frames)
    from equicat.data.formats.extxyz import append_extxyz, write_extxyz

    return (append_extxyz if append else write_extxyz)(path, frames)
