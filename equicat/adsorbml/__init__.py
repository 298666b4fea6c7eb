"""AdsorbML: place an adsorbate many ways, relax with ML, filter, rank, confirm with an oracle.

:mod:`~equicat.adsorbml.placements` (heuristic + random initial structures),
:mod:`~equicat.adsorbml.anomalies` (invalid relaxed structures),
:mod:`~equicat.adsorbml.workflow` (the resumable pipeline for one system),
:mod:`~equicat.adsorbml.metrics` (success rate and speedup at k) and
:mod:`~equicat.adsorbml.benchmark` (the OC-EMT-Dense benchmark).
"""

from equicat.adsorbml.anomalies import RULES, AnomalyConfig, detect
from equicat.adsorbml.oracle import resolve_oracle
from equicat.adsorbml.placements import (
    AdsorbateSpec,
    PlacementConfig,
    adsorbate_by_name,
    placements,
)
from equicat.adsorbml.surface import ensure_tags, find_sites, load_slab, slab_from_bulk
from equicat.adsorbml.workflow import WorkflowConfig, run_workflow

__all__ = [
    "RULES",
    "AdsorbateSpec",
    "AnomalyConfig",
    "PlacementConfig",
    "WorkflowConfig",
    "adsorbate_by_name",
    "detect",
    "ensure_tags",
    "find_sites",
    "load_slab",
    "placements",
    "resolve_oracle",
    "run_workflow",
    "slab_from_bulk",
]
