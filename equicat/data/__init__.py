"""Atomic graphs, neighbour lists, file formats (:mod:`equicat.data.formats`) and data sets."""

from equicat.data.graph import AtomicGraph, NeighborMethod, build_edges

__all__ = ["AtomicGraph", "NeighborMethod", "build_edges"]
