"""Batched structure relaxation: FIRE and L-BFGS as pure functions of a batched state.

``init(graph, potential, ...) -> RelaxState`` and ``step(state, potential) -> RelaxState``
relax many systems held as one :class:`~equicat.data.AtomicGraph`; :func:`relax_many` keeps a
batch full from a queue of structures; :func:`relax` is the high-level entry point (ASE
``Atoms`` in, relaxed ``Atoms`` out). For one structure, ASE's own optimizers work on
:class:`~equicat.calculators.EquiCatCalculator` too.
"""

from equicat.relax.fire import FireMemory, fire_init, fire_step
from equicat.relax.lbfgs import LbfgsMemory, lbfgs_init, lbfgs_step
from equicat.relax.neighbors import NeighborList
from equicat.relax.potential import AsePotential, ModelPotential, Potential, as_potential
from equicat.relax.runner import (
    OPTIMIZERS,
    RelaxResult,
    relax,
    relax_iter,
    relax_many,
    relaxed_atoms,
)
from equicat.relax.state import RelaxState, cat_states, take_state

__all__ = [
    "OPTIMIZERS",
    "AsePotential",
    "FireMemory",
    "LbfgsMemory",
    "ModelPotential",
    "NeighborList",
    "Potential",
    "RelaxResult",
    "RelaxState",
    "as_potential",
    "cat_states",
    "fire_init",
    "fire_step",
    "lbfgs_init",
    "lbfgs_step",
    "relax",
    "relax_iter",
    "relax_many",
    "relaxed_atoms",
    "take_state",
]
