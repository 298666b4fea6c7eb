"""equicat HDF5 frames: chunked, appendable, random access, variable atoms per frame.

Layout (``format = "equicat-frames"``, ``version = 1`` as root attributes)::

    /offsets            [B+1] int64   atoms of frame b are rows offsets[b]:offsets[b+1]
    /frames/cell        [B, 3, 3] f8  Å, cell vectors as rows
    /frames/pbc         [B, 3] bool
    /frames/energy      [B] f8        eV, nan when unlabelled
    /frames/stress      [B, 3, 3] f8  eV/Å³ (ASE sign), nan when unlabelled
    /frames/system_id   [B] int64     -1 when absent
    /frames/info        [B] str       JSON object of other metadata
    /atoms/numbers      [N] int64
    /atoms/positions    [N, 3] f8     Å
    /atoms/forces       [N, 3] f8     eV/Å, nan when unlabelled
    /atoms/fixed        [N] bool
    /atoms/tags         [N] int64

Every dataset is chunked and resizable along its first axis. ``offsets`` is the commit
record: an append writes the atom rows, then the frame rows, then extends ``offsets`` and
flushes, so frames beyond ``len(offsets) - 1`` (left by a killed append) are invisible and
overwritten by the next append. A whole-file write goes to a temporary file that replaces the
target in one rename. HDF5 itself is not journaled: a process killed while HDF5 is flushing
its metadata can still leave an unreadable file, which is reported as such.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
from ase import Atoms

from equicat.data.formats.frame import Frame, atomic_path

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "HDF5Frames", "append_hdf5", "write_hdf5"]

FORMAT_NAME = "equicat-frames"
FORMAT_VERSION = 1
# name -> (trailing shape, dtype); "info" is a variable-length string
_FRAME_FIELDS = {
    "cell": ((3, 3), "f8"), "pbc": ((3,), "bool"), "energy": ((), "f8"),
    "stress": ((3, 3), "f8"), "system_id": ((), "i8"), "info": ((), "str"),
}  # fmt: skip
_ATOM_FIELDS = {
    "numbers": ((), "i8"), "positions": ((3,), "f8"), "forces": ((3,), "f8"),
    "fixed": ((), "bool"), "tags": ((), "i8"),
}  # fmt: skip
_CHUNK_FRAMES = 1024
_CHUNK_ATOMS = 16384


def _h5py():
    import h5py

    return h5py


def _dtype(name: str):
    return _h5py().string_dtype() if name == "str" else np.dtype(name)


def _create(h5) -> None:
    """Empty datasets and format attributes in an open, empty file."""
    h5.attrs["format"] = FORMAT_NAME
    h5.attrs["version"] = FORMAT_VERSION
    h5.create_dataset("offsets", data=np.zeros(1, np.int64), maxshape=(None,), chunks=(4096,))
    for group, fields, chunk in (
        ("frames", _FRAME_FIELDS, _CHUNK_FRAMES),
        ("atoms", _ATOM_FIELDS, _CHUNK_ATOMS),
    ):
        for name, (shape, dtype) in fields.items():
            h5.create_dataset(
                f"{group}/{name}", shape=(0, *shape), dtype=_dtype(dtype),
                maxshape=(None, *shape), chunks=(chunk, *shape),
            )  # fmt: skip


def _columns(frames: Sequence[Frame]) -> tuple[dict, dict]:
    """Per-frame and per-atom arrays of ``frames``, concatenated."""
    nan3 = np.full((3, 3), np.nan)
    per_frame = {
        "cell": np.stack([f.cell for f in frames]),
        "pbc": np.stack([f.pbc for f in frames]),
        "energy": np.array([f.energy for f in frames], np.float64),
        "stress": np.stack([nan3 if f.stress is None else f.stress for f in frames]),
        "system_id": np.array([f.system_id for f in frames], np.int64),
        "info": np.array([f.info_json() for f in frames], dtype=object),
    }
    per_atom = {
        "numbers": np.concatenate([f.numbers for f in frames]),
        "positions": np.concatenate([f.positions for f in frames]),
        "forces": np.concatenate(
            [np.full((f.natoms, 3), np.nan) if f.forces is None else f.forces for f in frames]
        ),
        "fixed": np.concatenate([f.fixed for f in frames]),
        "tags": np.concatenate([f.tags for f in frames]),
    }
    return per_frame, per_atom


def _extend(dataset, start: int, values: np.ndarray) -> None:
    dataset.resize(start + len(values), axis=0)
    dataset[start:] = values


def _append(h5, frames: Sequence[Frame]) -> None:
    """Append ``frames`` to an open, checked file; ``offsets`` is written last."""
    if not frames:
        return
    offsets = h5["offsets"][:]
    nframes, natoms = len(offsets) - 1, int(offsets[-1])
    per_frame, per_atom = _columns(frames)
    for name, values in per_atom.items():
        _extend(h5[f"atoms/{name}"], natoms, values)
    for name, values in per_frame.items():
        _extend(h5[f"frames/{name}"], nframes, values)
    counts = np.cumsum([f.natoms for f in frames]) + natoms
    _extend(h5["offsets"], nframes + 1, counts.astype(np.int64))
    h5.flush()


def write_hdf5(path: str | os.PathLike, frames: Iterable[Atoms]) -> Path:
    """Write ``frames`` to a new equicat HDF5 file, atomically (temp file + rename)."""
    records = [Frame.from_atoms(a) for a in frames]
    with atomic_path(path, ".h5") as tmp:
        with _h5py().File(tmp, "w") as h5:
            _create(h5)
            _append(h5, records)
    return Path(path)


def append_hdf5(path: str | os.PathLike, frames: Iterable[Atoms]) -> Path:
    """Append ``frames`` to an equicat HDF5 file, creating it (atomically) if missing.

    Frames are visible to readers once this returns; a kill mid-append loses only the frames
    of that call (see the module docstring).
    """
    path = Path(path)
    if not path.exists():
        return write_hdf5(path, frames)
    records = [Frame.from_atoms(a) for a in frames]
    with _open(path, "r+") as h5:
        _append(h5, records)
    return path


def _open(path: Path, mode: str = "r"):
    """Open and check an equicat HDF5 file; errors name the file and what is wrong."""
    h5py = _h5py()
    if not path.is_file():
        raise FileNotFoundError(f"HDF5 data file {str(path)!r} does not exist")
    if not h5py.is_hdf5(path):
        raise ValueError(f"{str(path)!r} is not an HDF5 file (corrupt or another format)")
    try:
        h5 = h5py.File(path, mode)
    except OSError as err:
        purpose = "reading" if mode == "r" else "appending"
        raise ValueError(
            f"cannot open HDF5 file {str(path)!r} for {purpose}: {err}. A reader or writer "
            "elsewhere may hold it open (HDF5 does not let one file be appended to while it is "
            "read; close the reader first), or the file is corrupt"
        ) from err
    try:
        _check(h5, path)
    except BaseException:
        h5.close()
        raise
    return h5


def _check(h5, path: Path) -> None:
    name, version = h5.attrs.get("format"), h5.attrs.get("version")
    if isinstance(name, bytes):
        name = name.decode()
    if name != FORMAT_NAME:
        raise ValueError(
            f"{str(path)!r} is an HDF5 file but not equicat frames (format attribute "
            f"{name!r}, expected {FORMAT_NAME!r}); convert it or read it with its own tool"
        )
    if version is None or int(version) > FORMAT_VERSION:
        raise ValueError(
            f"{str(path)!r} has equicat frames version {version}; this equicat reads up to "
            f"version {FORMAT_VERSION}, upgrade equicat"
        )
    needed = ["offsets"] + [f"frames/{k}" for k in _FRAME_FIELDS]
    needed += [f"atoms/{k}" for k in _ATOM_FIELDS]
    missing = [k for k in needed if k not in h5]
    if missing:
        raise ValueError(f"{str(path)!r} is corrupt: datasets {missing} are missing")
    offsets = h5["offsets"][:]
    if len(offsets) == 0 or offsets[0] != 0 or (np.diff(offsets) < 0).any():
        raise ValueError(f"{str(path)!r} is corrupt: offsets must start at 0 and never decrease")
    nframes, natoms = len(offsets) - 1, int(offsets[-1])
    for key in needed[1:]:
        rows = len(h5[key])
        need = nframes if key.startswith("frames/") else natoms
        if rows < need:
            raise ValueError(
                f"{str(path)!r} is corrupt: {key} has {rows} rows but offsets record "
                f"{nframes} frames of {natoms} atoms"
            )


class HDF5Frames(Sequence):
    """Random access to the frames of an equicat HDF5 file; ``frames[i]`` is an ``Atoms``.

    The file is opened lazily and reopened in a new process (safe with DataLoader workers).
    The frame count is read at construction: frames appended later need a new reader, and
    appending while this reader holds the file open fails (call :meth:`close` first).
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        with _open(self.path) as h5:
            self.offsets = h5["offsets"][:]  # [B+1]
        self._h5 = None
        self._pid = -1

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def natoms(self) -> np.ndarray:
        """[B] int64, atoms per frame."""
        return np.diff(self.offsets)

    def _file(self):
        if self._h5 is None or self._pid != os.getpid():
            self._h5, self._pid = _open(self.path), os.getpid()
        return self._h5

    def frame(self, index: int) -> Frame:
        """The :class:`Frame` at ``index`` (negative counts from the end)."""
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"frame {index} out of range for {n} frames in {self.path}")
        index %= n
        h5 = self._file()
        lo, hi = int(self.offsets[index]), int(self.offsets[index + 1])
        row = {k: h5[f"frames/{k}"][index] for k in _FRAME_FIELDS}
        cols = {k: h5[f"atoms/{k}"][lo:hi] for k in _ATOM_FIELDS}
        return _make_frame(row, cols)

    def __getitem__(self, index):  # type: ignore[override]
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        return self.frame(int(index)).to_atoms()

    def read_all(self) -> list[Atoms]:
        """Every frame, reading each dataset once (faster than indexing frame by frame)."""
        h5, n, end = self._file(), len(self), int(self.offsets[-1])
        rows = {k: h5[f"frames/{k}"][:n] for k in _FRAME_FIELDS}
        cols = {k: h5[f"atoms/{k}"][:end] for k in _ATOM_FIELDS}
        out = []
        for b in range(n):
            lo, hi = self.offsets[b], self.offsets[b + 1]
            row = {k: v[b] for k, v in rows.items()}
            out.append(_make_frame(row, {k: v[lo:hi] for k, v in cols.items()}).to_atoms())
        return out

    def close(self) -> None:
        """Close the file handle (reopened on the next access)."""
        if self._h5 is not None and self._pid == os.getpid():
            self._h5.close()
        self._h5 = None

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_h5": None, "_pid": -1}

    def __repr__(self) -> str:
        return f"HDF5Frames({str(self.path)!r}, {len(self)} frames)"


def _make_frame(row: dict, cols: dict) -> Frame:
    import json

    info = row["info"]
    info = json.loads(info.decode() if isinstance(info, bytes) else info)
    forces, stress = cols["forces"], row["stress"]
    return Frame(
        numbers=cols["numbers"], positions=cols["positions"], cell=row["cell"],
        pbc=row["pbc"], energy=row["energy"],
        forces=None if np.isnan(forces).all() and len(forces) else forces,
        stress=None if np.isnan(stress).all() else stress,
        fixed=cols["fixed"], tags=cols["tags"], system_id=row["system_id"], info=info,
    )  # fmt: skip
