"""Typed configuration of eSCN."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

__all__ = ["EscnConfig"]


@dataclass(frozen=True)
class EscnConfig:
    """Hyper-parameters of :class:`~equicat.models.escn.Escn`.

    The defaults make a small model for tests. The published OC20 "L6 M3 20 layers" model is
    ``num_layers=20, lmax=6, mmax=3, sphere_channels=160, hidden_channels=384,
    edge_channels=128, cutoff=12.0, max_neighbors=20, num_distance_basis=600``.

    Attributes:
        num_layers: Message-passing layers.
        lmax: Largest degree of the node features.
        mmax: Largest order kept in the edge frame (SO(2) convolutions, message activation).
        sphere_channels: Channels per coefficient of the node features.
        hidden_channels: Hidden width of the SO(2) convolutions.
        edge_channels: Width of the invariant edge features.
        num_distance_basis: Gaussians on ``[0, cutoff]`` (the reference: ``cutoff / 0.02``).
        distance_basis_width: Gaussian width in units of the centre spacing.
        num_sphere_samples: Points on the sphere where the energy and force heads are
            evaluated (and averaged).
        cutoff: Neighbour cutoff radius, Å.
        max_neighbors: Neighbours kept per atom (nearest first); ``None`` keeps all.
        max_num_elements: Embedding table size (atomic numbers ``< max_num_elements``).
        energy_divisor: The per-system sum of atomic energies is divided by this (the
            published eSCN weights were trained with 1000).
        energy_mean: Added to each system's (scaled) energy, eV.
        energy_std: Scale of the network's energy output, eV.
        force_std: Scale of the direct-force output, eV/Å.
        forces: ``"direct"`` (the force head, as published) or ``"conservative"`` (-dE/dr
            and stress by strain derivative; the force head is not built).
        element_energies: Reference energy of each element, eV, indexed by atomic number;
            each system's energy gets ``sum_i e[Z_i]`` added.
    """

    num_layers: int = 2
    lmax: int = 4
    mmax: int = 2
    sphere_channels: int = 32
    hidden_channels: int = 64
    edge_channels: int = 32
    num_distance_basis: int = 300
    distance_basis_width: float = 2.0
    num_sphere_samples: int = 128
    cutoff: float = 6.0
    max_neighbors: int | None = 20
    max_num_elements: int = 90
    energy_divisor: float = 1000.0
    energy_mean: float = 0.0
    energy_std: float = 1.0
    force_std: float = 1.0
    forces: Literal["direct", "conservative"] = "direct"
    element_energies: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "element_energies", tuple(float(e) for e in self.element_energies))
        if len(self.element_energies) > self.max_num_elements:
            raise ValueError(
                f"element_energies has {len(self.element_energies)} entries but the model "
                f"knows only atomic numbers below {self.max_num_elements}"
            )
        if not 0 <= self.mmax <= self.lmax:
            raise ValueError(f"need 0 <= mmax <= lmax, got lmax={self.lmax}, mmax={self.mmax}")
        if self.forces not in ("direct", "conservative"):
            raise ValueError(f"forces must be 'direct' or 'conservative', got {self.forces!r}")
        if self.cutoff <= 0:
            raise ValueError(f"cutoff must be positive, got {self.cutoff}")
        if self.num_layers < 1 or self.num_distance_basis < 2 or self.num_sphere_samples < 1:
            raise ValueError(
                "num_layers, num_sphere_samples must be >= 1 and num_distance_basis >= 2, got "
                f"{self.num_layers}, {self.num_sphere_samples}, {self.num_distance_basis}"
            )

    @property
    def node_grid(self) -> tuple[int, int]:
        """``(res_beta, res_alpha)`` of the node-update grid (all orders, as the reference)."""
        return 2 * (self.lmax + 1), 2 * self.lmax + 3

    @property
    def edge_grid(self) -> tuple[int, int]:
        """``(res_beta, res_alpha)`` of the message-activation grid (orders ``<= mmax``)."""
        alpha = 2 * self.mmax + 1 if self.mmax < self.lmax else 2 * self.lmax + 3
        return 2 * (self.lmax + 1), alpha

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (stored in checkpoints)."""
        out = asdict(self)
        out["element_energies"] = list(self.element_energies)
        return out
