"""The training and validation sets a :class:`~equicat.train.config.DataConfig` names.

Two kinds of source:

- labelled structure files (``data.train`` / ``data.val``): energies and forces;
- QM9 (``data.qm9``): seeded subsets of the standard split
  (:func:`equicat.data.qm9.qm9_subset_indices`), with the chosen total-energy target (eV)
  as each molecule's energy label and no force labels, so training is energy-only.

Each source also gives a provenance record that checkpoints store (file digests, or the QM9
source and digests of its index lists).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from equicat.data.dataset import StructureDataset
from equicat.train.config import DataConfig, QM9Source

__all__ = ["load_datasets", "qm9_frames"]


def _file_record(path: str) -> dict[str, Any]:
    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    return {"path": str(path), "sha256": digest}


def qm9_frames(source: QM9Source) -> tuple[list, list]:
    """``(train, val)`` QM9 molecules of ``source``, each with ``info["energy"]`` set.

    ``info["energy"]`` is ``info[source.target]`` (eV); the other targets stay in ``info``
    (so the validation molecules can be written to extxyz for ``equicat evaluate --task qm9``
    and ``equicat analyze irreps``).
    """
    from equicat.data.qm9 import load_qm9_subset, qm9_subset_indices

    train_idx, val_idx = qm9_subset_indices(source.train, source.val, source.seed)
    frames = load_qm9_subset(np.concatenate([train_idx, val_idx]))
    for atoms in frames:
        atoms.info["energy"] = float(atoms.info[source.target])
    return frames[: len(train_idx)], frames[len(train_idx) :]


def _index_digest(frames: list) -> str:
    ids = ",".join(str(a.info["qm9_index"]) for a in frames)
    return hashlib.sha256(ids.encode()).hexdigest()


def load_datasets(data: DataConfig) -> tuple[StructureDataset, StructureDataset, dict[str, Any]]:
    """Training set, validation set and the provenance record of ``data``.

    Raises:
        ValueError: No data named, or validation elements the training set lacks (they would
            get no reference energy).
    """
    if data.qm9 is not None:
        train_frames, val_frames = qm9_frames(data.qm9)
        train_set = StructureDataset(train_frames, forces=False)
        val_set = StructureDataset(val_frames, forces=False)
        record = {
            "qm9": {
                **vars(data.qm9),
                "train_qm9_index_sha256": _index_digest(train_frames),
                "val_qm9_index_sha256": _index_digest(val_frames),
            }
        }
    else:
        if not data.train or not data.val:
            raise ValueError(
                "data.train and data.val must both name files (equicat datagen writes "
                "train.extxyz and val.extxyz), or data.qm9 must name a QM9 source"
            )
        train_set = StructureDataset.from_files(data.train)
        val_set = StructureDataset.from_files(data.val)
        record = {
            "train": [_file_record(p) for p in data.train],
            "val": [_file_record(p) for p in data.val],
        }
    unseen = sorted(set(val_set.elements) - set(train_set.elements))
    if unseen:
        raise ValueError(
            f"validation data hold element(s) Z={unseen} that no training frame has, so "
            "they get no reference energy; generate more systems or move those frames to "
            "the training files"
        )
    return train_set, val_set, record
