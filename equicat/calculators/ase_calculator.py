"""ASE calculator: atoms -> graph -> model -> results, units converted once."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch
from ase import Atoms
from ase.calculators.calculator import Calculator, PropertyNotImplementedError, all_changes

from equicat.calculators.predictor import Predictor

__all__ = ["EquiCatCalculator"]


def _voigt(stress: np.ndarray) -> np.ndarray:
    """``[3, 3]`` -> ASE's ``(xx, yy, zz, yz, xz, xy)``."""
    return np.array(
        [stress[0, 0], stress[1, 1], stress[2, 2], stress[1, 2], stress[0, 2], stress[0, 1]]
    )


class EquiCatCalculator(Calculator):
    """ASE calculator for equicat models and fairchem-1.x EquiformerV2 checkpoints.

    Energies in eV, forces in eV/Å, stress in eV/Å^3 (ASE convention, Voigt order), available
    only for conservative models. Build it with :meth:`from_checkpoint`.

    Args:
        predictor: The batched predictor doing the work.
        **kwargs: Passed to :class:`ase.calculators.calculator.Calculator`.
    """

    implemented_properties = ["energy", "free_energy", "forces", "stress"]

    def __init__(self, predictor: Predictor, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.predictor = predictor
        if not predictor.conservative:
            # instance-level: a direct-force model has no stress
            self.implemented_properties = ["energy", "free_energy", "forces"]

    @classmethod
    def from_checkpoint(
        cls,
        path: str | os.PathLike,
        device: torch.device | str | None = None,
        dtype: torch.dtype | str | None = None,
        **kwargs: Any,
    ) -> EquiCatCalculator:
        """Load an equicat checkpoint or a fairchem-1.x EquiformerV2 checkpoint file."""
        return cls(Predictor.from_checkpoint(path, device=device, dtype=dtype), **kwargs)

    def calculate(
        self,
        atoms: Atoms | None = None,
        properties: list[str] | None = None,
        system_changes: list[str] = all_changes,
    ) -> None:
        """Compute the requested properties for ``atoms`` (ASE's calculator protocol)."""
        properties = properties or ["energy"]
        super().calculate(atoms, properties, system_changes)
        want_stress = "stress" in properties
        if want_stress and not self.predictor.conservative:
            raise PropertyNotImplementedError(
                "stress: this model predicts forces directly; use a conservative model"
            )
        pbc_stress = want_stress or (self.predictor.conservative and bool(self.atoms.pbc.all()))
        (res,) = self.predictor.predict(self.atoms, compute_stress=pbc_stress)
        self.results["energy"] = res["energy"]
        self.results["free_energy"] = res["energy"]
        self.results["forces"] = np.asarray(res["forces"])
        if "stress" in res:
            self.results["stress"] = _voigt(np.asarray(res["stress"]))
