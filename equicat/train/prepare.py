"""From a training set and a model spec to the model config the trainer builds.

The trainer owns four config values: the element references (``element_energies``),
``energy_mean = 0``, ``force_std = scale`` and ``energy_std = scale * avg_num_nodes``, so the
built model predicts total energies (eV) and forces (eV/Å) on the oracle's scale with no
external post-processing. EquiformerV2's energy head divides its sum over atoms by
``avg_num_nodes``; multiplying that back into ``energy_std`` makes each atom's contribution
``scale * out_i`` (the per-atom normalisation of MACE and nequip), so conservative forces
start about ``avg_num_nodes`` times closer to the targets' size than with
``energy_std = scale``. Two dataset statistics are measured unless the user set them:
``avg_num_nodes`` (mean atoms per structure) and ``avg_degree`` (mean neighbours per atom
within the cutoff).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from equicat.data import AtomicGraph
from equicat.data.dataset import StructureDataset
from equicat.models import MODELS
from equicat.train.config import ModelSpec
from equicat.train.references import (
    Normalization,
    compute_normalization,
    element_energy_table,
    fit_element_references,
)

__all__ = ["Prepared", "prepare", "FITTED_FIELDS"]

# config fields the trainer sets from the data; a user value would be silently wrong
FITTED_FIELDS = ("element_energies", "energy_mean", "energy_std", "force_std")
# dataset statistics measured when the user leaves them out
MEASURED_FIELDS = ("avg_num_nodes", "avg_degree")


@dataclass(frozen=True)
class Prepared:
    """What the trainer derives from the training data before the first step.

    Attributes:
        element_references: ``{Z: eV}`` fitted on the training set.
        normalization: Target statistics and the loss scale.
        model_config: Full config of the model to build (plain data).
    """

    element_references: dict[int, float]
    normalization: Normalization
    model_config: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """Plain data (element keys as strings, as checkpoints store them)."""
        return {
            "element_references": {str(z): e for z, e in self.element_references.items()},
            "normalization": self.normalization.to_dict(),
            "model_config": dict(self.model_config),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Prepared:
        """Inverse of :meth:`to_dict`."""
        refs = {int(z): float(e) for z, e in data["element_references"].items()}
        return cls(refs, Normalization(**data["normalization"]), dict(data["model_config"]))


def _config_class(name: str) -> type:
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(sorted(MODELS))}")
    return MODELS[name][1]


def mean_degree(
    dataset: StructureDataset, cutoff: float, max_neighbors: int | None, limit: int = 256
) -> float:
    """Mean neighbours per atom within ``cutoff`` over (up to ``limit`` evenly spread) frames."""
    picks = np.unique(np.linspace(0, len(dataset) - 1, min(limit, len(dataset))).astype(int))
    edges = atoms = 0
    for start in range(0, len(picks), 32):
        frames = [dataset[int(i)].atoms for i in picks[start : start + 32]]
        graph = AtomicGraph.from_atoms(frames, cutoff, max_neighbors)
        edges, atoms = edges + graph.num_edges, atoms + graph.num_atoms
    return edges / max(atoms, 1)


def prepare(spec: ModelSpec, dataset: StructureDataset) -> Prepared:
    """Fit references and scale on ``dataset`` and complete the model config.

    Raises:
        ValueError: The spec sets a fitted field, names unknown fields, or the model's config
            cannot hold element references.
    """
    cfg_cls = _config_class(spec.name)
    known = {f.name for f in fields(cfg_cls)}
    unknown = sorted(set(spec.config) - known)
    if unknown:
        raise ValueError(f"unknown field(s) {unknown} in model.config for {spec.name!r}")
    clash = sorted(set(spec.config) & set(FITTED_FIELDS))
    if clash:
        raise ValueError(
            f"model.config sets {clash}, which the trainer fits from the training data; "
            "remove them from the config"
        )
    if not set(FITTED_FIELDS) <= known:
        raise ValueError(f"model {spec.name!r} has no {list(FITTED_FIELDS)} config fields")
    numbers = [s.atoms.numbers for s in dataset.samples]
    energies = [s.energy for s in dataset.samples]
    refs = fit_element_references(numbers, energies)
    norm = compute_normalization(numbers, energies, [s.forces for s in dataset.samples], refs)
    config = dict(spec.config)
    config.update(element_energies=list(element_energy_table(refs)), energy_mean=0.0)
    base = cfg_cls(**config)
    if "avg_num_nodes" in known and "avg_num_nodes" not in spec.config:
        config["avg_num_nodes"] = float(np.mean([len(z) for z in numbers]))
    if "avg_degree" in known and "avg_degree" not in spec.config:
        config["avg_degree"] = mean_degree(dataset, base.cutoff, base.max_neighbors)
    per_system = float(config.get("avg_num_nodes", getattr(base, "avg_num_nodes", 1.0)))
    config.update(energy_std=norm.scale * per_system, force_std=norm.scale)
    return Prepared(refs, norm, cfg_cls(**config).to_dict())
