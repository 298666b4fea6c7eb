"""fairchem-style LMDB frames (OC20 S2EF/IS2RE data a user already has), read safely.

Layout: an LMDB environment in one file (``subdir=False``), or a directory of ``*.lmdb``
shards read in name order. Keys are ASCII integers ``b"0" ... b"{n-1}"``; the optional key
``b"length"`` holds the pickled count. Each value is a pickled ``torch_geometric`` ``Data``
object, unpickled with an allow-list (:mod:`equicat.data.formats.pyg_pickle`), so neither
torch_geometric nor trust in the file is needed. Fields read (OC20 names):

========================  ==========================================================
``pos``                   [n, 3] Å, positions
``atomic_numbers``        [n] (float in OC20), atomic numbers
``cell``                  [1, 3, 3] or [3, 3] Å; missing -> no cell, non-periodic
``pbc``                   [1, 3] or [3] bool; missing -> periodic when a cell is given
``energy`` or ``y``       eV, total energy (``y_init``/``y_relaxed`` go to ``info``)
``forces`` or ``force``   [n, 3] eV/Å
``stress``                [1, 3, 3] or [3, 3] eV/Å³, when present
``fixed``                 [n] 0/1, fixed atoms
``tags``                  [n], 0 subsurface / 1 surface / 2 adsorbate
``sid``                   system id (an integer; other types go to ``info["sid"]``)
``natoms``                checked against ``len(pos)``
other scalars             copied into ``info`` (e.g. ``fid``)
========================  ==========================================================

``natoms`` for the atom-balanced sampler comes from ``metadata.npz`` (fairchem's
``natoms`` array) beside the data when it exists, else from reading every entry once.
The ``lmdb`` package is an optional extra: ``pip install 'equicat[lmdb]'``.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ase import Atoms

from equicat.data.formats.frame import NO_SYSTEM, Frame, atomic_path
from equicat.data.formats.pyg_pickle import PygRecord, dumps_pyg, loads_pyg

__all__ = ["LmdbFrames", "frame_from_fields", "write_lmdb"]

_KNOWN = ("pos", "atomic_numbers", "cell", "pbc", "energy", "y", "forces", "force", "stress",
          "fixed", "tags", "sid", "natoms")  # fmt: skip


def _lmdb():
    try:
        import lmdb
    except ImportError as err:
        raise ImportError(
            "reading LMDB data needs the 'lmdb' package: pip install 'equicat[lmdb]'"
        ) from err
    return lmdb


def _array(value: Any, dtype=np.float64) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    return np.asarray(value).astype(dtype)


def _scalar(value: Any) -> Any:
    if isinstance(value, (torch.Tensor, np.ndarray)) and np.asarray(value).size == 1:
        return np.asarray(value).reshape(()).item()
    return value


def frame_from_fields(fields: dict[str, Any], where: str) -> Frame:
    """A :class:`Frame` from a PyG ``Data``'s attributes (table in the module docstring)."""
    if "pos" not in fields or "atomic_numbers" not in fields:
        raise ValueError(f"{where} has no 'pos' or 'atomic_numbers'; is it an OC20 LMDB?")
    pos = _array(fields["pos"]).reshape(-1, 3)
    n = len(pos)
    if "natoms" in fields and int(_scalar(fields["natoms"])) != n:
        raise ValueError(f"{where}: natoms={_scalar(fields['natoms'])} but pos has {n} rows")
    cell = _array(fields["cell"]).reshape(3, 3) if fields.get("cell") is not None else None
    pbc = fields.get("pbc")
    pbc = _array(pbc, bool).reshape(3) if pbc is not None else np.full(3, cell is not None)
    energy = fields.get("energy", fields.get("y"))
    forces = fields.get("forces", fields.get("force"))
    sid = _scalar(fields.get("sid", NO_SYSTEM))
    info = {k: _scalar(v) for k, v in fields.items() if k not in _KNOWN}
    info = {k: v for k, v in info.items() if isinstance(v, (str, int, float, bool))}
    if not isinstance(sid, int):
        info["sid"], sid = sid, NO_SYSTEM
    return Frame(
        numbers=np.rint(_array(fields["atomic_numbers"])).astype(np.int64),
        positions=pos,
        cell=np.zeros((3, 3)) if cell is None else cell,
        pbc=pbc,
        energy=float("nan") if energy is None else float(_scalar(energy)),
        forces=None if forces is None else _array(forces).reshape(n, 3),
        stress=None if fields.get("stress") is None else _array(fields["stress"]).reshape(3, 3),
        fixed=None if fields.get("fixed") is None else _array(fields["fixed"]).reshape(n) > 0.5,
        tags=None if fields.get("tags") is None else _array(fields["tags"], np.int64),
        system_id=sid,
        info=info,
    )


def _shards(path: Path) -> list[Path]:
    if path.is_dir():
        shards = sorted(path.glob("*.lmdb"))
        if not shards:
            raise FileNotFoundError(f"directory {str(path)!r} holds no *.lmdb files")
        return shards
    if not path.is_file():
        raise FileNotFoundError(f"LMDB data {str(path)!r} does not exist")
    return [path]


# open read-only environments of this process: real path -> (inode, env); py-lmdb refuses
# to open one file twice in a process
_ENVS: dict[str, tuple[int, Any]] = {}
_ENVS_PID = [os.getpid()]
# environments inherited over fork: kept referenced, never used or closed in the child
_INHERITED: list[Any] = []


def _open_env(path: Path):
    """The shared read-only environment of ``path`` for this process."""
    if _ENVS_PID[0] != os.getpid():
        _INHERITED.extend(env for _, env in _ENVS.values())
        _ENVS.clear()
        _ENVS_PID[0] = os.getpid()
    key = os.path.realpath(path)
    inode = os.stat(key).st_ino
    if key in _ENVS and _ENVS[key][0] != inode:  # the file was replaced since
        _ENVS.pop(key)[1].close()
    if key not in _ENVS:
        lmdb = _lmdb()
        try:
            env = lmdb.open(
                key, subdir=False, readonly=True, lock=False, readahead=False,
                meminit=False, max_readers=1,
            )  # fmt: skip
        except lmdb.Error as err:
            raise ValueError(f"{str(path)!r} is not a readable LMDB file: {err}") from err
        _ENVS[key] = (inode, env)
    return _ENVS[key][1]


def _length(env, path: Path) -> int:
    with env.begin() as txn:
        raw = txn.get(b"length")
        if raw is None:
            return int(env.stat()["entries"])
        try:
            length = loads_pyg(raw)
        except Exception as err:
            raise ValueError(f"{str(path)!r}: key 'length' is not a pickled int: {err}") from err
    if not isinstance(length, int):
        raise ValueError(f"{str(path)!r}: key 'length' holds {type(length).__name__}, not int")
    return length


class LmdbFrames(Sequence):
    """Random access to fairchem LMDB frames; ``frames[i]`` is an ``Atoms``.

    Environments are opened once per process and shared by every reader of the same file
    (reopened in DataLoader worker processes).
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.shards = _shards(self.path)
        lengths = [_length(_open_env(shard), shard) for shard in self.shards]
        self.starts = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        self._natoms: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.starts[-1])

    def frame(self, index: int) -> Frame:
        """The :class:`Frame` at ``index`` (negative counts from the end)."""
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"frame {index} out of range for {n} frames in {self.path}")
        index %= n
        shard = int(np.searchsorted(self.starts, index, side="right") - 1)
        key = index - int(self.starts[shard])
        where = f"{self.shards[shard]} entry {key}"
        with _open_env(self.shards[shard]).begin() as txn:
            raw = txn.get(str(key).encode("ascii"))
        if raw is None:
            raise ValueError(f"{where} is missing; the LMDB is truncated or not fairchem's")
        try:
            data = loads_pyg(raw)
        except pickle.UnpicklingError as err:
            raise type(err)(f"{where}: {err}") from err
        except Exception as err:
            raise ValueError(f"{where} is not a readable pickle: {err}") from err
        if not isinstance(data, PygRecord):
            raise ValueError(f"{where} holds {type(data).__name__}, not a PyG Data object")
        return frame_from_fields(data.fields(), where)

    def __getitem__(self, index):  # type: ignore[override]
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        return self.frame(int(index)).to_atoms()

    @property
    def natoms(self) -> np.ndarray:
        """[B] int64, atoms per frame (``metadata.npz`` if present, else read once)."""
        if self._natoms is None:
            meta = (self.path if self.path.is_dir() else self.path.parent) / "metadata.npz"
            if meta.is_file():
                with np.load(meta) as npz:
                    if "natoms" in npz and len(npz["natoms"]) == len(self):
                        self._natoms = npz["natoms"].astype(np.int64)
            if self._natoms is None:
                self._natoms = np.array([self.frame(i).natoms for i in range(len(self))])
        return self._natoms

    def read_all(self) -> list[Atoms]:
        """Every frame, in order."""
        return [self[i] for i in range(len(self))]

    def __repr__(self) -> str:
        return f"LmdbFrames({str(self.path)!r}, {len(self)} frames)"


def _fields(frame: Frame, dtype: torch.dtype) -> dict[str, Any]:
    """OC20-style attributes of a frame (see the module docstring)."""

    def tensor(x: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(x)).to(dtype)

    fields: dict[str, Any] = {
        "pos": tensor(frame.positions),
        "cell": tensor(frame.cell[None]),
        "pbc": torch.from_numpy(frame.pbc[None].copy()),
        "atomic_numbers": tensor(frame.numbers),
        "natoms": frame.natoms,
        "tags": torch.from_numpy(frame.tags),
        "fixed": tensor(frame.fixed),
        **frame.info,
    }
    if np.isfinite(frame.energy):
        fields["y"] = frame.energy
    if frame.forces is not None:
        fields["force"] = tensor(frame.forces)
    if frame.stress is not None:
        fields["stress"] = tensor(frame.stress[None])
    if frame.system_id != NO_SYSTEM:
        fields["sid"] = frame.system_id
    return fields


def write_lmdb(
    path: str | os.PathLike,
    frames: Iterable[Atoms],
    dtype: torch.dtype = torch.float32,
    layout: str = "pyg2",
) -> Path:
    """Write frames as a fairchem-style LMDB file, atomically (temp file + rename).

    Args:
        path: The ``.lmdb`` file to create.
        frames: Labelled structures.
        dtype: Float dtype of the stored tensors (OC20 uses float32).
        layout: ``"pyg2"`` (``Data`` with a ``GlobalStorage``) or ``"pyg1"`` (plain attributes).
    """
    lmdb = _lmdb()
    values = [dumps_pyg(_fields(Frame.from_atoms(a), dtype), layout) for a in frames]
    values.append(pickle.dumps(len(values)))
    map_size = sum(len(v) // 4096 + 2 for v in values) * 4096 * 2 + (1 << 20)
    with atomic_path(path, ".lmdb") as tmp:
        env = lmdb.open(str(tmp), subdir=False, map_size=map_size, lock=False, meminit=False)
        with env.begin(write=True) as txn:
            for i, value in enumerate(values[:-1]):
                txn.put(str(i).encode("ascii"), value)
            txn.put(b"length", values[-1])
        env.sync()
        env.close()
    return Path(path)
