"""Round trips, appends, random access and error messages of every file format."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from equicat.data import formats
from equicat.data.dataset import StructureDataset
from equicat.data.formats.hdf5 import HDF5Frames

from .labelled import assert_same_frames, labelled_frames

pytest.importorskip("h5py")
# suffix -> exact float round trip (extxyz is text with 8 decimals)
SUFFIXES = {"h5": 0.0, "db": 0.0, "extxyz": 1e-7}


def _write(path, frames):
    if path.suffix == ".lmdb":
        from equicat.data.formats.lmdb import write_lmdb

        return write_lmdb(path, frames, dtype=torch.float64)
    return formats.write_frames(path, frames)


@pytest.fixture(params=[*SUFFIXES, "lmdb"])
def suffix(request) -> str:
    if request.param == "lmdb":
        pytest.importorskip("lmdb")
    return request.param


def test_round_trip_keeps_every_label(tmp_path, suffix):
    frames = labelled_frames()
    path = _write(tmp_path / f"data.{suffix}", frames)
    atol = SUFFIXES.get(suffix, 0.0)
    assert_same_frames(formats.read_frames(path), frames, atol=atol)
    # the frame without stress comes back without stress, not with zeros
    assert "stress" not in formats.read_frames(path)[3].calc.results


def test_random_access_and_natoms(tmp_path, suffix):
    frames = labelled_frames()
    path = _write(tmp_path / f"data.{suffix}", frames)
    source = formats.open_frames(path)
    assert len(source) == len(frames)
    assert source.natoms.tolist() == [len(a) for a in frames]
    for i in (3, 0, -1, 2):
        assert_same_frames([source[i]], [frames[i]], atol=SUFFIXES.get(suffix, 0.0))
    with pytest.raises(IndexError):
        source[len(frames)]


@pytest.mark.parametrize("suffix", ["h5", "db", "extxyz"])
def test_append_continues_the_file(tmp_path, suffix):
    frames = labelled_frames()
    path = tmp_path / f"run.{suffix}"
    formats.write_frames(path, frames[:2], append=True)  # creates the file
    formats.write_frames(path, frames[2:4], append=True)
    formats.write_frames(path, frames[4:], append=True)
    assert_same_frames(formats.read_frames(path), frames, atol=SUFFIXES[suffix])


def test_structure_dataset_reads_every_format(tmp_path):
    frames = labelled_frames()
    paths = [formats.write_frames(tmp_path / f"d.{s}", frames[:2]) for s in ("h5", "db")]
    ds = StructureDataset.from_files(paths)
    assert len(ds) == 4 and ds[3].atoms.info["source"].endswith("d.db@1")
    np.testing.assert_array_equal(ds[1].forces, frames[1].get_forces())


def test_hdf5_killed_append_is_invisible_and_overwritten(tmp_path):
    import h5py

    frames = labelled_frames()
    path = formats.write_frames(tmp_path / "run.h5", frames[:2])
    with h5py.File(path, "r+") as h5:  # a kill after the atom rows, before the commit
        rows = h5["atoms/numbers"]
        rows.resize(len(rows) + 5, axis=0)
    assert len(HDF5Frames(path)) == 2
    formats.write_frames(path, frames[2:], append=True)
    assert_same_frames(formats.read_frames(path), frames)


def test_hdf5_append_while_open_says_why(tmp_path):
    frames = labelled_frames()
    path = formats.write_frames(tmp_path / "run.h5", frames[:2])
    reader = HDF5Frames(path)
    reader[0]  # holds the file open
    with pytest.raises(ValueError, match="run.h5.*for appending.*close the reader first"):
        formats.write_frames(path, frames[2:], append=True)
    reader.close()
    formats.write_frames(path, frames[2:], append=True)
    assert len(reader) == 2 and len(HDF5Frames(path)) == len(frames)


def test_hdf5_whole_file_write_is_atomic(tmp_path, monkeypatch):
    frames = labelled_frames()
    path = formats.write_frames(tmp_path / "d.h5", frames[:1])
    from equicat.data.formats import hdf5

    def boom(*args, **kwargs):
        raise RuntimeError("killed mid-write")

    monkeypatch.setattr(hdf5, "_append", boom)
    with pytest.raises(RuntimeError):
        formats.write_frames(path, frames)
    assert [p.name for p in tmp_path.iterdir()] == ["d.h5"]
    assert len(formats.read_frames(path)) == 1


def test_hdf5_errors_name_the_file_and_the_problem(tmp_path):
    import h5py

    with pytest.raises(FileNotFoundError, match="missing.h5"):
        formats.read_frames(tmp_path / "missing.h5")
    garbage = tmp_path / "garbage.h5"
    garbage.write_bytes(b"not hdf5 at all" * 10)
    with pytest.raises(ValueError, match="garbage.h5.*not an HDF5 file"):
        formats.read_frames(garbage)
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as h5:
        h5["x"] = np.zeros(3)
    with pytest.raises(ValueError, match="foreign.h5.*not equicat frames"):
        formats.read_frames(foreign)
    truncated = formats.write_frames(tmp_path / "cut.h5", labelled_frames()[:2])
    with h5py.File(truncated, "r+") as h5:
        h5["atoms/forces"].resize(3, axis=0)
    with pytest.raises(ValueError, match="cut.h5.*corrupt.*atoms/forces has 3 rows"):
        formats.read_frames(truncated)
    with h5py.File(truncated, "r+") as h5:
        h5["offsets"][1] = -4
    with pytest.raises(ValueError, match="offsets must start at 0 and never decrease"):
        formats.read_frames(truncated)
    newer = formats.write_frames(tmp_path / "new.h5", labelled_frames()[:1])
    with h5py.File(newer, "r+") as h5:
        h5.attrs["version"] = 99
    with pytest.raises(ValueError, match="version 99"):
        formats.read_frames(newer)
    with pytest.raises(ValueError, match="not equicat frames"):
        formats.write_frames(foreign, labelled_frames()[:1], append=True)


def test_asedb_errors(tmp_path):
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"\x00" * 100)
    with pytest.raises(ValueError, match="garbage.db.*not an SQLite file"):
        formats.read_frames(garbage)
    with pytest.raises(FileNotFoundError, match="nothing.db"):
        formats.open_frames(tmp_path / "nothing.db")
    with pytest.raises(ValueError, match="unknown data format"):
        formats.open_frames(garbage, format="cif")
