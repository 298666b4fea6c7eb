"""Re-export: batch slicing helpers live in :mod:`equicat.calculators.batching`."""

from equicat.calculators.batching import (
    atom_offsets,
    cat_fields,
    cat_graphs,
    per_atom,
    per_system,
    segment_max,
    segment_sum,
    static,
    take_edges,
    take_fields,
    take_graph,
)

__all__ = [
    "atom_offsets",
    "cat_fields",
    "cat_graphs",
    "per_atom",
    "per_system",
    "segment_max",
    "segment_sum",
    "static",
    "take_edges",
    "take_fields",
    "take_graph",
]
