"""Batched molecular dynamics: integrators as pure functions of a batched state.

``md_init(graph, potential, config, masses) -> MDState`` and
``step(state, potential) -> MDState`` advance many systems held as one
:class:`~equicat.data.AtomicGraph`: velocity Verlet (NVE), BAOAB Langevin and Bussi
stochastic velocity rescaling (NVT), and a Berendsen isotropic barostat with a Bussi
thermostat (NPT). :func:`run_md` drives a state while writing an HDF5 trajectory, a CSV log
and a drift report, and resumes from the trajectory's last frame. For one structure, ASE's own
``ase.md`` integrators work on :class:`~equicat.calculators.EquiCatCalculator` too.
"""

from equicat.md.integrators import (
    ENSEMBLES,
    bussi_step,
    langevin_step,
    npt_step,
    nve_step,
    step,
)
from equicat.md.state import (
    MDConfig,
    MDState,
    degrees_of_freedom,
    kinetic_energy,
    maxwell_boltzmann,
    md_init,
    pressure,
    temperature,
)

__all__ = [
    "ENSEMBLES",
    "MDConfig",
    "MDState",
    "bussi_step",
    "degrees_of_freedom",
    "kinetic_energy",
    "langevin_step",
    "maxwell_boltzmann",
    "md_init",
    "npt_step",
    "nve_step",
    "pressure",
    "step",
    "temperature",
]
