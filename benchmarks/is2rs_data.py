"""Initial / relaxed structure pairs for an IS2RS / IS2RE evaluation on OC-EMT.

Each system is drawn as OC-EMT draws its systems (:func:`equicat.data.oc_emt.sample_system`:
an fcc slab, bottom layers fixed, an OC20 adsorbate placed over a site), written as the initial
structure, then relaxed with the oracle (EMT) by ASE's BFGS to ``--fmax`` and written, with
its energy, as the reference relaxed structure. Frame k of both files is system k.

    python3 benchmarks/is2rs_data.py --systems 10 --seed 7 --out runs/is2rs_data
    equicat is2rs runs/is2rs_data/initial.extxyz --reference runs/is2rs_data/relaxed.extxyz \
        --oracle emt --out runs/is2rs

Use a seed other than the training data's (the shipped checkpoint's data used seed 0) so the
systems are new to the model.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import ase.io
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator
from ase.optimize import BFGS
from tqdm import tqdm

from equicat.data.oc_emt import load_adsorbates, sample_system


def pair(index: int, seed: int, fmax: float, steps: int) -> tuple:
    """(initial, relaxed) Atoms of system ``index``; the relaxed one carries its EMT energy."""
    initial = sample_system(index, seed, load_adsorbates())
    initial.info = {"system_id": index, "seed": seed}
    atoms = initial.copy()
    atoms.calc = EMT()
    converged = BFGS(atoms, logfile=None).run(fmax=fmax, steps=steps)
    energy, forces = atoms.get_potential_energy(), atoms.get_forces()
    relaxed = atoms.copy()
    relaxed.calc = SinglePointCalculator(relaxed, energy=energy, forces=forces)
    relaxed.info = {"system_id": index, "seed": seed, "converged": bool(converged)}
    return initial, relaxed


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--systems", type=int, default=10)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--fmax", type=float, default=0.02, help="eV/Å, reference relaxations")
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    pairs = [pair(k, args.seed, args.fmax, args.steps) for k in tqdm(range(args.systems))]
    for name, frames in (("initial", [a for a, _ in pairs]), ("relaxed", [b for _, b in pairs])):
        tmp = args.out / f".{name}.partial.extxyz"
        ase.io.write(tmp, frames)
        os.replace(tmp, args.out / f"{name}.extxyz")
    n_conv = sum(b.info["converged"] for _, b in pairs)
    print(f"{args.systems} pairs ({n_conv} references converged) -> {args.out}")


if __name__ == "__main__":
    main()
