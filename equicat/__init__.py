"""equicat: equivariant machine-learned interatomic potentials as ASE calculators."""

__version__ = "0.1.0"
