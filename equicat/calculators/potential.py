"""What optimizers and integrators evaluate: a batched graph -> energies, forces (and stress).

Two kinds are provided:

- :class:`ModelPotential` wraps an equicat model (or a :class:`~equicat.calculators.Predictor`);
  it needs edges, so optimizers keep a neighbour list for its ``cutoff`` / ``max_neighbors``.
- :class:`AsePotential` wraps any ASE calculator (EMT, a DFT code): each system is evaluated on
  its own as an ``Atoms``; it needs no edges (``cutoff is None``). Useful as an oracle and in
  tests that compare our optimizers with :mod:`ase.optimize` on the same potential.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import torch
from ase import Atoms
from ase.calculators.calculator import Calculator
from torch import Tensor, nn

from equicat.calculators.predictor import Predictor
from equicat.data import AtomicGraph

__all__ = ["AsePotential", "ModelPotential", "Potential", "as_potential", "evaluate_with_stress"]


@runtime_checkable
class Potential(Protocol):
    """Energies and forces of a batch of systems.

    Attributes:
        cutoff: Å, the edge cutoff the potential reads from ``graph.edge_index``; ``None`` when
            it ignores edges (then no neighbour list is kept).
        max_neighbors: nearest-neighbour cap per atom, ``None`` for none.
        device: where graphs must live.
        dtype: float dtype of graphs.
        calls: forward evaluations so far (each call counts once, whatever its batch size).
    """

    cutoff: float | None
    max_neighbors: int | None
    device: torch.device
    dtype: torch.dtype
    calls: int

    def graph(self, frames: Sequence[Atoms]) -> AtomicGraph:
        """A validated graph of ``frames`` on this potential's device and dtype."""
        ...

    def __call__(self, graph: AtomicGraph) -> tuple[Tensor, Tensor]:
        """``(energy [B] eV, forces [N, 3] eV/Å)``, detached, forces not constrained."""
        ...


class ModelPotential:
    """An equicat model as a :class:`Potential` (direct or conservative forces).

    Args:
        model: ``forward(graph) -> {"energy", "forces"}`` with ``cutoff`` and ``max_neighbors``.
        device: where to run (default: where the model's parameters are).
        dtype: float dtype (default: the model parameters' dtype).
        predictor: optional :class:`Predictor` whose element check validates input structures.
    """

    def __init__(
        self,
        model: nn.Module,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        predictor: Predictor | None = None,
    ) -> None:
        param = next(iter(model.parameters()), None)
        self.device = torch.device(device) if device is not None else (
            param.device if param is not None else torch.device("cpu")
        )  # fmt: skip
        self.dtype = dtype or (param.dtype if param is not None else torch.float32)
        self.model = model.to(device=self.device, dtype=self.dtype).eval()
        self.cutoff: float | None = float(model.cutoff)
        self.max_neighbors: int | None = model.max_neighbors
        self.conservative = bool(getattr(model, "conservative", False))
        self.predictor = predictor
        self.calls = 0

    @classmethod
    def from_predictor(cls, predictor: Predictor) -> ModelPotential:
        """Use a predictor's model, device, dtype and element check."""
        return cls(predictor.model, predictor.device, predictor.dtype, predictor=predictor)

    def graph(self, frames: Sequence[Atoms]) -> AtomicGraph:
        """Graph with this model's edges (elements checked when built from a predictor)."""
        if self.predictor is not None:
            return self.predictor.graph(frames)
        return AtomicGraph.from_atoms(
            list(frames), self.cutoff, self.max_neighbors, device=self.device, dtype=self.dtype
        )

    def __call__(self, graph: AtomicGraph) -> tuple[Tensor, Tensor]:
        """One forward pass (see :class:`Potential`)."""
        self.calls += 1
        if self.conservative:
            out = self.model(graph)
        else:
            with torch.no_grad():
                out = self.model(graph)
        return out["energy"].detach(), out["forces"].detach()

    def with_stress(self, graph: AtomicGraph) -> tuple[Tensor, Tensor, Tensor]:
        """``(energy [B] eV, forces [N, 3] eV/Å, stress [B, 3, 3] eV/Å^3)``, ASE's sign.

        Raises:
            ValueError: The model predicts forces directly (it has no stress).
        """
        if not self.conservative:
            raise ValueError(
                "cell relaxation and NPT need the stress, which only a conservative model "
                "(forces = -dE/dr) provides; this model predicts forces directly. Relax positions "
                "only (drop --relax-cell), run NVT, or use a conservative checkpoint"
            )
        self.calls += 1
        out = self.model(graph, compute_stress=True)
        return out["energy"].detach(), out["forces"].detach(), out["stress"].detach()


class AsePotential:
    """An ASE calculator as a :class:`Potential`, one ``Atoms`` per system, float64 on CPU.

    Args:
        calc: any ASE calculator providing energy and forces.
    """

    cutoff: float | None = None
    max_neighbors: int | None = None
    # ASE calculators are taken to be conservative (forces = -dE/dr)
    conservative: bool = True

    def __init__(self, calc: Calculator) -> None:
        self.calc = calc
        self.device = torch.device("cpu")
        self.dtype = torch.float64
        self.calls = 0

    def graph(self, frames: Sequence[Atoms]) -> AtomicGraph:
        """Graph of ``frames`` without edges (the calculator finds its own neighbours)."""
        graph = AtomicGraph.from_atoms(list(frames), 0.5, dtype=self.dtype, min_distance=0.0)
        return dataclasses.replace(
            graph,
            edge_index=graph.edge_index[:, :0],
            cell_shifts=graph.cell_shifts[:0],
        )

    def __call__(self, graph: AtomicGraph) -> tuple[Tensor, Tensor]:
        """Evaluate each system with the calculator (see :class:`Potential`)."""
        energy, forces, _ = self._evaluate(graph, stress=False)
        return energy, forces

    def with_stress(self, graph: AtomicGraph) -> tuple[Tensor, Tensor, Tensor]:
        """``(energy [B] eV, forces [N, 3] eV/Å, stress [B, 3, 3] eV/Å^3)``, ASE's sign."""
        return self._evaluate(graph, stress=True)

    def _evaluate(self, graph: AtomicGraph, stress: bool) -> tuple[Tensor, Tensor, Tensor]:
        self.calls += 1
        pos = graph.positions.detach().cpu().double().numpy()
        numbers = graph.atomic_numbers.cpu().numpy()
        bounds = np.concatenate([[0], np.cumsum(graph.natoms.cpu().numpy())])
        energies, forces, stresses = [], [], []
        for b in range(graph.num_systems):
            lo, hi = bounds[b], bounds[b + 1]
            atoms = Atoms(
                numbers=numbers[lo:hi],
                positions=pos[lo:hi],
                cell=graph.cell[b].detach().cpu().double().numpy(),
                pbc=graph.pbc[b].cpu().numpy(),
            )
            atoms.calc = self.calc
            energies.append(atoms.get_potential_energy())
            forces.append(atoms.get_forces())
            stresses.append(atoms.get_stress(voigt=False) if stress else np.zeros((3, 3)))
        like = {"dtype": graph.positions.dtype, "device": graph.positions.device}
        energy = torch.tensor(energies, **like)
        force = torch.from_numpy(np.concatenate(forces)).to(**like)
        return energy, force, torch.from_numpy(np.stack(stresses)).to(**like)


def evaluate_with_stress(potential: Potential, graph: AtomicGraph) -> tuple[Tensor, Tensor, Tensor]:
    """``potential.with_stress(graph)``, or a clear error where the potential has no stress."""
    method = getattr(potential, "with_stress", None)
    if method is None:
        raise ValueError(
            f"cell relaxation needs the stress; {type(potential).__name__} has no "
            "with_stress(graph) method"
        )
    return method(graph)


def as_potential(
    obj: Potential | Predictor | nn.Module | Calculator,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> Potential:
    """Wrap a predictor, a model or an ASE calculator as a :class:`Potential`.

    ``device`` and ``dtype`` apply to a bare model only (a predictor carries its own).
    """
    if isinstance(obj, Predictor):
        return ModelPotential.from_predictor(obj)
    if isinstance(obj, nn.Module):
        return ModelPotential(obj, device=device, dtype=dtype)
    if isinstance(obj, Calculator):
        return AsePotential(obj)
    if isinstance(obj, Potential):
        return obj
    raise TypeError(
        f"cannot relax with a {type(obj).__name__}; pass an equicat Predictor, an equicat "
        "model (nn.Module), an ASE calculator or a relax.Potential"
    )
