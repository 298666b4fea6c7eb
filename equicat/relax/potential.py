"""Re-export: the potentials live in :mod:`equicat.calculators.potential` (shared with md)."""

from equicat.calculators.potential import AsePotential, ModelPotential, Potential, as_potential

__all__ = ["AsePotential", "ModelPotential", "Potential", "as_potential"]
