"""Atomic graphs, neighbour lists and data sets."""

from equicat.data.graph import AtomicGraph, NeighborMethod, build_edges

__all__ = ["AtomicGraph", "NeighborMethod", "build_edges"]
