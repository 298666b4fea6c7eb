"""IS2RS and IS2RE metrics of OC20: ADwT, energy MAE, EwT, FbT and AFbT.

Definitions of the OC20 paper (Chanussot et al., "Open Catalyst 2020 (OC20) Dataset and
Community Challenges", ACS Catal. 11, 6059 (2021)), in its description of the IS2RS and IS2RE
tasks and their metrics; the EquiformerV2 paper reports the same AFbT / ADwT / energy MAE
(Table 2) from relaxations of at most 200 steps to ``fmax`` 0.02 eV/Å (its App. on relaxations).

- **DwT(d)** (IS2RS, Distance within Threshold): the share of structures whose *mean* over
  free atoms of the minimum-image distance between predicted and reference relaxed positions
  is below ``d`` (strictly). **ADwT** averages DwT over ``d`` = 0.01, 0.011, ..., 0.499 Å
  (:data:`ADWT_THRESHOLDS`: "0.01 Å to 0.5 Å in increments of 0.001 Å", the upper end
  exclusive as in OC20's public evaluation, 490 thresholds). Fixed atoms (ASE ``FixAtoms`` of
  the reference) are left out; distances use the reference cell.
- **Minimum image** (OC20's convention): the displacement in fractional coordinates of the
  reference cell is wrapped to ``[-0.5, 0.5]`` along each periodic cell vector, then mapped back
  to Cartesian (exact for orthogonal cells; for strongly skewed cells a shorter image may
  exist, as in OC20's own evaluation).
- **FbT(f)** (IS2RS, Forces below Threshold): the share of ML-relaxed structures on which the
  *oracle* (DFT in OC20; any ASE calculator here) gives a largest force on a free atom,
  ``max_i |F_i|``, below ``f`` (strictly); the paper's single threshold is 0.05 eV/Å
  (:data:`FBT_THRESHOLD`). **AFbT** averages FbT over ``f`` = 0.01, 0.011, ..., 0.399 eV/Å
  (:data:`AFBT_THRESHOLDS`: "0.01 to 0.4 eV/Å in increments of 0.001 eV/Å", upper end
  exclusive as for ADwT, 390 thresholds).
- **Energy MAE** (IS2RE): mean ``|E_pred - E_ref|`` over structures, eV, where ``E_pred`` is
  the energy of the ML relaxation's final structure and ``E_ref`` the reference relaxed
  energy (OC20 compares adsorption energies; whatever energy both sides hold is compared).
- **EwT** (IS2RE, Energy within Threshold): the share of structures with
  ``|E_pred - E_ref| < 0.02`` eV (:data:`EWT_THRESHOLD`).

Shares are fractions in [0, 1] (the papers print percentages).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator
from ase.constraints import FixAtoms

__all__ = [
    "ADWT_THRESHOLDS",
    "AFBT_THRESHOLDS",
    "EWT_THRESHOLD",
    "FBT_THRESHOLD",
    "RelaxMetrics",
    "below_threshold",
    "free_mask",
    "mean_free_distance",
    "minimum_image",
    "oracle_max_force",
    "score",
]

# Å, 0.010 ... 0.499
ADWT_THRESHOLDS = 0.01 + 0.001 * np.arange(490)
# eV/Å, 0.010 ... 0.399
AFBT_THRESHOLDS = 0.01 + 0.001 * np.arange(390)
# eV
EWT_THRESHOLD = 0.02
# eV/Å
FBT_THRESHOLD = 0.05


def free_mask(atoms: Atoms) -> np.ndarray:
    """``[n]`` bool, atoms not held by a ``FixAtoms`` constraint."""
    free = np.ones(len(atoms), dtype=bool)
    for c in atoms.constraints:
        if isinstance(c, FixAtoms):
            free[c.get_indices()] = False
    return free


def minimum_image(displacement: np.ndarray, cell: np.ndarray, pbc: np.ndarray) -> np.ndarray:
    """Wrap ``[n, 3]`` Å displacements to the nearest image along the periodic cell vectors.

    Args:
        displacement: [n, 3] Å.
        cell: [3, 3] Å, cell vectors as rows.
        pbc: [3] bool.

    Returns:
        [n, 3] Å, ``displacement`` with whole cell vectors removed so that each fractional
        component along a periodic vector lies in [-0.5, 0.5].
    """
    pbc = np.asarray(pbc, dtype=bool)
    if not pbc.any():
        return displacement
    if abs(np.linalg.det(cell)) < 1e-12:
        raise ValueError("a periodic structure needs a cell with non-zero volume")
    frac = np.linalg.solve(cell.T, displacement.T).T  # [n, 3] fractional
    frac[:, pbc] -= np.round(frac[:, pbc])
    return frac @ cell


def _check_pair(pred: Atoms, ref: Atoms, name: str) -> None:
    if len(pred) != len(ref) or (pred.numbers != ref.numbers).any():
        raise ValueError(
            f"{name}: the relaxed structure ({pred.get_chemical_formula()}, {len(pred)} "
            f"atoms) and its reference ({ref.get_chemical_formula()}, {len(ref)} atoms) do not "
            "hold the same atoms in the same order"
        )


def mean_free_distance(pred: Atoms, ref: Atoms) -> float:
    """Å, mean over ``ref``'s free atoms of the minimum-image distance ``|r_pred - r_ref|``."""
    _check_pair(pred, ref, ref.get_chemical_formula())
    free = free_mask(ref)
    if not free.any():
        raise ValueError(f"{ref.get_chemical_formula()}: every atom is fixed; nothing to score")
    d = minimum_image(pred.positions - ref.positions, ref.cell.array, ref.pbc)
    return float(np.linalg.norm(d[free], axis=1).mean())


def below_threshold(values: Sequence[float] | np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """``[T]``: for each threshold, the share of ``values`` strictly below it."""
    v = np.asarray(values, dtype=float)
    if v.size == 0:
        raise ValueError("no structures to score")
    return (v[None, :] < np.asarray(thresholds)[:, None]).mean(axis=1)


def oracle_max_force(atoms: Atoms, oracle: Calculator, free: np.ndarray | None = None) -> float:
    """eV/Å, the oracle's largest force on a free atom of ``atoms`` (a copy is evaluated).

    ``free`` ([n] bool) overrides ``atoms``' own ``FixAtoms``.
    """
    probe = atoms.copy()
    if hasattr(oracle, "reset"):
        oracle.reset()  # no cached results from another structure
    probe.calc = oracle
    forces = probe.get_forces(apply_constraint=False)
    free = free_mask(atoms) if free is None else free
    return float(np.linalg.norm(forces[free], axis=1).max())


@dataclass(frozen=True)
class RelaxMetrics:
    """Scores of a set of relaxations (shares are fractions in [0, 1])."""

    # structures scored
    count: int
    # IS2RS: ADwT, and DwT at each of ADWT_THRESHOLDS
    adwt: float
    dwt: tuple[float, ...]
    # Å, per structure: mean free-atom distance to the reference
    distances: tuple[float, ...]
    # IS2RE: eV, mean |E_pred - E_ref|, and the share within EWT_THRESHOLD
    energy_mae: float | None = None
    ewt: float | None = None
    # IS2RS with an oracle: FbT at FBT_THRESHOLD, AFbT, FbT at each of AFBT_THRESHOLDS
    fbt: float | None = None
    afbt: float | None = None
    fbt_curve: tuple[float, ...] | None = None
    # eV/Å, per structure: the oracle's max force on free atoms
    oracle_max_forces: tuple[float, ...] | None = None

    def to_dict(self) -> dict:
        """Plain data for JSON (thresholds included)."""
        out = asdict(self)
        out["adwt_thresholds"] = ADWT_THRESHOLDS.round(3).tolist()
        if self.fbt_curve is not None:
            out["afbt_thresholds"] = AFBT_THRESHOLDS.round(3).tolist()
        return out


def score(
    relaxed: Sequence[Atoms],
    reference: Sequence[Atoms],
    energies: Sequence[float] | None = None,
    reference_energies: Sequence[float] | None = None,
    oracle: Calculator | None = None,
) -> RelaxMetrics:
    """Score ML relaxations against reference relaxed structures (definitions above).

    Args:
        relaxed: ML-relaxed structures.
        reference: the reference relaxed structures, same atoms in the same order (their
            ``FixAtoms`` say which atoms are free; their cells are used for minimum images).
        energies: eV, predicted relaxed energies (IS2RE), or ``None``.
        reference_energies: eV, reference relaxed energies, or ``None``.
        oracle: an ASE calculator for FbT / AFbT, or ``None``.
    """
    if len(relaxed) != len(reference):
        raise ValueError(f"{len(relaxed)} relaxed structures but {len(reference)} references")
    for k, (p, r) in enumerate(zip(relaxed, reference, strict=True)):
        _check_pair(p, r, f"structure {k}")
    dist = [mean_free_distance(p, r) for p, r in zip(relaxed, reference, strict=True)]
    dwt = below_threshold(dist, ADWT_THRESHOLDS)
    out = dict(count=len(dist), adwt=float(dwt.mean()), dwt=tuple(dwt), distances=tuple(dist))
    if energies is not None and reference_energies is not None:
        err = np.abs(np.asarray(energies, float) - np.asarray(reference_energies, float))
        out.update(energy_mae=float(err.mean()), ewt=float((err < EWT_THRESHOLD).mean()))
    if oracle is not None:
        fmax = [
            oracle_max_force(p, oracle, free_mask(r))
            for p, r in zip(relaxed, reference, strict=True)
        ]
        curve = below_threshold(fmax, AFBT_THRESHOLDS)
        out.update(
            fbt=float(below_threshold(fmax, np.array([FBT_THRESHOLD]))[0]),
            afbt=float(curve.mean()),
            fbt_curve=tuple(curve),
            oracle_max_forces=tuple(fmax),
        )
    return RelaxMetrics(**out)
