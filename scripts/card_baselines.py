"""Baselines for a model card: what a checkpoint's metrics must beat on each data file.

Usage::

    python scripts/card_baselines.py --checkpoint oc-emt-eqv2-s \
        --train runs/oc_emt_default/data/train.extxyz --data runs/oc_emt_default/data/val*.extxyz

Per file, with OC20's conventions (forces scored on free atoms only):

- ``refs_only``: energy MAE in eV/system of the checkpoint's own per-element reference
  energies alone (``sum_i e_{Z_i}``; the trainer fits them by least squares on the training
  set and folds them into the model), i.e. the energy a network that learned nothing predicts;
- ``mean_per_atom``: energy MAE of ``n_atoms x`` the training set's mean energy per atom;
- ``zero_forces``: force MAE (eV/Å, per component) of predicting zero forces.

Prints a Markdown table and writes nothing.
"""

from __future__ import annotations

import argparse

import ase.io
import numpy as np

from equicat import checkpoints
from equicat.relax.metrics import free_mask


def main() -> None:
    """Parse arguments, compute the baselines, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=checkpoints.DEFAULT)
    parser.add_argument("--train", required=True, help="training set (for the mean per atom)")
    parser.add_argument("--data", nargs="+", required=True)
    args = parser.parse_args()
    refs = np.asarray(checkpoints.load(args.checkpoint).model_config["element_energies"])
    train = ase.io.read(args.train, ":")
    mean_per_atom = np.mean([a.get_potential_energy() / len(a) for a in train])
    print("| file | frames | refs_only eV/system | mean_per_atom eV/system | zero_forces eV/Å |")
    print("|---|---|---|---|---|")
    for path in args.data:
        frames = ase.io.read(path, ":")
        e = np.array([a.get_potential_energy() for a in frames])
        e_refs = np.array([refs[a.numbers].sum() for a in frames])
        e_mean = np.array([mean_per_atom * len(a) for a in frames])
        forces = np.concatenate(
            [a.get_forces(apply_constraint=False)[free_mask(a)] for a in frames]
        )
        print(
            f"| {path} | {len(frames)} | {np.abs(e - e_refs).mean():.3f} | "
            f"{np.abs(e - e_mean).mean():.3f} | {np.abs(forces).mean():.4f} |"
        )


if __name__ == "__main__":
    main()
