"""Potentials and structures shared by the relaxation tests."""

from __future__ import annotations

import numpy as np
import torch
from ase import Atoms
from ase.build import add_adsorbate, fcc111
from ase.calculators.emt import EMT
from ase.constraints import FixAtoms
from ase.optimize import FIRE

from equicat.calculators import EquiCatCalculator, Predictor

from ..helpers import cu_slab, tiny_model

# a one-block EquiformerV2 that is smooth (envelope, no truncation) and fast (small radial
# basis and sphere grid); energy_std makes its energy surface stiff enough for a clear minimum
MODEL = dict(
    max_num_elements=30,
    forces="conservative",
    envelope="polynomial",
    max_neighbors=None,
    num_distance_basis=32,
    grid_resolution=8,
    energy_std=100.0,
)
FIXED = (0, 1, 2, 3)  # the bottom layer of the 2x2x3 slabs


def model(**overrides) -> torch.nn.Module:
    return tiny_model(seed=1, **{**MODEL, **overrides})


def predictor(dtype: str = "float64", **overrides) -> Predictor:
    return Predictor(model(**overrides), device="cpu", dtype=dtype)


def emt_slab(seed: int, rattle: float = 0.1) -> Atoms:
    """Cu(111) 2x2x3 + C in an fcc site (13 atoms), bottom layer fixed, rattled."""
    slab = fcc111("Cu", (2, 2, 3), vacuum=6.0)
    add_adsorbate(slab, "C", 1.9, "fcc")
    slab.set_constraint(FixAtoms(indices=list(FIXED)))
    slab.rattle(rattle, seed=seed)
    slab.calc = EMT()
    return slab


def model_minimum(pred: Predictor) -> Atoms:
    """The Cu(111)+CO slab relaxed with ase's FIRE on the model to 5e-3 eV/Å."""
    atoms = cu_slab(0, fixed=FIXED)
    atoms.calc = EquiCatCalculator(pred)
    FIRE(atoms, logfile=None).run(fmax=5e-3, steps=1000)
    atoms.calc = None
    return atoms


def near(base: Atoms, seed: int, rattle: float = 0.05) -> Atoms:
    """``base`` rattled (fixed atoms stay)."""
    atoms = base.copy()
    atoms.rattle(rattle, seed=seed)
    return atoms


def max_displacement(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b, axis=1).max())
