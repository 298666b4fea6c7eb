"""Re-export: the skin neighbour list lives in :mod:`equicat.calculators.neighbors`."""

from equicat.calculators.neighbors import NeighborList

__all__ = ["NeighborList"]
