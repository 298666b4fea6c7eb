"""Run the fairchem-1.x reference harness (../shared/tools/fairchem_reference) from tests."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.build import add_adsorbate, bulk, fcc100, fcc111, molecule
from ase.constraints import FixAtoms

HARNESS = Path(__file__).resolve().parents[2].parent / "shared" / "tools" / "fairchem_reference"


def available() -> tuple[bool, str]:
    """Whether the reference venv exists or can be built here (builds it if needed)."""
    if not (HARNESS / "run.sh").exists():
        return False, f"reference harness not found at {HARNESS}"
    try:
        proc = subprocess.run(
            [str(HARNESS / "setup.sh")], capture_output=True, text=True, timeout=900
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        return False, f"reference venv could not be set up: {err}"
    if proc.returncode != 0:
        return False, f"reference venv could not be set up: {proc.stderr[-300:]}"
    return True, ""


def run_reference(model: str, frames: list[Atoms], out: Path, *extra: str) -> Path:
    """Write ``frames``, run the harness for ``model``, return the output directory."""
    import ase.io

    out.mkdir(parents=True, exist_ok=True)
    ase.io.write(out / "in.extxyz", frames)
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    subprocess.run(
        [
            str(HARNESS / "run.sh"),
            "--model",
            model,
            "--structures",
            str(out / "in.extxyz"),
            "--out",
            str(out),
            "--repeats",
            "1",
            *extra,
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=1800,
        env=env,
    )
    return out


def _slab(size: tuple[int, int, int], site: str, seed: int) -> Atoms:
    s = fcc111("Cu", size=size, vacuum=9.0)
    add_adsorbate(s, molecule("CO"), 1.9, site)
    s.rattle(0.05, seed=seed)  # before the constraint: every atom moves, no exact ties
    s.set_constraint(FixAtoms(indices=[a.index for a in s if a.tag > 2]))
    s.info.clear()
    return s


def parity_structures() -> list[Atoms]:
    """Rattled OC-like structures: slabs with adsorbates, a non-orthogonal cell, small cells."""
    frames = [_slab((3, 3, 4), "fcc", 1), _slab((5, 5, 4), "ontop", 2)]
    # vacuum wider than the 12 Å cutoff: the reference treats every cell direction as
    # periodic whatever atoms.pbc says, equicat follows atoms.pbc (False along z here)
    # 3x2, not 2x2: in the 2x2 cell one atom's 20th and 21st neighbours are the +s/-s images
    # of one atom, an exact tie the reference breaks arbitrarily (see ties_at_cut)
    pt = fcc100("Pt", size=(3, 2, 3), vacuum=9.0)
    add_adsorbate(pt, molecule("H2O"), 2.0, "ontop")
    pt.rattle(0.05, seed=3)
    pt.info.clear()
    frames.append(pt)
    au = bulk("Au", "hcp", a=2.9, c=4.8).repeat((2, 1, 1))  # non-orthogonal, many images
    au.rattle(0.05, seed=5)
    frames.append(au)
    cu = bulk("Cu", "fcc", a=3.6, cubic=True)  # small cell, many images
    cu.rattle(0.05, seed=4)
    frames.append(cu)
    return frames


def ties_at_cut(atoms: Atoms, cutoff: float, max_neighbors: int, tol: float = 1e-6) -> int:
    """Atoms whose ``max_neighbors``-th and next neighbour are equidistant (within ``tol`` Å).

    There the reference keeps one of the tied neighbours by an unstable float32 sort, so no
    re-implementation can be expected to match it; parity structures must have none.
    """
    import torch

    from equicat.data import AtomicGraph

    g = AtomicGraph.from_atoms(atoms, cutoff, None, dtype=torch.float64)
    dist, target = g.edge_vectors().norm(dim=1), g.edge_index[1]
    count = 0
    for i in range(len(atoms)):
        d = torch.sort(dist[target == i]).values
        if len(d) > max_neighbors and float(d[max_neighbors] - d[max_neighbors - 1]) < tol:
            count += 1
    return count


def compare(pred: list[dict], frames: list[Atoms]) -> list[tuple[int, float, float]]:
    """Rows ``(natoms, |dE| eV, |dF|/|F|)`` of predictions against reference frames."""
    rows = []
    for p, ref in zip(pred, frames, strict=True):
        f_ref = ref.arrays["ref_forces"]
        de = abs(p["energy"] - ref.info["ref_energy"])
        df = float(np.linalg.norm(p["forces"] - f_ref) / np.linalg.norm(f_ref))
        rows.append((len(ref), de, df))
    return rows
