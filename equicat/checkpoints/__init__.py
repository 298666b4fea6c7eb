"""Checkpoint format, save/load, and importers for fairchem-1.x files."""

from equicat.checkpoints.fairchem import FairchemImportError, equiformer_v2_from_fairchem
from equicat.checkpoints.format import (
    FORMAT,
    FORMAT_VERSION,
    Checkpoint,
    CheckpointError,
    load,
    load_model,
    save,
)
from equicat.checkpoints.registry import DEFAULT, SHIPPED, shipped_path

__all__ = [
    "DEFAULT",
    "SHIPPED",
    "shipped_path",
    "FORMAT",
    "FORMAT_VERSION",
    "Checkpoint",
    "CheckpointError",
    "FairchemImportError",
    "equiformer_v2_from_fairchem",
    "load",
    "load_model",
    "save",
]
