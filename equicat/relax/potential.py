"""Re-export: the potentials live in :mod:`equicat.calculators.potential` (shared with md)."""

from equicat.calculators.potential import (
    AsePotential,
    ModelPotential,
    Potential,
    as_potential,
    evaluate_with_stress,
)

__all__ = ["AsePotential", "ModelPotential", "Potential", "as_potential", "evaluate_with_stress"]
