"""Integrators: ``step(state, potential) -> state`` for NVE, two NVT thermostats and NPT.

Symbols: ``r`` positions (``state.graph.positions``), ``p`` momenta (``state.momenta``), ``m``
masses, ``F`` forces, ``dt`` the time step in ASE units (``config.dt``), ``k_B T`` = ``config.kt``.
Fixed atoms keep ``p = 0`` and ``F = 0``, so they never move.

- **NVE, velocity Verlet** (what ``ase.md.verlet.VelocityVerlet`` does)::

      p <- p + dt/2 F(r);   r <- r + dt p / m;   p <- p + dt/2 F(r)

- **NVT, Langevin (BAOAB splitting**, Leimkuhler & Matthews 2013)::

      B: p <- p + dt/2 F      A: r <- r + dt/2 p/m
      O: p <- c p + sqrt((1 - c^2) m k_B T) xi,   c = exp(-gamma dt),  xi ~ N(0, 1)
      A: r <- r + dt/2 p/m    B: p <- p + dt/2 F(r)

  then the total momentum of a system without fixed atoms is removed.
- **NVT, Bussi stochastic velocity rescaling** (Bussi, Donadio & Parrinello 2007): before a
  velocity Verlet step, ``p <- alpha p`` with ``alpha^2 = K'/K`` and, for ``N_f`` degrees of
  freedom, target ``K_t = N_f k_B T / 2`` and ``c = exp(-dt / tau_T)``::

      K' = c K + (1 - c) K_t / N_f (R_1^2 + sum_{i=2}^{N_f} R_i^2)
           + 2 R_1 sqrt(c (1 - c) K K_t / N_f),      R_i ~ N(0, 1)

  ``sign(alpha) = sign(R_1 + sqrt(c K N_f / ((1 - c) K_t)))``.
- **NPT, Berendsen isotropic barostat + Bussi thermostat**: each step first rescales the
  momenta (Bussi), then scales positions and cell by
  ``mu = (1 - kappa dt / tau_P (P_0 - P))^(1/3)`` (``kappa`` the compressibility, ``P`` the
  instantaneous pressure ``2K/(3V) - tr(sigma)/3``), then takes a velocity Verlet step whose
  closing force evaluation also gives the stress. It drives the pressure to ``P_0`` without
  sampling the exact NPT ensemble (no conserved quantity).

The energy a thermostat adds or removes is accumulated (with the opposite sign) in
``state.reservoir``, so ``E_pot + E_kin + reservoir`` is conserved by NVT up to integration
error, a check of the time step.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import torch
from torch import Tensor

from equicat.calculators.potential import Potential
from equicat.md.state import MDState, evaluate, pressure, remove_com_momentum

__all__ = ["ENSEMBLES", "bussi_step", "langevin_step", "npt_step", "nve_step", "step"]


def _moved(state: MDState, dr: Tensor) -> Tensor:
    """Positions after a displacement ``dr`` [N, 3] Å (fixed atoms stay)."""
    dr = torch.where(state.graph.fixed[:, None], 0.0, dr)
    return state.graph.positions + dr


def _kick(state: MDState, momenta: Tensor, forces: Tensor, fraction: float) -> Tensor:
    """``p + fraction dt F``."""
    return momenta + (fraction * state.config.dt) * forces


def _kinetic(state: MDState, momenta: Tensor) -> Tensor:
    """[B] eV, kinetic energy of ``momenta`` [N, 3]."""
    return dataclasses.replace(state, momenta=momenta).kinetic


def _finish(
    state: MDState,
    potential: Potential,
    positions: Tensor,
    momenta: Tensor,
    stress: bool,
    **changes: Tensor,
) -> MDState:
    """Evaluate forces at ``positions``, close with the second half kick, advance the step."""
    graph = state.graph.with_positions(positions)
    graph, neighbors, energy, forces, sigma = evaluate(state, potential, graph, stress)
    return dataclasses.replace(
        state,
        graph=graph,
        neighbors=neighbors,
        energy=energy,
        forces=forces,
        stress=sigma,
        momenta=_kick(state, momenta, forces, 0.5),
        step=state.step + 1,
        **changes,
    )


def nve_step(state: MDState, potential: Potential, stress: bool = False) -> MDState:
    """One velocity Verlet step (see the module docstring).

    Args:
        state: the batch.
        potential: energies and forces.
        stress: also evaluate the stress at the new positions (for the pressure).
    """
    p = _kick(state, state.momenta, state.forces, 0.5)
    r = _moved(state, state.config.dt * p / state.masses[:, None])
    return _finish(state, potential, r, p, stress)


def langevin_step(state: MDState, potential: Potential, stress: bool = False) -> MDState:
    """One BAOAB Langevin step at ``config.temperature`` with ``config.friction`` (1/fs)."""
    cfg, fixed = state.config, state.graph.fixed[:, None]
    half = 0.5 * cfg.dt / state.masses[:, None]  # [N, 1]
    p = _kick(state, state.momenta, state.forces, 0.5)
    r = _moved(state, half * p)
    k_before = _kinetic(state, p)
    c = math.exp(-cfg.friction * cfg.timestep)  # gamma [1/fs] * dt [fs]
    xi = torch.randn(p.shape, generator=state.generator, device=p.device, dtype=p.dtype)
    sigma = torch.sqrt((1.0 - c * c) * state.masses * cfg.kt)[:, None]  # [N, 1] sqrt(amu eV)
    p = remove_com_momentum(torch.where(fixed, 0.0, c * p + sigma * xi), state.masses, state.graph)
    reservoir = state.reservoir - (_kinetic(state, p) - k_before)
    r = r + torch.where(fixed, 0.0, half * p)
    return _finish(state, potential, r, p, stress, reservoir=reservoir)


def _bussi_alpha(state: MDState) -> Tensor:
    """``[B]`` the Bussi rescaling factor ``alpha`` (see the module docstring)."""
    cfg = state.config
    k = state.kinetic.clamp_min(torch.finfo(state.momenta.dtype).tiny)  # [B] eV
    nf = state.dof  # [B]
    kt = 0.5 * nf * cfg.kt  # [B] eV, target kinetic energy
    c = math.exp(-cfg.timestep / cfg.taut)
    like = {"device": k.device, "dtype": k.dtype}
    r1 = torch.randn(k.shape, generator=state.generator, **like)
    # sum of N_f - 1 squared normals, drawn as a padded [B, max N_f - 1] block
    width = max(int(nf.max().item()) - 1, 1)
    rest = torch.randn((k.shape[0], width), generator=state.generator, **like)
    mask = torch.arange(width, device=k.device)[None, :] < (nf[:, None] - 1)
    chi2 = (rest**2 * mask).sum(dim=1)
    k_new = (
        c * k
        + (1.0 - c) * kt / nf * (r1**2 + chi2)
        + 2.0 * r1 * torch.sqrt(c * (1.0 - c) * k * kt / nf)
    )
    sign = torch.sign(r1 + torch.sqrt(c * k * nf / ((1.0 - c) * kt)))
    return sign * torch.sqrt(k_new.clamp_min(0.0) / k)


def _bussi_rescale(state: MDState) -> MDState:
    """``p <- alpha p`` with the kinetic energy change charged to the reservoir."""
    alpha = _bussi_alpha(state)
    p = state.momenta * alpha[state.graph.batch, None]
    reservoir = state.reservoir - (_kinetic(state, p) - state.kinetic)
    return dataclasses.replace(state, momenta=p, reservoir=reservoir)


def bussi_step(state: MDState, potential: Potential, stress: bool = False) -> MDState:
    """Bussi rescaling (time constant ``config.taut`` fs), then a velocity Verlet step."""
    return nve_step(_bussi_rescale(state), potential, stress)


def npt_step(state: MDState, potential: Potential, stress: bool = True) -> MDState:
    """Bussi rescaling, Berendsen isotropic scaling of positions and cell, velocity Verlet."""
    cfg = state.config
    state = _bussi_rescale(state)
    p_inst = pressure(state)  # [B] eV/Å^3, from the stress of the current positions
    mu3 = 1.0 - cfg.compressibility * cfg.timestep / cfg.taup * (cfg.pressure - p_inst)
    mu = mu3.clamp(0.9, 1.1) ** (1.0 / 3.0)  # [B], at most ~3% per step
    graph = state.graph.with_positions(
        state.graph.positions * mu[state.graph.batch, None], state.graph.cell * mu[:, None, None]
    )
    state = dataclasses.replace(state, graph=graph)
    return nve_step(state, potential, stress=True)


StepFn = Callable[..., MDState]
# ensemble name -> step function
ENSEMBLES: dict[str, StepFn] = {
    "nve": nve_step,
    "nvt-langevin": langevin_step,
    "nvt-bussi": bussi_step,
    "npt": npt_step,
}


def step(state: MDState, potential: Potential, stress: bool = False) -> MDState:
    """One step of ``state.config.ensemble`` (``stress``: also evaluate the pressure)."""
    return ENSEMBLES[state.config.ensemble](state, potential, stress)
