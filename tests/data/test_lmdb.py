"""fairchem-style LMDB: OC20 field names, PyG 1/2 layouts, shards, and the pickle allow-list."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
import torch

from equicat.data import formats
from equicat.data.formats.lmdb import LmdbFrames, write_lmdb
from equicat.data.formats.pyg_pickle import UnsafePickleError, dumps_pyg, loads_pyg

from .labelled import assert_same_frames, labelled_frames

lmdb = pytest.importorskip("lmdb")


def _raw_lmdb(path, values: dict[bytes, bytes]) -> None:
    env = lmdb.open(str(path), subdir=False, map_size=1 << 24, lock=False)
    with env.begin(write=True) as txn:
        for key, value in values.items():
            txn.put(key, value)
    env.close()


def oc20_fields(n: int = 3, seed: int = 0) -> dict:
    """The attributes of an OC20 S2EF entry, with OC20's dtypes (float atomic numbers...)."""
    rng = np.random.default_rng(seed)
    return {
        "pos": torch.tensor(rng.uniform(0, 5, (n, 3)), dtype=torch.float32),
        "cell": torch.tensor(np.diag([5.0, 6.0, 20.0])[None], dtype=torch.float32),
        "atomic_numbers": torch.tensor([29.0, 29.0, 8.0][:n]),
        "natoms": n,
        "tags": torch.tensor([0, 1, 2][:n]),
        "fixed": torch.tensor([1.0, 0.0, 0.0][:n]),
        "force": torch.tensor(rng.normal(size=(n, 3)), dtype=torch.float32),
        "y": -3.25,
        "sid": 2472718,
        "fid": 11,
        "edge_index": torch.zeros(2, 0, dtype=torch.long),
    }


@pytest.mark.parametrize("layout", ["pyg2", "pyg1"])
def test_reads_oc20_fields(tmp_path, layout):
    fields = oc20_fields()
    path = tmp_path / "s2ef.lmdb"
    _raw_lmdb(path, {b"0": dumps_pyg(fields, layout), b"length": pickle.dumps(1)})
    (atoms,) = formats.read_frames(path)
    np.testing.assert_array_equal(atoms.positions, fields["pos"].double().numpy())
    assert atoms.numbers.tolist() == [29, 29, 8] and atoms.pbc.all()
    np.testing.assert_array_equal(atoms.cell.array, np.diag([5.0, 6.0, 20.0]))
    assert atoms.get_potential_energy() == -3.25
    np.testing.assert_array_equal(atoms.calc.results["forces"], fields["force"].double().numpy())
    assert atoms.get_tags().tolist() == [0, 1, 2]
    assert atoms.constraints[0].get_indices().tolist() == [0]
    assert atoms.info["system_id"] == 2472718 and atoms.info["fid"] == 11


def test_float32_write_is_oc20_precision(tmp_path):
    frames = labelled_frames()
    path = write_lmdb(tmp_path / "f32.lmdb", frames)  # float32 tensors, like OC20
    got = formats.read_frames(path)
    for g, w in zip(got, frames, strict=True):
        np.testing.assert_array_equal(g.positions, w.positions.astype(np.float32))
        f32 = w.calc.results["forces"].astype(np.float32)
        np.testing.assert_array_equal(g.calc.results["forces"], f32)


def test_directory_of_shards_without_length_key(tmp_path):
    frames = labelled_frames()
    folder = tmp_path / "shards"
    write_lmdb(folder / "data.0000.lmdb", frames[:2], dtype=torch.float64)
    _raw_lmdb(  # a shard without the 'length' key: count from the entries
        folder / "data.0001.lmdb",
        {str(i).encode(): dumps_pyg(oc20_fields(seed=i)) for i in range(3)},
    )
    source = formats.open_frames(folder)
    assert isinstance(source, LmdbFrames) and len(source) == 5
    assert_same_frames(source[:2], frames[:2])
    assert source.natoms.tolist() == [len(frames[0]), len(frames[1]), 3, 3, 3]
    np.savez(folder / "metadata.npz", natoms=np.array([9, 9, 9, 9, 9]))
    assert LmdbFrames(folder).natoms.tolist() == [9] * 5  # fairchem's metadata wins


class Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def test_refuses_globals_off_the_allow_list(tmp_path):
    with pytest.raises(UnsafePickleError, match="posix.system|os.system"):
        loads_pyg(pickle.dumps(Evil()))
    with pytest.raises(UnsafePickleError, match="builtins.eval"):
        loads_pyg(pickle.dumps(eval))
    # a nested global inside an otherwise valid Data entry is refused too, naming the entry
    path = tmp_path / "evil.lmdb"
    _raw_lmdb(path, {b"0": dumps_pyg({**oc20_fields(), "extra": Evil()})})
    with pytest.raises(UnsafePickleError, match="evil.lmdb entry 0.*not on equicat's allow-list"):
        formats.read_frames(path)


def test_allow_list_still_loads_numpy_arrays():
    data = {"pos": np.arange(6.0).reshape(2, 3), "n": np.int64(2)}
    out = loads_pyg(pickle.dumps(data))
    np.testing.assert_array_equal(out["pos"], data["pos"])


def test_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="none.lmdb"):
        formats.open_frames(tmp_path / "none.lmdb")
    bad = tmp_path / "bad.lmdb"
    bad.write_bytes(b"definitely not lmdb" * 100)
    with pytest.raises(ValueError, match="bad.lmdb.*not a readable LMDB"):
        formats.open_frames(bad)
    empty_dir = tmp_path / "empty"
    empty_dir.mkdir()
    with pytest.raises(FileNotFoundError, match="no \\*.lmdb files"):
        formats.open_frames(empty_dir)
    path = tmp_path / "notdata.lmdb"
    _raw_lmdb(path, {b"0": pickle.dumps({"pos": 1})})
    with pytest.raises(ValueError, match="notdata.lmdb entry 0 holds dict"):
        formats.read_frames(path)
    with pytest.raises(ValueError, match="appending to an LMDB"):
        formats.write_frames(path, labelled_frames(), append=True)


def test_two_readers_and_a_rewrite_of_the_same_file(tmp_path):
    frames = labelled_frames()
    path = write_lmdb(tmp_path / "x.lmdb", frames[:2], dtype=torch.float64)
    first, second = LmdbFrames(path), LmdbFrames(path)  # py-lmdb opens a file once
    assert_same_frames([first[1], second[0]], [frames[1], frames[0]])
    write_lmdb(path, frames[2:], dtype=torch.float64)  # replaced: new readers see new data
    assert_same_frames(formats.read_frames(path), frames[2:])
