"""Training losses and validation metrics (OC20 S2EF style).

With ``s`` the target scale (:class:`~equicat.train.references.Normalization`), ``B``
systems of ``n_b`` atoms and ``M`` scored atoms:

- energy loss ``L_E = (1/B) sum_b |E_b - E*_b| / (n_b s)`` (per-atom energy MAE; the element
  references cancel in the difference, as the model adds them to its prediction);
- force loss ``L_F = (1/M) sum_i ||F_i - F*_i||_2 / s`` (the L2-MAE);
- total ``energy_coef * L_E + force_coef * L_F``.

Energy-only data (a batch whose ``forces`` is ``None``, e.g. QM9) has no force term:
``L_F = 0`` whatever ``force_coef`` says, and the validation metrics hold no force errors.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from equicat.data.dataset import Batch
from equicat.train.config import LossConfig

__all__ = ["LossTerms", "compute_loss", "force_mask", "Metrics"]


@dataclass
class LossTerms:
    """The total loss (differentiable) and its two parts (dimensionless)."""

    total: Tensor
    energy: Tensor
    force: Tensor


def force_mask(batch: Batch, free_atoms_only: bool) -> Tensor | None:
    """[N] bool atoms whose forces are scored, or ``None`` for all."""
    return ~batch.graph.fixed if free_atoms_only else None


def compute_loss(
    out: dict[str, Tensor],
    batch: Batch,
    scale: float,
    config: LossConfig,
    counts: tuple[float, float] | None = None,
) -> LossTerms:
    """The loss of model outputs ``out`` on ``batch`` (equations in the module docstring).

    Args:
        out: Model outputs (``energy`` [B] eV, ``forces`` [N, 3] eV/Å; ``forces`` is not
            needed when ``batch.forces`` is ``None``).
        batch: Targets (``forces`` ``None`` for energy-only data).
        scale: Target scale ``s``.
        config: Loss weights.
        counts: ``(B, M)`` to divide the sums by instead of this batch's own structure and
            scored-atom counts: the global counts when the batch is one rank's part of a
            data-parallel batch.
    """
    natoms = batch.graph.natoms.to(out["energy"].dtype)
    if batch.forces is None:  # energy-only data: no force term
        diff = (out["energy"] - batch.energy).abs() / natoms
        energy = (diff.mean() if counts is None else diff.sum() / counts[0]) / scale
        total = config.energy_coef * energy
        return LossTerms(total, energy, torch.zeros((), dtype=energy.dtype))
    error = torch.linalg.vector_norm(out["forces"] - batch.forces, dim=-1)  # [N]
    mask = force_mask(batch, config.free_atoms_only)
    if mask is not None:
        error = error[mask]
    if counts is None:
        energy = ((out["energy"] - batch.energy).abs() / natoms).mean() / scale
        force = error.mean() / scale if error.numel() else error.sum()
    else:
        energy = ((out["energy"] - batch.energy).abs() / natoms).sum() / (counts[0] * scale)
        force = error.sum() / (max(counts[1], 1) * scale)
    total = config.energy_coef * energy + config.force_coef * force
    return LossTerms(total, energy, force)


class Metrics:
    """Running validation errors over batches.

    ``compute()`` returns ``energy_mae`` (eV), ``energy_mae_per_atom`` (eV/atom),
    ``force_mae`` (eV/Å, over components, as OC20 reports it), ``force_l2_mae`` (eV/Å, mean
    error-vector length), ``loss`` (the training loss on these data, for choosing the best
    checkpoint) and ``frames``. Energy-only data (no force labels) gives no force entries and
    an energy-only ``loss``.
    """

    def __init__(self, scale: float, config: LossConfig) -> None:
        self.scale, self.config = scale, config
        self.frames = self.atoms = 0
        self.energy = self.energy_per_atom = self.force = self.force_l2 = 0.0
        self.forces_seen = False

    @torch.no_grad()
    def update(self, out: dict[str, Tensor], batch: Batch) -> None:
        """Add one batch."""
        natoms = batch.graph.natoms.to(torch.float64)
        de = (out["energy"].detach().double() - batch.energy.double()).abs()
        self.frames += int(de.numel())
        self.energy += float(de.sum())
        self.energy_per_atom += float((de / natoms).sum())
        if batch.forces is None:
            return
        df = out["forces"].detach().double() - batch.forces.double()  # [N, 3]
        mask = force_mask(batch, self.config.free_atoms_only)
        if mask is not None:
            df = df[mask]
        self.atoms += int(df.shape[0])
        self.forces_seen = True
        self.force += float(df.abs().mean(-1).sum())
        self.force_l2 += float(torch.linalg.vector_norm(df, dim=-1).sum())

    SUMS = ("frames", "atoms", "energy", "energy_per_atom", "force", "force_l2")

    def compute(self) -> dict[str, float]:
        """The averages (see the class docstring)."""
        frames, atoms = max(self.frames, 1), max(self.atoms, 1)
        e_atom = self.energy_per_atom / frames
        f_l2 = self.force_l2 / atoms
        c = self.config
        if not self.forces_seen and self.atoms == 0:
            return {
                "energy_mae": self.energy / frames,
                "energy_mae_per_atom": e_atom,
                "loss": c.energy_coef * e_atom / self.scale,
                "frames": self.frames,
            }
        return {
            "energy_mae": self.energy / frames,
            "energy_mae_per_atom": e_atom,
            "force_mae": self.force / atoms,
            "force_l2_mae": f_l2,
            "loss": (c.energy_coef * e_atom + c.force_coef * f_l2) / self.scale,
            "frames": self.frames,
        }
