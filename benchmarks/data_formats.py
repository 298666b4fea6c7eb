"""Write/read speed and size of equicat's data formats on the same labelled slabs.

    python benchmarks/data_formats.py --frames 2000 --out runs/bench_data

Frames: Cu(111) 3x3x4 slabs with CO (38 atoms), rattled, with EMT energy, forces and stress,
tags and fixed atoms. Columns: ``write s`` (whole file), ``MB`` (file size), ``read_all s``
(every frame as Atoms), ``random/s`` (frames per second for ``--random`` frames at random
indices through ``open_frames``; a fresh reader each run). extxyz is read whole up front, so
its random access includes that read.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
from ase.build import add_adsorbate, fcc111, molecule
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator
from ase.constraints import FixAtoms

from equicat.data import formats


def make_frames(n: int):
    base = fcc111("Cu", (3, 3, 4), vacuum=8.0)
    layer = base.get_tags()
    add_adsorbate(base, molecule("CO"), 2.0, "ontop")
    base.info.pop("adsorbate_info", None)
    frames = []
    for i in range(n):
        atoms = base.copy()
        atoms.rattle(0.05, seed=i)
        atoms.set_tags(np.r_[np.where(layer == 1, 1, 0), [2, 2]])
        atoms.set_constraint(FixAtoms(indices=np.flatnonzero(layer >= 3)))
        atoms.calc = EMT()
        results = {"energy": atoms.get_potential_energy(), "forces": atoms.get_forces()}
        results["stress"] = atoms.get_stress()
        atoms.calc = SinglePointCalculator(atoms, **results)
        atoms.info["system_id"] = i // 10
        frames.append(atoms)
    return frames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=2000)
    parser.add_argument("--random", type=int, default=200)
    parser.add_argument("--out", default="runs/bench_data")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print(f"labelling {args.frames} frames with EMT...", file=sys.stderr)
    frames = make_frames(args.frames)
    picks = np.random.default_rng(0).integers(0, args.frames, args.random)
    rows = []
    for suffix in ("h5", "db", "lmdb", "extxyz"):
        path = out / f"frames.{suffix}"
        t0 = time.perf_counter()
        formats.write_frames(path, frames)
        t1 = time.perf_counter()
        back = formats.read_frames(path)
        t2 = time.perf_counter()
        source = formats.open_frames(path)
        for i in picks:
            source[int(i)]
        t3 = time.perf_counter()
        assert len(back) == args.frames
        rows.append({
            "format": suffix, "frames": args.frames, "write_s": t1 - t0,
            "MB": os.path.getsize(path) / 1e6, "read_all_s": t2 - t1,
            "random_per_s": args.random / (t3 - t2),
        })  # fmt: skip
    print(f"{'format':8} {'write s':>8} {'MB':>7} {'read_all s':>10} {'random/s':>9}")
    for r in rows:
        print(
            f"{r['format']:8} {r['write_s']:8.2f} {r['MB']:7.1f} {r['read_all_s']:10.2f} "
            f"{r['random_per_s']:9.0f}"
        )
    meta = {"load_average": os.getloadavg(), "rows": rows}
    (out / "data_formats.json").write_text(json.dumps(meta, indent=1))


if __name__ == "__main__":
    main()
