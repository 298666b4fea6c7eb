"""The state of a batch of MD runs, its settings, and what every integrator shares.

Units. Positions Å, masses amu, energies eV, temperatures K, times fs at the interface.
Internally momenta are in ASE's units (``sqrt(amu eV)``, so ``p^2 / 2m`` is in eV) and time
steps in ASE's time unit: ``dt_ase = dt_fs * ase.units.fs``, converted once in
:func:`MDConfig.dt`; a friction ``gamma`` in 1/fs becomes ``gamma / ase.units.fs``. Velocities
written to files are ``v = p / m * ase.units.fs`` in Å/fs.

Degrees of freedom. Fixed atoms (``FixAtoms``) never move and have zero momentum; a system has
``3 n_free`` degrees of freedom, minus 3 when it has no fixed atom (its total momentum is zero
and stays zero: the initial velocities have none, and the stochastic thermostats remove it).
The temperature is ``T = 2 K / (n_dof k_B)``.
"""

from __future__ import annotations

import dataclasses
import logging
import warnings
from dataclasses import dataclass

import torch
from ase import units
from torch import Tensor

from equicat.calculators.batching import per_atom, per_system, segment_sum
from equicat.calculators.neighbors import NeighborList
from equicat.calculators.potential import Potential
from equicat.data import AtomicGraph

__all__ = [
    "ENSEMBLE_NAMES",
    "MDConfig",
    "MDState",
    "degrees_of_freedom",
    "evaluate",
    "kinetic_energy",
    "maxwell_boltzmann",
    "md_init",
    "pressure",
    "remove_com_momentum",
    "temperature",
]

LOG = logging.getLogger("equicat.md")
ENSEMBLE_NAMES = ("nve", "nvt-langevin", "nvt-bussi", "npt")


@dataclass(frozen=True)
class MDConfig:
    """Settings of an MD run (the same for every system of the batch).

    Attributes:
        ensemble: ``"nve"``, ``"nvt-langevin"``, ``"nvt-bussi"`` or ``"npt"``.
        timestep: fs.
        temperature: K, thermostat target (and initial Maxwell-Boltzmann temperature).
        friction: 1/fs, Langevin friction ``gamma``.
        taut: fs, Bussi thermostat time constant.
        pressure: eV/Å^3, NPT target pressure.
        taup: fs, Berendsen barostat time constant.
        compressibility: Å^3/eV, isothermal compressibility of the barostat equation.
        skin: Å, neighbour-list skin (NVE/NVT; NPT searches at every step).
        seed: seed of the torch generator (initial velocities and thermostat noise).
    """

    ensemble: str = "nve"
    timestep: float = 1.0
    temperature: float = 300.0
    friction: float = 0.01
    taut: float = 100.0
    pressure: float = 0.0
    taup: float = 1000.0
    compressibility: float = 1.0 / (100.0 * units.GPa)
    skin: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.ensemble not in ENSEMBLE_NAMES:
            raise ValueError(f"unknown ensemble {self.ensemble!r}; use one of {ENSEMBLE_NAMES}")
        for name in ("timestep", "taut", "taup", "compressibility"):
            if getattr(self, name) <= 0:
                raise ValueError(f"MDConfig.{name} must be positive, got {getattr(self, name)}")
        if self.temperature < 0 or self.friction < 0 or self.skin < 0:
            raise ValueError("MDConfig temperature, friction and skin must be >= 0")

    @property
    def dt(self) -> float:
        """The time step in ASE's time unit."""
        return self.timestep * units.fs

    @property
    def kt(self) -> float:
        """eV, ``k_B T`` of the target temperature."""
        return units.kB * self.temperature


@dataclass
class MDState:
    """``B`` systems (``N`` atoms in all) advancing together, one time step per ``step``."""

    # positions [N, 3] Å, cell [B, 3, 3] Å, fixed atoms, and the model's edges at the positions
    graph: AtomicGraph
    # [N, 3] sqrt(amu eV) (ASE units), momenta; zero on fixed atoms
    momenta: Tensor = per_atom()
    # [N] amu
    masses: Tensor = per_atom()
    # [N, 3] eV/Å, forces at the current positions; zero on fixed atoms
    forces: Tensor = per_atom()
    # [B] eV, potential energy at the current positions
    energy: Tensor = per_system()
    # [B, 3, 3] eV/Å^3, potential (virial) stress, ASE sign; NaN where not evaluated
    stress: Tensor = per_system()
    # [B] eV, energy the thermostat took out (E_pot + E_kin + reservoir is conserved)
    reservoir: Tensor = per_system()
    # [B] degrees of freedom (see the module docstring)
    dof: Tensor = per_system()
    # steps taken
    step: int = 0
    # settings
    config: MDConfig = dataclasses.field(default_factory=MDConfig)
    # Verlet neighbour list, None for potentials without edges
    neighbors: NeighborList | None = None
    # random numbers of the stochastic ensembles (advanced in place)
    generator: torch.Generator | None = None

    @property
    def time(self) -> float:
        """fs, simulated time."""
        return self.step * self.config.timestep

    @property
    def num_systems(self) -> int:
        """B."""
        return self.graph.num_systems

    @property
    def kinetic(self) -> Tensor:
        """[B] eV, kinetic energy."""
        return kinetic_energy(self.momenta, self.masses, self.graph.batch, self.num_systems)

    @property
    def temperature(self) -> Tensor:
        """[B] K, instantaneous temperature ``2 K / (n_dof k_B)``."""
        return temperature(self.kinetic, self.dof)

    @property
    def velocities(self) -> Tensor:
        """[N, 3] Å/fs."""
        return self.momenta / self.masses[:, None] * units.fs


def kinetic_energy(momenta: Tensor, masses: Tensor, batch: Tensor, num_systems: int) -> Tensor:
    """``[B]`` eV, ``sum_i p_i^2 / (2 m_i)`` per system."""
    per_atom_k = 0.5 * (momenta**2).sum(dim=1) / masses  # [N] eV
    return segment_sum(per_atom_k, batch, num_systems)


def temperature(kinetic: Tensor, dof: Tensor) -> Tensor:
    """``[B]`` K from kinetic energies ``[B]`` eV and degrees of freedom ``[B]``."""
    return 2.0 * kinetic / (dof.clamp_min(1) * units.kB)


def degrees_of_freedom(graph: AtomicGraph) -> Tensor:
    """``[B]`` ``3 n_free``, minus 3 for systems without fixed atoms (at least 1)."""
    free = segment_sum((~graph.fixed).long(), graph.batch, graph.num_systems)
    any_fixed = segment_sum(graph.fixed.long(), graph.batch, graph.num_systems) > 0
    dof = 3 * free - torch.where(any_fixed, 0, 3)
    return dof.clamp_min(1).to(graph.positions.dtype)


def remove_com_momentum(momenta: Tensor, masses: Tensor, graph: AtomicGraph) -> Tensor:
    """Zero each system's total momentum (systems without fixed atoms only).

    ``p_i <- p_i - m_i P / M`` with ``P`` the system's total momentum and ``M`` its mass.
    """
    b = graph.num_systems
    total = segment_sum(momenta, graph.batch, b)  # [B, 3]
    mass = segment_sum(masses, graph.batch, b)  # [B]
    free_sys = segment_sum(graph.fixed.long(), graph.batch, b) == 0
    shift = torch.where(free_sys[:, None], total / mass[:, None], torch.zeros_like(total))
    return momenta - masses[:, None] * shift[graph.batch]


def maxwell_boltzmann(
    graph: AtomicGraph, masses: Tensor, temperature_k: float, generator: torch.Generator | None
) -> Tensor:
    """``[N, 3]`` momenta drawn from ``N(0, m k_B T)``, zero total momentum, zero on fixed atoms.

    Sampled, not rescaled: the instantaneous temperature scatters around ``temperature_k``.
    """
    noise = torch.randn(
        graph.positions.shape, generator=generator, device=masses.device, dtype=masses.dtype
    )
    p = noise * torch.sqrt(masses * units.kB * temperature_k)[:, None]
    p = torch.where(graph.fixed[:, None], torch.zeros_like(p), p)
    return remove_com_momentum(p, masses, graph)


def pressure(state: MDState) -> Tensor:
    """``[B]`` eV/Å^3, ``P = 2 K / (3 V) - tr(sigma) / 3`` (``sigma``: potential stress).

    NaN where the stress was not evaluated or the system has no cell volume.
    """
    volume = torch.linalg.det(state.graph.cell).abs()
    trace = torch.diagonal(state.stress, dim1=1, dim2=2).sum(dim=1)
    p = 2.0 * state.kinetic / (3.0 * volume) - trace / 3.0
    return torch.where(volume > 1e-9, p, torch.full_like(p, float("nan")))


def evaluate(
    state: MDState, potential: Potential, graph: AtomicGraph, stress: bool
) -> tuple[AtomicGraph, NeighborList | None, Tensor, Tensor, Tensor]:
    """Edges at ``graph``'s positions, then ``(graph, neighbors, energy, forces, stress)``.

    Forces on fixed atoms are zeroed. NPT (changing cell) searches neighbours afresh; the
    other ensembles update the skin list.
    """
    neighbors = state.neighbors
    if neighbors is not None:
        if state.config.ensemble == "npt":
            neighbors = NeighborList.build(graph, neighbors.cutoff, neighbors.max_neighbors, 0.0)
        else:
            neighbors = neighbors.update(graph)
        graph = neighbors.select(graph)
    return (graph, neighbors, *_call(potential, graph, stress))


def _call(potential: Potential, graph: AtomicGraph, stress: bool) -> tuple[Tensor, Tensor, Tensor]:
    if stress:
        energy, forces, sigma = potential.with_stress(graph)  # type: ignore[attr-defined]
    else:
        energy, forces = potential(graph)
        sigma = torch.full_like(graph.cell, float("nan"))
    forces = torch.where(graph.fixed[:, None], torch.zeros_like(forces), forces)
    return energy, forces, sigma


def _warn_direct(potential: Potential) -> None:
    if not getattr(potential, "conservative", True):
        message = (
            "MD with a direct-force model: its forces are not the gradient of its energy, so "
            "total energy is NOT conserved (NVE drifts; NVT/NPT sample a biased ensemble). "
            "Use a conservative model (forces='conservative') for production MD."
        )
        LOG.warning(message)
        warnings.warn(message, RuntimeWarning, stacklevel=3)


def md_init(
    graph: AtomicGraph,
    potential: Potential,
    config: MDConfig,
    masses: Tensor,
    momenta: Tensor | None = None,
    step: int = 0,
    reservoir: Tensor | None = None,
) -> MDState:
    """Evaluate ``graph`` and wrap it as an MD state.

    Args:
        graph: the systems (positions Å, cell, ``fixed``), any dtype/device.
        potential: energies and forces (and stress for NPT, pressure).
        config: the run's settings.
        masses: ``[N]`` amu.
        momenta: ``[N, 3]`` sqrt(amu eV); default: Maxwell-Boltzmann at ``config.temperature``
            from a generator seeded with ``config.seed``.
        step: steps already taken (when resuming).
        reservoir: ``[B]`` eV, thermostat energy so far (when resuming).

    Raises:
        ValueError: NPT with fixed atoms, a non-periodic system, or a direct-force model.
    """
    _warn_direct(potential)
    graph = graph.to(device=potential.device, dtype=potential.dtype)
    graph = dataclasses.replace(graph, positions=graph.positions.detach())
    if config.ensemble == "npt":
        _check_npt(graph, potential)
    like = {"device": potential.device, "dtype": potential.dtype}
    generator = torch.Generator(device=potential.device).manual_seed(config.seed)
    masses = masses.to(**like)
    if momenta is None:
        momenta = maxwell_boltzmann(graph, masses, config.temperature, generator)
    momenta = torch.where(graph.fixed[:, None], 0.0, momenta.to(**like))
    neighbors = None
    if potential.cutoff is not None:
        skin = 0.0 if config.ensemble == "npt" else config.skin
        neighbors = NeighborList.build(graph, potential.cutoff, potential.max_neighbors, skin)
        graph = neighbors.select(graph)
    want_stress = config.ensemble == "npt"
    energy, forces, sigma = _call(potential, graph, want_stress)
    b = graph.num_systems
    return MDState(
        graph=graph,
        momenta=momenta,
        masses=masses,
        forces=forces,
        energy=energy,
        stress=sigma,
        reservoir=torch.zeros(b, **like) if reservoir is None else reservoir.to(**like),
        dof=degrees_of_freedom(graph),
        step=step,
        config=config,
        neighbors=neighbors,
        generator=generator,
    )


def _check_npt(graph: AtomicGraph, potential: Potential) -> None:
    if not getattr(potential, "conservative", True):
        raise ValueError("NPT needs the stress of a conservative model; this one is direct")
    for b in range(graph.num_systems):
        if not bool(graph.pbc[b].all()):
            raise ValueError(f"NPT needs a periodic cell in all 3 directions; system {b} is not")
    if bool(graph.fixed.any()):
        atom = int(torch.nonzero(graph.fixed)[0, 0])
        raise ValueError(
            f"NPT rescales every position, so fixed atoms (FixAtoms; atom {atom}) cannot stay "
            "put; remove the constraint or use nve / nvt-langevin / nvt-bussi"
        )
