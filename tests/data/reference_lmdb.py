"""fairchem-1.x's side of the LMDB check (runs in the reference venv, with torch_geometric).

    python reference_lmdb.py IN.extxyz OURS.lmdb OUT_DIR

Writes ``OUT_DIR/ref.lmdb`` from IN's frames the way OC20 LMDBs were made (fairchem's
``AtomsToGraphs`` -> real PyG ``Data`` objects, ASCII integer keys, a ``length`` key), and
reads OURS (written by equicat) with fairchem's ``LmdbDataset`` into ``OUT_DIR/read.npz``.
"""

import logging
import pickle
import sys
from pathlib import Path

import ase.io
import lmdb
import numpy as np

logging.disable(logging.WARNING)
from fairchem.core.datasets import LmdbDataset  # noqa: E402
from fairchem.core.preprocessing import AtomsToGraphs  # noqa: E402

frames = ase.io.read(sys.argv[1], ":")
out = Path(sys.argv[3])
a2g = AtomsToGraphs(r_energy=True, r_forces=True, r_fixed=True, r_edges=False)
env = lmdb.open(str(out / "ref.lmdb"), subdir=False, map_size=1 << 26, lock=False)
with env.begin(write=True) as txn:
    for i, atoms in enumerate(frames):
        data = a2g.convert(atoms, sid=int(atoms.info.get("system_id", -1)))
        data.fid = i
        txn.put(str(i).encode("ascii"), pickle.dumps(data, protocol=-1))
    txn.put(b"length", pickle.dumps(len(frames), protocol=-1))
env.close()

dataset = LmdbDataset({"src": sys.argv[2]})
arrays = {"n": len(dataset)}
for i in range(len(dataset)):
    data = dataset[i]
    for key in ("pos", "atomic_numbers", "cell", "force", "fixed", "tags", "stress"):
        if key in data:
            arrays[f"{i}/{key}"] = data[key].numpy()
    for key in ("y", "sid", "natoms"):
        if key in data:
            arrays[f"{i}/{key}"] = np.asarray(data[key])
np.savez(out / "read.npz", **arrays)
