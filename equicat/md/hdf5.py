"""HDF5 trajectories: appendable, flushed every few frames, readable while the run goes on.

Layout (``T`` frames, ``B`` systems, ``N`` atoms in all; float64 unless noted)::

    /positions   [T, N, 3] Å          /velocities [T, N, 3] Å/fs     /forces [T, N, 3] eV/Å
    /energy      [T, B] eV (potential) /kinetic   [T, B] eV          /reservoir [T, B] eV
    /cell        [T, B, 3, 3] Å        /stress    [T, B, 3, 3] eV/Å^3 (potential part; NaN
                                                                      where not evaluated)
    /time [T] fs   /step [T] int64     /rng [T, L] uint8 (torch generator state)
    /atomic_numbers [N]  /masses [N] amu  /natoms [B]  /pbc [B, 3]  /fixed [N]  /tags [N]
    attrs: format, version, config (JSON of MDConfig), units (JSON), metadata (JSON)

Per-frame datasets are chunked along ``T`` and grow by one frame per :meth:`H5Writer.append`.

**Readable while running: SWMR** (HDF5 single-writer/multiple-reader). The writer opens the
file with ``libver="latest"`` and switches on SWMR mode after creating every dataset; each
:meth:`H5Writer.flush` makes the frames so far visible to readers, which open it with
``h5py.File(path, "r", swmr=True)`` (:func:`read_trajectory` does) and may call
``dataset.refresh()`` to see later frames. The file on disk is consistent at every flush, so
after a crash (``kill -9``) the frames up to the last flush can be read. Such a file still
carries the writer's "open" flag, which HDF5 refuses to open for writing again; :func:`recover`
therefore copies its consistent frames into a fresh file (temporary file + rename) before a
resumed run appends to it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from ase import units

from equicat.md.state import MDState

__all__ = ["FRAME_FIELDS", "H5Writer", "read_frame", "read_trajectory", "recover"]

FORMAT = "equicat-md"
VERSION = 1
UNITS = {
    "positions": "Å", "velocities": "Å/fs", "forces": "eV/Å", "energy": "eV", "kinetic": "eV",
    "reservoir": "eV", "cell": "Å", "stress": "eV/Å^3", "time": "fs", "masses": "amu",
}  # fmt: skip
# per-frame datasets: name -> trailing shape in terms of (N, B, L)
FRAME_FIELDS = ("positions", "velocities", "forces", "energy", "kinetic", "reservoir", "cell",
                "stress", "time", "step", "rng")  # fmt: skip
STATIC_FIELDS = ("atomic_numbers", "masses", "natoms", "pbc", "fixed", "tags")


def _np(t: Any) -> np.ndarray:
    return t.detach().cpu().double().numpy()


def frame_arrays(state: MDState) -> dict[str, np.ndarray]:
    """One frame of ``state`` as numpy arrays (float64), keyed as the datasets."""
    gen = state.generator
    rng = gen.get_state().cpu().numpy() if gen is not None else np.zeros(0, np.uint8)
    return {
        "positions": _np(state.graph.positions),
        "velocities": _np(state.velocities),
        "forces": _np(state.forces),
        "energy": _np(state.energy),
        "kinetic": _np(state.kinetic),
        "reservoir": _np(state.reservoir),
        "cell": _np(state.graph.cell),
        "stress": _np(state.stress),
        "time": np.float64(state.time),
        "step": np.int64(state.step),
        "rng": rng.astype(np.uint8),
    }


def static_arrays(state: MDState) -> dict[str, np.ndarray]:
    """The arrays that do not change during a run."""
    g = state.graph
    return {
        "atomic_numbers": g.atomic_numbers.cpu().numpy(),
        "masses": _np(state.masses),
        "natoms": g.natoms.cpu().numpy(),
        "pbc": g.pbc.cpu().numpy(),
        "fixed": g.fixed.cpu().numpy(),
        "tags": g.tags.cpu().numpy(),
    }


class H5Writer:
    """Append MD frames to an HDF5 file in SWMR mode (see the module docstring).

    Use :meth:`create` for a new file and :meth:`append_to` to continue a recovered one.
    """

    def __init__(self, handle: h5py.File) -> None:
        self.file = handle

    @classmethod
    def create(
        cls, path: str | os.PathLike, state: MDState, metadata: dict[str, Any], chunk: int = 16
    ) -> H5Writer:
        """A new file (replacing any) with the static arrays, attributes and no frames."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        f = h5py.File(path, "w", libver="latest")
        f.attrs["format"] = FORMAT
        f.attrs["version"] = VERSION
        f.attrs["config"] = json.dumps(_config_dict(state))
        f.attrs["units"] = json.dumps(UNITS)
        f.attrs["metadata"] = json.dumps(metadata)
        for name, value in static_arrays(state).items():
            f.create_dataset(name, data=value)
        for name, value in frame_arrays(state).items():
            value = np.asarray(value)
            f.create_dataset(
                name, shape=(0, *value.shape), maxshape=(None, *value.shape),
                chunks=(chunk, *value.shape), dtype=value.dtype,
            )  # fmt: skip
        f.swmr_mode = True
        return cls(f)

    @classmethod
    def append_to(cls, path: str | os.PathLike) -> H5Writer:
        """Open a (recovered, cleanly closed) file to append frames."""
        f = h5py.File(path, "a", libver="latest")
        f.swmr_mode = True
        return cls(f)

    @property
    def frames(self) -> int:
        """Frames written."""
        return int(self.file["step"].shape[0])

    def append(self, state: MDState) -> None:
        """Add one frame (visible to readers after the next :meth:`flush`)."""
        t = self.frames
        for name, value in frame_arrays(state).items():
            d = self.file[name]
            d.resize(t + 1, axis=0)
            d[t] = value

    def flush(self) -> None:
        """Make the frames so far durable and visible to SWMR readers."""
        for name in FRAME_FIELDS:
            self.file[name].flush()
        self.file.flush()

    def close(self) -> None:
        """Flush and close."""
        if self.file.id.valid:
            self.flush()
            self.file.close()


def _config_dict(state: MDState) -> dict[str, Any]:
    import dataclasses

    return dataclasses.asdict(state.config)


def _consistent_frames(f: h5py.File) -> int:
    """Frames present in every per-frame dataset."""
    return min(int(f[name].shape[0]) for name in FRAME_FIELDS)


def recover(path: str | os.PathLike) -> int:
    """Make ``path`` appendable after a crash; returns its number of complete frames.

    A cleanly closed file is trimmed to the frames present in every dataset. A file whose
    writer died is read in SWMR mode and its consistent frames copied into a fresh file
    (written beside it, then renamed over it).

    Raises:
        ValueError: The file is not an equicat MD trajectory or cannot be read.
    """
    path = Path(path)
    try:
        with h5py.File(path, "a", libver="latest") as f:
            _check_format(f, path)
            n = _consistent_frames(f)
            for name in FRAME_FIELDS:
                f[name].resize(n, axis=0)
            return n
    except OSError:
        pass  # the writer was killed: its SWMR flag is still set
    tmp = path.with_name(f".{path.name}.recover")
    try:
        with h5py.File(path, "r", swmr=True) as src, h5py.File(tmp, "w", libver="latest") as dst:
            _check_format(src, path)
            n = _consistent_frames(src)
            for key, value in src.attrs.items():
                dst.attrs[key] = value
            for name in STATIC_FIELDS:
                dst.create_dataset(name, data=src[name][()])
            for name in FRAME_FIELDS:
                d = src[name]
                out = dst.create_dataset(
                    name, shape=(n, *d.shape[1:]), maxshape=(None, *d.shape[1:]),
                    chunks=d.chunks, dtype=d.dtype,
                )  # fmt: skip
                for lo in range(0, n, 1024):
                    out[lo : min(n, lo + 1024)] = d[lo : min(n, lo + 1024)]
    except OSError as err:
        raise ValueError(
            f"cannot read the trajectory {str(path)!r} to resume ({err}); move it away to "
            "start afresh"
        ) from err
    os.replace(tmp, path)
    return n


def _check_format(f: h5py.File, path: Path) -> None:
    if f.attrs.get("format") != FORMAT:
        raise ValueError(
            f"{str(path)!r} is not an equicat MD trajectory (no format={FORMAT!r} attribute); "
            "choose another --out"
        )


def read_trajectory(path: str | os.PathLike, fields: tuple[str, ...] = ()) -> dict[str, Any]:
    """Static arrays, attributes and the per-frame ``fields`` (all when empty) of a trajectory.

    Safe while a writer is running (opened in SWMR mode: frames up to its last flush).
    """
    with h5py.File(path, "r", swmr=True) as f:
        n = _consistent_frames(f)
        out: dict[str, Any] = {name: f[name][()] for name in STATIC_FIELDS}
        for name in fields or FRAME_FIELDS:
            out[name] = f[name][:n]
        out["attrs"] = {k: f.attrs[k] for k in f.attrs}
        out["config"] = json.loads(out["attrs"]["config"])
        out["metadata"] = json.loads(out["attrs"]["metadata"])
    return out


def read_frame(path: str | os.PathLike, index: int = -1) -> dict[str, Any]:
    """One frame (default the last complete one) with the static arrays and the config."""
    with h5py.File(path, "r", swmr=True) as f:
        n = _consistent_frames(f)
        if n == 0:
            raise ValueError(f"the trajectory {str(path)!r} has no frames")
        k = index % n
        out: dict[str, Any] = {name: f[name][()] for name in STATIC_FIELDS}
        out.update({name: f[name][k] for name in FRAME_FIELDS})
        out["config"] = json.loads(f.attrs["config"])
        out["metadata"] = json.loads(f.attrs["metadata"])
    return out


def momenta_from_velocities(velocities: np.ndarray, masses: np.ndarray) -> np.ndarray:
    """``[N, 3]`` sqrt(amu eV) from velocities in Å/fs and masses in amu."""
    return velocities * masses[:, None] / units.fs
