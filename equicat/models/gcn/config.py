"""Typed configuration of the L-set equivariant GCN."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from equicat.so3.harmonics_direct import LMAX_DIRECT

__all__ = ["GCNConfig"]


@dataclass(frozen=True)
class GCNConfig:
    """Hyper-parameters of :class:`~equicat.models.gcn.LSetGCN`.

    The paper's QM9 runs (Lee et al., Table 2) used ``atom_embedding_dim=64, num_bessel=20,
    cutoff=6.0, num_layers=3, avg_degree=6.0828`` and hidden sizes of 16 or more per degree.

    Attributes:
        degrees: The set ``L`` of degrees carried by node features and edge harmonics, e.g.
            ``(0, 3, 4, 5, 6)``; must contain 0 (the scalar readout); each in ``0..10``.
        hidden_channels: Channels ``h`` per degree (node features have ``h (2l + 1)``
            components per degree).
        atom_embedding_dim: Width of the initial scalar atom embedding.
        num_layers: Graph convolutions.
        num_bessel: Bessel radial functions on ``[0, cutoff]``.
        radial_hidden: Hidden width of the radial MLP giving the tensor-product weights.
        readout_hidden: Hidden width of the scalar (``l = 0``) readout MLP.
        envelope_exponent: ``p`` of the polynomial envelope on every edge (smooth cutoff).
        cutoff: Neighbour cutoff radius, Å.
        max_neighbors: Neighbours kept per atom (nearest first); ``None`` keeps all.
        max_num_elements: Embedding table size (atomic numbers ``< max_num_elements``).
        avg_degree: Messages are summed and divided by this (the paper's "degree
            normalization"; measured by the trainer unless set).
        energy_mean: Added to each system's energy, eV.
        energy_std: Scale of the per-atom network energy, eV.
        force_std: Unused (forces are ``-dE/dr``); kept so the trainer can fit it.
        element_energies: Reference energy of each element, eV, by atomic number.
    """

    degrees: tuple[int, ...] = (0, 1, 2)
    hidden_channels: int = 16
    atom_embedding_dim: int = 64
    num_layers: int = 3
    num_bessel: int = 20
    radial_hidden: int = 32
    readout_hidden: int = 32
    envelope_exponent: int = 6
    cutoff: float = 6.0
    max_neighbors: int | None = None
    max_num_elements: int = 90
    avg_degree: float = 6.0828
    energy_mean: float = 0.0
    energy_std: float = 1.0
    force_std: float = 1.0
    element_energies: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        degrees = tuple(sorted({int(d) for d in self.degrees}))
        object.__setattr__(self, "degrees", degrees)
        object.__setattr__(self, "element_energies", tuple(float(e) for e in self.element_energies))
        if 0 not in degrees or any(not 0 <= d <= LMAX_DIRECT for d in degrees):
            raise ValueError(
                f"degrees must include 0 (the scalar readout) and lie in 0..{LMAX_DIRECT}, "
                f"got {list(self.degrees)}"
            )
        if len(self.element_energies) > self.max_num_elements:
            raise ValueError(
                f"element_energies has {len(self.element_energies)} entries but the model "
                f"knows only atomic numbers below {self.max_num_elements}"
            )
        if self.num_layers < 1 or self.hidden_channels < 1:
            raise ValueError("the GCN needs num_layers >= 1 and hidden_channels >= 1")
        if self.cutoff <= 0 or self.avg_degree <= 0:
            raise ValueError(f"cutoff and avg_degree must be positive, got {self.cutoff}, "
                             f"{self.avg_degree}")  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (stored in checkpoints)."""
        out = asdict(self)
        out["degrees"] = list(self.degrees)
        out["element_energies"] = list(self.element_energies)
        return out
