"""Write fairchem-1.x radius graphs for the structures in an .npz (runs in the reference venv).

    python reference_edges.py TOOLS_DIR IN.npz OUT.npz

IN holds ``names``, ``cutoff``, ``max_neighbors`` and per structure ``{name}/positions``,
``{name}/cell``, ``{name}/pbc``, ``{name}/numbers``. OUT gets, per structure, the edges of
``radius_graph_pbc(..., enforce_max_neighbors_strictly=True, pbc=pbc)`` as ``{name}/rg_*`` and,
for cells with three non-zero vectors, those of EquiformerV2's own ``generate_graph`` as
``{name}/model_*`` (``edge_index`` [2, E], row 0 source; ``shifts`` [E, 3] integers).
"""

import logging
import sys

import numpy as np
import torch
from ase import Atoms

logging.disable(logging.WARNING)
sys.path.insert(0, sys.argv[1])
from fairchem.core.common.utils import radius_graph_pbc  # noqa: E402
from make_reference import build, to_batch  # noqa: E402

data = np.load(sys.argv[2])
cutoff, max_neighbors = float(data["cutoff"]), int(data["max_neighbors"])
_, _, model = build("eqv2-small")
out = {}
for name in data["names"]:
    atoms = Atoms(
        numbers=data[f"{name}/numbers"],
        positions=data[f"{name}/positions"],
        cell=data[f"{name}/cell"],
        pbc=data[f"{name}/pbc"],
    )
    batch = to_batch(atoms)
    edge_index, shifts, _ = radius_graph_pbc(
        batch,
        cutoff,
        max_neighbors,
        enforce_max_neighbors_strictly=True,
        pbc=[bool(p) for p in atoms.pbc],
    )
    out[f"{name}/rg_edge_index"] = edge_index.numpy()
    out[f"{name}/rg_shifts"] = shifts.numpy().round().astype(np.int64)
    if (np.linalg.norm(atoms.cell.array, axis=1) > 0).all():
        with torch.no_grad():
            graph = model.generate_graph(batch, cutoff=cutoff, max_neighbors=max_neighbors)
        out[f"{name}/model_edge_index"] = graph.edge_index.numpy()
        out[f"{name}/model_shifts"] = graph.cell_offsets.numpy().round().astype(np.int64)
        # edge vectors as fairchem computes them, to pin the sign convention
        out[f"{name}/model_vectors"] = graph.edge_distance_vec.numpy()
np.savez(sys.argv[3], **out)
