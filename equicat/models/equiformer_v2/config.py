"""Typed configuration of EquiformerV2."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

__all__ = ["EquiformerV2Config"]


@dataclass(frozen=True)
class EquiformerV2Config:
    """Hyper-parameters of :class:`~equicat.models.equiformer_v2.EquiformerV2`.

    The defaults make a small model for tests and quick training. The published OC20
    "31M" model is ``num_layers=8, lmax=4, mmax=2, sphere_channels=128,
    attn_hidden_channels=64, num_heads=8, attn_alpha_channels=64, attn_value_channels=16,
    ffn_hidden_channels=128, edge_channels=128, cutoff=12.0, max_neighbors=20``.

    Attributes:
        num_layers: Transformer blocks.
        lmax: Largest degree of the node features.
        mmax: Largest order used in edge-frame (SO(2)) operations.
        sphere_channels: Channels per coefficient of the node features.
        attn_hidden_channels: Channels of the attention messages.
        num_heads: Attention heads.
        attn_alpha_channels: Channels per head entering the attention logits.
        attn_value_channels: Channels per head of the attention values.
        ffn_hidden_channels: Hidden channels of the feed-forward networks.
        edge_channels: Width of the radial MLPs and of the atom-type edge embeddings.
        num_distance_basis: Gaussian radial basis size on ``[0, cutoff]``.
        distance_basis_width: Gaussian width in units of the centre spacing.
        cutoff: Neighbour cutoff radius, Å.
        max_neighbors: Neighbours kept per atom (nearest first); ``None`` keeps all.
        max_num_elements: Embedding table size (atomic numbers ``< max_num_elements``).
        grid_resolution: Sphere-grid points per angle for the S^2 activations.
        avg_degree: Divisor of the edge-degree embedding sum (a dataset statistic).
        avg_num_nodes: Divisor of the per-system energy sum (a dataset statistic).
        energy_mean: Added to each system's (scaled) energy, eV.
        energy_std: Scale of the network's energy output, eV.
        force_std: Scale of the direct-force output, eV/Å.
        forces: ``"direct"`` (a force head, OC20 style) or ``"conservative"`` (-dE/dr and
            stress by strain derivative; no force head).
        envelope: ``"none"`` (the published model: edges enter and leave at the cutoff with
            a jump) or ``"polynomial"``: every edge's attention weight and edge-degree
            contribution is scaled by a polynomial envelope that vanishes with its first two
            derivatives at the cutoff, so the energy is twice differentiable there. Use it
            (with ``max_neighbors=None``) for energy-conserving MD.
        envelope_exponent: Exponent ``p`` of the polynomial envelope.
        element_energies: Reference energy of each element, eV, indexed by atomic number
            (missing entries count as 0). Each system's energy gets ``sum_i e[Z_i]`` added,
            so a model trained on referenced energies predicts totals on its oracle's scale.
    """

    num_layers: int = 2
    lmax: int = 2
    mmax: int = 1
    sphere_channels: int = 32
    attn_hidden_channels: int = 16
    num_heads: int = 2
    attn_alpha_channels: int = 8
    attn_value_channels: int = 4
    ffn_hidden_channels: int = 32
    edge_channels: int = 32
    num_distance_basis: int = 600
    distance_basis_width: float = 2.0
    cutoff: float = 6.0
    max_neighbors: int | None = 20
    max_num_elements: int = 90
    grid_resolution: int = 18
    avg_degree: float = 23.395238876342773
    avg_num_nodes: float = 77.81317
    energy_mean: float = 0.0
    energy_std: float = 1.0
    force_std: float = 1.0
    forces: Literal["direct", "conservative"] = "direct"
    envelope: Literal["none", "polynomial"] = "none"
    envelope_exponent: int = 5
    element_energies: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        # stored configs hold lists; keep the frozen dataclass hashable and immutable
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
        if self.envelope not in ("none", "polynomial"):
            raise ValueError(f"envelope must be 'none' or 'polynomial', got {self.envelope!r}")
        if self.cutoff <= 0:
            raise ValueError(f"cutoff must be positive, got {self.cutoff}")

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (stored in checkpoints)."""
        out = asdict(self)
        out["element_energies"] = list(self.element_energies)
        return out
