"""Physically invalid relaxed adsorbate+slab structures, by the AdsorbML rules.

Two atoms are *bonded* when their minimum-image distance is below
``multiplier * (r_i + r_j) + skin``, with ``r`` ASE's covalent radii (Å) and ``skin`` 0.3 Å
(the connectivity of ASE's ``NeighborList`` with ``natural_cutoffs``, which the AdsorbML
reference implementation uses). Tags follow OC20:
0 = subsurface (fixed), 1 = surface, 2 = adsorbate. The four rules (Lan et al. 2022,
AdsorbML) and the multipliers used:

* ``dissociation``: the adsorbate's bond graph (multiplier 1.0) differs between the initial
  placement and the relaxed structure: a bond broke or formed within the adsorbate. (Without
  the skin, gas-phase bonds would sit on the cut-off: O-H is 0.97 Å = r_O + r_H.)
* ``desorption``: no adsorbate atom is bonded to any slab atom at multiplier 1.5.
* ``surface_reconstruction``: the slab's bond graph (multiplier 1.5) in the relaxed
  structure differs from that of the relaxed clean slab (or, if none is given, from the
  initial slab).
* ``intercalation``: an adsorbate atom is bonded (multiplier 1.0) to a subsurface atom
  (tag 0), i.e. it went into the slab.

:func:`detect` returns the names of the rules that fired; an empty list means valid.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ase import Atoms
from ase.data import covalent_radii
from ase.geometry import get_distances

__all__ = ["RULES", "AnomalyConfig", "bonds", "detect"]

RULES = ("dissociation", "desorption", "surface_reconstruction", "intercalation")


@dataclass(frozen=True)
class AnomalyConfig:
    """Bond-length multipliers of the covalent-radius sum, per rule, and the skin (Å)."""

    adsorbate_multiplier: float = 1.0
    desorption_multiplier: float = 1.5
    surface_multiplier: float = 1.5
    intercalation_multiplier: float = 1.0
    skin: float = 0.3


def bonds(
    atoms: Atoms, rows: np.ndarray, cols: np.ndarray, multiplier: float, skin: float = 0.3
) -> np.ndarray:
    """[len(rows), len(cols)] bool, minimum-image distance < multiplier * (r_i + r_j) + skin."""
    if len(rows) == 0 or len(cols) == 0:
        return np.zeros((len(rows), len(cols)), dtype=bool)
    _, d = get_distances(
        atoms.positions[rows], atoms.positions[cols], cell=atoms.cell, pbc=atoms.pbc
    )  # [R, C] Å
    r = covalent_radii[atoms.numbers]
    return d < multiplier * (r[rows][:, None] + r[cols][None, :]) + skin


def _graph(atoms: Atoms, idx: np.ndarray, multiplier: float, skin: float) -> np.ndarray:
    g = bonds(atoms, idx, idx, multiplier, skin)
    np.fill_diagonal(g, False)
    return g


def _check(initial: Atoms, final: Atoms) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if len(initial) != len(final) or np.any(initial.numbers != final.numbers):
        raise ValueError("initial and final structures must have the same atoms in order")
    tags = final.get_tags()
    ads, slab, sub = (np.flatnonzero(tags == 2), np.flatnonzero(tags != 2),
                      np.flatnonzero(tags == 0))  # fmt: skip
    if len(ads) == 0:
        raise ValueError("no adsorbate atoms (tag 2) in the structure; tag the adsorbate 2")
    return ads, slab, sub


def detect(
    initial: Atoms,
    final: Atoms,
    clean_slab: Atoms | None = None,
    config: AnomalyConfig = AnomalyConfig(),
) -> list[str]:
    """The anomaly rules (see the module docstring) that ``final`` breaks.

    Args:
        initial: The placement before relaxation (same atoms, same order, OC20 tags).
        final: The relaxed structure.
        clean_slab: The relaxed clean slab, its atoms in the order of ``final``'s slab atoms;
            the reference for ``surface_reconstruction`` (default: ``initial``'s slab).
        config: Bond multipliers per rule.

    Returns:
        Rule names from :data:`RULES`, in that order; empty when the structure is valid.
    """
    ads, slab, sub = _check(initial, final)
    fired = []
    m, skin = config.adsorbate_multiplier, config.skin
    if np.any(_graph(initial, ads, m, skin) != _graph(final, ads, m, skin)):
        fired.append("dissociation")
    if not bonds(final, ads, slab, config.desorption_multiplier, skin).any():
        fired.append("desorption")
    reference = initial[slab] if clean_slab is None else clean_slab
    if len(reference) != len(slab) or np.any(reference.numbers != final.numbers[slab]):
        raise ValueError(
            f"the clean slab has {len(reference)} atoms but the structure's slab part has "
            f"{len(slab)} (or the elements differ); pass the matching relaxed clean slab"
        )
    ref_idx = np.arange(len(reference))
    m = config.surface_multiplier
    if np.any(_graph(reference, ref_idx, m, skin) != _graph(final[slab], ref_idx, m, skin)):
        fired.append("surface_reconstruction")
    if bonds(final, ads, sub, config.intercalation_multiplier, skin).any():
        fired.append("intercalation")
    return fired
