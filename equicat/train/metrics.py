"""OC20 evaluation metrics for S2EF, IS2RE and per-target regression (QM9).

With ``B`` structures of ``n_b`` atoms, ``dE_b = E_b - E*_b`` (eV) and, over the ``M``
scored atoms (OC20 scores forces on free atoms only), ``dF_i = F_i - F*_i`` (eV/Å):

- ``energy_mae = (1/B) sum_b |dE_b|``; ``energy_mae_per_atom = (1/B) sum_b |dE_b| / n_b``;
  ``energy_mse = (1/B) sum_b dE_b^2``;
- ``energy_within_threshold`` (EwT): fraction of structures with ``|dE_b| < 0.02 eV``;
- ``force_mae = (1/3M) sum_i sum_c |dF_ic|`` (over components, as OC20 reports it), and
  ``force_{x,y,z}_mae``; ``force_l2_mae = (1/M) sum_i ||dF_i||``;
- ``force_cosine = (1/M) sum_i F_i . F*_i / (||F_i|| ||F*_i||)`` (``eps`` guards zeros);
- ``force_magnitude_error = (1/M) sum_i | ||F_i|| - ||F*_i|| |``;
- ``energy_forces_within_threshold`` (EFwT): fraction of structures with ``|dE_b| < 0.02 eV``
  and ``max_{i in b, c} |dF_ic| < 0.03 eV/Å`` (OC20 takes the largest component error; a
  structure with no scored atom passes the force test).

Plain NumPy in float64; nothing here runs a model.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

__all__ = [
    "ENERGY_THRESHOLD",
    "FORCE_THRESHOLD",
    "s2ef_metrics",
    "is2re_metrics",
    "target_metrics",
]

ENERGY_THRESHOLD = 0.02  # eV, OC20's EwT / EFwT energy threshold
FORCE_THRESHOLD = 0.03  # eV/Å, OC20's EFwT force threshold


def _energy_errors(
    energy: np.ndarray, energy_true: np.ndarray, natoms: np.ndarray | None
) -> dict[str, float]:
    de = np.asarray(energy, float) - np.asarray(energy_true, float)  # [B] eV
    if de.ndim != 1 or de.size == 0:
        raise ValueError(f"need a non-empty [B] energy array, got shape {list(de.shape)}")
    out = {
        "energy_mae": float(np.abs(de).mean()),
        "energy_mse": float((de**2).mean()),
        "energy_within_threshold": float((np.abs(de) < ENERGY_THRESHOLD).mean()),
    }
    if natoms is not None:
        out["energy_mae_per_atom"] = float((np.abs(de) / np.asarray(natoms, float)).mean())
    return out


def s2ef_metrics(
    energy: np.ndarray,
    energy_true: np.ndarray,
    natoms: np.ndarray,
    forces: np.ndarray,
    forces_true: np.ndarray,
    scored: np.ndarray | None = None,
    eps: float = 1e-8,
) -> dict[str, float]:
    """OC20 S2EF metrics (definitions in the module docstring).

    Args:
        energy: [B] eV, predicted total energies.
        energy_true: [B] eV, reference energies.
        natoms: [B] atoms per structure (the atoms of structure ``b`` are rows
            ``sum(natoms[:b]) ..`` of the force arrays).
        forces: [N, 3] eV/Å, predicted forces, ``N = sum(natoms)``.
        forces_true: [N, 3] eV/Å, reference forces.
        scored: [N] bool, atoms whose forces count (OC20: the free ones); ``None`` for all.
        eps: Guards the cosine against zero-length forces.

    Returns:
        The metrics of the module docstring, plus ``structures`` and ``scored_atoms``.
    """
    natoms = np.asarray(natoms, int)
    df = np.asarray(forces, float) - np.asarray(forces_true, float)  # [N, 3] eV/Å
    if df.shape != (int(natoms.sum()), 3):
        raise ValueError(f"forces must be [{int(natoms.sum())}, 3], got {list(df.shape)}")
    mask = np.ones(len(df), bool) if scored is None else np.asarray(scored, bool)
    out = _energy_errors(energy, energy_true, natoms)
    f, t = np.asarray(forces, float)[mask], np.asarray(forces_true, float)[mask]  # [M, 3]
    d = df[mask]
    if len(d) == 0:
        raise ValueError("no atom is scored (are all atoms fixed?); use every atom instead")
    nf, nt = np.linalg.norm(f, axis=1), np.linalg.norm(t, axis=1)  # [M]
    out.update(
        force_mae=float(np.abs(d).mean()),
        force_x_mae=float(np.abs(d[:, 0]).mean()),
        force_y_mae=float(np.abs(d[:, 1]).mean()),
        force_z_mae=float(np.abs(d[:, 2]).mean()),
        force_l2_mae=float(np.linalg.norm(d, axis=1).mean()),
        force_cosine=float(((f * t).sum(1) / np.maximum(nf * nt, eps)).mean()),
        force_magnitude_error=float(np.abs(nf - nt).mean()),
    )
    # [N] largest component error of each atom (0 where not scored) -> [B] per structure
    worst = np.where(mask, np.abs(df).max(axis=1), 0.0)
    starts = np.concatenate([[0], np.cumsum(natoms)[:-1]])
    worst_b = np.maximum.reduceat(worst, starts) if len(worst) else np.zeros(len(natoms))
    worst_b = np.where(natoms > 0, worst_b, 0.0)
    de = np.abs(np.asarray(energy, float) - np.asarray(energy_true, float))
    out["energy_forces_within_threshold"] = float(
        ((de < ENERGY_THRESHOLD) & (worst_b < FORCE_THRESHOLD)).mean()
    )
    out.update(structures=int(len(natoms)), scored_atoms=int(mask.sum()))
    return out


def is2re_metrics(
    energy: np.ndarray, energy_true: np.ndarray, natoms: np.ndarray | None = None
) -> dict[str, float]:
    """OC20 IS2RE metrics: ``energy_mae``, ``energy_mse``, EwT (and ``energy_mae_per_atom``).

    Args:
        energy: [B] eV, predicted relaxed energies.
        energy_true: [B] eV, reference relaxed energies.
        natoms: [B] atoms per structure, for the per-atom variants (optional).
    """
    out = _energy_errors(energy, energy_true, natoms)
    out["structures"] = int(len(np.asarray(energy)))
    return out


def target_metrics(
    predicted: Mapping[str, np.ndarray], reference: Mapping[str, np.ndarray]
) -> dict[str, dict[str, float]]:
    """Per-target MAE, RMSE and count (QM9 style), for every target in both mappings.

    Args:
        predicted: ``{target: [B] values}``.
        reference: ``{target: [B] values}`` in the same units.

    Raises:
        ValueError: No target in common, or a target's arrays differ in length.
    """
    common = sorted(set(predicted) & set(reference))
    if not common:
        raise ValueError(
            f"no target in common: predicted {sorted(predicted)}, reference {sorted(reference)}"
        )
    out = {}
    for name in common:
        p, r = np.asarray(predicted[name], float), np.asarray(reference[name], float)
        if p.shape != r.shape or p.size == 0:
            raise ValueError(f"target {name!r}: {p.shape} predictions for {r.shape} references")
        err = p - r
        out[name] = {
            "mae": float(np.abs(err).mean()),
            "rmse": float(np.sqrt((err**2).mean())),
            "count": int(err.size),
        }
    return out
