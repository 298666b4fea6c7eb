"""Potentials and structures shared by the MD tests."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from ase import Atoms
from ase.build import add_adsorbate, bulk, fcc111
from ase.constraints import FixAtoms
from torch import Tensor

from equicat.calculators import Predictor
from equicat.calculators.batching import segment_sum
from equicat.data import AtomicGraph

from ..helpers import tiny_model

FIXED = (0, 1, 2, 3)  # the bottom layer of the 2x2x3 slabs


class Harmonic:
    """``E = k/2 sum_i |r_i - r0_i|^2``: an Einstein crystal, cheap and batched (float64).

    ``r0`` is the positions of the graph the potential was built for; a test of the
    thermostats only needs some conservative forces, and these cost nothing.
    """

    cutoff = None
    max_neighbors = None
    conservative = True

    def __init__(self, frames: Sequence[Atoms], k: float = 10.0) -> None:
        self.k = k
        self.device, self.dtype, self.calls = torch.device("cpu"), torch.float64, 0
        self.r0 = torch.from_numpy(np.concatenate([a.positions for a in frames]))

    def graph(self, frames: Sequence[Atoms]) -> AtomicGraph:
        return AtomicGraph.from_atoms(list(frames), 0.5, dtype=self.dtype, min_distance=0.0)

    def __call__(self, graph: AtomicGraph) -> tuple[Tensor, Tensor]:
        self.calls += 1
        d = graph.positions - self.r0  # [N, 3] Å
        energy = segment_sum(0.5 * self.k * (d**2).sum(1), graph.batch, graph.num_systems)
        return energy, -self.k * d


def cu_bulk(seed: int = 0, repeat: int = 2, a: float = 3.61) -> Atoms:
    """Cubic fcc Cu, ``4 repeat^3`` atoms, rattled."""
    atoms = bulk("Cu", "fcc", a=a, cubic=True) * (repeat, repeat, repeat)
    atoms.rattle(0.05, seed=seed)
    return atoms


def emt_slab(seed: int, fixed: bool = True) -> Atoms:
    """Cu(111) 2x2x3 + C (13 atoms), bottom layer fixed, rattled."""
    slab = fcc111("Cu", (2, 2, 3), vacuum=6.0)
    add_adsorbate(slab, "C", 1.9, "fcc")
    if fixed:
        slab.set_constraint(FixAtoms(indices=list(FIXED)))
    slab.rattle(0.05, seed=seed)
    slab.info.pop("adsorbate_info", None)
    return slab


# the smooth conservative one-block model of the relaxation tests
MODEL = dict(
    max_num_elements=30, forces="conservative", envelope="polynomial", max_neighbors=None,
    num_distance_basis=32, grid_resolution=8, energy_std=100.0,
)  # fmt: skip


def model(**overrides) -> torch.nn.Module:
    return tiny_model(seed=1, **{**MODEL, **overrides})


def predictor(**overrides) -> Predictor:
    return Predictor(model(**overrides), device="cpu", dtype="float64")
