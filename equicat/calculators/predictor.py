"""Batched inference: many structures, one forward pass per batch."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence

import numpy as np
import torch
from ase import Atoms
from torch import nn

from equicat.checkpoints import load
from equicat.data import AtomicGraph

__all__ = ["Predictor", "default_device"]


def default_device() -> torch.device:
    """CUDA when available, else CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _resolve_dtype(dtype: torch.dtype | str | None) -> torch.dtype:
    if dtype is None:
        return torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    table = {
        "float32": torch.float32,
        "float64": torch.float64,
        "fp32": torch.float32,
        "fp64": torch.float64,
    }
    try:
        return table[str(dtype)]
    except KeyError:
        raise ValueError(f"dtype must be float32 or float64, got {dtype!r}") from None


class Predictor:
    """Evaluate an equicat model on ASE structures, many per forward pass.

    Args:
        model: An equicat model (``forward(graph) -> dict``) with ``cutoff`` and
            ``max_neighbors`` attributes.
        device: Where to run (default: CUDA if available, else CPU).
        dtype: ``torch.float32`` (default) or ``torch.float64``.
        elements: Atomic numbers the model was trained on; others are refused. ``None`` allows
            every element the model's embedding covers.
    """

    def __init__(
        self,
        model: nn.Module,
        device: torch.device | str | None = None,
        dtype: torch.dtype | str | None = None,
        elements: Sequence[int] | None = None,
    ) -> None:
        self.device = torch.device(device) if device is not None else default_device()
        self.dtype = _resolve_dtype(dtype)
        self.model = model.to(device=self.device, dtype=self.dtype).eval()
        self.elements = None if elements is None else frozenset(int(z) for z in elements)

    @classmethod
    def from_checkpoint(
        cls,
        path: str | os.PathLike,
        device: torch.device | str | None = None,
        dtype: torch.dtype | str | None = None,
    ) -> Predictor:
        """Load an equicat checkpoint or a fairchem-1.x EquiformerV2 file."""
        ckpt = load(path)
        refs = ckpt.metadata.get("element_references") or {}
        elements = ckpt.metadata.get("elements") or (sorted(int(z) for z in refs) if refs else None)
        return cls(ckpt.build(), device=device, dtype=dtype, elements=elements)

    @property
    def conservative(self) -> bool:
        """Whether the model's forces are -dE/dr (stress available)."""
        return bool(getattr(self.model, "conservative", False))

    def _check_elements(self, frames: Sequence[Atoms]) -> None:
        limit = getattr(getattr(self.model, "config", None), "max_num_elements", None)
        for b, atoms in enumerate(frames):
            for i, z in enumerate(atoms.numbers):
                known = (self.elements is None or int(z) in self.elements) and (
                    limit is None or 0 < z < limit
                )
                if not known:
                    symbol = atoms[i].symbol if 0 < z < 119 else str(z)
                    allowed = (
                        f"elements {sorted(self.elements)}"
                        if self.elements is not None
                        else f"atomic numbers 1..{limit - 1}"
                    )
                    raise ValueError(
                        f"structure {b}, atom {i}: element {symbol} (Z={int(z)}) is unknown to "
                        f"this model, which knows {allowed}"
                    )

    def graph(self, frames: Sequence[Atoms]) -> AtomicGraph:
        """The model-ready graph of a list of structures (validated)."""
        self._check_elements(frames)
        return AtomicGraph.from_atoms(
            list(frames),
            cutoff=self.model.cutoff,
            max_neighbors=self.model.max_neighbors,
            device=self.device,
            dtype=self.dtype,
        )

    def predict(
        self,
        atoms: Atoms | Sequence[Atoms],
        compute_stress: bool = False,
        batch_size: int = 16,
    ) -> list[dict[str, float | np.ndarray]]:
        """Energies, forces (and stress) of each structure.

        Args:
            atoms: One structure or a list.
            compute_stress: Also return ``stress`` (``[3, 3]`` eV/Å^3; conservative models).
            batch_size: Structures per forward pass.

        Returns:
            One dict per structure: ``energy`` (float, eV), ``forces`` (``[n, 3]`` eV/Å) and
            optionally ``stress``.
        """
        frames = [atoms] if isinstance(atoms, Atoms) else list(atoms)
        results: list[dict[str, float | np.ndarray]] = []
        for chunk in _chunks(frames, batch_size):
            graph = self.graph(chunk)
            if self.conservative:
                out = self.model(graph, compute_stress=compute_stress)
            else:
                if compute_stress:
                    raise ValueError(
                        "this model predicts forces directly and has no stress; use a "
                        "conservative model for stress or cell relaxation"
                    )
                with torch.no_grad():
                    out = self.model(graph)
            energy = out["energy"].detach().double().cpu().numpy()
            forces = out["forces"].detach().double().cpu().numpy()
            stress = out["stress"].detach().double().cpu().numpy() if "stress" in out else None
            offsets = np.concatenate([[0], np.cumsum([len(a) for a in chunk])])
            for b in range(len(chunk)):
                item: dict[str, float | np.ndarray] = {
                    "energy": float(energy[b]),
                    "forces": forces[offsets[b] : offsets[b + 1]],
                }
                if stress is not None:
                    item["stress"] = stress[b]
                results.append(item)
        return results


def _chunks(frames: list[Atoms], size: int) -> Iterator[list[Atoms]]:
    if size < 1:
        raise ValueError(f"batch_size must be >= 1, got {size}")
    for i in range(0, len(frames), size):
        yield frames[i : i + size]
