"""ASE calculator and batched predictor."""

from equicat.calculators.ase_calculator import EquiCatCalculator
from equicat.calculators.predictor import Predictor, default_device

__all__ = ["EquiCatCalculator", "Predictor", "default_device"]
