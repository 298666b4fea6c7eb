"""``equicat predict``: energy and max force of each structure."""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from equicat.cli.common import add_model_arguments, read_structures

__all__ = ["add_parser", "run"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register the sub-command."""
    p = sub.add_parser(
        "predict",
        help="energy and max force of structures",
        description="Predict energies and forces. Reads any format ASE reads; every frame of "
        "each file is predicted.",
    )
    add_model_arguments(p)
    p.add_argument("--batch-size", type=int, default=16, help="structures per forward pass")
    p.add_argument("--json", action="store_true", help="machine-readable output (one JSON list)")


def run(args: argparse.Namespace) -> int:
    """Execute ``equicat predict``."""
    from equicat.calculators import Predictor

    frames, names = read_structures(args.structures)
    predictor = Predictor.from_checkpoint(args.checkpoint, device=args.device, dtype=args.dtype)
    results = predictor.predict(frames, batch_size=args.batch_size)
    rows = []
    for name, atoms, res in zip(names, frames, results, strict=True):
        forces = np.asarray(res["forces"])
        free = np.ones(len(atoms), dtype=bool)
        for c in atoms.constraints:
            if type(c).__name__ == "FixAtoms":
                free[c.get_indices()] = False
        rows.append(
            {
                "structure": name,
                "formula": atoms.get_chemical_formula(),
                "natoms": len(atoms),
                "energy": res["energy"],
                # on free atoms, as relaxations converge (OC20 convention)
                "max_force": float(np.linalg.norm(forces[free], axis=1).max())
                if free.any()
                else 0.0,
                "forces": forces.tolist(),
            }
        )
    if args.json:
        json.dump(rows, sys.stdout, indent=1)
        sys.stdout.write("\n")
        return 0
    width = max(len(r["structure"]) for r in rows)
    header = f"{'structure':<{width}}  {'formula':<12} {'atoms':>6} {'energy/eV':>14}"
    print(f"{header} {'max|F| free/eV/Å':>17}")
    for r in rows:
        print(
            f"{r['structure']:<{width}}  {r['formula']:<12} {r['natoms']:>6} "
            f"{r['energy']:>14.6f} {r['max_force']:>17.6f}"
        )
    return 0
